"""The worker's start with yt-dlp and its extras: this tree against a baseline revision, alternating round by round.

    uv run python -m bench.worker_start [--baseline 73bf6f5] [--rounds 12]

Two measurements, each printed round by round with both sides' own times, then their medians and the ratio:
- import: a fresh Python process that imports yt-dlp and makes a YoutubeDL, in this tree with the worker's deferral
  of the extras' modules (worker/deferred.py) and without it; and, for the floor, with the extras hidden (their
  ``sys.modules`` entries set to None before the import, as if not installed).
- start: the real worker on a yt-dlp download of a direct video link on the fixture site (loopback): seconds from
  starting the process to the site receiving its first request, and the whole process, for the baseline revision
  (from a temporary git worktree, PYTHONPATH pointing at it, this clone's environment) and for this tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.worker import worker_command, worker_env
from gallery_operator.workerconfig import PvcStorage
from tests.fixtures.site import Handler, serve

HERE = Path(__file__).resolve().parents[1]
EXTRAS = ("Cryptodome", "websockets", "brotli", "brotlicffi", "mutagen", "yt_dlp_ejs", "curl_cffi")
IMPORT = """
import sys, time
started, cpu = time.perf_counter(), time.process_time()
{prepare}
import yt_dlp
yt_dlp.YoutubeDL({{"quiet": True}})
print(time.perf_counter() - started, time.process_time() - cpu)
"""
PREPARE = {
    "deferred": "from gallery_operator.worker import deferred; deferred.install()",
    "eager": "",
    "no extras": f"sys.modules.update(dict.fromkeys({EXTRAS!r}))",
}


CPU: dict[str, list[float]] = {}
"""Side -> CPU seconds (user + system) per round: steadier than wall time on a machine others load too."""


def import_seconds(variant: str) -> float:
    """Wall seconds of yt-dlp's import and a YoutubeDL() in a fresh process; its CPU seconds go to CPU."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT.format(prepare=PREPARE[variant])],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    wall, cpu = (float(value) for value in done.stdout.split())
    CPU.setdefault(variant, []).append(cpu)
    return wall


def worker_start(site: str, tree: Path | None, folder: Path) -> tuple[float, float]:
    """(seconds to the first request at the site, seconds of the whole process) of one yt-dlp download; the
    process's CPU seconds go to CPU."""
    path = "/big/1.mp4"
    spec = {"urls": [f"{site}{path}"], "engine": "yt-dlp", "target": {"pvc": {"claimName": "x"}}}
    storage = PvcStorage(root=str(folder / "claim"), location="pvc://x/dl")
    env = worker_env(folder, spec, storage)
    if tree is not None:
        env["PYTHONPATH"] = f"{tree / 'operator'}:{tree}"
    Handler.arrivals.pop(path, None)
    started = time.perf_counter()
    process = subprocess.Popen(worker_command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    stored = [p for p in (folder / "claim").glob("*.mp4")]
    if os.waitstatus_to_exitcode(status) != 0 or len(stored) != 1:
        raise RuntimeError(f"the worker failed ({status}): {stderr[-2000:]}")
    CPU.setdefault("baseline" if tree else "this tree", []).append(usage.ru_utime + usage.ru_stime)
    return Handler.arrivals[path] - started, elapsed


def alternate(rounds: int, sides: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Each round runs every side once, the order turning round by round."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            times[name].append(sides[name](number))
        print(f"{number + 1}: " + ", ".join(f"{name} {times[name][-1] * 1000:.0f} ms" for name in names), flush=True)
    return times


def summary(label: str, times: dict[str, list[float]], baseline: str) -> None:
    medians = {name: statistics.median(values) for name, values in times.items()}
    text = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in medians.items())
    ratios = ", ".join(
        f"{name}/{baseline} {medians[name] / medians[baseline]:.2f}" for name in medians if name != baseline
    )
    print(f"{label}: medians over {len(times[baseline])} rounds: {text}; {ratios}", flush=True)
    for name, values in times.items():
        print(f"  {name}: " + " ".join(f"{seconds * 1000:.0f}" for seconds in values) + " ms", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="73bf6f5", help="the revision without the change")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--only", choices=["import", "start"])
    options = parser.parse_args()
    if options.only != "start":
        print("== import yt_dlp + YoutubeDL() in a fresh process")
        variants = {name: (lambda _, name=name: import_seconds(name)) for name in PREPARE}
        summary("import, wall", alternate(options.rounds, variants), "eager")
        summary("import, CPU", CPU, "eager")
    if options.only == "import":
        return 0
    print(f"== the worker's start on a yt-dlp download: {options.baseline} against this tree")
    old = Path(tempfile.mkdtemp(prefix="bench-start-"))
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(old), options.baseline], check=True, cwd=HERE)
    for tree in (old, HERE):  # both sides' own code compiled once, as the image has it (this shell writes no .pyc)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "operator")], check=True)
    try:
        with serve() as site, tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:

            def run(tree: Path | None, key: str, number: int) -> float:
                folder = Path(tmp) / f"{key}-{number}"
                folder.mkdir()
                first, whole = worker_start(site, tree, folder)
                wholes[key].append(whole)
                return first

            wholes: dict[str, list[float]] = {"baseline": [], "this tree": []}
            sides = {
                "baseline": lambda n: run(old, "baseline", n),
                "this tree": lambda n: run(None, "this tree", n),
            }
            firsts = alternate(options.rounds, sides)
            summary("to the first request", firsts, "baseline")
            summary("whole process", wholes, "baseline")
            summary("whole process, CPU", {k: CPU[k] for k in wholes}, "baseline")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old)], check=False, cwd=HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
