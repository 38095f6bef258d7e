"""The reconcile decision, pure: from what was gathered about one download to its new status and the actions that
bring the cluster there. No I/O and no clock (the time comes in with the situation); `apply.py` executes the actions.

    gather (controller: caches, reports, admission)  ->  plan (here)  ->  apply (apply.py, through the Kube facade)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gallery_operator import API_GROUP
from gallery_operator.admission import Candidate
from gallery_operator.config import Settings
from gallery_operator.download import Download
from gallery_operator.jobs import build_job, build_pvc, job_name, run_id
from gallery_operator.networkpolicy import KeepNetworkPolicy, RemoveNetworkPolicy, worker_network_policy
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot
from gallery_operator.status import (
    FINISHED_STATES,
    TERMINAL_PHASES,
    Observation,
    job_state,
    ready_reason,
    seconds_between,
    stored_status,
)
from gallery_operator.workerconfig import Egress, Report

FINALIZER = f"{API_GROUP}/cleanup"


def without_ours(finalizers: tuple[str, ...]) -> tuple[str, ...]:
    """The download's finalizers other than this operator's."""
    return tuple(f for f in finalizers if f != FINALIZER)


def new_job(now: str) -> dict[str, Any]:
    """What the plan observes of a Job it has just created: started now, its first pod under way, no conditions.
    The status written from it is what the watch will show moments later, so neither the Job's appearance nor the
    Job controller's first update needs another status write (each write costs a watch echo too)."""
    return {"status": {"startTime": now, "active": 1}}


def needs_cleanup(download: Download) -> bool:
    """Deletion has work only under policy Delete, and not for a template claim (its owner reference suffices)."""
    pvc = download.spec.target.pvc
    return download.spec.deletion_policy == "Delete" and not (pvc is not None and pvc.template is not None)


def status_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``before`` into ``after`` at the top level (removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in after.items() if before.get(k) != v}
    patch |= {k: None for k in before if k not in after}
    return patch


# -- what the controller gathers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Granted:
    """The download holds a slot for its Job; `launched` once that Job was created (the watch may not show it yet)."""

    launched: bool = False


@dataclass(frozen=True)
class Waiting:
    position: int


@dataclass(frozen=True)
class Situation:
    """Everything one reconcile decides from."""

    snapshot: DownloadSnapshot
    download: Download | str
    """The parsed spec, or why it cannot run (named by its field)."""
    previous: Mapping[str, Any]
    """The status as this operator last wrote it (the cache may lag behind its own writes)."""
    now: str
    jobs: Sequence[JobSnapshot] = ()
    """The download's worker Jobs: controlled by its uid, in its namespace."""
    report: Report | None = None
    """The worker's latest report for the current run."""
    blocked: tuple[str, str] | None = None
    """(url, why) when the egress rules refuse a destination of the spec as written."""
    slot: Granted | Waiting | None = None
    """Admission's answer, when the download wants a Job (see `wants_job`)."""
    walled: bool = True
    """The namespace's worker NetworkPolicy is in place and in shape (as watched, or as this operator just wrote
    it). A Job is made there only behind it (when the setting keeps one)."""


def current_job(download: Download, jobs: Sequence[JobSnapshot]) -> JobSnapshot | None:
    name = job_name(download)
    return next((j for j in jobs if j.name == name), None)


def finished(download: Download, previous: Mapping[str, Any]) -> bool:
    """The current run ended and its end is recorded: it is not started again."""
    return previous.get("jobName") == job_name(download) and previous.get("phase") in TERMINAL_PHASES


def current_report(situation: Situation) -> Report | None:
    """The held report, when it is of the current run (an earlier run's says nothing about this one)."""
    report, download = situation.report, situation.download
    if report is None or isinstance(download, str) or report.run != run_id(download):
        return None
    return report


def wants_job(situation: Situation) -> Candidate | None:
    """The download's place in the admission queue when it needs a slot for its current run's Job, else None."""
    download = situation.download
    if situation.snapshot.deleting or isinstance(download, str) or download.spec.suspend:
        return None
    if (situation.blocked is not None and not situation.jobs) or finished(download, situation.previous):
        return None
    if current_job(download, situation.jobs) is not None:
        return None
    report = current_report(situation)
    if report is not None and report.final:
        return None  # the Job is gone but the run's end is known: it is recorded, not started again
    return Candidate.of(download.namespace, download.name, download.spec.priority, download.created, job_name(download))


# -- what the plan asks for -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetFinalizers:
    finalizers: tuple[str, ...]
    resource_version: str


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class SuspendJob:
    name: str
    suspend: bool


@dataclass(frozen=True)
class StartRun:
    """Create the run's claim (when the spec asks for a template) and its Job."""

    job: dict[str, Any] = field(hash=False)
    pvc: dict[str, Any] | None = field(hash=False)
    waited: float
    """Seconds the download spent Queued (0 when it never waited)."""


@dataclass(frozen=True)
class WriteStatus:
    patch: dict[str, Any] = field(hash=False)
    status: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class PostEvent:
    kind: str
    reason: str
    message: str


