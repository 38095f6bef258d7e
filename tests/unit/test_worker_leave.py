"""The worker's exit without the interpreter's teardown (worker/__main__.py leave) still does what an exit must:
the exit code, the buffered output, the exit handlers, the threads that are not daemons, idle thread pools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from gallery_operator.worker.__main__ import leave

folder = Path(sys.argv[1])
atexit.register(lambda: (folder / "handler").write_text("ran"))
def late():
    time.sleep(0.2)
    (folder / "thread").write_text("ran")
threading.Thread(target=late).start()
pool = ThreadPoolExecutor(2)  # never shut down: its idle threads must not hold the exit
pool.submit(lambda: None).result()
sys.stdout.write("buffered, no newline")
leave(3)
"""


def test_leave_keeps_the_exit_code_output_handlers_and_threads(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered, no newline"
    assert (tmp_path / "handler").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "ran"
