"""Hostile review of the last word (merge 9f2633c): an earlier pod's termination message must not replace what a
later pod reported, also when the later pod's container has not ended when the Job is seen ended (a Job's
FailureTarget condition, as on its deadline, comes before its running pod is killed), when that pod is gone
(deleted, its node lost), or when two pods started within the same second (start times have second precision; a
pod deleted at once is replaced at once)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gallery_operator.api.status import Failure
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import job_name, run_id
from gallery_operator.reports import final_report
from gallery_operator.snapshots import JobSnapshot, JobView
from gallery_operator.workerconfig import Report
from tests.unit.builders import parsed, reconcile, snapshot
from tests.unit.ended_pods import EndedPods, message

RUN = "r1"
EARLY = Report(
    run=RUN,
    final=True,
    outcome="Failed",
    items_done=3,
    catalogue_items=3,
    catalogue_location="pvc://m/dl/c.jsonl",
    failures=[Failure(reason="NetworkError", url="http://x/4")],
)
"""The final report of the run's first pod (3 items stored), its termination message."""


def test_a_running_pods_report_is_not_replaced_by_an_earlier_pods_message() -> None:
    """Pod b (the retry, its report held) is still being killed when the Job is seen ended: only a's container ended.
    a's message is older than b's report: nothing newer is there."""
    ends = [("2026-11-21T10:00:00+00:00", "a", message(EARLY))]
    assert final_report(ends, RUN, held_pod="b") is None


def test_pods_started_in_the_same_second_as_the_held_pod_are_not_later() -> None:
    """Pod z was deleted right after it started and pod a replaced it within the second: a's final report is held.
    Sorted by (start, uid), z comes after a; its message must not replace a's report."""
    same = "2026-11-21T10:00:00+00:00"
    ends = [(same, "a", message(EARLY.model_copy(update={"items_done": 9, "catalogue_items": 9}))), (same, "z", "")]
    ends.append((same, "zz", message(EARLY)))
    assert final_report(ends, RUN, held_pod="a") is None
    assert final_report([*ends, ("2026-11-21T10:00:01+00:00", "b", message(EARLY))], RUN, "a") == (EARLY, "b")


