"""A yt-dlp playlist's entries transferred concurrently by the worker (options.concurrency, issue 26) against the yt-dlp
command line, over loopback with the fixture site's per-request latency.

    uv run python -m bench.worker_playlist [--videos 50] [--size 20480] [--latency 0.02] [--rounds 3]

The playlist is the fixture site's RSS feed of small clips (direct video links: yt-dlp's generic extractor probes
each, then downloads it). Baseline and worker run alternately, round by round; each round gives a ratio (the yt-dlp
command line's time over the worker's, whole processes including start-up), and the median of the ratios is the
result. Each round prints the baseline's own time beside its ratio. Peak memory is the worker process's maximum
resident set size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from bench.worker import LAST_CPU, MEMORY_TARGET_MB, timed, worker_command, worker_env
from gallery_harness.site import serve
from gallery_operator.workerconfig import PvcStorage

Round = tuple[float, float, float]
"""(baseline seconds, worker seconds, worker peak MB)"""


def playlist(videos: int, size: int, latency: float, concurrency: int | None) -> Round:
    with serve(latency=latency) as site, tempfile.TemporaryDirectory(prefix="bench-playlist-") as tmp:
        folder = Path(tmp)
        feed = f"{site}/feed/?n={videos}&size={size}"
        cli = Path(sys.executable).parent / "yt-dlp"
        command = [str(cli), "--quiet", "--no-progress", "--no-cache-dir", "-P", str(folder / "cli"), feed]
        cli_time, _ = timed(command)
        cli_cpu = LAST_CPU[0]
        cli_files = sum(1 for _ in (folder / "cli").glob("*.mp4"))
        options: dict[str, object] = {"retries": 0}
        if concurrency is not None:
            options["concurrency"] = concurrency
        spec = {"urls": [feed], "engine": "yt-dlp", "target": {"pvc": {"claimName": "x"}}, "options": options}
        storage = PvcStorage(root=str(folder / "claim"), location="pvc://x/dl")
        worker_time, worker_mb = timed(worker_command(), worker_env(folder, spec, storage))
        worker_cpu = LAST_CPU[0]
        worker_files = sum(1 for _ in (folder / "claim").glob("*.mp4"))
    assert cli_files == worker_files == videos, (cli_files, worker_files)
    print(
        f"{videos} clips of {size} B at {latency * 1000:.0f} ms a request: yt-dlp CLI {cli_time:.2f} s "
        f"(CPU {cli_cpu:.2f} s); worker {worker_time:.2f} s (CPU {worker_cpu:.2f} s, peak {worker_mb:.0f} MB); "
        f"ratio {cli_time / worker_time:.2f}",
        flush=True,
    )
    return cli_time, worker_time, worker_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--size", type=int, default=20480)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=None, help="the spec's (default: the API's default)")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    rounds = [
        playlist(options.videos, options.size, options.latency, options.concurrency) for _ in range(options.rounds)
    ]
    ratios = [baseline / worker for baseline, worker, _ in rounds]
    print(
        "playlist: per-round ratios (baseline's time) "
        + ", ".join(f"{ratio:.2f} ({baseline:.2f} s)" for ratio, (baseline, _, _) in zip(ratios, rounds, strict=True))
    )
    print(
        f"playlist: median ratio baseline/worker {statistics.median(ratios):.2f} over {len(ratios)} rounds; "
        f"worker peak {max(mb for _, _, mb in rounds):.0f} MB (target <= {MEMORY_TARGET_MB})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
