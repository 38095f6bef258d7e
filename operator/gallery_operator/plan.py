"""The reconcile decision, pure: from what was gathered about one download to its new status and the actions that
bring the cluster there, and when to look again. No I/O and no clock (the time comes in with the situation).

    gather (controller: caches, memories via `recall`, API reads for a cleanup)  ->  plan (here: one `Decision`)
      ->  apply (apply.py: only the API calls)  ->  commit (controller: what the operator remembers)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gallery_operator import API_GROUP
from gallery_operator.admission import Admission, Candidate, Granted, Waiting
from gallery_operator.api.status import EventReason, GalleryDownloadStatus, event_reason
from gallery_operator.config import Settings
from gallery_operator.download import Download, parse_download
from gallery_operator.jobs import (
    LABEL_DOWNLOAD_UID,
    LABEL_RUN,
    build_cleanup_job,
    build_job,
    build_pvc,
    cleanup_job_name,
    job_name,
    run_id,
)
from gallery_operator.keys import Key
from gallery_operator.networkpolicy import KeepNetworkPolicy, RemoveNetworkPolicy, worker_network_policy
from gallery_operator.reports import Inbox
from gallery_operator.snapshots import ABSENT, DownloadSnapshot, JobSnapshot, JobView
from gallery_operator.status import TERMINAL_PHASES, Observation, compute_status, seconds_between
from gallery_operator.workerconfig import Egress, Report

FINALIZER = f"{API_GROUP}/cleanup"
CLEANUP_TIMEOUT_SECONDS = 600
CLEANUP_POLL_SECONDS = 2.0


def without_ours(finalizers: tuple[str, ...]) -> tuple[str, ...]:
    """The download's finalizers other than this operator's."""
    return tuple(f for f in finalizers if f != FINALIZER)


def needs_cleanup(download: Download) -> bool:
    """Deletion has work only under policy Delete, and not for a template claim (its owner reference suffices)."""
    pvc = download.spec.target.pvc
    return download.spec.deletion_policy == "Delete" and not (pvc is not None and pvc.template is not None)


# -- what the controller gathers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupSeen:
    """What gather read for a download being deleted under deletionPolicy Delete."""

    stale_jobs: tuple[str, ...] = ()
    """Its worker Jobs still there (listed from the API server)."""
    workers_left: int = 0
    """Its worker pods still there, by label (their Jobs may be gone already)."""
    cleanup_job: JobView = ABSENT
    """The cleanup Job, as read from the API server."""


@dataclass(frozen=True)
class Situation:
    """Everything one reconcile decides from."""

    snapshot: DownloadSnapshot
    download: Download | str
    """The parsed spec, or why it cannot run: named by its field, or the API server's refusal of its Job (a
    terminal outcome for this generation)."""
    previous: GalleryDownloadStatus
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
    cleanup: CleanupSeen | None = None
    """While deleted under deletionPolicy Delete with our finalizer on: what the cleanup sees."""


def parsed(snapshot: DownloadSnapshot, settings: Settings) -> tuple[Download | str, str]:
    """The parsed spec (or why it cannot run) and its run's Job name ("" when it cannot run)."""
    download = parse_download(snapshot, settings)
    return download, job_name(download) if isinstance(download, Download) else ""


@dataclass(frozen=True)
class CleanupReads:
    """What gather reads for a deletion under deletionPolicy Delete (see CleanupSeen)."""

    namespace: str
    workers: str
    """The label selector of the download's worker Jobs and pods."""
    owner_uid: str
    cleanup_job: str


def cleanup_reads(situation: Situation) -> CleanupReads | None:
    """For a download being deleted with our finalizer under deletionPolicy Delete, what the cleanup must see."""
    download = situation.download
    deleting, ours = situation.snapshot.deleting, FINALIZER in situation.snapshot.finalizers
    if not deleting or not ours or not isinstance(download, Download) or not needs_cleanup(download):
        return None
    workers = f"{LABEL_DOWNLOAD_UID}={download.uid},{LABEL_RUN}"
    return CleanupReads(download.namespace, workers, download.uid, cleanup_job_name(download))


@dataclass(frozen=True)
class Recalled:
    """What gather learns from the core in one question: the situation with the memories' answers, the other
    downloads admission granted a slot meanwhile (to be reconciled), what a deletion's cleanup must read, and the
    ended Job whose last worker's termination message must be read (`unrecorded_end`)."""

    situation: Situation
    granted: list[Key]
    cleanup: CleanupReads | None
    ended: JobSnapshot | None = None


