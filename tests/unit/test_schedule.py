"""The schedule arithmetic: cron in a named zone across daylight-saving changes, intervals, the stable spread and the
names of runs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.schedule import (
    MAX_NAME,
    MISSED_COUNT_CAP,
    Schedule,
    cleanup_name,
    jitter_bound,
    requested_run_name,
    rfc3339,
    run_name,
    spread,
)

BERLIN = ZoneInfo("Europe/Berlin")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "m"}}}


def schedule(uid: str = "uid-1", **spec: Any) -> Schedule:
    return Schedule.of(parse_subscription_spec({"downloadTemplate": TEMPLATE, **spec}), uid, CREATED)


def ticks(plan: Schedule, start: datetime, count: int) -> list[datetime]:
    found = [plan.next_tick(start)]
    while len(found) < count:
        found.append(plan.next_tick(found[-1]))
    return found


def local(moments: list[datetime]) -> list[str]:
    return [m.astimezone(BERLIN).isoformat() for m in moments]


def test_a_daily_time_across_the_spring_change_in_berlin() -> None:
    """02:30 does not exist on 29 March 2026 in Berlin: that day's run is at 03:00, the first time that does."""
    plan = schedule(schedule="30 2 * * *", timeZone="Europe/Berlin", jitter="0s")
    assert local(ticks(plan, datetime(2026, 3, 27, 12, tzinfo=UTC), 3)) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_daily_time_across_the_autumn_change_runs_once() -> None:
    """02:30 happens twice on 25 October 2026 in Berlin: the run is made once."""
    plan = schedule(schedule="30 2 * * *", timeZone="Europe/Berlin", jitter="0s")
    found = ticks(plan, datetime(2026, 10, 23, 12, tzinfo=UTC), 3)
    assert local(found) == ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    assert [b - a for a, b in itertools.pairwise(found)] == [timedelta(hours=24), timedelta(hours=25)]


def test_hourly_across_the_autumn_change_runs_each_real_hour_with_distinct_names() -> None:
    plan = schedule(schedule="@hourly", timeZone="Europe/Berlin", jitter="0s")
    found = ticks(plan, datetime(2026, 10, 24, 23, 30, tzinfo=UTC), 4)
    assert [rfc3339(t) for t in found] == [
        "2026-10-25T00:00:00Z",  # 02:00 summer time
        "2026-10-25T01:00:00Z",  # 02:00 winter time
        "2026-10-25T02:00:00Z",
        "2026-10-25T03:00:00Z",
    ]
    names = [run_name("sub", t) for t in found]
    assert len(set(names)) == 4
    assert names[0] == "sub-20261025000000"


def test_the_same_schedule_in_utc_differs_by_the_offset() -> None:
    utc = schedule(schedule="0 6 * * *", jitter="0s").next_tick(datetime(2026, 7, 1, tzinfo=UTC))
    berlin = schedule(schedule="0 6 * * *", timeZone="Europe/Berlin", jitter="0s").next_tick(
        datetime(2026, 7, 1, tzinfo=UTC)
    )
    assert utc - berlin == timedelta(hours=2)


def test_an_interval_ticks_from_creation_and_runs_at_once() -> None:
    plan = schedule(interval="6h", jitter="0s")
    assert plan.last_tick(CREATED - timedelta(seconds=1)) is None
    assert plan.last_tick(CREATED) == CREATED
    assert plan.next_tick(CREATED - timedelta(seconds=1)) == CREATED
    assert plan.next_tick(CREATED) == CREATED + timedelta(hours=6)
    assert plan.last_tick(CREATED + timedelta(hours=13)) == CREATED + timedelta(hours=12)
    assert plan.describe() == "every 6h"


def test_due_finds_the_latest_tick_and_counts_the_ones_passed_over() -> None:
    plan = schedule(schedule="0 * * * *", jitter="0s")
    last = datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert plan.due(last, last + timedelta(minutes=59)) == (None, 0)
    assert plan.due(last, last + timedelta(hours=1)) == (last + timedelta(hours=1), 0)
    assert plan.due(last, last + timedelta(hours=4, minutes=10)) == (last + timedelta(hours=4), 3)
    every_minute = schedule(schedule="* * * * *", jitter="0s")
    assert every_minute.due(last, last + timedelta(days=7))[1] == MISSED_COUNT_CAP


def test_the_spread_delays_a_tick_by_a_stable_amount_below_the_jitter() -> None:
    plan = schedule("uid-7", schedule="0 * * * *", jitter="10m")
    assert timedelta(0) <= plan.spread < timedelta(minutes=10)
    assert plan.spread == schedule("uid-7", schedule="0 * * * *", jitter="10m").spread
    last = datetime(2026, 2, 1, 10, tzinfo=UTC)
    tick = last + timedelta(hours=1)
    assert plan.due(last, tick + plan.spread - timedelta(seconds=1)) == (None, 0)
    assert plan.due(last, tick + plan.spread) == (tick, 0)
    assert plan.next_due(last) == last + plan.spread  # 10:00's tick is not due yet at 10:00
    assert plan.next_due(tick + plan.spread) == tick + timedelta(hours=1) + plan.spread


def test_spreads_are_spread_across_uids() -> None:
    offsets = {spread(f"uid-{n}", timedelta(minutes=5)).total_seconds() for n in range(1000)}
    assert all(0 <= s < 300 for s in offsets)
    assert len(offsets) > 200  # 1000 subscriptions on one minute do not land on a few seconds
    assert spread("uid-1", timedelta(0)) == timedelta(0)


@pytest.mark.parametrize(
    ("spec", "bound"),
    [
        ({"schedule": "0 * * * *"}, timedelta(minutes=5)),
        ({"schedule": "*/10 * * * *"}, timedelta(minutes=1)),
        ({"interval": "30s"}, timedelta(seconds=3)),
        ({"interval": "6h"}, timedelta(minutes=5)),
        ({"interval": "6h", "jitter": "1h"}, timedelta(hours=1)),
        ({"interval": "30s", "jitter": "0s"}, timedelta(0)),
    ],
)
def test_default_jitter_is_five_minutes_at_most_a_tenth_of_the_period(spec: dict[str, str], bound: timedelta) -> None:
    parsed = parse_subscription_spec({"downloadTemplate": TEMPLATE, **spec})
    assert jitter_bound(parsed, Schedule.of(parsed, "uid", CREATED)) == bound


@pytest.mark.parametrize("length", [1, 20, 48, 49, 50, 63, 200, 253])
def test_run_names_fit_63_characters_for_any_name(length: int) -> None:
    name = ("a" * (length - 1) + "b")[:length]
    tick = datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC)
    for made in (run_name(name, tick), requested_run_name(name, "2026-03-29T01:00:00Z"), cleanup_name(name)):
        assert len(made) <= MAX_NAME, made
        assert made[0].isalnum() and made[-1].isalnum()
    assert run_name(name, tick).endswith("-20260329010005")
    assert run_name(name, tick) == run_name(name, tick)
    assert run_name(name, tick) != run_name(name, tick + timedelta(seconds=10))
    if length > 48:
        # Two long names with the same beginning keep distinct runs.
        assert run_name(name, tick) != run_name(name[:-1] + "c", tick)


def test_requested_runs_are_named_from_the_annotation_value() -> None:
    assert requested_run_name("sub", "1") == requested_run_name("sub", "1")
    assert requested_run_name("sub", "1") != requested_run_name("sub", "2")
    assert requested_run_name("sub", "1").startswith("sub-r")
