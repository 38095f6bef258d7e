"""`options.format: "-"` is yt-dlp's interactive format selection: yt-dlp reads a format from the worker's standard
input for every video (a pod's is closed: every item failed with an Internal EOFError; an open one would hang the
run). The spec refuses it, naming the field, in the models and in the CRD's admission rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gallery_operator.api.crd import build_crd
from gallery_operator.api.spec import parse_spec

SPEC: dict[str, Any] = {"urls": ["https://example.org/v/1"], "target": {"pvc": {"claimName": "media"}}}


def test_interactive_format_selection_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_spec(SPEC | {"options": {"format": "-"}})
    [error] = raised.value.errors()
    assert error["loc"][:2] == ("options", "format") and "interactive" in error["msg"]
    assert parse_spec(SPEC | {"options": {"format": "bv*+ba/b"}}).options.format == "bv*+ba/b"


def test_the_crd_refuses_it_at_admission() -> None:
    version = build_crd()["spec"]["versions"][0]
    field = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["options"]["properties"]["format"]
    assert {
        "rule": "self != '-'",
        "message": "format '-' (interactive format selection) is not available in a worker",
    } in (field.get("x-kubernetes-validations") or [])
