"""The reconcile plan as a table: one row per transition, the actions it asks for (in order) and the phase it writes.

The rows are the situations a download goes through: first reconcile with and without a free slot, waiting in the
queue, a slot granted and its Job not yet visible, running with a report, the Job's end, the Job vanished with the
run's final report, a spec change, suspend and resume, an invalid or blocked spec, and deletion under both
policies."""

from __future__ import annotations

import dataclasses

import pytest

from gallery_operator.admission import Granted, Waiting
from gallery_operator.apply import status_patch
from gallery_operator.download import Download
from gallery_operator.jobs import job_name
from gallery_operator.plan import (
    FINALIZER,
    Action,
    CleanupSeen,
    DeleteJob,
    PostEvent,
    SetFinalizers,
    Situation,
    StartCleanup,
    StartRun,
    SuspendJob,
    WriteStatus,
    plan,
    wants_job,
)
from gallery_operator.snapshots import JobView
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Egress
from tests.unit.plan_situations import CURRENT, QUEUED, SETTINGS, T0, T1, job, situation

EGRESS = Egress()


def summary(actions: list[Action]) -> list[str]:
    """Each action in a word or two, for the table."""
    words = []
    for action in actions:
        match action:
            case SetFinalizers(finalizers, _):
                words.append(f"SetFinalizers{list(finalizers)}")
            case DeleteJob(name):
                words.append(f"DeleteJob:{name}")
            case SuspendJob(_, suspend):
                words.append(f"SuspendJob:{suspend}")
            case StartRun():
                words.append("StartRun")
            case WriteStatus(_, status):
                words.append(f"WriteStatus:{status.phase}")
            case PostEvent(kind, reason, _):
                words.append(f"Event:{kind}:{reason}")
            case StartCleanup():
                words.append("StartCleanup")
    return words


PENDING = stored_status(QUEUED, Observation(1, T0, job_name=CURRENT, job=JobView.created(T0)))
RUNNING = stored_status(PENDING, Observation(1, T0, job_name=CURRENT, job=job(CURRENT, ready=True).view))
SUCCEEDED = stored_status(RUNNING, Observation(1, T0, job_name=CURRENT, job=job(CURRENT, "Complete").view))
SUSPENDED = stored_status(RUNNING, Observation(1, T0, job_name=CURRENT, suspended=True))
FINAL = {"final": True, "outcome": "Succeeded", "itemsDone": 3, "catalogueItems": 3}
REFUSED = ("https://example.org/a.jpg", "example.org is denied")
KEEP = ("Keep", FINALIZER)
OVERDUE = "2026-11-22T10:10:01Z"
"""Past the cleanup's timeout of a download deleted at T0."""
REFUSAL = "the API server refused the worker's Job: spec.template: invalid"
DELETE = {"deletionPolicy": "Delete"}

