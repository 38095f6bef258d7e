"""The whole process's busy seconds (transfers.process_busy_seconds), which the transfer pool reads while the wide
pool's items are in flight: every thread's run and run-queue time counts, a sleeping thread's does not."""

from __future__ import annotations

import threading

from gallery_operator.worker.transfers import busy_seconds, process_busy_seconds


def spin(stop: threading.Event) -> None:
    while not stop.is_set():
        pass


def test_a_computing_thread_counts_and_a_sleeping_one_does_not() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=spin, args=(stop,))
    before = process_busy_seconds()
    mine = busy_seconds()
    worker.start()
    try:
        sleeper = threading.Event()
        sleeper.wait(0.2)  # this thread sleeps; the other computes
        during = process_busy_seconds()
        assert mine is not None and (busy_seconds() or 0.0) - mine < during - before
    finally:
        stop.set()
        worker.join()
