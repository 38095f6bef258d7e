"""Pure mapping from what the operator observes (spec, Job, worker report, queue) to the download's status."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gallery_operator.api.status import MAX_FAILURES, Failure, GalleryDownloadStatus, Phase
from gallery_operator.workerconfig import Report

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
TERMINAL_PHASES: frozenset[Phase] = frozenset({"Succeeded", "Failed"})

JobState = Literal["Absent", "Pending", "Running", "Suspended", "Complete", "Failed"]
"""What a download's Job is doing, read from its status (job_state). Typed so that mypy's strict equality refuses a
comparison with a state that does not exist."""
FINISHED_STATES: frozenset[JobState] = frozenset({"Complete", "Failed"})


@dataclass(frozen=True)
class Observation:
    """Everything the status is computed from, gathered by the I/O shell."""

    generation: int
    now: str
    job_name: str | None = None
    job: dict[str, Any] | None = None
    report: Report | None = None
    queue_position: int | None = None
    suspended: bool = False
    invalid: str | None = None
    blocked: tuple[str, str] | None = None
    """(url, why) when the egress rules refuse a URL of the spec: no Job is made."""


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one RFC 3339 time to another; None when either is missing."""
    if not start or not end:
        return None
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def ready_reason(status: Mapping[str, Any]) -> str:
    """The reason of a stored status's Ready condition (the phase when it has none)."""
    conditions = status.get("conditions") or []
    return str(next((c["reason"] for c in conditions if c["type"] == READY), status["phase"]))


