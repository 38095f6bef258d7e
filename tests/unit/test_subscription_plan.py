"""The subscription plan as a table: one row per transition, the actions it asks for (in order), and what the status
records. Rows: a due tick, before the first tick, Forbid and Replace with an active run, suspend, the on-demand
annotation (new, handled, waiting under Forbid), missed ticks within and beyond startingDeadlineSeconds, a run made
before a restart, a run's end, history limits, Stalled after permanent failures, an invalid spec, the finalizer, and
deletion under both policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gallery_operator.api.spec import parse_spec
from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.plan import SetFinalizers
from gallery_operator.schedule import cleanup_name, requested_run_name, rfc3339, run_name
from gallery_operator.subscription_plan import (
    ANNOTATION_TICK,
    DOWNLOAD_FINALIZER,
    FINALIZER,
    REMOVING,
    CreateRun,
    DeleteRun,
    PostEvent,
    RunSnapshot,
    SubscriptionPlan,
    SubscriptionSituation,
    SubscriptionSnapshot,
    WriteStatus,
    build_run,
    plan_subscription,
)

CREATED = "2026-11-22T09:30:00Z"
T10 = datetime(2026, 11, 22, 10, tzinfo=UTC)
TEMPLATE = {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "media"}}}
HOURLY: dict[str, Any] = {"schedule": "0 * * * *", "jitter": "0s"}


def snapshot(
    requested_at: str = "", deleting: bool = False, finalizers: tuple[str, ...] = (), **spec: Any
) -> SubscriptionSnapshot:
    return SubscriptionSnapshot(
        namespace="ns",
        name="sub",
        uid="uid-sub",
        generation=1,
        created=CREATED,
        deletion_timestamp="2026-11-22T12:00:00Z" if deleting else "",
        finalizers=finalizers,
        resource_version="5",
        requested_at=requested_at,
        spec={"downloadTemplate": TEMPLATE, **spec},
        status={},
    )


def situation(
    snap: SubscriptionSnapshot,
    now: datetime,
    previous: dict[str, Any] | None = None,
    runs: tuple[RunSnapshot, ...] = (),
) -> SubscriptionSituation:
    return SubscriptionSituation(snap, parse_subscription_spec(snap.spec), previous or {}, now, runs)


def run(name: str, phase: str = "Running", items: int = 0, reason: str = "", tick: str = "") -> RunSnapshot:
    return RunSnapshot(name=name, phase=phase, scheduled_time=tick, reason=reason, items=items, bytes=items * 100)


def summary(plan: SubscriptionPlan) -> list[str]:
    words = []
    for action in plan.actions:
        match action:
            case SetFinalizers(finalizers, _):
                words.append(f"SetFinalizers{list(finalizers)}")
            case CreateRun(body):
                words.append(f"CreateRun:{body['metadata']['name']}")
            case DeleteRun(name, foreground):
                words.append(f"DeleteRun:{name}{':foreground' if foreground else ''}")
            case WriteStatus():
                words.append("WriteStatus")
            case PostEvent(kind, reason, _):
                words.append(f"Event:{kind}:{reason}")
    return words


def status_of(plan: SubscriptionPlan) -> dict[str, Any]:
    writes = [a for a in plan.actions if isinstance(a, WriteStatus)]
    assert writes, summary(plan)
    return writes[-1].status


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return T10.replace(hour=hour, minute=minute, second=second)


def ran(snap: SubscriptionSnapshot, now: datetime, runs: tuple[RunSnapshot, ...] = ()) -> dict[str, Any]:
    """The status after a reconcile at ``now`` (the run it made, if any, is then known)."""
    return status_of(plan_subscription(situation(snap, now, runs=runs)))


# -- ticks ----------------------------------------------------------------------------------------------------------


def test_a_new_interval_subscription_runs_at_once() -> None:
    snap = snapshot(interval="1h", jitter="0s")
    plan = plan_subscription(situation(snap, datetime(2026, 11, 22, 9, 30, 5, tzinfo=UTC)))
    assert summary(plan) == ["CreateRun:sub-20261122093000", "WriteStatus", "Event:Normal:RunCreated"]
    status = status_of(plan)
    assert status["active"] == {"name": "sub-20261122093000", "scheduledTime": CREATED}
    assert status["runs"][0]["trigger"] == "Schedule" and status["runs"][0]["outcome"] == "Active"
    assert status["nextScheduleTime"] == "2026-11-22T10:30:00Z"
    assert status["schedule"] == "every 1h"
    assert condition(status, "Reconciling") == ("True", "RunActive")


def test_a_cron_subscription_waits_for_its_first_tick() -> None:
    plan = plan_subscription(situation(snapshot(**HOURLY), at(9, 40)))
    assert summary(plan) == ["WriteStatus"]
    status = status_of(plan)
    assert status["nextScheduleTime"] == "2026-11-22T10:00:00Z" and "active" not in status
    assert plan.requeue_after == 20 * 60
    assert condition(status, "Ready") == ("True", "Scheduled")


def test_a_due_tick_creates_its_run_and_is_handled_once() -> None:
    snap = snapshot(**HOURLY)
    plan = plan_subscription(situation(snap, at(10, 0, 2)))
    assert summary(plan) == ["CreateRun:sub-20261122100000", "WriteStatus", "Event:Normal:RunCreated"]
    again = plan_subscription(situation(snap, at(10, 0, 30), status_of(plan), (run("sub-20261122100000"),)))
    assert summary(again) == []  # handled: no second run, nothing new to write
    assert plan.requeue_after == 30  # the new run is not in the cache yet: look again soon
    assert again.requeue_after == pytest.approx(3600 - 30)  # then at the next tick


def test_forbid_skips_a_tick_while_a_run_is_active() -> None:
    snap = snapshot(**HOURLY)
    first = status_of(plan_subscription(situation(snap, at(10))))
    active = (run("sub-20261122100000", tick="2026-11-22T10:00:00Z"),)
    plan = plan_subscription(situation(snap, at(11), first, active))
    assert summary(plan) == ["WriteStatus", "Event:Normal:RunSkipped"]
    status = status_of(plan)
    assert [(r["outcome"], r["scheduledTime"]) for r in status["runs"]] == [
        ("Skipped", "2026-11-22T11:00:00Z"),
        ("Active", "2026-11-22T10:00:00Z"),
    ]
    assert status["lastScheduleTime"] == "2026-11-22T11:00:00Z"
    assert plan.run_outcomes == (("Skipped", None),)


def test_replace_stops_the_active_run_and_starts_the_new_one() -> None:
    snap = snapshot(concurrencyPolicy="Replace", **HOURLY)
    first = status_of(plan_subscription(situation(snap, at(10))))
    plan = plan_subscription(situation(snap, at(11), first, (run("sub-20261122100000"),)))
    assert summary(plan) == [
        "DeleteRun:sub-20261122100000",
        "CreateRun:sub-20261122110000",
        "WriteStatus",
        "Event:Normal:RunReplaced",
        "Event:Normal:RunCreated",
    ]
    status = status_of(plan)
    assert [r["outcome"] for r in status["runs"]] == ["Active", "Replaced"]
    assert status["active"]["name"] == "sub-20261122110000"


def test_suspend_starts_nothing_and_does_not_catch_up_on_resume() -> None:
    suspended = snapshot(suspend=True, **HOURLY)
    plan = plan_subscription(situation(suspended, at(12, 5)))
    assert summary(plan) == ["WriteStatus"]
    status = status_of(plan)
    assert condition(status, "Ready") == ("True", "Suspended")
    assert "nextScheduleTime" not in status and plan.requeue_after is None
    assert status["lastScheduleTime"] == "2026-11-22T12:00:00Z"  # passed while suspended
    resumed = plan_subscription(situation(snapshot(**HOURLY), at(12, 10), status))
    assert not any(isinstance(a, CreateRun) for a in resumed.actions)
    assert status_of(resumed)["nextScheduleTime"] == "2026-11-22T13:00:00Z"


# -- on demand ------------------------------------------------------------------------------------------------------


def test_a_new_requested_at_value_runs_now_and_is_recorded() -> None:
    snap = snapshot(requested_at="2026-11-22T09:45:00Z", **HOURLY)
    plan = plan_subscription(situation(snap, at(9, 45, 3)))
    name = requested_run_name("sub", "2026-11-22T09:45:00Z")
    assert summary(plan) == [f"CreateRun:{name}", "WriteStatus", "Event:Normal:RunCreated"]
    status = status_of(plan)
    assert status["lastHandledRequestedAt"] == "2026-11-22T09:45:00Z"
    assert status["runs"][0]["trigger"] == "Requested"
    # The same value again, after the run ended: nothing.
    done = (run(name, "Succeeded", items=4, tick="2026-11-22T09:45:03Z"),)
    later = plan_subscription(situation(snap, at(9, 50), status, done))
    assert not any(isinstance(a, CreateRun) for a in later.actions)


def test_a_request_under_forbid_waits_for_the_active_run() -> None:
    snap = snapshot(**HOURLY)
    first = status_of(plan_subscription(situation(snap, at(10))))
    asked = replace(snap, requested_at="again")
    active = (run("sub-20261122100000"),)
    plan = plan_subscription(situation(asked, at(10, 5), first, active))
    assert not any(isinstance(a, CreateRun) for a in plan.actions)
    status = status_of(plan)
    assert "lastHandledRequestedAt" not in status and "waits for sub-20261122100000" in status["message"]
    ended = (run("sub-20261122100000", "Succeeded", items=3),)
    after = plan_subscription(situation(asked, at(10, 20), status, ended))
    assert f"CreateRun:{requested_run_name('sub', 'again')}" in summary(after)


def test_a_suspended_subscription_keeps_a_request_for_later() -> None:
    plan = plan_subscription(situation(snapshot(requested_at="x", suspend=True, **HOURLY), at(9, 40)))
    assert not any(isinstance(a, CreateRun) for a in plan.actions)
    assert "lastHandledRequestedAt" not in status_of(plan)


# -- missed ticks ---------------------------------------------------------------------------------------------------


def test_missed_ticks_make_one_catch_up_run_within_the_deadline() -> None:
    snap = snapshot(startingDeadlineSeconds=3600, **HOURLY)
    previous = {"lastScheduleTime": "2026-11-22T10:00:00Z"}
    plan = plan_subscription(situation(snap, at(13, 10), previous))
    assert summary(plan) == [
        "CreateRun:sub-20261122130000",
        "WriteStatus",
        "Event:Warning:RunMissed",
        "Event:Normal:RunCreated",
    ]
    runs = status_of(plan)["runs"]
    assert [(r["outcome"], r.get("ticks"), r["trigger"]) for r in runs] == [
        ("Active", 0, "CatchUp"),
        ("Missed", 2, "Schedule"),
    ]


def test_a_tick_later_than_the_deadline_is_recorded_not_run() -> None:
    snap = snapshot(startingDeadlineSeconds=600, **HOURLY)
    plan = plan_subscription(situation(snap, at(13, 30), {"lastScheduleTime": "2026-11-22T10:00:00Z"}))
    assert summary(plan) == ["WriteStatus", "Event:Warning:RunMissed"]
    status = status_of(plan)
    assert status["runs"][0]["outcome"] == "Missed" and status["runs"][0]["ticks"] == 3
    assert status["lastScheduleTime"] == "2026-11-22T13:00:00Z"  # recorded, not tried again
    assert status["nextScheduleTime"] == "2026-11-22T14:00:00Z"


def test_a_run_made_before_a_restart_is_not_made_again() -> None:
    """The operator created the tick's run and died before writing the status: the run is adopted, not doubled."""
    snap = snapshot(**HOURLY)
    existing = (run("sub-20261122100000", tick="2026-11-22T10:00:00Z"),)
    plan = plan_subscription(situation(snap, at(10, 1), {}, existing))
    assert not any(isinstance(a, CreateRun) for a in plan.actions)
    assert status_of(plan)["active"]["name"] == "sub-20261122100000"


