"""Every field the operator writes into status is in the CRD's status schema.

The API server prunes unknown fields of a structural schema without an error, so a misspelt status field would
vanish silently. The status builder returns the pydantic model the CRD is generated from (so a field the model
lacks fails at once); this test holds the stored form and the committed CRD together over every phase.
"""

from __future__ import annotations

from typing import Any

import yaml

from gallery_harness import REPO_ROOT
from gallery_operator.api.status import CatalogueItem, Failure
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Report
from tests.unit.test_status import T0, T1, T2, job

CRD = REPO_ROOT / "crds" / "gallerydownloads.gallery-operator.dev.yaml"


def status_schema() -> dict[str, Any]:
    [version] = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Paths in ``value`` that ``schema`` would prune."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found = []
        for key, item in value.items():
            if key not in properties:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(item, properties[key], f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in unknown_fields(item, schema.get("items", {}), f"{path}[{i}]")
        ]
    return []


def statuses() -> list[dict[str, Any]]:
    """The status after each kind of transition, with every optional part present somewhere."""
    item = CatalogueItem(path="a.jpg", size=3, sha256="0" * 64, content_type="image/jpeg", source_url="http://x/a")
    failure = Failure(reason="NotFound", message="gone", url="http://x/b")
    report = Report(
        run="r",
        items_done=1,
        items_total=2,
        items_failed=1,
        bytes_done=3,
        catalogue_items=1,
        catalogue_bytes=3,
        catalogue_location="pvc://media/dl/.gallery-operator/catalogue.jsonl",
        sample=[item],
        failures=[failure],
    )
    final = report.model_copy(update={"final": True, "outcome": "PartiallySucceeded"})
    queued = stored_status({}, Observation(1, T0, queue_position=2))
    running = stored_status(queued, Observation(1, T1, job_name="dl-r", job=job(active=1), report=report))
    finished = stored_status(
        running, Observation(1, T2, job_name="dl-r", job=job("Complete", succeeded=1), report=final)
    )
    failed = stored_status(
        running, Observation(1, T2, job_name="dl-r", job=job("Failed", failed=3, reason="BackoffLimitExceeded"))
    )
    return [
        queued,
        running,
        finished,
        failed,
        stored_status(running, Observation(2, T2, suspended=True)),
        stored_status({}, Observation(1, T0, invalid="spec.urls: too long")),
        stored_status({}, Observation(1, T0, blocked=("http://10.0.0.1/a", "blocked by egress rules"))),
    ]


def test_the_check_sees_an_unknown_field() -> None:
    assert unknown_fields({"phase": "Queued", "progres": {}}, status_schema(), "status") == ["status.progres"]
    assert unknown_fields({"catalogue": {"sample": [{"pth": "a"}]}}, status_schema(), "status") == [
        "status.catalogue.sample[0].pth"
    ]


def test_every_status_field_the_operator_writes_is_in_the_crd() -> None:
    schema = status_schema()
    written = statuses()
    assert {s["phase"] for s in written} == {"Queued", "Running", "Succeeded", "Failed", "Suspended"}
    for status in written:
        assert unknown_fields(status, schema, "status") == [], status
