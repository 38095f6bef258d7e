"""The real API server admits engine numbers only within the schema's bounds (rateLimit's digits, more than zero,
int64's maximum), naming the field; what only the models can see fails the download as InvalidSpec, naming it."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import Downloads, pvc_spec


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"rateLimit": "9" * 400}, "spec.options.rateLimit"),
        ({"rateLimit": "0.000k"}, "rateLimit must be more than 0"),
        ({"ytDlp": {"max_filesize": 2**63}}, "max_filesize"),
    ],
)
def test_the_api_server_refuses_numbers_past_the_schema(
    downloads: Downloads, site: str, options: dict[str, object], words: str
) -> None:
    with pytest.raises(ApiException) as refused:
        downloads.create("refused", pvc_spec([f"{site}/img/1.jpg"], options={"retries": 0, **options}))
    assert refused.value.status in (400, 422) and words in refused.value.body, refused.value.body


def test_a_rate_under_a_byte_per_second_fails_naming_the_field(downloads: Downloads, site: str) -> None:
    downloads.create("slow", pvc_spec([f"{site}/img/1.jpg"], options={"retries": 0, "rateLimit": "0.5"}))
    status = downloads.wait_phase("slow", {"Succeeded", "Failed"}, timeout=60)
    ready = downloads.condition("slow", "Ready")
    assert (status["phase"], ready["reason"]) == ("Failed", "InvalidSpec"), status
    assert "spec.options.rateLimit" in ready["message"] and downloads.jobs("slow") == []