# -- a run's end, history, stalling ---------------------------------------------------------------------------------


def test_a_finished_run_records_its_outcome_and_new_items() -> None:
    snap = snapshot(**HOURLY)
    previous = {
        "lastScheduleTime": "2026-11-22T10:00:00Z",
        "library": {"items": 10, "bytes": 1000, "size": "1000"},
        "runs": [{"name": "sub-20261122100000", "scheduledTime": "2026-11-22T10:00:00Z", "itemsBefore": 10}],
    }
    done = (
        RunSnapshot(
            "sub-20261122100000",
            "Succeeded",
            items=13,
            bytes=1300,
            location="pvc://media/sub/c",
            finished_at="2026-11-22T10:03:00Z",
        ),
    )
    plan = plan_subscription(situation(snap, at(10, 4), previous, done))
    assert summary(plan) == ["WriteStatus", "Event:Normal:RunSucceeded"]
    status = status_of(plan)
    assert status["runs"][0]["outcome"] == "Succeeded" and status["runs"][0]["newItems"] == 3
    assert status["newItems"] == 3 and status["library"]["items"] == 13 and status["library"]["bytes"] == 1300
    assert status["lastSuccessfulTime"] == "2026-11-22T10:03:00Z"
    assert "active" not in status
    assert plan.run_outcomes == (("Succeeded", 3),)