def human_size(size: int) -> str:
    """Bytes in binary units as kubectl users read them: 0, 512, 1.5Ki, 2.0Mi, 1.2Gi."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
        if value < 1024 or unit == "Pi":
            return f"{int(value)}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


ACTIVE_STATES: frozenset[JobState] = frozenset({"Pending", "Running"})
"""Job states that hold a slot under the concurrency caps."""


def job_state(job: Mapping[str, Any] | None) -> tuple[JobState, str, str]:
    """(state, reason, message) of a Job: state is Absent, Pending, Running, Suspended, Complete or Failed."""
    if job is None:
        return "Absent", "", ""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Complete", condition.get("reason", ""), condition.get("message", "")
        if condition.get("type") in ("Failed", "FailureTarget"):
            return "Failed", condition.get("reason", "") or "Failed", condition.get("message", "")
        if condition.get("type") == "Suspended":
            return "Suspended", "", ""
    if (job.get("spec") or {}).get("suspend"):
        return "Suspended", "", ""
    if status.get("ready"):
        return "Running", "", ""
    return "Pending", "", ""  # no pod yet, or one not running yet (scheduling, pulling, mounting)


def _condition(
    previous: list[dict[str, Any]],
    kind: str,
    value: bool,
    reason: str,
    message: str,
    observation: Observation,
) -> dict[str, Any]:
    status = "True" if value else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != status or before.get("reason") != reason
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": observation.now if changed else before["lastTransitionTime"],  # type: ignore[index]
        "observedGeneration": observation.generation,
    }


def _merge_failures(old: list[dict[str, Any]], new: list[Failure]) -> list[dict[str, Any]]:
    """Newest last, without repeats, bounded."""
    merged = list(old)
    for failure in new:
        item = failure.model_dump(by_alias=True, exclude_none=True)
        if item not in merged:
            merged.append(item)
    return merged[-MAX_FAILURES:]


def _job_failure_reason(reason: str) -> str:
    return {"DeadlineExceeded": "DeadlineExceeded", "BackoffLimitExceeded": "BackoffLimitExceeded"}.get(
        reason, "Internal"
    )


def compute_status(previous: Mapping[str, Any], observation: Observation) -> GalleryDownloadStatus:
    """The new .status: a pure function of the previous status (as stored) and an observation, as the one model
    of the status (api/status.py). A field the model does not define, or a value it refuses, is an error here,
    not a field the API server drops without a word."""
    return GalleryDownloadStatus.model_validate(_status_fields(previous, observation))


def as_stored(status: GalleryDownloadStatus) -> dict[str, Any]:
    """The status as the API server stores it: camelCase, only the fields the builder set."""
    return status.model_dump(mode="json", by_alias=True, exclude_unset=True)


def stored_status(previous: Mapping[str, Any], observation: Observation) -> dict[str, Any]:
    """compute_status, as stored."""
    return as_stored(compute_status(previous, observation))


def _status_fields(previous: Mapping[str, Any], observation: Observation) -> dict[str, Any]:
    status: dict[str, Any] = {k: v for k, v in previous.items() if k not in ("conditions",)}
    conditions_before = previous.get("conditions") or []
    status["observedGeneration"] = observation.generation
    new_run = observation.job_name is not None and observation.job_name != previous.get("jobName")
    if new_run:
        # A new run starts from a clean slate; the catalogue summary stays until the worker reports anew.
        for key in ("progress", "attempts", "startedAt", "finishedAt", "failures", "queuedAt"):
            status.pop(key, None)
        status["jobName"] = observation.job_name

    report = observation.report
    if report is not None:
        progress = {
            "itemsDone": report.items_done,
            "bytesDone": report.bytes_done,
            "itemsFailed": report.items_failed,
            "summary": f"{report.items_done}/{report.items_total}" if report.items_total else str(report.items_done),
        }
        if report.items_total is not None:
            progress["itemsTotal"] = report.items_total
        status["progress"] = progress
        status["catalogue"] = {
            "items": report.catalogue_items,
            "bytes": report.catalogue_bytes,
            "size": human_size(report.catalogue_bytes),
            "sample": [i.model_dump(by_alias=True, exclude_none=True) for i in report.sample],
            **({"location": report.catalogue_location} if report.catalogue_location else {}),
        }
        status["failures"] = _merge_failures(status.get("failures") or [], report.failures)

    state, job_reason, job_message = job_state(observation.job)
    if observation.job is not None:
        job_status = observation.job.get("status") or {}
        uncounted = job_status.get("uncountedTerminatedPods") or {}
        counted = sum(int(job_status.get(k) or 0) for k in ("active", "failed", "succeeded")) + sum(
            len(uncounted.get(k) or []) for k in ("failed", "succeeded")
        )
        # Pods started only ever grow within a run; the Job's counters can lag behind (see plan.new_job).
        status["attempts"] = max(counted, int(status.get("attempts") or 0))
        if job_status.get("startTime"):
            status.setdefault("startedAt", job_status["startTime"])

    phase: Phase
    reason: str
    message: str
    if observation.invalid is not None:
        phase, reason, message = "Failed", "InvalidSpec", observation.invalid
    elif observation.blocked is not None:
        url, why = observation.blocked
        phase, reason, message = "Failed", "Blocked", f"{why} ({url})"
        status["failures"] = [{"reason": "Blocked", "message": why[:1024], "url": url[:2048]}]
    elif previous.get("phase") in TERMINAL_PHASES and not new_run and state in FINISHED_STATES | {"Absent"}:
        # A finished run stays finished, also after its Job is cleaned up by its TTL.
        phase = previous["phase"]
        ready: dict[str, Any] = next((c for c in conditions_before if c.get("type") == READY), {})
        reason, message = ready.get("reason", phase), ready.get("message", "")
    elif observation.suspended:
        phase, reason, message = "Suspended", "Suspended", "spec.suspend is true"
    elif state == "Complete":
        partial = report is not None and report.outcome == "PartiallySucceeded"
        phase = "Succeeded"
        reason = "PartiallySucceeded" if partial else "Succeeded"
        message = report.message if report and report.message else "download finished"
    elif state == "Failed":
        phase = "Failed"
        worker_reason = report.failures[-1].reason if report and report.failures else None
        reason = worker_reason or _job_failure_reason(job_reason)
        message = (report.message if report and report.message else "") or job_message or job_reason
    elif state == "Absent" and observation.queue_position is not None:
        phase, reason, position = "Queued", "Queued", observation.queue_position
        if previous.get("phase") == "Queued" and previous.get("queuePosition") == position:
            message = previous.get("message", "")  # unchanged: no write
        else:
            message = f"waiting for a free slot (position {position} at {observation.now})"
        status["queuePosition"] = position
        status.setdefault("queuedAt", observation.now)
    elif state in ("Running",):
        phase, reason, message = (
            "Running",
            "Running",
            report.message if report and report.message else "downloading",
        )
    else:
        phase, reason, message = "Pending", "JobCreated" if observation.job else "Pending", "starting"

    if phase != "Queued":
        status.pop("queuePosition", None)
    if phase in TERMINAL_PHASES:
        status.setdefault("finishedAt", observation.now)
    status["phase"] = phase
    status["message"] = message[:1024]
    status["conditions"] = [
        _condition(conditions_before, READY, phase == "Succeeded", reason, message, observation),
        _condition(
            conditions_before,
            RECONCILING,
            phase in ("Pending", "Queued", "Running"),
            reason,
            message,
            observation,
        ),
        _condition(conditions_before, STALLED, phase == "Failed", reason, message, observation),
    ]
    return status
