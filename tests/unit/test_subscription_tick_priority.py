"""On a tick, the runs' creations go first: the download controller's reconciles wait while subscriptions whose timer
fired wait for theirs (WorkQueue.yield_to with Subscriptions.ticks_first), and a run's own watch events queue its
subscription behind the due ones. The schedule lag is measured to the run's creation; a thousand new runs' reconciles
(a Queued status each) and a thousand run events ahead of the creations were calls in their way."""

from __future__ import annotations

import asyncio
from typing import Any

from gallery_operator.keys import Key
from gallery_operator.subscription_plan import SubscriptionSnapshot
from gallery_operator.subscriptions import Subscriptions
from gallery_operator.workqueue import WorkQueue
from tests.unit.builders import RecordingKube
from tests.unit.builders import due_subscription as due


class AwaitingKube(RecordingKube):
    """A creation that gives the event loop a turn, as a call in a thread does."""

    async def create_download(self, body: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        return await super().create_download(body)


async def until(condition: Any, turns: int = 5000) -> None:
    """Let the loop run until ``condition()`` (bounded: a broken loop fails the assertions instead of hanging)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)


def run_of(subscription: SubscriptionSnapshot) -> dict[str, Any]:
    """A GalleryDownload's body as its watch event carries it: controlled by ``subscription``."""
    owner = {"kind": "GallerySubscription", "name": subscription.name, "uid": subscription.uid, "controller": True}
    return {
        "metadata": {
            "namespace": subscription.namespace,
            "name": f"{subscription.name}-run",
            "ownerReferences": [owner],
        }
    }


def test_download_reconciles_wait_until_every_due_tick_is_taken_up() -> None:
    facade = AwaitingKube()
    snapshots = [due(f"sub-{n}") for n in range(12)]
    loop = Subscriptions({s.key: [s] for s in snapshots}, {}, facade, workers=2)

    async def download(key: Key) -> None:
        facade.calls.append(("download", key.name))

    downloads: WorkQueue[Key] = WorkQueue(download, 4)
    downloads.yield_to(loop.ticks_first)

    async def scenario() -> None:
        downloads.start()
        for snapshot in snapshots:
            loop.fire(snapshot.key)
        for n in range(8):  # the new runs' watch events, arriving while the ticks still wait
            downloads.add(Key("team-a", f"gd-{n}"))
        loop.start()
        await until(lambda: sum(call == "download" for call, _ in facade.calls) == 8)
        await loop.stop()
        await downloads.stop()

    asyncio.run(scenario())
    kinds = [call for call, _ in facade.calls]
    assert kinds.count("create_download") == 12 and kinds.count("download") == 8, kinds
    # Every subscription's reconcile was taken up before the first download's: the last two creations may still
    # be in flight in the two subscription workers then, no more.
    first_download = kinds.index("download")
    assert kinds[:first_download].count("create_download") >= 12 - 2, kinds


def test_download_reconciles_run_at_once_when_no_tick_is_due() -> None:
    facade = AwaitingKube()
    loop = Subscriptions({}, {}, facade)
    handled: list[str] = []

    async def download(key: Key) -> None:
        handled.append(key.name)

    downloads: WorkQueue[Key] = WorkQueue(download, 2)
    downloads.yield_to(loop.ticks_first)

    async def scenario() -> None:
        downloads.start()
        downloads.add(Key("team-a", "gd-0"))
        await until(lambda: handled == ["gd-0"])
        await downloads.stop()

    asyncio.run(scenario())
    assert handled == ["gd-0"]


def test_a_key_waiting_at_the_gate_is_busy_and_handled_again_after_never_twice_at_once() -> None:
    handled: list[str] = []
    running: list[int] = [0, 0]  # now, most at once

    async def handle(key: str) -> None:
        running[0] += 1
        running[1] = max(running)
        await asyncio.sleep(0)
        handled.append(key)
        running[0] -= 1

    async def scenario() -> None:
        gate = asyncio.Event()
        queue: WorkQueue[str] = WorkQueue(handle, 2)
        queue.yield_to(gate.wait)
        queue.start()
        queue.add("a")
        await until(lambda: False, 50)  # the loop turns; the worker took "a" and waits at the gate
        queue.add("a")  # busy: handled again after the first, not by the second worker
        assert handled == []
        gate.set()
        await until(lambda: len(handled) == 2)
        await queue.stop()

    asyncio.run(scenario())
    assert handled == ["a", "a"]
    assert running[1] == 1


def test_a_runs_event_queues_its_subscription_behind_the_due_ones() -> None:
    """sub-b's run changed before sub-a's timer fired; sub-a's tick is still handled first."""
    facade = RecordingKube()
    first, other = due("sub-a"), due("sub-b")
    loop = Subscriptions({s.key: [s] for s in (first, other)}, {}, facade, workers=1)

    async def scenario() -> None:
        loop.observe_run("team-a", run_of(other))
        loop.fire(first.key)
        loop.start()
        await until(lambda: [call for call, _ in facade.calls].count("create_download") == 2)
        await loop.stop()

    asyncio.run(scenario())
    created = [name for call, name in facade.calls if call == "create_download"]
    assert [name.rsplit("-", 1)[0] for name in created] == ["sub-a", "sub-b"], created


class SlowKube(RecordingKube):
    """A creation that takes two hours of the event loop's clock (an API server under load, exaggerated)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    async def create_download(self, body: dict[str, Any]) -> bool:
        self.clock[0] += 7200.0
        return await super().create_download(body)


def test_the_next_look_counts_from_the_plans_now_not_from_the_end_of_its_writes() -> None:
    """The timer is set for the plan's own moment plus its wait: a slow apply does not push the next tick back."""
    clock = [0.0]
    subscription = due("sub-a")
    loop = Subscriptions({subscription.key: [subscription]}, {}, SlowKube(clock))

    async def scenario() -> tuple[float, float]:
        events = asyncio.get_running_loop()
        real = events.time
        events.time = lambda: real() + clock[0]  # type: ignore[method-assign]
        started = events.time()
        await loop.reconcile(subscription.key)
        when = loop.timers[subscription.key].when()
        await loop.stop()
        return started, when

    started, when = asyncio.run(scenario())
    # The run was created, so the plan looks again within 30 s of its now; the apply took 7200 s of loop time.
    assert when - started <= 60.0, when - started