def test_a_run_that_failed_before_reading_the_catalogue_leaves_the_library_as_it_was() -> None:
    previous = {
        "lastScheduleTime": "2026-11-22T10:00:00Z",
        "library": {"items": 10, "bytes": 1000, "size": "1000", "location": "pvc://media/sub/c"},
        "runs": [{"name": "sub-20261122100000", "scheduledTime": "2026-11-22T10:00:00Z", "itemsBefore": 10}],
    }
    early = (RunSnapshot("sub-20261122100000", "Failed", reason="InvalidSpec"),)
    status = status_of(plan_subscription(situation(snapshot(**HOURLY), at(10, 4), previous, early)))
    assert status["library"]["items"] == 10 and status["runs"][0]["outcome"] == "Failed"


def test_a_run_deleted_by_hand_ends_as_failed_after_the_grace() -> None:
    snap = snapshot(**HOURLY)
    first = status_of(plan_subscription(situation(snap, at(10))))
    soon = plan_subscription(situation(snap, at(10, 1), first))
    assert summary(soon) == []  # within the grace: still active (created moments ago, not in the cache yet)
    assert soon.requeue_after is not None and soon.requeue_after <= 30
    late = plan_subscription(situation(snap, at(10, 5), first))
    assert summary(late) == ["WriteStatus", "Event:Warning:RunDeleted"]
    assert status_of(late)["runs"][0]["reason"] == "RunDeleted"


