"""Control-plane benchmarks: cold build of the pinned binaries and warm start time to a ready API.

uv run python -m bench.controlplane            # warm start, 5 rounds
uv run python -m bench.controlplane --cold     # also a cold build with empty Go caches (~10 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from gallery_harness import build
from gallery_harness.controlplane import LocalCluster

START_TARGET_SECONDS = 15.0


def cold_build() -> dict[str, float]:
    """Build every module with empty Go build and module caches and an empty binary cache."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cold-build-") as tmp:
        caches = {
            "GOCACHE": f"{tmp}/gocache",
            "GOMODCACHE": f"{tmp}/gomodcache",
            "GALLERY_OPERATOR_CACHE": f"{tmp}/cache",
        }
        try:
            with mock.patch.dict(os.environ, caches):
                for module in build.MODULES:
                    started = time.monotonic()
                    build.build(module)
                    seconds[module.name] = time.monotonic() - started
        finally:
            # The module cache is read-only by design; make it removable.
            for root, dirs, _ in os.walk(f"{tmp}/gomodcache"):
                for name in dirs:
                    Path(root, name).chmod(0o755)
    return seconds


def warm_starts(rounds: int) -> list[float]:
    build.build_all()
    times = []
    for _ in range(rounds):
        with LocalCluster.create() as cluster:
            times.append(cluster.startup_seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    if options.cold:
        seconds = cold_build()
        for name, value in seconds.items():
            print(f"cold build {name:<12} {value:7.1f} s")
        print(f"cold build total        {sum(seconds.values()):7.1f} s")
    times = warm_starts(options.rounds)
    median = statistics.median(times)
    print(f"warm start, ready API and node: median {median:.2f} s, max {max(times):.2f} s ({len(times)} runs)")
    print(f"ratio to the {START_TARGET_SECONDS:.0f} s target: {median / START_TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