def recall(situation: Situation, inbox: Inbox, admission: Admission, job: str = "") -> Recalled:
    """The memories' answers for one download: the worker's report held for it (dropped once it is deleted), and
    admission's (`wants_job` asks it for a slot, or gives back what the download held); `job` names the current
    run's Job. No I/O: the memories are the core's own in-memory state."""
    key = situation.snapshot.key
    if situation.snapshot.deleting:
        inbox.drop(key)
        report = None
    else:
        report = inbox.get(key) if isinstance(situation.download, Download) else None
    asked = replace(situation, report=report) if report is not None else situation
    slot, granted = admission.ask(key, wants_job(asked))
    recalled = replace(asked, slot=slot)
    return Recalled(recalled, granted, cleanup_reads(situation), unrecorded_end(recalled, job))


def current_job(download: Download, jobs: Sequence[JobSnapshot]) -> JobSnapshot | None:
    name = job_name(download)
    return next((j for j in jobs if j.name == name), None)


def finished(download: Download, previous: GalleryDownloadStatus) -> bool:
    """The current run ended and its end is recorded: it is not started again."""
    return previous.job_name == job_name(download) and previous.phase in TERMINAL_PHASES


def current_report(situation: Situation) -> Report | None:
    """The held report, when it is of the current run (an earlier run's says nothing about this one)."""
    report, download = situation.report, situation.download
    if report is None or isinstance(download, str) or report.run != run_id(download):
        return None
    return report


def unrecorded_end(situation: Situation, job: str) -> JobSnapshot | None:
    """The current run's Job (named `job`) when it has ended and the status does not record the run's end yet: the
    termination messages of its pods are then read for a last word newer than the report held (a retried pod that
    could not report live, a new run whose pods never reported). Read also when the final report of what looks like
    the run's only pod is held: a disrupted pod (evicted, preempted) is not counted by the Job, so one that reported
    and was evicted before it exited can have a replacement whose end only its message tells. Once the end is
    recorded nothing is read (it was recorded from the best report there was), so a run's end costs one pod list and
    a settled download none, however often it is looked at."""
    download = situation.download
    current = next((j for j in situation.jobs if j.name == job), None)
    if current is None or not current.view.finished:
        return None
    if not isinstance(download, Download) or finished(download, situation.previous):
        return None
    return current


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

    @staticmethod
    def toward(finalizers: tuple[str, ...], ours: str, wanted: bool, resource_version: str) -> SetFinalizers | None:
        """The change that adds ``ours`` to an object's finalizers or removes it, keeping the others; None when they
        are as wanted already."""
        if wanted == (ours in finalizers):
            return None
        others = tuple(f for f in finalizers if f != ours)
        return SetFinalizers((*others, ours) if wanted else others, resource_version)


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
class StartCleanup:
    """Create the cleanup Job (deletionPolicy Delete; idempotent: an existing one counts as created)."""

    job: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class WriteStatus:
    """Write `status` over `previous`: apply sends the merge patch between their stored forms."""

    previous: GalleryDownloadStatus
    status: GalleryDownloadStatus


@dataclass(frozen=True)
class PostEvent:
    kind: str
    reason: EventReason
    message: str


Action = (
    SetFinalizers
    | DeleteJob
    | SuspendJob
    | StartRun
    | StartCleanup
    | WriteStatus
    | PostEvent
    | KeepNetworkPolicy
    | RemoveNetworkPolicy
)


@dataclass(frozen=True)
class Decision:
    """A reconcile's one decision: the actions in the order they must run, and when to look again."""

    actions: list[Action]
    again_after: float | None = None
    """Reconcile again after this many seconds (a cleanup still runs)."""


def plan(situation: Situation, settings: Settings, egress: Egress) -> Decision:
    """The decision for one download. Everything is idempotent: applying a plan twice (a retry after a failure
    halfway) is safe."""
    if situation.snapshot.deleting:
        decision = _deletion(situation, settings)
    else:
        decision = Decision(_actions(situation, settings, egress))
    actions = decision.actions
    if settings.network_policy and not situation.walled:
        # No worker or cleanup pod in a namespace before the wall around it; a Job still running without one (made
        # before the setting was on) gets it now.
        starts = [i for i, a in enumerate(actions) if isinstance(a, StartRun)]
        if _cleaning(situation, decision):
            starts = [0]
        running = any(not j.view.finished for j in situation.jobs)
        if starts or running:
            policy = worker_network_policy(situation.snapshot.namespace, settings)
            actions.insert(starts[0] if starts else 0, KeepNetworkPolicy(policy))
    return decision


def _cleaning(situation: Situation, decision: Decision) -> bool:
    """A step of a cleanup under deletionPolicy Delete: walled from its first action, as its pod may run."""
    download = situation.download
    cleans = situation.cleanup is not None and isinstance(download, Download) and needs_cleanup(download)
    return situation.snapshot.deleting and cleans and bool(decision.actions)