def test_history_limits_prune_run_objects_only() -> None:
    snap = snapshot(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1, **HOURLY)
    runs = (
        run("sub-20261122050000", "Succeeded", tick="2026-11-22T05:00:00Z"),
        run("sub-20261122060000", "Failed", tick="2026-11-22T06:00:00Z"),
        run("sub-20261122070000", "Succeeded", tick="2026-11-22T07:00:00Z"),
        run("sub-20261122080000", "Failed", tick="2026-11-22T08:00:00Z"),
        run("sub-20261122090000", "Succeeded", tick="2026-11-22T09:00:00Z"),
        replace(run("sub-20261122040000", "Succeeded", tick="2026-11-22T04:00:00Z"), deletion_policy="Delete"),
    )
    plan = plan_subscription(situation(snap, at(9, 30), {"lastScheduleTime": "2026-11-22T09:00:00Z"}, runs))
    deleted = [a.name for a in plan.actions if isinstance(a, DeleteRun)]
    # Kept: the two newest successes (09, 07) and the newest failure (08); the run set to Delete by hand stays.
    assert deleted == ["sub-20261122060000", "sub-20261122050000"]
    assert all(not a.foreground for a in plan.actions if isinstance(a, DeleteRun))


def failed_runs(reason: str, count: int) -> tuple[dict[str, Any], tuple[RunSnapshot, ...]]:
    records, runs = [], []
    for hour in range(count):
        name = f"sub-202611220{hour}0000"
        tick = f"2026-11-22T0{hour}:00:00Z"
        records.append({"name": name, "scheduledTime": tick})
        runs.append(run(name, "Failed", reason=reason, tick=tick))
    return {"lastScheduleTime": "2026-11-22T09:00:00Z", "runs": records}, tuple(runs)


