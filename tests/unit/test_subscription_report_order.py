"""A burst of due subscriptions creates every run before it writes any report: the status writes and Events of a
reconcile that created a run wait while other subscriptions whose timer fired wait in the queue (the schedule lag is
measured to the run's creation, and a thousand status writes and Events ahead of it were most of the calls)."""

from __future__ import annotations

import asyncio
from typing import Any

from gallery_operator.subscriptions import Subscriptions
from tests.unit.builders import RecordingKube
from tests.unit.builders import due_subscription as due


def burst(count: int, timers: bool = True) -> list[tuple[str, Any]]:
    """``count`` due subscriptions queued at once by their timers (or, ``timers=False``, by watch events)."""
    facade = RecordingKube()
    snapshots = [due(f"sub-{n}") for n in range(count)]
    loop = Subscriptions({s.key: [s] for s in snapshots}, {}, facade, workers=2)

    async def scenario() -> None:
        loop.start()
        for snapshot in snapshots:
            (loop.fire if timers else loop.enqueue)(snapshot.key)
        for _ in range(2000):  # bounded: a broken loop fails the assertions below instead of hanging
            if sum(call == "patch_status" for call, _ in facade.calls) >= count:
                break
            await asyncio.sleep(0.005)
        await loop.stop()

    asyncio.run(scenario())
    return facade.calls


def test_every_run_of_a_burst_is_created_before_the_first_report() -> None:
    calls = burst(12)
    kinds = [call for call, _ in calls]
    assert kinds.count("create_download") == 12
    last_create = max(i for i, kind in enumerate(kinds) if kind == "create_download")
    first_report = min(i for i, kind in enumerate(kinds) if kind in {"patch_status", "post_event"})
    assert last_create < first_report, kinds


def test_watch_events_never_hold_a_report_back() -> None:
    """Only timers hold reports back: runs' status changes (steady while many runs report progress) would otherwise
    keep a subscription's status unwritten."""
    kinds = [call for call, _ in burst(12, timers=False)]
    first_report = min(i for i, kind in enumerate(kinds) if kind == "patch_status")
    assert first_report < max(i for i, kind in enumerate(kinds) if kind == "create_download"), kinds


def test_each_held_report_is_written_once_with_its_events() -> None:
    calls = burst(12)
    statuses = [argument[0] for call, argument in calls if call == "patch_status"]
    assert sorted(statuses) == sorted(f"sub-{n}" for n in range(12))  # every subscription's, none twice
    assert [what for call, what in calls if call == "post_event"].count("RunCreated") == 12


def test_a_report_is_held_back_once_only() -> None:
    """A held report is written when its subscription comes round again, even if later ticks are waiting then: it
    waited for the runs due before it, never for ticks that fell due after (nor for look-again timers)."""
    facade = RecordingKube()
    first, later = due("sub-a"), due("sub-b")
    loop = Subscriptions({s.key: [s] for s in (first, later)}, {}, facade)

    async def scenario() -> list[str]:
        loop.fire(later.key)  # its timer fired; the queue is not started, so it waits
        await loop.reconcile(first.key)
        held = [call for call, _ in facade.calls]
        await loop.reconcile(first.key)
        await loop.stop()
        return held

    held = asyncio.run(scenario())
    assert held == ["create_download"], held
    assert [argument[0] for call, argument in facade.calls if call == "patch_status"] == ["sub-a"]
