"""A run's last word: when its Job ended, the report of its last worker pod, not an older pod's or an earlier run's.
The termination messages of the Job's pods are read unless the final report of the run's only pod is held; a
message counts only when its pod started after the pod of the report held, so an earlier pod's message never
replaces what a later pod reported (the catalogue and progress would shrink back), and a later pod's failure
(a retry that could not open its target) is not lost behind an earlier pod's final report."""

from __future__ import annotations

import dataclasses
from typing import Any

from gallery_operator.api.status import Failure, GalleryDownloadStatus
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import job_name, run_id
from gallery_operator.plan import Situation, unrecorded_end
from gallery_operator.reports import Inbox, final_report
from gallery_operator.snapshots import JobSnapshot, JobView
from gallery_operator.workerconfig import Report
from tests.unit.builders import parsed, reconcile, snapshot
from tests.unit.ended_pods import EndedPods, message

RUN = "r1"
FIRST_FINAL = Report(
    run=RUN, final=True, outcome="Failed", items_done=3, catalogue_items=3, catalogue_location="pvc://m/dl/c.jsonl"
)
SECOND_RUNNING = Report(run=RUN, items_done=7, catalogue_items=7, catalogue_location="pvc://m/dl/c.jsonl")
UNOPENED = Report(
    run=RUN, final=True, outcome="Failed", failures=[Failure(reason="StorageError", message="cannot open the target")]
)


def test_a_later_pod_killed_without_a_message_keeps_its_own_live_report() -> None:
    """Pod a ended with a final report (3 items); pod b reported 7 live and was killed: b's report stands."""
    ends = [("2026-11-21T10:00:00+00:00", "a", message(FIRST_FINAL)), ("2026-11-21T10:01:00+00:00", "b", "")]
    assert final_report(ends, RUN, held_pod="b") is None


def test_a_retried_pod_that_could_not_report_live_has_the_last_word() -> None:
    """Pod a's final report is held; pod b (its retry) could not open the target and only wrote its message."""
    ends = [
        ("2026-11-21T10:00:00+00:00", "a", message(FIRST_FINAL)),
        ("2026-11-21T10:01:00+00:00", "b", message(UNOPENED)),
    ]
    assert final_report(ends, RUN, held_pod="a") == (UNOPENED, "b")


def test_the_held_final_report_of_the_last_pod_is_kept_over_its_cut_message() -> None:
    cut = FIRST_FINAL.model_copy(update={"failures": []})  # the 4 KiB termination message drops detail
    ends = [
        ("2026-11-21T10:00:00+00:00", "a", message(SECOND_RUNNING)),
        ("2026-11-21T10:01:00+00:00", "b", message(cut)),
    ]
    assert final_report(ends, RUN, held_pod="b") is None


def test_without_a_report_of_a_known_pod_the_newest_message_of_the_run_counts() -> None:
    other_run = FIRST_FINAL.model_copy(update={"run": "r0"})
    ends = [
        ("2026-11-21T10:00:00+00:00", "a", message(FIRST_FINAL)),
        ("2026-11-21T10:01:00+00:00", "b", message(other_run)),
        ("2026-11-21T10:02:00+00:00", "c", "not json"),
    ]
    assert final_report(ends, RUN, held_pod="") == (FIRST_FINAL, "a")
    # A held report's pod that has not ended (or is gone) cannot be placed: no ended pod is known to be later.
    # (The controller passes no pod for a report of an earlier run: tests/unit/test_last_word_order.py.)
    assert final_report(ends, RUN, held_pod="a pod not among them") is None
    assert final_report([], RUN, held_pod="a") is None


def test_the_inbox_knows_the_pod_of_the_report_it_holds() -> None:
    inbox, key = Inbox(), snapshot("d").key
    assert inbox.pod(key) == ""
    inbox.put(key, "a", FIRST_FINAL)
    assert inbox.pod(key) == "a"
    assert not inbox.put(key, "a", SECOND_RUNNING)  # late progress of a pod after its own final report
    assert inbox.put(key, "b", SECOND_RUNNING) and inbox.pod(key) == "b"  # its retry's progress counts
    inbox.drop(key)
    assert (inbox.get(key), inbox.pod(key)) == (None, "")


def situation(status: dict[str, Any], report: Report | None, **run_counts: int) -> tuple[Situation, str]:
    snap = snapshot("d")
    name = job_name(parsed(snap))
    job = JobSnapshot("ns", name, "job-d", "run", False, JobView.of({"status": {"conditions": [FAILED], **run_counts}}))
    previous = GalleryDownloadStatus.of_stored(status)
    return Situation(snap, parsed(snap), previous, "2026-11-21T10:02:00Z", (job,), report), name


FAILED = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}


def test_the_messages_are_read_after_retries_even_with_a_final_report_held() -> None:
    snap = snapshot("d")
    final = FIRST_FINAL.model_copy(update={"run": run_id(parsed(snap))})
    one, name = situation({}, final, failed=1)
    # read even when the final report of what the Job counts as its only pod is held: a disrupted pod is not counted
    assert unrecorded_end(one, name) is not None
    two, name = situation({}, final, failed=2)
    assert unrecorded_end(two, name) is not None  # a retry may have ended after it: its message is read
    earlier, name = situation({}, FIRST_FINAL.model_copy(update={"run": "an earlier run"}), failed=1)
    assert unrecorded_end(earlier, name) is not None  # an earlier run's final report says nothing of this one


def test_the_controller_takes_a_retrys_message_over_the_first_pods_final_report_and_keeps_the_catalogue() -> None:
    snap = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    current = parsed(snap)
    run, name = run_id(current), job_name(current)
    first = FIRST_FINAL.model_copy(update={"run": run, "failures": [Failure(reason="NetworkError", url="http://x/4")]})
    retry = UNOPENED.model_copy(update={"run": run})
    fake = EndedPods(
        [("2026-11-21T10:00:00+00:00", "pod-a", message(first)), ("2026-11-21T10:01:00+00:00", "pod-b", message(retry))]
    )
    controller = Controller(Settings(), {snap.key: [snap]}, {}, api=fake, namespace_downloads={"ns": ["dl"]})
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    running = {"status": {"active": 1, "failed": 1}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(running))]
    assert controller.accept_report(snap.key, run, "pod-a", first)
    reconcile(controller, "dl")  # pod a's final report, live; its retry runs
    ended = {"status": {"failed": 2, "conditions": [FAILED]}}
    jobs[snap.uid] = [JobSnapshot("ns", name, "job-dl", run, False, JobView.of(ended))]
    reconcile(controller, "dl")
    assert [call for call, _ in fake.calls].count("termination_messages") == 1
    patch = fake.named("patch_status")[-1][1]
    assert patch["phase"] == "Failed"
    assert next(c["reason"] for c in patch["conditions"] if c["type"] == "Stalled") == "StorageError"
    status = {**fake.named("patch_status")[0][1], **patch}
    assert (status["catalogue"]["items"], status["progress"]["itemsDone"]) == (3, 3)  # pod a's, kept
    assert [f["reason"] for f in status["failures"]] == ["NetworkError", "StorageError"]
    assert controller.inbox.pod(snap.key) == "pod-b"