@pytest.mark.parametrize(
    ("reason", "count", "stalled"),
    [("AuthRequired", 3, True), ("InvalidSpec", 3, True), ("AuthRequired", 2, False), ("NetworkError", 3, False)],
)
def test_stalled_after_the_last_runs_failed_for_a_permanent_reason(reason: str, count: int, stalled: bool) -> None:
    previous, runs = failed_runs(reason, count)
    snap = snapshot(failedRunsHistoryLimit=5, **HOURLY)
    status = status_of(plan_subscription(situation(snap, at(9, 30), previous, runs)))
    if stalled:
        assert condition(status, "Stalled") == ("True", reason)
        assert condition(status, "Ready") == ("False", reason)
    else:
        assert condition(status, "Stalled") == ("False", "Healthy")
        assert condition(status, "Ready")[0] == "True"


def test_an_invalid_spec_is_stalled_naming_the_field() -> None:
    snap = snapshot(**HOURLY)
    bad = SubscriptionSituation(snap, "spec.timeZone: unknown time zone 'Mars/Olympus'", {}, at(10))
    plan = plan_subscription(bad)
    assert summary(plan) == ["WriteStatus"]
    status = status_of(plan)
    assert condition(status, "Stalled") == ("True", "InvalidSpec")
    assert "spec.timeZone" in status["message"]
    assert status["observedGeneration"] == 1


# -- the library's finalizer and deletion ---------------------------------------------------------------------------


def test_delete_policy_holds_the_finalizer_retain_does_not() -> None:
    plan = plan_subscription(situation(snapshot(deletionPolicy="Delete", **HOURLY), at(9, 40)))
    assert summary(plan)[0] == f"SetFinalizers['{FINALIZER}']"
    plan = plan_subscription(situation(snapshot(finalizers=(FINALIZER,), **HOURLY), at(9, 40)))
    assert summary(plan)[0] == "SetFinalizers[]"


def test_deleting_under_retain_leaves_everything() -> None:
    plan = plan_subscription(situation(snapshot(deleting=True, **HOURLY), at(10), runs=(run("sub-20261122100000"),)))
    assert summary(plan) == []


