"""The pure mapping from Job, report and queue to the download's status."""

from __future__ import annotations

from typing import Any

from gallery_operator.api.status import Failure
from gallery_operator.snapshots import JobView
from gallery_operator.status import Observation, human_size, stored_status
from gallery_operator.workerconfig import Report
from tests.unit.status_builders import T0, T1, T2, job


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_first_reconcile_of_a_queued_download_writes_all_three_conditions() -> None:
    status = stored_status({}, Observation(generation=1, now=T0, queue_position=3))
    assert status["phase"] == "Queued"
    assert "position 3" in status["message"]
    assert status["queuedAt"] == T0
    assert conditions(status) == {
        "Ready": ("False", "Queued"),
        "Reconciling": ("True", "Queued"),
        "Stalled": ("False", "Queued"),
    }
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])


def test_running_job_with_progress_report() -> None:
    report = Report(run="r", items_done=4, items_total=10, bytes_done=4096, catalogue_items=4, catalogue_bytes=4096)
    status = stored_status({}, Observation(1, T1, job_name="dl-r", job=job(active=1), report=report))
    assert status["phase"] == "Running"
    assert status["progress"] == {
        "itemsDone": 4,
        "itemsTotal": 10,
        "bytesDone": 4096,
        "itemsFailed": 0,
        "summary": "4/10",
    }
    assert status["catalogue"]["size"] == "4.0Ki"
    assert status["jobName"] == "dl-r"
    assert status["attempts"] == 1
    assert status["startedAt"] == T0


def test_complete_job_is_ready_and_keeps_transition_times_stable() -> None:
    running = stored_status({}, Observation(1, T1, job_name="dl-r", job=job(active=1)))
    done = stored_status(running, Observation(1, T2, job_name="dl-r", job=job("Complete", succeeded=1)))
    assert done["phase"] == "Succeeded"
    assert conditions(done)["Ready"] == ("True", "Succeeded")
    assert done["finishedAt"] == T2
    again = stored_status(
        done, Observation(1, "2026-11-21T11:00:00Z", job_name="dl-r", job=job("Complete", succeeded=1))
    )
    assert again == done  # nothing changed, so nothing to patch


def test_finished_run_stays_finished_after_the_job_is_cleaned_up() -> None:
    done = stored_status({}, Observation(1, T1, job_name="dl-r", job=job("Complete", succeeded=1)))
    after_ttl = stored_status(done, Observation(1, T2))
    assert after_ttl["phase"] == "Succeeded"
    assert conditions(after_ttl)["Ready"] == ("True", "Succeeded")


def test_failed_job_takes_the_workers_reason_and_stalls() -> None:
    report = Report(
        run="r",
        final=True,
        outcome="Failed",
        message="nothing stored",
        failures=[Failure(reason="NotFound", url="https://x/y.jpg", message="404")],
    )
    status = stored_status(
        {}, Observation(1, T1, job_name="dl-r", job=job("Failed", failed=1, reason="PodFailurePolicy"), report=report)
    )
    assert status["phase"] == "Failed"
    assert conditions(status) == {
        "Ready": ("False", "NotFound"),
        "Reconciling": ("False", "NotFound"),
        "Stalled": ("True", "NotFound"),
    }
    assert status["failures"] == [{"reason": "NotFound", "url": "https://x/y.jpg", "message": "404"}]


def test_job_failure_without_a_report_uses_the_job_reason() -> None:
    status = stored_status(
        {}, Observation(1, T1, job_name="dl-r", job=job("Failed", failed=3, reason="BackoffLimitExceeded"))
    )
    assert conditions(status)["Stalled"] == ("True", "BackoffLimitExceeded")
    deadline = stored_status({}, Observation(1, T1, job_name="dl-r", job=job("Failed", reason="DeadlineExceeded")))
    assert conditions(deadline)["Stalled"] == ("True", "DeadlineExceeded")


def test_partial_success_is_ready_with_its_own_reason() -> None:
    report = Report(
        run="r",
        final=True,
        outcome="PartiallySucceeded",
        items_done=2,
        items_failed=1,
        failures=[Failure(reason="NotFound", url="https://x/3.jpg")],
    )
    status = stored_status({}, Observation(1, T1, job_name="dl-r", job=job("Complete", succeeded=1), report=report))
    assert conditions(status)["Ready"] == ("True", "PartiallySucceeded")


def test_invalid_spec_stalls_with_the_message() -> None:
    status = stored_status({}, Observation(2, T0, invalid="spec.urls: at least 1 item"))
    assert status["phase"] == "Failed"
    assert conditions(status)["Stalled"] == ("True", "InvalidSpec")
    assert status["message"] == "spec.urls: at least 1 item"
    assert status["observedGeneration"] == 2


def test_a_url_refused_by_egress_rules_fails_and_stalls_without_a_job() -> None:
    why = "blocked by egress rules: x.test is on the denied list"
    status = stored_status({}, Observation(1, T0, blocked=("https://x.test/a.jpg", why)))
    assert status["phase"] == "Failed" and "jobName" not in status
    assert conditions(status) == {
        "Ready": ("False", "Blocked"),
        "Reconciling": ("False", "Blocked"),
        "Stalled": ("True", "Blocked"),
    }
    assert status["failures"] == [{"reason": "Blocked", "message": why, "url": "https://x.test/a.jpg"}]
    assert status["finishedAt"] == T0
    # The rules changed (or the spec did): the next reconcile starts a run as usual.
    after = stored_status(status, Observation(1, T1, job_name="dl-1-abc"))
    assert after["phase"] == "Pending" and "failures" not in after and "finishedAt" not in after


def test_suspended_and_a_new_run_resets_the_run_fields() -> None:
    done = stored_status({}, Observation(1, T1, job_name="dl-a", job=job("Complete", succeeded=1)))
    suspended = stored_status(done, Observation(2, T2, suspended=True, job_name="dl-b"))
    assert suspended["phase"] == "Suspended"
    assert "finishedAt" not in suspended and suspended["jobName"] == "dl-b"
    assert conditions(suspended) == {
        "Ready": ("False", "Suspended"),
        "Reconciling": ("False", "Suspended"),
        "Stalled": ("False", "Suspended"),
    }


def test_failures_are_bounded_and_not_repeated() -> None:
    failures = [Failure(reason="NotFound", url=f"https://x/{n}.jpg") for n in range(30)]
    report = Report(run="r", failures=failures[-20:])
    status = stored_status({}, Observation(1, T0, job_name="j", job=job(active=1), report=report))
    status = stored_status(status, Observation(1, T1, job_name="j", job=job(active=1), report=report))
    assert len(status["failures"]) == 20
    assert status["failures"][-1]["url"] == "https://x/29.jpg"


def test_job_states_and_sizes() -> None:
    assert JobView.of(None).state == "Absent"
    assert job(active=1).state == "Running"
    assert job(suspend=True).state == "Suspended"
    assert job("SuccessCriteriaMet").state == "Complete"
    assert job().state == "Pending"
    assert JobView.of({"status": {"active": 1, "ready": 0}}).state == "Pending"
    counted = {"active": 1, "failed": 2, "uncountedTerminatedPods": {"failed": ["a"], "succeeded": ["b"]}}
    assert JobView.of({"status": counted | {"startTime": T0}}) == JobView("Pending", "", "", 5, T0)
    assert [human_size(n) for n in (0, 1023, 1536, 5 * 1024**3)] == ["0", "1023", "1.5Ki", "5.0Gi"]
