"""The GallerySubscription models and the CRD generated from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gallery_operator.api.crd import build_subscription_crd, render_subscription_crd
from gallery_operator.api.spec import describe_validation
from gallery_operator.api.subscription import (
    GallerySubscriptionSpec,
    GallerySubscriptionStatus,
    cron_fields,
    duration_seconds,
    parse_subscription_spec,
)
from tests import REPO_ROOT
from tests.unit.schemas import structural_problems

COMMITTED = REPO_ROOT / "crds" / "gallerysubscriptions.gallery-operator.dev.yaml"
CHART = REPO_ROOT / "charts" / "gallery-operator" / "files" / "crd-subscription.yaml"
SAMPLES = sorted((REPO_ROOT / "manifests" / "samples").glob("*.yaml"))


def minimal(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": "6h",
        "downloadTemplate": {"urls": ["https://example.org/gallery/1"], "target": {"pvc": {"claimName": "media"}}},
    }
    spec.update(changes)
    return spec


@pytest.mark.parametrize("copy", [COMMITTED, CHART], ids=["crds", "chart"])
def test_committed_crd_matches_the_models(copy: Path) -> None:
    assert copy.read_text() == render_subscription_crd(), f"{copy} drifted from the models: run `make crds`"


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_subscription_spec(minimal())
    assert spec.concurrency_policy == "Forbid"
    assert spec.deletion_policy == "Retain"
    assert (spec.successful_runs_history_limit, spec.failed_runs_history_limit) == (3, 1)
    assert spec.starting_deadline_seconds is None and spec.stop_after_known is None and not spec.suspend
    assert spec.period is not None and spec.period.total_seconds() == 6 * 3600
    assert spec.download_template.deletion_policy == "Retain"


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400), ("2h0m5s", 7205)]
)
def test_durations_read_as_flux_writes_them(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize(
    ("macro", "fields"), [("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("  */5   * * * * ", "*/5 * * * *")]
)
def test_macros_expand_to_cron_fields(macro: str, fields: str) -> None:
    assert cron_fields(macro) == fields


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"schedule": "0 * * * *"}, "", "exactly one of schedule and interval"),
        ({"interval": None}, "", "exactly one of schedule and interval"),
        ({"interval": None, "schedule": "61 * * * *"}, "schedule", "Bad minute"),
        ({"interval": None, "schedule": "0 * * *"}, "schedule", "pattern"),
        ({"interval": None, "schedule": "CRON_TZ=UTC 0 * * *"}, "schedule", "pattern"),
        ({"interval": None, "schedule": "@every 5m"}, "schedule", "pattern"),
        ({"interval": None, "schedule": "0 * * * *", "timeZone": "Mars/Olympus"}, "timeZone", "unknown time zone"),
        ({"interval": None, "schedule": "0 * * * *", "timeZone": "Local"}, "timeZone", "not an IANA"),
        ({"interval": None, "schedule": "0 * * * *", "timeZone": "../../etc/passwd"}, "timeZone", "pattern"),
        ({"interval": "5s"}, "interval", "between 10s"),
        ({"interval": "9000h"}, "interval", "between 10s"),
        ({"interval": "an hour"}, "interval", "pattern"),
        ({"jitter": "25h"}, "jitter", "between 0s"),
        ({"concurrencyPolicy": "Allow"}, "concurrencyPolicy", "Forbid"),
        ({"startingDeadlineSeconds": 0}, "startingDeadlineSeconds", "greater than or equal to 1"),
        ({"successfulRunsHistoryLimit": -1}, "successfulRunsHistoryLimit", "greater than or equal to 0"),
        ({"stopAfterKnown": 0}, "stopAfterKnown", "greater than or equal to 1"),
        (
            {"downloadTemplate": {"urls": ["ftp://example.org/x"], "target": {"pvc": {"claimName": "m"}}}},
            "downloadTemplate.urls.0",
            "pattern",
        ),
        (
            {"downloadTemplate": {"urls": ["https://example.org/x"], "target": {"pvc": {"template": {"size": "1Gi"}}}}},
            "downloadTemplate",
            "target.pvc.template: not allowed in a subscription",
        ),
        (
            {
                "downloadTemplate": {
                    "urls": ["https://example.org/x"],
                    "target": {"pvc": {"claimName": "m"}},
                    "deletionPolicy": "Delete",
                }
            },
            "downloadTemplate",
            "deletionPolicy: runs always keep their files",
        ),
        (
            {
                "downloadTemplate": {
                    "urls": ["https://example.org/x"],
                    "target": {"s3": {"bucket": "bkt"}},
                    "suspend": True,
                }
            },
            "downloadTemplate",
            "suspend: set the subscription's spec.suspend",
        ),
        (
            {
                "downloadTemplate": {
                    "urls": ["https://example.org/x"],
                    "target": {"pvc": {"claimName": "m"}},
                    "options": {"ytDlp": {"exec": "sh"}},
                }
            },
            "downloadTemplate.options.ytDlp.exec",
            "Extra inputs",
        ),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    raw = {k: v for k, v in minimal(**change).items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        parse_subscription_spec(raw)
    text = describe_validation(caught.value)
    assert words in text, text
    if field:
        assert f"spec.{field}:" in text, text


def test_time_zone_only_with_a_schedule() -> None:
    """The CRD's CEL rule refuses it at admission; parsing accepts an unused zone (the interval ignores it), so the
    rule is the one check: it must be in the schema."""
    rules = build_subscription_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    messages = [r["message"] for r in rules["x-kubernetes-validations"]]
    assert "timeZone goes with schedule (an interval has no zone)" in messages
    assert "set exactly one of schedule and interval" in messages


def test_crd_schema_is_structural_and_explained() -> None:
    crd = build_subscription_crd()
    assert crd["metadata"]["name"] == "gallerysubscriptions.gallery-operator.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        "GallerySubscription",
        "gallerysubscriptions",
        ["gsub"],
        ["gallery"],
    )
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert structural_problems(schema) == []
    assert schema["properties"]["spec"]["required"] == ["downloadTemplate"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Schedule", "Last run", "New", "Items", "Size", "Next", "Age"]
    for part in ("spec", "status"):
        for name, field in schema["properties"][part]["properties"].items():
            assert field.get("description"), f"{part}.{name} has no description for kubectl explain"
    # The template is the download's own schema: its CEL rules come along.
    template = schema["properties"]["spec"]["properties"]["downloadTemplate"]
    assert template["properties"]["target"]["x-kubernetes-validations"]


def test_columns_point_at_status_fields() -> None:
    status = GallerySubscriptionStatus.model_json_schema(by_alias=True)["properties"]
    library = GallerySubscriptionStatus.model_fields["library"].annotation
    assert library is not None
    for column in build_subscription_crd()["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"].split(".")[1:]
        if path[0] == "status":
            assert path[1] in status, column
    assert GallerySubscriptionSpec.model_fields["download_template"].is_required()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_subscription_samples_parse(sample: Path) -> None:
    for document in yaml.safe_load_all(sample.read_text()):
        if document and document["kind"] == "GallerySubscription":
            parse_subscription_spec(document["spec"])
