"""The transfer pool's width (issue 26, zero latency): threads only while there is latency to hide. The decision is
pure (``Width``: measured items in, a width out); the pool itself runs real threads whose items wait (sleep) or
compute (a busy loop), and the tests assert on which thread moved which item, never on how long anything took."""

from __future__ import annotations

import threading
import time

from gallery_operator.worker.transfers import FIRST_CHECK, LAST_CHECK, LONG_WAIT_SECONDS, SAMPLES, Transfers, Width


def measure(width: Width, wall: float, busy: float, count: int = SAMPLES) -> None:
    for _ in range(count):
        width.measured(wall, busy)


def hand(width: Width, count: int) -> None:
    for _ in range(count):
        width.handed()


def test_items_that_do_not_wait_move_on_the_engines_thread() -> None:
    width = Width(6)
    assert (width.width, width.inline) == (1, False)  # measured first, one at a time on a pool thread
    measure(width, 0.002, 0.0018, SAMPLES - 1)
    assert not width.inline  # not decided before SAMPLES items
    width.measured(0.002, 0.0018)
    assert (width.width, width.inline) == (1, True)


def test_items_that_wait_widen_the_pool_as_far_as_their_wall_to_busy_ratio() -> None:
    far = Width(6)
    measure(far, 0.022, 0.002)  # 20 ms away: 11 items' worth of waiting, at most the size
    assert (far.width, far.inline) == (6, False)
    near = Width(6)
    measure(near, 0.006, 0.002)  # two thirds waiting: three threads keep a core busy
    assert near.width == 3
    half = Width(6)
    measure(half, 0.004, 0.002)  # half waiting is not more than half
    assert (half.width, half.inline) == (1, True)


def test_one_odd_item_decides_nothing() -> None:
    width = Width(6)
    measure(width, 0.002, 0.0018, SAMPLES - 1)
    width.measured(0.050, 0.002)  # a slow answer: the pool widens only when every item of a decision waited
    assert (width.width, width.inline) == (1, True)
    for _ in range(10):  # nor do odd items spread over many decisions
        measure(width, 0.002, 0.0018, SAMPLES - 1)
        width.measured(0.050, 0.002)
    assert (width.width, width.inline) == (1, True)
    measure(width, 0.022, 0.002, SAMPLES - 1)
    width.measured(0.002, 0.0018)  # one item of the batch did not wait
    assert (width.width, width.inline) == (1, True)


def test_latency_that_appears_while_inline_widens_the_pool() -> None:
    width = Width(4)
    measure(width, 0.002, 0.0018)
    assert width.inline
    measure(width, 0.022, 0.002)
    assert (width.width, width.inline) == (4, False)


def test_a_waiting_item_seen_by_the_watch_widens_the_pool_to_its_size() -> None:
    for size in (2, 6):
        width = Width(size)
        width.waited()
        assert (width.width, width.inline) == (size, False)


def test_a_measurement_beside_other_items_is_not_one() -> None:
    width = Width(6)
    width.waited()
    measure(width, 0.002, 0.002)
    assert width.width == 6 and width.samples == []


def test_the_wide_pool_is_measured_again_ever_less_often() -> None:
    width = Width(6)
    measure(width, 0.022, 0.002)
    intervals = []
    for _ in range(6):
        handed = 0
        while width.width > 1:
            width.handed()
            handed += 1
        intervals.append(handed)
        hand(width, 0)
        measure(width, 0.022, 0.002)  # still far away
    assert intervals == [FIRST_CHECK, 2 * FIRST_CHECK, 4 * FIRST_CHECK, 8 * FIRST_CHECK, LAST_CHECK, LAST_CHECK]
    while width.width > 1:
        width.handed()
    measure(width, 0.002, 0.0018)  # the latency went away: inline, and the next wide pool is checked early again
    assert (width.width, width.inline, width.interval) == (1, True, FIRST_CHECK)


def test_items_handed_alone_do_not_count_towards_a_check() -> None:
    width = Width(6)
    hand(width, 10 * LAST_CHECK)
    assert (width.width, width.pooled) == (1, 0)


