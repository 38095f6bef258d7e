"""Pure mapping from what the operator observes (spec, Job, worker report, queue) to the download's status.

The phase is decided by an ordered chain of named rules (`RULES`): the first rule that speaks for the observation
gives the phase, the reason and the message; the rest of the status (progress, catalogue, attempts, times,
conditions) follows from the observation and that verdict.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gallery_operator.api.status import (
    MAX_FAILURES,
    Catalogue,
    Condition,
    ConditionReason,
    Failure,
    FailureReason,
    GalleryDownloadStatus,
    Phase,
    Progress,
)
from gallery_operator.snapshots import ABSENT, FINISHED_STATES, JobView
from gallery_operator.workerconfig import Report

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
TERMINAL_PHASES: frozenset[Phase] = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Observation:
    """Everything the status is computed from, gathered by the I/O shell."""

    generation: int
    now: str
    job_name: str | None = None
    job: JobView | None = None
    """The run's Job as observed (or as the plan knows it: just created, or gone after the run ended)."""
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


def human_size(size: int) -> str:
    """Bytes in binary units as kubectl users read them: 0, 512, 1.5Ki, 2.0Mi, 1.2Gi."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
        if value < 1024 or unit == "Pi":
            return f"{int(value)}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- the phase: an ordered chain of named rules ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What a rule decides: the phase, the conditions' reason and the one-line message."""

    phase: Phase
    reason: ConditionReason | str
    """A declared reason; a finished run that stays finished keeps the reason it was written with."""
    message: str
    failures: list[Failure] | None = None
    """Failures that replace the status's (a refused destination)."""
    queue_position: int | None = None


@dataclass(frozen=True)
class Facts:
    """What the rules read: the observation, the previous status and what follows from them."""

    previous: GalleryDownloadStatus
    observation: Observation
    job: JobView
    new_run: bool


Rule = Callable[[Facts], Verdict | None]


def _invalid(facts: Facts) -> Verdict | None:
    invalid = facts.observation.invalid
    return None if invalid is None else Verdict("Failed", "InvalidSpec", invalid)


def _blocked(facts: Facts) -> Verdict | None:
    if facts.observation.blocked is None:
        return None
    url, why = facts.observation.blocked
    failure = Failure(reason="Blocked", message=why[:1024], url=url[:2048])
    return Verdict("Failed", "Blocked", f"{why} ({url})", failures=[failure])


def _stays_finished(facts: Facts) -> Verdict | None:
    """A finished run stays finished, also after its Job is cleaned up by its TTL."""
    previous = facts.previous
    if previous.phase not in TERMINAL_PHASES or facts.new_run or facts.job.state not in FINISHED_STATES | {"Absent"}:
        return None
    ready = next((c for c in previous.conditions if c.type == READY), None)
    return Verdict(previous.phase, ready.reason if ready else previous.phase, ready.message if ready else "")


def _suspended(facts: Facts) -> Verdict | None:
    return Verdict("Suspended", "Suspended", "spec.suspend is true") if facts.observation.suspended else None


def _complete(facts: Facts) -> Verdict | None:
    if facts.job.state != "Complete":
        return None
    report = facts.observation.report
    partial = report is not None and report.outcome == "PartiallySucceeded"
    message = report.message if report and report.message else "download finished"
    return Verdict("Succeeded", "PartiallySucceeded" if partial else "Succeeded", message)


def _job_failure_reason(reason: str) -> FailureReason:
    """The Job controller's reason, when it is one of ours; else Internal."""
    if reason == "DeadlineExceeded":
        return "DeadlineExceeded"
    if reason == "BackoffLimitExceeded":
        return "BackoffLimitExceeded"
    return "Internal"


def _failed(facts: Facts) -> Verdict | None:
    job, report = facts.job, facts.observation.report
    if job.state != "Failed":
        return None
    worker_reason = report.failures[-1].reason if report and report.failures else None
    message = (report.message if report and report.message else "") or job.message or job.reason
    return Verdict("Failed", worker_reason or _job_failure_reason(job.reason), message)


def _queued(facts: Facts) -> Verdict | None:
    position, previous = facts.observation.queue_position, facts.previous
    if facts.job.state != "Absent" or position is None:
        return None
    if previous.phase == "Queued" and previous.queue_position == position:
        message = previous.message  # unchanged: no write
    else:
        message = f"waiting for a free slot (position {position} at {facts.observation.now})"
    return Verdict("Queued", "Queued", message, queue_position=position)


def _running(facts: Facts) -> Verdict | None:
    if facts.job.state != "Running":
        return None
    report = facts.observation.report
    return Verdict("Running", "Running", report.message if report and report.message else "downloading")


