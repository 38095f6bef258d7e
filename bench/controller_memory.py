"""What the operator's own memories hold after N new downloads were reconciled, in process (tracemalloc, no cluster).

uv run python -m bench.controller_memory [--count 10000]
PYTHONPATH=<worktree>/operator uv run python -m bench.controller_memory   # another revision's operator

The controller of `bench.operator scale` without kopf, its caches or the API server: N downloads in one namespace
(the same spec as `scale`), default caps, each reconciled once against an API that accepts every call. Counted: what
stays allocated after the reconciles (the parsed specs, the last-written statuses, admission, the resync's
fingerprints ...), not kopf's caches of the bodies. The Events the reconciles queue for the outbox (not running here)
are let go before the count.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, cast

from bench.memory_trace import traced
from bench.operator import spec_for
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.facade import Kube
from gallery_operator.snapshots import DownloadSnapshot


class AcceptingKube:
    """Every call of the facade accepted: a Job counts as created, nothing is read back."""

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


def traced_reconciles(count: int) -> int:
    """Bytes the controller still holds after reconciling `count` new downloads once each."""
    downloads = snapshots(count)
    controller = Controller(
        Settings(),
        {s.key: [s] for s in downloads},
        {},
        api=cast(Kube, AcceptingKube()),
        namespace_downloads={"many": [s.name for s in downloads]},
    )

    async def run() -> None:
        for snapshot in downloads:
            await controller.reconcile(snapshot.key)
        while not controller.outbox._queue.empty():
            controller.outbox._queue.get_nowait()

    return traced(lambda: asyncio.run(run()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    count = parser.parse_args().count
    size = traced_reconciles(count)
    print(f"controller memories after {count} reconciles: {size / 1e6:.1f} MB, {size / count / 1024:.2f} KiB each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