def test_deleting_under_delete_stops_runs_then_removes_the_library_through_a_cleanup_child() -> None:
    snap = snapshot(deleting=True, finalizers=(FINALIZER,), deletionPolicy="Delete", **HOURLY)
    cleanup = cleanup_name("sub")
    steps = plan_subscription(situation(snap, at(12), runs=(run("sub-20261122100000"), run("sub-20261122110000"))))
    assert summary(steps) == ["DeleteRun:sub-20261122100000:foreground", "DeleteRun:sub-20261122110000:foreground"]
    steps = plan_subscription(situation(snap, at(12)))
    assert summary(steps) == [f"CreateRun:{cleanup}"]
    body = next(a.body for a in steps.actions if isinstance(a, CreateRun))
    assert body["spec"]["deletionPolicy"] == "Delete" and body["spec"]["suspend"] is True
    assert body["spec"]["target"]["pvc"]["subPath"] == "sub"  # the library's folder
    assert body["metadata"]["finalizers"] == [DOWNLOAD_FINALIZER]  # protected from creation on
    unprotected = (RunSnapshot(cleanup, "Suspended"),)
    assert summary(plan_subscription(situation(snap, at(12), runs=unprotected))) == []
    protected = (RunSnapshot(cleanup, "Suspended", finalizers=(DOWNLOAD_FINALIZER,)),)
    steps = plan_subscription(situation(snap, at(12), runs=protected))
    assert summary(steps) == ["WriteStatus", f"DeleteRun:{cleanup}", "Event:Normal:RemovingLibrary"]
    removing = status_of(steps)
    assert removing["message"] == REMOVING
    gone = plan_subscription(situation(snap, at(12, 1), removing))
    assert summary(gone) == ["SetFinalizers[]"]


# -- the run's GalleryDownload --------------------------------------------------------------------------------------


def test_a_run_is_the_template_controlled_by_the_subscription_keeping_its_files() -> None:
    snap = snapshot(stopAfterKnown=20, **HOURLY)
    spec = parse_subscription_spec(snap.spec)
    body = build_run(snap, spec, run_name("sub", T10), "2026-11-22T10:00:00Z", "Schedule")
    assert body["kind"] == "GalleryDownload" and body["metadata"]["name"] == "sub-20261122100000"
    (owner,) = body["metadata"]["ownerReferences"]
    assert owner["kind"] == "GallerySubscription" and owner["uid"] == "uid-sub" and owner["controller"] is True
    assert body["metadata"]["annotations"][ANNOTATION_TICK] == "2026-11-22T10:00:00Z"
    parsed = parse_spec(body["spec"])  # the same models (and so the same admission) as any download
    assert parsed.deletion_policy == "Retain" and not parsed.suspend
    assert parsed.target.pvc is not None and parsed.target.pvc.sub_path == "sub"
    assert parsed.options.stop_after_known == 20


def test_a_runs_target_keeps_a_folder_or_prefix_the_template_names() -> None:
    template = {"urls": ["https://example.org/g"], "target": {"s3": {"bucket": "media", "prefix": "lib/a"}}}
    snap = snapshot(**HOURLY)
    spec = parse_subscription_spec({**snap.spec, "downloadTemplate": template})
    body = build_run(snap, spec, "sub-1", "2026-11-22T10:00:00Z", "Schedule")
    assert body["spec"]["target"]["s3"]["prefix"] == "lib/a"
    default = parse_subscription_spec(
        {**snap.spec, "downloadTemplate": {**template, "target": {"s3": {"bucket": "media2"}}}}
    )
    assert build_run(snap, default, "sub-1", "t", "Schedule")["spec"]["target"]["s3"]["prefix"] == "sub"
    assert "stopAfterKnown" not in build_run(snap, default, "sub-1", "t", "Schedule")["spec"]["options"]


def test_the_spread_moves_ticks_stably() -> None:
    snap = snapshot(schedule="0 * * * *", jitter="10m")
    first = plan_subscription(situation(snap, at(9, 40)))
    next_time = status_of(first)["nextScheduleTime"]
    assert next_time.startswith("2026-11-22T10:0") and next_time != "2026-11-22T10:00:00Z"
    due = datetime.fromisoformat(next_time.replace("Z", "+00:00"))
    before = plan_subscription(situation(snap, due - timedelta(seconds=1)))
    assert not any(isinstance(a, CreateRun) for a in before.actions)
    on_time = plan_subscription(situation(snap, due))
    assert any(isinstance(a, CreateRun) for a in on_time.actions)