def busy_loop(seconds: float) -> None:
    """Compute for ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def run_pool(transfer_seconds: float, waiting: bool, count: int, size: int = 4) -> tuple[list[int], int]:
    """``count`` items through an adaptive pool; each waits (sleeps) or computes. The indices of the items the
    calling thread moved itself, and the most items that moved at once."""
    pool = Transfers(size, lambda: None, adaptive=True)
    engine = threading.get_ident()
    lock = threading.Lock()
    inline: list[int] = []
    moving = [0, 0]
    committed: list[int] = []

    def transfer(index: int) -> None:
        with lock:
            moving[0] += 1
            moving[1] = max(moving[1], moving[0])
        if threading.get_ident() == engine:
            inline.append(index)
        if waiting:
            time.sleep(transfer_seconds)
        else:
            busy_loop(transfer_seconds)
        with lock:
            moving[0] -= 1
        with pool.in_turn(index):
            committed.append(index)

    for _ in range(count):
        pool.submit(transfer)
    pool.close()
    assert committed == list(range(count))
    return inline, moving[1]


def test_computing_items_move_one_at_a_time_on_the_engines_thread() -> None:
    inline, most = run_pool(0.003, waiting=False, count=3 * SAMPLES)
    assert most == 1
    assert inline == list(range(SAMPLES, 3 * SAMPLES))  # measured on a pool thread first, then the engine's own


def test_waiting_items_move_at_once() -> None:
    """The first items wait (sleep) while moved alone; the four after them can only finish together (a barrier
    that breaks unless all four move at once)."""
    pool = Transfers(4, lambda: None, adaptive=True)
    engine = threading.get_ident()
    together = threading.Barrier(4, timeout=60)
    inline: list[int] = []
    committed: list[int] = []

    def transfer(index: int) -> None:
        if threading.get_ident() == engine:
            inline.append(index)
        if index < SAMPLES:
            time.sleep(0.02)
        else:
            together.wait()
        with pool.in_turn(index):
            committed.append(index)

    for _ in range(SAMPLES + 4):
        pool.submit(transfer)
    pool.close()
    assert not together.broken
    assert inline == []
    assert committed == list(range(SAMPLES + 4))


def test_a_slow_first_item_is_passed() -> None:
    """The first item waits until the fifth has moved: the engine's watch sees it wait and widens the pool (one at
    a time, the fifth would never start)."""
    pool = Transfers(4, lambda: None, adaptive=True)
    fifth = threading.Event()
    passed: list[bool] = []
    committed: list[int] = []

    def transfer(index: int) -> None:
        if index == 0:
            passed.append(fifth.wait(timeout=60))
        if index == 4:
            fifth.set()
        with pool.in_turn(index):
            committed.append(index)

    for _ in range(8):
        pool.submit(transfer)
    pool.close()
    assert passed == [True]
    assert committed == list(range(8))


def test_without_adapting_the_pool_is_as_wide_as_its_size() -> None:
    pool = Transfers(3, lambda: None)
    assert pool.width is None
    started = threading.Barrier(3, timeout=60)  # three items at once, or the barrier breaks

    def transfer(index: int) -> None:
        started.wait()

    for _ in range(3):
        pool.submit(transfer)
    pool.close()
    assert not started.broken


def test_one_item_that_waited_long_widens_the_pool_at_once() -> None:
    """A site that answered at once, then holds every fourth item: each slow item moved on the engine's thread
    widens the pool (waiting for ``SAMPLES`` waiting items never decided, and each slow item stalled the run)."""
    width = Width(4)
    measure(width, 0.002, 0.0018)
    assert width.inline
    width.measured(LONG_WAIT_SECONDS, 0.002)
    assert (width.width, width.inline) == (4, False)
    computing = Width(4)
    measure(computing, 0.002, 0.0018)
    computing.measured(LONG_WAIT_SECONDS, LONG_WAIT_SECONDS * 0.9)  # long, but on a CPU: nothing to hide
    assert (computing.width, computing.inline) == (1, True)
