"""What the memory tests measure: the worker's own peak resident size, whatever the pytest process that starts it
has held before (tests of the worker's memory read ``ru_maxrss`` from ``os.wait4``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import start_worker_alone

MB = 1024 * 1024


def test_the_measured_peak_is_the_workers_own(tmp_path: Path, site: str) -> None:
    """This process's own peak is first pushed past 400 MB (as tests before it in the same pytest worker may have
    done); a worker that stores two small images must still measure under 200 MB. Started by the test process
    itself, the worker measured this process's peak (469 MB): Linux counts the memory a vfork'd child leaves at its
    exec into the child's ``ru_maxrss``."""
    ballast = bytearray(400 * MB)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1  # resident, page by page
    del ballast
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/dl")
    process = start_worker_alone(tmp_path, {"urls": [f"{site}/gallery/?n=2&size=1000"]}, storage)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads((tmp_path / "termination-log").read_text())
    assert (process.returncode, report["itemsDone"]) == (0, 2), report
    assert usage.ru_maxrss / 1024 < 200, f"peak {usage.ru_maxrss / 1024:.0f} MB"
