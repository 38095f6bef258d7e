"""CPU seconds and wall time per worker start, per engine: this tree against a baseline revision, alternating.

    flock /work/bench.lock uv run python -m bench.worker_startup [--baseline 83c5a01] [--rounds 7]

Each round starts the real worker once per case and side (the order of the sides turning round by round) on a
small download from the fixture site on loopback, and reads the whole process's CPU (user + system, its waited
children included: the lookup children of the baseline) from ``wait4``. The baseline runs from a temporary git
worktree of its revision (PYTHONPATH pointing at it, this clone's environment), both sides' own code compiled once
as the image has it. Printed: per case and side the median CPU and wall, and the median of the per-round ratios of
CPU (this tree / baseline) beside the baseline's own median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.worker import worker_command, worker_env
from gallery_harness.site import serve
from gallery_operator.workerconfig import PvcStorage

HERE = Path(__file__).resolve().parents[1]
CASES = {
    "gallery-dl image": ("/img/1.jpg", "gallery-dl"),
    "auto image": ("/img/1.jpg", "auto"),
    "yt-dlp direct video": ("/big/1.mp4", "yt-dlp"),
    "yt-dlp page": ("/video.html", "yt-dlp"),
    "auto page": ("/video.html", "auto"),
}
"""Case -> (path on the fixture site, engine)."""


def start(site: str, case: str, tree: Path | None, folder: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one worker process on ``case``; fails unless it stored a file."""
    path, engine = CASES[case]
    spec = {"urls": [f"{site}{path}"], "engine": engine, "target": {"pvc": {"claimName": "x"}}}
    env = worker_env(folder, spec, PvcStorage(root=str(folder / "claim"), location="pvc://x/dl"))
    if tree is not None:
        env["PYTHONPATH"] = f"{tree / 'operator'}:{tree}"
    started = time.perf_counter()
    process = subprocess.Popen(worker_command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    stored = [p for p in (folder / "claim").iterdir() if p.is_file()]
    if os.waitstatus_to_exitcode(status) != 0 or not stored:
        raise RuntimeError(f"the worker failed on {case} ({status}): {stderr[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def report(case: str, cpu: dict[str, list[float]], wall: dict[str, list[float]]) -> None:
    ratios = [new / old for new, old in zip(cpu["this tree"], cpu["baseline"], strict=True)]
    print(
        f"{case}: CPU baseline {statistics.median(cpu['baseline']):.3f} s, this tree "
        f"{statistics.median(cpu['this tree']):.3f} s, median ratio {statistics.median(ratios):.2f}; wall baseline "
        f"{statistics.median(wall['baseline']):.3f} s, this tree {statistics.median(wall['this tree']):.3f} s",
        flush=True,
    )
    for side, values in cpu.items():
        print(f"  {side} CPU: " + " ".join(f"{value:.3f}" for value in values), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="83c5a01", help="the revision without the change")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these cases (repeatable)")
    options = parser.parse_args()
    old = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(old), options.baseline], check=True, cwd=HERE)
    for tree in (old, HERE):  # both sides' own code compiled once, as the image has it
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "operator")], check=True)
    sides = {"baseline": old, "this tree": None}
    try:
        with serve() as site, tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            for case in options.case or list(CASES):
                cpu: dict[str, list[float]] = {side: [] for side in sides}
                wall: dict[str, list[float]] = {side: [] for side in sides}
                for number in range(options.rounds):
                    for side in list(sides)[:: 1 if number % 2 == 0 else -1]:
                        folder = Path(tmp) / f"{case}-{side}-{number}".replace(" ", "-")
                        folder.mkdir()
                        seconds, elapsed = start(site, case, sides[side], folder)
                        cpu[side].append(seconds)
                        wall[side].append(elapsed)
                report(case, cpu, wall)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], check=False, cwd=HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
