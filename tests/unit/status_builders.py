"""The status tests' builders: times, a Job's view and body with given conditions, and the status after each kind of
transition."""

from __future__ import annotations

from typing import Any

from gallery_operator.api.status import CatalogueItem, Failure
from gallery_operator.snapshots import JobView
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Report

T0, T1, T2 = "2026-11-21T10:00:00Z", "2026-11-21T10:00:05Z", "2026-11-21T10:01:00Z"


def job(
    *conditions: str, active: int = 0, failed: int = 0, succeeded: int = 0, suspend: bool = False, reason: str = ""
) -> JobView:
    return JobView.of(
        job_body(*conditions, active=active, failed=failed, succeeded=succeeded, suspend=suspend, reason=reason)
    )


def job_body(
    *conditions: str, active: int = 0, failed: int = 0, succeeded: int = 0, suspend: bool = False, reason: str = ""
) -> dict[str, Any]:
    return {
        "spec": {"suspend": suspend},
        "status": {
            "active": active,
            "ready": active,
            "failed": failed,
            "succeeded": succeeded,
            "startTime": T0,
            "conditions": [{"type": c, "status": "True", "reason": reason, "message": ""} for c in conditions],
        },
    }


def stored_report(run: str, items: list[CatalogueItem], location: str, **fields: Any) -> Report:
    """A running report of a worker that stored ``items`` and read them back into its catalogue at ``location``;
    ``fields`` adds to or overrides the rest."""
    size = sum(item.size for item in items)
    stored = {"items_done": len(items), "items_total": len(items), "bytes_done": size}
    catalogue = {"catalogue_items": len(items), "catalogue_bytes": size, "catalogue_location": location}
    return Report.model_validate({"run": run, **stored, **catalogue, "sample": items, **fields})


def statuses() -> list[dict[str, Any]]:
    """The status after each kind of transition, with every optional part present somewhere."""
    item = CatalogueItem(path="a.jpg", size=3, sha256="0" * 64, content_type="image/jpeg", source_url="http://x/a")
    failure = Failure(reason="NotFound", message="gone", url="http://x/b")
    location = "pvc://media/dl/.gallery-operator/catalogue.jsonl"
    report = stored_report("r", [item], location, items_total=2, items_failed=1, failures=[failure])
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