def _pending(facts: Facts) -> Verdict:
    return Verdict("Pending", "JobCreated" if facts.observation.job else "Pending", "starting")


RULES: tuple[tuple[str, Rule], ...] = (
    ("InvalidSpec", _invalid),
    ("Blocked", _blocked),
    ("StaysFinished", _stays_finished),
    ("Suspended", _suspended),
    ("Complete", _complete),
    ("Failed", _failed),
    ("Queued", _queued),
    ("Running", _running),
    ("Pending", _pending),
)
"""The phase ladder, first match wins. Pending speaks for everything else (no pod ready yet, or no Job)."""


def verdict(facts: Facts) -> Verdict:
    """The first rule of the chain that speaks for the facts."""
    for _, rule in RULES:
        found = rule(facts)
        if found is not None:
            return found
    raise AssertionError("the last rule always speaks")


# -- the rest of the status --------------------------------------------------------------------------------------


def _condition(
    previous: GalleryDownloadStatus, kind: str, value: bool, found: Verdict, observation: Observation
) -> Condition:
    status: Literal["True", "False"] = "True" if value else "False"
    before = next((c for c in previous.conditions if c.type == kind), None)
    changed = before is None or before.status != status or before.reason != found.reason
    return Condition(
        type=kind,
        status=status,
        reason=found.reason,
        message=found.message[:32768],
        last_transition_time=observation.now if changed or before is None else before.last_transition_time,
        observed_generation=observation.generation,
    )


def _merge_failures(old: list[Failure], new: list[Failure]) -> list[Failure]:
    """Newest last, without repeats, bounded."""
    merged = list(old)
    merged.extend(failure for failure in new if failure not in merged)
    return merged[-MAX_FAILURES:]


def _reported(
    status: GalleryDownloadStatus, report: Report, job_name: str | None
) -> tuple[Progress | None, Catalogue | None, list[Failure]]:
    """Progress, catalogue summary and failures from the worker's report. A report whose pod read no catalogue (it
    could not open its target, or ended before it read it) says nothing of what is stored or how far the run got:
    the status keeps what it knew (None), and adds only the report's failures."""
    failures = _merge_failures(status.failures, report.failures)
    if report.catalogue_items is None:
        return None, None, failures
    summary = f"{report.items_done}/{report.items_total}" if report.items_total else str(report.items_done)
    progress = Progress(
        items_done=report.items_done,
        items_total=report.items_total,
        bytes_done=report.bytes_done,
        items_failed=report.items_failed,
        summary=summary,
    )
    stored_bytes = report.catalogue_bytes or 0
    catalogue = Catalogue(
        items=report.catalogue_items,
        bytes=stored_bytes,
        size=human_size(stored_bytes),
        sample=report.sample,
        location=report.catalogue_location or None,
        job_name=job_name,
    )
    return progress, catalogue, failures


def compute_status(previous: GalleryDownloadStatus, observation: Observation) -> GalleryDownloadStatus:
    """The new .status: a pure function of the previous status and an observation, as the one model of the status
    (api/status.py). A value the model refuses is an error here, not a field the API server drops without a word."""
    new_run = observation.job_name is not None and observation.job_name != previous.job_name
    status = previous.for_run(observation.job_name) if new_run and observation.job_name else previous
    report = observation.report
    progress, catalogue, failures = _reported(status, report, observation.job_name) if report else (None,) * 3
    job = observation.job
    found = verdict(Facts(previous, observation, job or ABSENT, new_run))
    if found.phase != "Queued":
        status = status.out_of_queue()
    now = observation.now
    conditions = [
        _condition(previous, READY, found.phase == "Succeeded", found, observation),
        _condition(previous, RECONCILING, found.phase in ("Pending", "Queued", "Running"), found, observation),
        _condition(previous, STALLED, found.phase == "Failed", found, observation),
    ]
    return status.but(
        observed_generation=observation.generation,
        progress=progress,
        catalogue=catalogue,
        failures=found.failures or failures,
        # Pods started only ever grow within a run; the Job's counters can lag behind (see JobView.created).
        attempts=max(job.pods_started, status.attempts) if job else None,
        started_at=(status.started_at or job.start_time) if job else None,
        queue_position=found.queue_position,
        queued_at=(status.queued_at or now) if found.phase == "Queued" else None,
        finished_at=(status.finished_at or now) if found.phase in TERMINAL_PHASES else None,
        phase=found.phase,
        message=found.message[:1024],
        conditions=conditions,
    ).validated()


def stored_status(previous: Mapping[str, Any], observation: Observation) -> dict[str, Any]:
    """compute_status from and to the stored form (the API server's): for tests, benchmarks and tools."""
    return compute_status(GalleryDownloadStatus.of_stored(previous), observation).stored()
