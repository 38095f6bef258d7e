"""What the operator's own memories hold after N new downloads were reconciled, in process (tracemalloc, no cluster).

uv run python -m bench.controller_memory [--count 10000]
PYTHONPATH=<worktree>/operator uv run python -m bench.controller_memory   # another revision's operator

The controller of `bench.operator scale` without kopf, its caches or the API server: N downloads in one namespace
(the same spec as `scale`), default caps, each reconciled once against an API that accepts every call. Counted: what
stays allocated from the downloads' snapshots (the stand-ins for kopf's cache) to the end of the reconciles (the
parsed specs, the last-written statuses, admission, the resync's fingerprints ...); not the fake API server's copies
of the statuses. The Events the reconciles queue for the outbox (not running here)
are let go before the count. Then, untraced: the CPU of the reconciles, of one echo check per download (the watch
event of its own status write), and of a full garbage collection with the controller held.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from dataclasses import dataclass
from typing import Any, cast

from bench.memory_trace import traced
from bench.operator import spec_for
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.facade import Kube
from gallery_operator.snapshots import DownloadSnapshot


class AcceptingKube:
    """Every call of the facade accepted: a Job counts as created, nothing is read back. The statuses written are
    kept as the API server would store them (the merge patches applied), for the echo check."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, Any]] = {}

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        merged = {**self.statuses.get(name, {}), **patch}
        self.statuses[name] = {key: value for key, value in merged.items() if value is not None}

    def __getattr__(self, name: str) -> Any:
        async def accept(*_: object, **__: object) -> Any:
            return [] if name in ("job_bodies", "termination_messages") else True

        return accept


def snapshots(count: int) -> list[DownloadSnapshot]:
    return [
        DownloadSnapshot.of(
            {
                "metadata": {"namespace": "many", "name": f"gd-{n:05d}", "uid": f"uid-{n}", "generation": 1},
                "spec": spec_for(n),
            }
        )
        for n in range(count)
    ]


@dataclass
class Run:
    """A controller after one reconcile of each of its downloads, and the CPU those took."""

    controller: Controller
    kube: AcceptingKube
    downloads: list[DownloadSnapshot]
    cpu: float = 0.0


def reconciled(count: int) -> Run:
    downloads, kube = snapshots(count), AcceptingKube()
    controller = Controller(
        Settings(),
        {s.key: [s] for s in downloads},
        {},
        api=cast(Kube, kube),
        namespace_downloads={"many": [s.name for s in downloads]},
    )
    run = Run(controller, kube, downloads)

    async def reconcile_all() -> None:
        started = time.process_time()
        for snapshot in downloads:
            await controller.reconcile(snapshot.key)
        run.cpu = time.process_time() - started
        while not controller.outbox._queue.empty():
            controller.outbox._queue.get_nowait()

    asyncio.run(reconcile_all())
    return run


def without_statuses(run: Run) -> Run:
    """The run without the fake API server's copies of the statuses (not the operator's memory)."""
    run.kube.statuses.clear()
    return run


def echo_checks(run: Run) -> float:
    """CPU of one echo check per download (the watch event of its own status write), each recognised."""
    bodies = [{"metadata": {"uid": s.uid, "generation": 1}, "status": run.kube.statuses[s.name]} for s in run.downloads]
    started = time.process_time()
    echoes = sum(run.controller.is_own_status_echo(s.key, body) for s, body in zip(run.downloads, bodies, strict=True))
    spent = time.process_time() - started
    assert echoes == len(run.downloads)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    count = parser.parse_args().count
    size = traced(lambda: without_statuses(reconciled(count)))
    print(f"controller memories after {count} reconciles: {size / 1e6:.1f} MB, {size / count / 1024:.2f} KiB each")
    run = reconciled(count)  # again, untraced: the CPU figures
    echo = echo_checks(run)
    started = time.process_time()
    gc.collect()
    collection = time.process_time() - started
    print(f"CPU per reconcile {run.cpu / count * 1000:.3f} ms, per echo check {echo / count * 1e6:.1f} us")
    print(f"one full garbage collection with the controller held: {collection * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
