"""The plan's situations built by hand: a download in one situation (its Jobs, report, slot, deletion), and the
statuses and names the plan's tests and the wall's tests share."""

from __future__ import annotations

import dataclasses
from typing import Any

from gallery_operator.admission import Granted, Waiting
from gallery_operator.api.status import GalleryDownloadStatus
from gallery_operator.config import Settings
from gallery_operator.download import Download, parse_download
from gallery_operator.jobs import job_name, run_id
from gallery_operator.plan import (
    CleanupSeen,
    Situation,
)
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot, JobView
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Report
from tests.unit.builders import download_snapshot, parsed

T0, T1 = "2026-11-22T10:00:00Z", "2026-11-22T10:00:30Z"


SETTINGS = Settings()


def snapshot(**spec: Any) -> DownloadSnapshot:
    """Download ns/dl (resourceVersion 7) with these spec fields."""
    return download_snapshot(resource_version="7", **spec)


def job(name: str, *conditions: str, ready: bool = False, suspend: bool = False) -> JobSnapshot:
    status: dict[str, Any] = {"active": int(ready), "ready": int(ready), "startTime": T0}
    status["conditions"] = [{"type": c, "status": "True", "reason": "", "message": ""} for c in conditions]
    return JobSnapshot(
        "ns", name, f"uid-{name}", "run", suspend, JobView.of({"spec": {"suspend": suspend}, "status": status})
    )


def situation(
    *,
    spec: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    jobs: tuple[str, ...] = (),
    job_conditions: tuple[str, ...] = (),
    ready: bool = False,
    report: dict[str, Any] | None = None,
    slot: Granted | Waiting | None = None,
    deleting: bool = False,
    finalizers: tuple[str, ...] = (),
    blocked: tuple[str, str] | None = None,
    old_run: bool = False,
    suspended: bool = False,
    cleanup: CleanupSeen | None = None,
    now: str = T1,
) -> Situation:
    """A download in one situation. `jobs` names Jobs by role: "current" (its run's Job) or "old" (an earlier run's)."""
    snap = snapshot(**(spec or {}))
    snap = dataclasses.replace(snap, finalizers=finalizers, deletion_timestamp=T0 if deleting else "")
    download = parse_download(snap, SETTINGS)
    current = job_name(parsed(snap)) if isinstance(download, Download) else "none"
    names = {"current": current, "old": "dl-0ld0ld0ld"}
    snapshots = tuple(
        job(names[role], *job_conditions, ready=ready, suspend=suspended) if role == "current" else job(names[role])
        for role in jobs
    )
    held = None
    if report is not None and isinstance(download, Download):
        held = Report.model_validate({"run": "another-run" if old_run else run_id(download), **report})
    previous_status = GalleryDownloadStatus.of_stored(previous or {})
    return Situation(snap, download, previous_status, now, snapshots, held, blocked, slot, cleanup=cleanup)


CURRENT = job_name(parsed(snapshot()))
"""The Job name of the default download's run (suspend, priority and deletionPolicy do not change it)."""


QUEUED = stored_status({}, Observation(1, T0, queue_position=3))