def _actions(situation: Situation, settings: Settings, egress: Egress) -> list[Action]:
    snapshot, download = situation.snapshot, situation.download
    actions: list[Action] = []
    wanted = not isinstance(download, str) and needs_cleanup(download)
    change = SetFinalizers.toward(snapshot.finalizers, FINALIZER, wanted, snapshot.resource_version)
    if change is not None:
        actions.append(change)
    observation = _observe(situation, settings, egress, actions)
    status = compute_status(situation.previous, observation)
    if not status.stores_as(situation.previous):
        actions.append(WriteStatus(situation.previous, status))
        event = transition_event(situation.previous, status)
        if event is not None:
            actions.append(event)
    return actions


# -- deletion: one row per step ---------------------------------------------------------------------------------


def _deletion(situation: Situation, settings: Settings) -> Decision:
    """Deletion, one step per reconcile: without our finalizer nothing; under Retain (or a template claim) the
    finalizer goes; under Delete the workers stop, the cleanup Job runs, an Event says how it ended and the finalizer
    goes (never hangs: a cleanup that fails or overruns ends with a Warning, and the finalizer goes anyway)."""
    snapshot, download, seen = situation.snapshot, situation.download, situation.cleanup
    if FINALIZER not in snapshot.finalizers:
        return Decision([])
    release = SetFinalizers(without_ours(snapshot.finalizers), snapshot.resource_version)
    if not isinstance(download, Download) or not needs_cleanup(download) or seen is None:
        return Decision([release])
    actions: list[Action] = [DeleteJob(name) for name in seen.stale_jobs]
    ended = _cleanup_end(situation, download, seen)
    if ended is not None:
        return Decision([*actions, ended, release])
    if not seen.workers_left and seen.cleanup_job.state == "Absent":
        actions.append(StartCleanup(build_cleanup_job(download, settings)))
    return Decision(actions, again_after=CLEANUP_POLL_SECONDS)


def _cleanup_end(situation: Situation, download: Download, seen: CleanupSeen) -> PostEvent | None:
    """The Event that ends a cleanup, or None while it runs. (A worker still writing is waited for: pods are
    counted by label, so a pod with copied labels can only delay this download's own cleanup, up to the timeout.)"""
    if (seconds_between(situation.snapshot.deletion_timestamp, situation.now) or 0) > CLEANUP_TIMEOUT_SECONDS:
        why = f"no cleanup within {CLEANUP_TIMEOUT_SECONDS}s; the data may remain"
        return PostEvent("Warning", "CleanupTimedOut", why)
    if seen.workers_left:
        return None
    if seen.cleanup_job.state == "Complete":
        return PostEvent("Normal", "DataDeleted", "deletionPolicy Delete: the downloaded data was removed")
    if seen.cleanup_job.state == "Failed":
        why = f"the cleanup Job {cleanup_job_name(download)} failed; data may remain"
        return PostEvent("Warning", "CleanupFailed", why)
    return None


# -- a download's run -------------------------------------------------------------------------------------------


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
        if suspend != current.suspend and not current.view.finished:
            actions.append(SuspendJob(name, suspend))
        return Observation(generation, now, job_name=name, job=current.view, report=report, suspended=suspend)
    if isinstance(situation.slot, Granted):
        if not situation.slot.launched:
            waited = seconds_between(situation.previous.queued_at, now) or 0.0
            actions.append(StartRun(build_job(download, settings, egress), build_pvc(download), waited))
        # The status says what the watch will show once it sees the new Job (created, no pod counted yet): written
        # once now, not again when the Job appears.
        return Observation(generation, now, job_name=name, job=JobView.created(now), report=report)
    if report is not None and report.final and not finished(download, situation.previous):
        # The Job is gone (removed by hand, or by its TTL before its end was seen), but the run's final report is
        # here: the run is over and is not started again.
        gone = JobView.removed(failed=report.outcome == "Failed")
        return Observation(generation, now, job_name=name, job=gone, report=report)
    if isinstance(situation.slot, Waiting):
        return Observation(generation, now, queue_position=situation.slot.position)
    return Observation(generation, now, suspended=suspend)


def transition_event(previous: GalleryDownloadStatus, status: GalleryDownloadStatus) -> PostEvent | None:
    """The Event a phase change gets (Warning for Failed), None when the phase stays."""
    if previous.written_phase == status.phase:
        return None
    kind = "Warning" if status.phase == "Failed" else "Normal"
    was = previous.written_phase or "New"
    return PostEvent(kind, event_reason(status.ready_reason), f"{was} -> {status.phase}: {status.message}")
