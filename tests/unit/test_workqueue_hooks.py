"""The work queue reports through the hooks its owner passes in (it imports no metrics): one `failed()` per handler
that raised, one `handled(seconds)` per handler run, failed or not."""

from __future__ import annotations

import asyncio

from gallery_operator.workqueue import WorkQueue


def test_failures_and_handled_runs_reach_the_hooks() -> None:
    failed: list[None] = []
    handled: list[float] = []
    runs: list[str] = []

    async def scenario() -> None:
        done = asyncio.Event()

        async def handle(key: str) -> None:
            runs.append(key)
            if runs.count(key) == 1 and key == "flaky":
                raise RuntimeError("the first try fails")
            if len(runs) == 3:
                done.set()

        queue: WorkQueue[str] = WorkQueue(handle, 1, lambda: failed.append(None), handled.append)
        queue.start()
        queue.add("steady")
        queue.add("flaky")
        await asyncio.wait_for(done.wait(), 30)  # a bound for a broken queue, not a timing claim
        await queue.stop()

    asyncio.run(scenario())
    assert runs == ["steady", "flaky", "flaky"]  # the failed one was retried
    assert len(failed) == 1
    assert len(handled) == 3 and all(seconds >= 0 for seconds in handled)


def test_a_queue_without_hooks_still_retries() -> None:
    runs: list[str] = []

    async def scenario() -> None:
        done = asyncio.Event()

        async def handle(key: str) -> None:
            runs.append(key)
            if len(runs) == 1:
                raise RuntimeError("the first try fails")
            done.set()

        queue: WorkQueue[str] = WorkQueue(handle, 1)
        queue.start()
        queue.add("k")
        await asyncio.wait_for(done.wait(), 30)
        await queue.stop()

    asyncio.run(scenario())
    assert runs == ["k", "k"]


def test_the_controller_wires_the_reconcile_metrics() -> None:
    """The controller hands the queue the Prometheus metrics: a reconcile through the queue is counted."""
    from prometheus_client import REGISTRY

    from gallery_operator.config import Settings
    from gallery_operator.controller import Controller
    from gallery_operator.keys import Key

    def count() -> float:
        return REGISTRY.get_sample_value("gallery_operator_reconcile_duration_seconds_count") or 0.0

    before = count()

    async def scenario() -> None:
        controller = Controller(Settings(), {}, {})
        controller.start()
        controller.enqueue(Key("ns", "gone"))  # no such download: the reconcile forgets it
        for _ in range(1000):
            if count() > before:
                break
            await asyncio.sleep(0.01)
        await controller.stop()

    asyncio.run(scenario())
    assert count() == before + 1