def test_the_controller_keeps_a_running_retrys_catalogue_when_the_job_fails_on_its_deadline() -> None:
    """Pod a ended (3 items); pod b, its retry, reported 40 items live; the Job's deadline passes (FailureTarget)
    while b is still being killed: the status keeps b's 40 items, not a's 3."""
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    first = EARLY.model_copy(update={"run": run})
    later = Report(run=run, items_done=40, catalogue_items=40, catalogue_location="pvc://m/dl/c.jsonl")
    fake = EndedPods([("2026-11-21T10:00:00+00:00", "pod-a", message(first))])
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of({"status": {"active": 1, "failed": 1}}))]
    assert controller.accept_report(snap.key, run, "pod-b", later)
    reconcile(controller, "dl")
    deadline = {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"}
    ended = {"status": {"active": 1, "failed": 1, "conditions": [deadline]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl")
    status = {**fake.named("patch_status")[0][1], **fake.named("patch_status")[-1][1]}
    assert status["phase"] == "Failed"
    assert (status["catalogue"]["items"], status["progress"]["itemsDone"]) == (40, 40)
    assert controller.inbox.pod(snap.key) == "pod-b"


def test_a_held_report_of_an_earlier_run_does_not_hide_this_runs_messages() -> None:
    """The inbox still holds an earlier run's report (and its pod): this run's newest message counts."""
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    mine = EARLY.model_copy(update={"run": run})
    fake = EndedPods([("2026-11-21T10:00:00+00:00", "pod-a", message(mine))])
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    controller.inbox.put(snap.key, "pod-of-an-earlier-run", EARLY.model_copy(update={"run": "an earlier run"}))
    ended = {"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "Backoff"}]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl")
    status = {**fake.named("patch_status")[0][1], **fake.named("patch_status")[-1][1]}
    assert status["catalogue"]["items"] == 3
    assert controller.inbox.pod(snap.key) == "pod-a"


def test_a_gone_or_running_held_pod_is_placed_by_when_it_was_created() -> None:
    """Pod b's report is held; b is gone (evicted: the pod object is deleted once the Job counted it) or still being
    killed. Pod a ran before b was created, pod c after: c's message is the last word, a's never is."""
    unopened = Report(run=RUN, final=True, outcome="Failed", failures=[Failure(reason="StorageError")])
    a = ("2026-11-21T10:00:00+00:00", "a", message(EARLY))
    c = ("2026-11-21T10:02:00+00:00", "c", message(unopened))
    created = "2026-11-21T10:01:00+00:00"
    assert final_report([a, c], RUN, held_pod="b", held_created=created) == (unopened, "c")
    assert final_report([a], RUN, held_pod="b", held_created=created) is None
    assert final_report([a], RUN, held_pod="b") is None  # not placed at all: the report held stands
    # b's container ended without a start time (the node lost it): its creation places it
    assert final_report([a, ("", "b", ""), c], RUN, held_pod="b", held_created=created) == (unopened, "c")


def test_the_controller_takes_the_message_of_a_pod_created_after_the_gone_pod_it_holds_a_report_of() -> None:
    """Pod b reported 40 items live and was evicted (gone from the list); its replacement c could not open the
    target and wrote only its message: the run fails with c's StorageError, and b's catalogue stays."""
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    first = EARLY.model_copy(update={"run": run})
    later = Report(run=run, items_done=40, catalogue_items=40, catalogue_location="pvc://m/dl/c.jsonl")
    unopened = Report(run=run, final=True, outcome="Failed", failures=[Failure(reason="StorageError")])
    fake = EndedPods(
        [
            ("2026-11-21T10:00:00+00:00", "pod-a", message(first)),
            ("2026-11-21T10:02:00+00:00", "pod-c", message(unopened)),
        ]
    )
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of({"status": {"active": 1, "failed": 1}}))]
    assert controller.accept_report(snap.key, run, "pod-b", later, created="2026-11-21T10:01:00+00:00")
    reconcile(controller, "dl")
    ended = {"status": {"failed": 2, "conditions": [{"type": "Failed", "status": "True", "reason": "Backoff"}]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl")
    status = {**fake.named("patch_status")[0][1], **fake.named("patch_status")[-1][1]}
    assert next(c["reason"] for c in status["conditions"] if c["type"] == "Stalled") == "StorageError"
    assert (status["catalogue"]["items"], status["progress"]["itemsDone"]) == (40, 40)
    assert controller.inbox.pod(snap.key) == "pod-c"


def test_a_settled_runs_many_pods_cost_one_read_however_often_it_is_reconciled() -> None:
    """A run of five pods (backoffLimit 4) ended: its pods are listed once, when the end is recorded; reconciles after
    that (a tenant's edits of its labels, a resync) read nothing."""
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    first = EARLY.model_copy(update={"run": run})
    ends = [(f"2026-11-21T10:0{n}:00+00:00", f"pod-{n}", message(first)) for n in range(5)]
    fake = EndedPods(ends)
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    assert controller.accept_report(snap.key, run, "pod-4", first, created="2026-11-21T10:04:00+00:00")
    ended = {"status": {"failed": 5, "conditions": [{"type": "Failed", "status": "True", "reason": "Backoff"}]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl", "dl", "dl", "dl")
    assert fake.named("patch_status")[-1][1]["phase"] == "Failed"
    assert [call for call, _ in fake.calls].count("termination_messages") == 1


def test_an_evicted_pods_replacement_is_read_though_the_job_counts_one_pod() -> None:
    """Pod a posted its final report live and was evicted before it exited: the Job does not count a disrupted pod,
    so its replacement b is the only pod it counts (failed 1). b could not open its target and said so only in its
    termination message: the status must show b's StorageError, not stay with a's report."""
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    reported = Report(run=run, final=True, outcome="Succeeded", items_done=5, catalogue_items=5)
    unopened = Report(run=run, final=True, outcome="Failed", failures=[Failure(reason="StorageError", url="")])
    ends = [("2026-11-21T10:00:00+00:00", "pod-a", ""), ("2026-11-21T10:01:00+00:00", "pod-b", message(unopened))]
    fake = EndedPods(ends)
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of({"status": {"active": 1}}))]
    assert controller.accept_report(snap.key, run, "pod-a", reported, created="2026-11-21T10:00:00+00:00")
    reconcile(controller, "dl")  # a's report reaches the status while the Job runs on (its replacement)
    ended = {"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "Backoff"}]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl")
    status: dict[str, Any] = {}
    for _, patch in fake.named("patch_status"):
        status |= patch
    assert next(c["reason"] for c in status["conditions"] if c["type"] == "Stalled") == "StorageError"
    assert status["catalogue"]["items"] == 5  # b read no catalogue: a's stays
    assert controller.inbox.pod(snap.key) == "pod-b"