CASES: dict[str, tuple[Situation, list[str], str | None]] = {
    "first reconcile, a slot free": (
        situation(slot=Granted()),
        ["StartRun", "WriteStatus:Pending", "Event:Normal:JobCreated"],
        "Pending",
    ),
    "first reconcile, policy Delete: the finalizer first": (
        situation(spec=DELETE, slot=Granted()),
        [f"SetFinalizers['{FINALIZER}']", "StartRun", "WriteStatus:Pending", "Event:Normal:JobCreated"],
        "Pending",
    ),
    "first reconcile, no slot: queued": (
        situation(slot=Waiting(3)),
        ["WriteStatus:Queued", "Event:Normal:Queued"],
        "Queued",
    ),
    "still queued at the same position: nothing to write": (situation(previous=QUEUED, slot=Waiting(3)), [], None),
    "queued, moved up: the position only": (
        situation(previous=QUEUED, slot=Waiting(1)),
        ["WriteStatus:Queued"],
        "Queued",
    ),
    "queued, a slot granted": (
        situation(previous=QUEUED, slot=Granted()),
        ["StartRun", "WriteStatus:Pending", "Event:Normal:JobCreated"],
        "Pending",
    ),
    "Job created, not in the cache yet: not created twice": (
        situation(previous=PENDING, slot=Granted(launched=True)),
        [],
        None,
    ),
    "its Job appears, its pod not ready yet: nothing to write (the first status said so)": (
        situation(previous=PENDING, jobs=("current",)),
        [],
        None,
    ),
    "running, with a report": (
        situation(previous=RUNNING, jobs=("current",), ready=True, report={"itemsDone": 2, "message": "2 of 5"}),
        ["WriteStatus:Running"],
        "Running",
    ),
    "Job complete with the final report": (
        situation(previous=RUNNING, jobs=("current",), job_conditions=("Complete",), report=FINAL),
        ["WriteStatus:Succeeded", "Event:Normal:Succeeded"],
        "Succeeded",
    ),
    "Job failed: the worker's reason": (
        situation(
            previous=RUNNING,
            jobs=("current",),
            job_conditions=("Failed",),
            report={"final": True, "outcome": "Failed", "failures": [{"reason": "NotFound", "message": "404"}]},
        ),
        ["WriteStatus:Failed", "Event:Warning:NotFound"],
        "Failed",
    ),
    "Job vanished, final report held: ended, not started again": (
        situation(previous=RUNNING, report=FINAL),
        ["WriteStatus:Succeeded", "Event:Normal:Succeeded"],
        "Succeeded",
    ),
    "a report of an earlier run is ignored": (
        situation(previous=RUNNING, jobs=("current",), ready=True, report=FINAL, old_run=True),
        [],
        None,
    ),
    "finished, its Job removed by its TTL: stays finished": (situation(previous=SUCCEEDED), [], None),
    "spec changed: the earlier run's Job goes, the new run starts": (
        situation(previous=SUCCEEDED | {"jobName": "dl-0ld0ld0ld"}, jobs=("old",), slot=Granted()),
        ["DeleteJob:dl-0ld0ld0ld", "StartRun", "WriteStatus:Pending", "Event:Normal:JobCreated"],
        "Pending",
    ),
    "suspended while running: the Job is suspended": (
        situation(spec={"suspend": True}, previous=RUNNING, jobs=("current",), ready=True),
        ["SuspendJob:True", "WriteStatus:Suspended", "Event:Normal:Suspended"],
        "Suspended",
    ),
    "suspended before it started: no Job": (
        situation(spec={"suspend": True}),
        ["WriteStatus:Suspended", "Event:Normal:Suspended"],
        "Suspended",
    ),
    "resumed: the Job runs again": (
        situation(previous=SUSPENDED, jobs=("current",), job_conditions=("Suspended",), suspended=True),
        ["SuspendJob:False", "WriteStatus:Pending", "Event:Normal:JobCreated"],
        "Pending",
    ),
    "an invalid spec fails with the field named": (
        situation(spec={"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}),
        ["WriteStatus:Failed", "Event:Warning:InvalidSpec"],
        "Failed",
    ),
    "a destination the egress rules refuse: no Job": (
        situation(blocked=REFUSED),
        ["WriteStatus:Failed", "Event:Warning:Blocked"],
        "Failed",
    ),
    "deleted, policy Delete, nothing left: the cleanup Job is made, look again": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen()),
        ["StartCleanup"],
        None,
    ),
    "deleted, policy Delete, workers still there: their Jobs go, the cleanup waits for their pods": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen(("dl-0ld0ld0ld",), 1)),
        ["DeleteJob:dl-0ld0ld0ld"],
        None,
    ),
    "deleted, policy Delete, the cleanup Job runs: wait for it": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen(cleanup_job=JobView("Running"))),
        [],
        None,
    ),
    "deleted, policy Delete, the cleanup Job is done: an Event, our finalizer goes": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen(cleanup_job=JobView("Complete"))),
        ["Event:Normal:DataDeleted", "SetFinalizers['Keep']"],
        None,
    ),
    "deleted, policy Delete, the cleanup Job failed: a Warning, our finalizer goes anyway": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen(cleanup_job=JobView("Failed"))),
        ["Event:Warning:CleanupFailed", "SetFinalizers['Keep']"],
        None,
    ),
    "deleted, policy Delete, overdue with a worker left: a Warning, our finalizer goes anyway": (
        situation(spec=DELETE, deleting=True, finalizers=KEEP, cleanup=CleanupSeen(("dl-0ld0ld0ld",), 1), now=OVERDUE),
        ["DeleteJob:dl-0ld0ld0ld", "Event:Warning:CleanupTimedOut", "SetFinalizers['Keep']"],
        None,
    ),
    "a Job the API server refused: the generation fails with the API server's words": (
        dataclasses.replace(situation(previous=PENDING), download=REFUSAL),
        ["WriteStatus:Failed", "Event:Warning:InvalidSpec"],
        "Failed",
    ),
    "deleted, policy Retain: our finalizer goes, others stay": (
        situation(deleting=True, finalizers=KEEP),
        ["SetFinalizers['Keep']"],
        None,
    ),
    "deleted without our finalizer: nothing": (situation(spec=DELETE, deleting=True), [], None),
    "policy changed to Retain: the finalizer is removed": (
        situation(previous=SUCCEEDED, finalizers=KEEP),
        ["SetFinalizers['Keep']"],
        None,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_plan(case: str) -> None:
    given, expected, phase = CASES[case]
    decision = plan(given, SETTINGS, EGRESS)
    assert summary(decision.actions) == expected
    written = [a.status for a in decision.actions if isinstance(a, WriteStatus)]
    assert (written[0].phase if written else None) == phase
    cleaning = given.cleanup is not None and not any(isinstance(a, SetFinalizers) for a in decision.actions)
    assert decision.again_after == (2.0 if cleaning else None)  # a cleanup that runs is looked at again


def test_a_started_run_is_the_job_the_builders_make() -> None:
    given = situation(previous=QUEUED, slot=Granted())
    start = next(a for a in plan(given, SETTINGS, EGRESS).actions if isinstance(a, StartRun))
    assert isinstance(given.download, Download)
    assert start.job["metadata"]["name"] == job_name(given.download)
    assert start.pvc is None and start.waited == 30.0  # queued at T0, started at T1


def test_the_queue_position_is_in_the_status_and_the_message_says_when() -> None:
    write = next(a for a in plan(situation(slot=Waiting(7)), SETTINGS, EGRESS).actions if isinstance(a, WriteStatus))
    assert write.status.queue_position == 7
    assert write.status.message == f"waiting for a free slot (position 7 at {T1})"
    started = next(a for a in plan(situation(previous=QUEUED, slot=Granted()), SETTINGS, EGRESS).actions)
    assert isinstance(started, StartRun)
    pending = [
        a
        for a in plan(situation(previous=QUEUED, slot=Granted()), SETTINGS, EGRESS).actions
        if isinstance(a, WriteStatus)
    ]
    patch = status_patch(pending[0].previous.stored(), pending[0].status.stored())
    assert patch["queuePosition"] is None  # removed when it leaves the queue


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        (situation(), True),
        (situation(spec={"suspend": True}), False),
        (situation(previous=SUCCEEDED), False),
        (situation(jobs=("current",)), False),
        (situation(jobs=("old",)), True),
        (situation(report=FINAL), False),
        (situation(report=FINAL, old_run=True), True),
        (situation(blocked=REFUSED), False),
        (situation(deleting=True), False),
        (situation(spec={"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}), False),
    ],
)
def test_wants_job(given: Situation, wanted: bool) -> None:
    candidate = wants_job(given)
    assert (candidate is not None) == wanted
    if candidate is not None and isinstance(given.download, Download):
        assert candidate.key == ("ns", "dl") and candidate.job == job_name(given.download)


def test_status_patch_nulls_removed_keys() -> None:
    assert status_patch({"a": 1, "b": 2}, {"a": 1, "c": 3}) == {"c": 3, "b": None}
    assert status_patch({"a": 1}, {"a": 1}) == {}