@dataclass(frozen=True)
class Cleanup:
    """deletionPolicy Delete: remove the data, then release the finalizer (multi-step: cleanup.py)."""


Action = (
    SetFinalizers
    | DeleteJob
    | SuspendJob
    | StartRun
    | WriteStatus
    | PostEvent
    | Cleanup
    | KeepNetworkPolicy
    | RemoveNetworkPolicy
)


def plan(situation: Situation, settings: Settings, egress: Egress) -> list[Action]:
    """The actions for one download, in the order they must run. Everything is idempotent: applying a plan twice
    (a retry after a failure halfway) is safe."""
    actions = _actions(situation, settings, egress)
    if settings.network_policy and not situation.walled:
        # No worker or cleanup pod in a namespace before the wall around it; a Job still running without one (made
        # before the setting was on) gets it now.
        starts = [i for i, a in enumerate(actions) if isinstance(a, StartRun | Cleanup)]
        running = any(job_state(j.job)[0] not in FINISHED_STATES for j in situation.jobs)
        if starts or running:
            policy = worker_network_policy(situation.snapshot.namespace, settings)
            actions.insert(starts[0] if starts else 0, KeepNetworkPolicy(policy))
    return actions


def _actions(situation: Situation, settings: Settings, egress: Egress) -> list[Action]:
    snapshot, download = situation.snapshot, situation.download
    if snapshot.deleting:
        return _deletion(snapshot, download)
    actions: list[Action] = []
    wanted = not isinstance(download, str) and needs_cleanup(download)
    if wanted != (FINALIZER in snapshot.finalizers):
        others = without_ours(snapshot.finalizers)
        actions.append(SetFinalizers((*others, FINALIZER) if wanted else others, snapshot.resource_version))
    observation = _observe(situation, settings, egress, actions)
    status = stored_status(situation.previous, observation)
    patch = status_patch(situation.previous, status)
    if patch:
        actions.append(WriteStatus(patch, status))
        event = transition_event(situation.previous, status)
        if event is not None:
            actions.append(event)
    return actions


def _deletion(snapshot: DownloadSnapshot, download: Download | str) -> list[Action]:
    if FINALIZER not in snapshot.finalizers:
        return []
    if isinstance(download, Download) and needs_cleanup(download):
        return [Cleanup()]
    others = without_ours(snapshot.finalizers)
    return [SetFinalizers(others, snapshot.resource_version)]


def _observe(situation: Situation, settings: Settings, egress: Egress, actions: list[Action]) -> Observation:
    """What the status is computed from, adding the Job actions the situation needs on the way."""
    download, now = situation.download, situation.now
    if isinstance(download, str):
        return Observation(generation=situation.snapshot.generation, now=now, invalid=download)
    generation, suspend = download.generation, download.spec.suspend
    if situation.blocked is not None and not situation.jobs:
        return Observation(generation=generation, now=now, blocked=situation.blocked)
    name = job_name(download)
    actions.extend(DeleteJob(j.name) for j in situation.jobs if j.name != name)  # earlier runs': the spec changed
    current = current_job(download, situation.jobs)
    report = current_report(situation)
    if current is not None:
        state = job_state(current.job)[0]
        if suspend != current.suspend and state not in FINISHED_STATES:
            actions.append(SuspendJob(name, suspend))
        return Observation(generation, now, job_name=name, job=current.job, report=report, suspended=suspend)
    if isinstance(situation.slot, Granted):
        if not situation.slot.launched:
            waited = seconds_between(situation.previous.get("queuedAt"), now) or 0.0
            job = build_job(download, settings, egress)
            actions.append(StartRun(job, build_pvc(download), waited))
        # The status says what the watch will show once it sees the new Job (created, no pod counted yet): written
        # once now, not again when the Job appears.
        return Observation(generation, now, job_name=name, job=new_job(now), report=report)
    if report is not None and report.final and not finished(download, situation.previous):
        # The Job is gone (removed by hand, or by its TTL before its end was seen), but the run's final report is
        # here: the run is over and is not started again.
        ended = "Failed" if report.outcome == "Failed" else "Complete"
        gone = {"status": {"conditions": [{"type": ended, "status": "True", "reason": "JobRemoved"}]}}
        return Observation(generation, now, job_name=name, job=gone, report=report)
    if isinstance(situation.slot, Waiting):
        return Observation(generation, now, queue_position=situation.slot.position)
    return Observation(generation, now, suspended=suspend)


def transition_event(previous: Mapping[str, Any], status: Mapping[str, Any]) -> PostEvent | None:
    """The Event a phase change gets (Warning for Failed), None when the phase stays."""
    phase = status["phase"]
    if previous.get("phase") == phase:
        return None
    reason = ready_reason(status)
    kind = "Warning" if phase == "Failed" else "Normal"
    return PostEvent(kind, reason, f"{previous.get('phase', 'New')} -> {phase}: {status.get('message', '')}")
