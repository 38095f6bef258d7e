"""The worker's concurrent transfers (options.concurrency, issue 26) against the command lines, over loopback with the
fixture site's latency and bandwidth options.

    uv run python -m bench.worker_concurrency gallery [--files 1000] [--latency 0.02]   # vs the gallery-dl CLI
    uv run python -m bench.worker_concurrency capped [--mib 1024] [--rate 125000000]    # one file vs curl, capped

Baseline and worker run alternately, round by round (--rounds, default 3); each round gives a ratio (the baseline's
time over the worker's, whole processes including start-up), and the median of the ratios is the result. Each round
prints the baseline's own time beside its ratio. Peak memory is the worker process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.worker import (
    LAST_CPU,
    LAST_PEAK,
    MEMORY_TARGET_MB,
    gallery_pair,
    own_cpu,
    timed,
    transfer_seconds,
    worker_into_claim,
)
from gallery_harness.site import serve

Round = tuple[float, float, float]
"""(baseline seconds, worker seconds, worker peak MB)"""
OPERATOR = Path(__file__).resolve().parents[1] / "operator"


def gallery(files: int, latency: float, concurrency: int | None, worker_first: bool = False) -> Round:
    options: dict[str, object] = {} if concurrency is None else {"concurrency": concurrency}
    with (
        serve(port=80, host="127.0.0.2", latency=latency) as site,
        tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp,
    ):
        here = own_cpu()
        cli_time, _, worker_time, worker_mb = gallery_pair(Path(tmp), site, files, options, worker_first)
        site_cpu, worker_cpu = own_cpu() - here, LAST_CPU[0]
    print(
        f"{files} x 20 KiB at {latency * 1000:.0f} ms a request: gallery-dl CLI {cli_time:.2f} s; worker "
        f"{worker_time:.2f} s (peak {worker_mb:.0f} MB, CPU {worker_cpu:.2f} s; the site's CPU for both "
        f"{site_cpu:.2f} s); ratio {cli_time / worker_time:.2f}",
        flush=True,
    )
    return cli_time, worker_time, worker_mb


def capped(mib: int, rate: int | None) -> Round:
    """One file of ``mib`` MiB, each response at most ``rate`` bytes a second (None: loopback without a cap)."""
    with serve(bandwidth=rate) as site, tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        folder = Path(tmp)
        url = f"{site}/big/{mib}.mp4"
        curl_time, _ = timed(["curl", "-sS", "-o", str(folder / "curl.mp4"), url])
        curl_transfer = transfer_seconds(f"/big/{mib}.mp4")
        (folder / "curl.mp4").unlink()
        worker_time, worker_mb = worker_into_claim(folder, url, {}), LAST_PEAK[0]
        worker_cpu, worker_transfer = LAST_CPU[0], transfer_seconds(f"/big/{mib}.mp4")
        assert (folder / "claim" / f"{mib}.mp4").stat().st_size == mib * 1024 * 1024
    cap = f"{rate * 8 / 1e9:.2f} Gbit/s cap" if rate else "no cap"
    print(
        f"{mib} MiB, {cap}: curl {curl_time:.2f} s (transfer {curl_transfer:.2f} s); worker {worker_time:.2f} s "
        f"(transfer {worker_transfer:.2f} s, before and after it {worker_time - worker_transfer:.2f} s; peak "
        f"{worker_mb:.0f} MB, CPU {worker_cpu:.2f} s); ratio {curl_time / worker_time:.2f}",
        flush=True,
    )
    return curl_time, worker_time, worker_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["gallery", "capped"])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=None, help="the spec's (default: the API's default)")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rate", type=int, default=125_000_000, help="bytes/s per response; 0: no cap")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    # The worker's own code compiled once, as the image has it (UV_COMPILE_BYTECODE=1): with PYTHONDONTWRITEBYTECODE
    # set, as in this project's shells, every worker start would compile it again (~40 ms of CPU; curl pays nothing).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(OPERATOR)], check=True)
    rounds: list[Round] = []
    for number in range(options.rounds):
        if options.benchmark == "gallery":
            rounds.append(gallery(options.files, options.latency, options.concurrency, worker_first=number % 2 == 1))
        else:
            rounds.append(capped(options.mib, options.rate or None))
    ratios = [baseline / worker for baseline, worker, _ in rounds]
    print(
        f"{options.benchmark}: per-round ratios (baseline's time) "
        + ", ".join(f"{ratio:.2f} ({baseline:.2f} s)" for ratio, (baseline, _, _) in zip(ratios, rounds, strict=True))
    )
    print(
        f"{options.benchmark}: median ratio baseline/worker {statistics.median(ratios):.2f} over {len(ratios)} rounds; "
        f"worker peak {max(mb for _, _, mb in rounds):.0f} MB (target <= {MEMORY_TARGET_MB})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