def test_snapshots_read_the_watch_bodies() -> None:
    sub = SubscriptionSnapshot.of(
        {
            "metadata": {
                "name": "sub",
                "namespace": "ns",
                "uid": "u",
                "generation": 3,
                "annotations": {"gallery-operator.dev/requested-at": "now"},
            },
            "spec": {"interval": "1h"},
            "status": {"kopf": {"x": 1}, "schedule": "every 1h"},
        }
    )
    assert (sub.key, sub.generation, sub.requested_at, dict(sub.status)) == (
        ("ns", "sub"),
        3,
        "now",
        {"schedule": "every 1h"},
    )
    child = RunSnapshot.of(
        {
            "metadata": {"name": "sub-1", "annotations": {ANNOTATION_TICK: "2026-11-22T10:00:00Z"}},
            "spec": {"deletionPolicy": "Retain"},
            "status": {
                "phase": "Succeeded",
                "finishedAt": "2026-11-22T10:05:00Z",
                "catalogue": {"items": 7, "bytes": 700, "location": "pvc://media/sub"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "PartiallySucceeded"}],
            },
        }
    )
    assert child.finished and child.outcome == "PartiallySucceeded" and child.items == 7
    assert child.scheduled_time == "2026-11-22T10:00:00Z" and child.location == "pvc://media/sub"


def test_skipped_ticks_never_push_the_active_run_out_of_the_record() -> None:
    """Forbid with a run longer than 20 ticks: the bounded record keeps the active run, and a finished run whose
    record fell off is not reported again as a new end."""
    snap = snapshot(**HOURLY)
    status = status_of(plan_subscription(situation(snap, at(10))))
    active = (run("sub-20261122100000", tick="2026-11-22T10:00:00Z"),)
    now = at(10)
    for _ in range(25):
        now += timedelta(hours=1)
        status = status_of(plan_subscription(situation(snap, now, status, active)))
    assert [(r["outcome"], r["ticks"]) for r in status["runs"]] == [("Skipped", 25), ("Active", 0)]
    assert status["runs"][0]["scheduledTime"] == rfc3339(now)
    assert status["active"]["name"] == "sub-20261122100000"
    ended = (replace(active[0], phase="Succeeded", items=4),)
    plan = plan_subscription(situation(snap, now + timedelta(minutes=1), status, ended))
    assert summary(plan).count("Event:Normal:RunSucceeded") == 1
    status = status_of(plan)
    again = plan_subscription(situation(snap, now + timedelta(minutes=2), status, ended))
    assert "Event:Normal:RunSucceeded" not in summary(again)


def test_a_finished_run_the_record_does_not_name_is_adopted_as_ended_without_an_event() -> None:
    done = (run("sub-20261122080000", "Failed", reason="NotFound", tick="2026-11-22T08:00:00Z"),)
    plan = plan_subscription(
        situation(snapshot(**HOURLY), at(9, 30), {"lastScheduleTime": "2026-11-22T09:00:00Z"}, done)
    )
    assert summary(plan) == ["WriteStatus"]
    [record] = status_of(plan)["runs"]
    assert (record["name"], record["outcome"], record["reason"]) == ("sub-20261122080000", "Failed", "NotFound")


def test_the_bounded_record_keeps_an_active_run_behind_newer_records() -> None:
    active = {"name": "sub-20261122000000", "scheduledTime": "2026-11-22T00:00:00Z", "outcome": "Active"}
    missed = [
        {"scheduledTime": f"2026-11-2{2 + n // 24}T{n % 24:02d}:30:00Z", "outcome": "Missed", "ticks": 1}
        for n in range(1, 20)  # with the active run, the 20 a stored status holds
    ]
    previous = {"lastScheduleTime": "2026-11-23T02:00:00Z", "runs": [*missed, active]}
    running = (run("sub-20261122000000", tick="2026-11-22T00:00:00Z"),)
    status = status_of(
        plan_subscription(situation(snapshot(**HOURLY), at(2, 10) + timedelta(days=1), previous, running))
    )
    assert len(status["runs"]) == 20 and status["runs"][-1]["name"] == "sub-20261122000000"
    assert status["active"]["name"] == "sub-20261122000000"
