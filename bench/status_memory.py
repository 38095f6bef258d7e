"""What one download's status costs in the operator's last-written memory, in process (tracemalloc, no cluster).

uv run python -m bench.status_memory [--count 10000]

N Queued statuses as the operator writes them on entering the queue (each with its own position and time, as in
`bench.operator scale`, where 9,995 of 10,000 downloads end Queued), held three ways: the model as the builder
returns it, the same model made light by `api.status.held` (what `Controller._written` holds), and its stored form
(the dict the API server keeps; what the memory held before).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bench.memory_trace import traced
from gallery_operator.api.status import GalleryDownloadStatus, held
from gallery_operator.status import Observation, compute_status


def queued(n: int) -> GalleryDownloadStatus:
    now = f"2026-12-06T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    return compute_status(GalleryDownloadStatus(), Observation(1, now, queue_position=n + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    count = parser.parse_args().count
    held(queued(0))  # the shared field sets exist before the count (a few, however many downloads)
    forms: dict[str, Callable[[int], Any]] = {
        "model as built": queued,
        "model held (api.status.held)": lambda n: held(queued(n)),
        "stored form (dict)": lambda n: queued(n).stored(),
    }
    for name, build in forms.items():
        size = traced(lambda build=build: [build(n) for n in range(count)])
        print(f"{name:30} {size / 1e6:6.1f} MB for {count}, {size / count / 1024:.2f} KiB each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
