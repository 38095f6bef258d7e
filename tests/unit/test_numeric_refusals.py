"""Numeric options past the schema's limits are refused by the schema naming the field (a pure check of the spec
model: the runs at the limits, with the real worker, are in tests/component/test_worker_numeric_limits.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gallery_operator.api.spec import LARGEST_INTEGER, describe_validation, parse_spec

REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"options": {"rateLimit": "9" * 400}}, "options.rateLimit"),
    ({"options": {"rateLimit": "9" * 16 + "G"}}, "options.rateLimit"),
    ({"options": {"rateLimit": "0"}}, "options.rateLimit"),
    ({"options": {"rateLimit": "0.000k"}}, "options.rateLimit"),
    ({"options": {"rateLimit": "0.5"}}, "options.rateLimit"),
    ({"options": {"rateLimit": "1e3"}}, "options.rateLimit"),
    ({"options": {"ytDlp": {"max_filesize": LARGEST_INTEGER + 1}}}, "options.ytDlp.max_filesize"),
    ({"options": {"ytDlp": {"throttledratelimit": 10**400}}}, "options.ytDlp.throttledratelimit"),
]


@pytest.mark.parametrize(("extra", "field"), REFUSED, ids=lambda e: str(e)[:60])
def test_numeric_options_past_the_limits_are_refused_naming_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_spec({"urls": ["http://example.com/a.jpg"], "target": {"pvc": {"claimName": "x"}}, **extra})
    assert describe_validation(refused.value).startswith(f"spec.{field}:")
