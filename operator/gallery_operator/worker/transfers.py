"""A bounded pool for the transfers of one run's items (options.concurrency): the engine extracts on its own thread
and hands each item to the pool; at most ``size`` items move at once, their results are committed in the order the
engine handed them in (the catalogue's order is the gallery's, whatever finishes first), and never more items start
than the run's item limit still allows. An item that finished moving waits for its turn without holding one of the
``size`` slots, up to ``size`` x BACKLOG_PER_SLOT such items (their files on disk): one slow item stalls the pool
only after that many more.

Each waiter is woken only for what it waits for: the item whose turn comes next (its own condition), the engine's
thread when there may be room or nothing is left in flight. One condition that woke every waiter at every finish
cost 170 thread switches an item at zero latency (24 items waiting their turn, each woken and put back to sleep).

With ``adaptive`` (gallery-dl's items), threads are paid for only while there is latency to hide (``Width``): items
are moved one at a time and measured (their wall time against their thread's CPU time); while they spend most of
their time waiting on the network the pool is as wide as their wall-to-CPU ratio (up to ``size``), and while they do
not, the engine's thread moves each item itself, as with concurrency 1. At zero latency a pool of 6 cost 30-40 %
more wall time than one item after another (45,000 thread switches against 1,000 for 1,000 small items), and a
pool of one thread fed by the engine's thread 20 % more (docs/benchmarks.md, "Session 13").
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BACKLOG_PER_SLOT = 4

WAITING = 0.5
"""An item moved alone that waits on the network more than this share of its wall time has latency to hide."""
SAMPLES = 4
"""Items moved alone that make one decision: the pool widens only when every one of them waited. At zero latency
on this project's machines one item in eight or ten waits more than half its time (the site's answer delayed by
a busy core, a collection of the interpreter's garbage), where 20 ms away every item does: a decision on the
median of a rolling window widened the pool many times a run."""
FIRST_CHECK = 64
LAST_CHECK = 1024
"""Items handed to the wide pool before it is measured again (``SAMPLES`` items moved alone): the first check after
``FIRST_CHECK``, each one that finds latency again doubling the interval up to ``LAST_CHECK``. Threads waiting on
one another (the interpreter lock) look the same as threads waiting on the network, so only items moved alone can
tell the two apart."""
WATCH_SECONDS = 0.05
"""How often the engine's thread looks at an item moved alone on a pool thread: one that has waited on the network
for most of this long widens the pool at once, so that a slow item is passed as in a wide pool."""
LONG_WAIT_SECONDS = 0.25
"""An item moved on the engine's thread that waited on the network for most of this long or longer widens the pool
at once, as the watch does for an item moved alone on a pool thread: nothing watches the engine's own thread, so that
item stalls the run for its own time, but the items after it are passed. Waiting for ``SAMPLES`` items that all wait
never widened the pool on a site whose every fourth item is slow, and each slow item stalled the run. Stray waits of
a busy machine (the interpreter's garbage collection, a delayed answer) are milliseconds, far below this."""


_SCHEDSTAT = threading.local()


def busy_seconds(task: str = "thread-self") -> float | None:
    """Seconds a thread of this process has run on a CPU or waited in a run queue for one (its schedstat), so that
    a loaded machine's queue does not pass for the network; None when unknown (the calling thread then gives its
    CPU time). The calling thread's file stays open (one read a measurement)."""
    try:
        if task != "thread-self":
            return _schedstat(os.open(f"/proc/{task}/schedstat", os.O_RDONLY | os.O_CLOEXEC), close=True)
        handle = getattr(_SCHEDSTAT, "fd", None)
        if handle is None:
            handle = _SCHEDSTAT.fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY | os.O_CLOEXEC)
        return _schedstat(handle)
    except (OSError, ValueError):
        return time.thread_time() if task == "thread-self" else None


def process_busy_seconds() -> float:
    """Seconds this process's threads have run on a CPU or waited in a run queue for one (the sum of their
    schedstat), so that a loaded machine's queue does not pass for the network; its CPU time when unknown."""
    try:
        tasks = [entry.name for entry in Path("/proc/self/task").iterdir()]
    except OSError:
        return time.process_time()
    total = 0.0
    for task in tasks:
        total += busy_seconds(f"self/task/{task}") or 0.0  # a thread gone since the listing counts nothing
    return total


def _schedstat(handle: int, close: bool = False) -> float:
    try:
        ran, queued = os.pread(handle, 128, 0).split()[:2]
    finally:
        if close:
            os.close(handle)
    return (int(ran) + int(queued)) / 1e9


class Width:
    """How many items move at once, decided from the items moved alone (a pure decision: no clock, no thread).

    ``width`` 1 moves one item at a time: on a pool thread while measuring (``inline`` False; the engine's thread
    watches it), on the engine's thread once the items are found not to wait (``inline``; each one measured in turn,
    so that latency which appears widens the pool again)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.width = 1
        self.inline = False
        self.samples: list[float] = []
        """The waiting shares of the items moved alone since the last decision."""
        self.pooled = 0
        """Items handed to the wide pool since it was last measured."""
        self.interval = FIRST_CHECK

    def measured(self, wall: float, busy: float) -> None:
        """An item moved alone took ``wall`` seconds, ``busy`` of them on a CPU or in a queue for one."""
        if self.width > 1:
            return  # others moved beside it (the watch widened the pool): not a measurement
        share = max(0.0, wall - busy) / wall if wall > 0 else 0.0
        if wall >= LONG_WAIT_SECONDS and share > WAITING:
            self.waited()
            return
        self.samples.append(share)
        if len(self.samples) < SAMPLES:
            return
        waiting, self.samples = min(self.samples), []
        if waiting > WAITING:
            self._widen(waiting)
        elif not self.inline:
            self.inline, self.interval = True, FIRST_CHECK

    def waited(self) -> None:
        """An item moved alone on a pool thread has waited on the network for long (the engine's watch)."""
        self._widen(1.0)

    def _widen(self, waiting: float) -> None:
        # wall over busy time: as many threads as keep one core busy
        ratio = math.ceil(1 / (1 - waiting)) if waiting < 1 - 1 / self.size else self.size
        self.width = max(2, min(self.size, ratio))
        self.inline, self.samples, self.pooled = False, [], 0

    def handed(self) -> None:
        """An item was handed to the pool at this width."""
        if self.width == 1:
            return
        self.pooled += 1
        if self.pooled >= self.interval:
            self.width, self.samples = 1, []
            self.interval = min(self.interval * 2, LAST_CHECK)


class Transfers:
    """Items in flight, each with its index (the order the engine handed it in).

    ``room`` says how many more items the run's limits allow (None: no item limit): an item starts only while the
    items stored and those in flight stay within it, so a limit of N items never stores N + 1, whatever the
    concurrency. The first error an item's transfer raises is kept and raised on the engine's thread
    (``raise_pending``), where the engine handles it as it would without the pool."""

    def __init__(self, size: int, room: Callable[[], int | None], adaptive: bool = False) -> None:
        self.size = size
        self.room = room
        self.width = Width(size) if adaptive else None
        self.alone: tuple[str, float, float] | None = None
        """The item moved alone: its thread's task in /proc, and its start's wall and busy seconds."""
        self.lock = threading.RLock()  # raise_pending is called with it held
        self.changed = threading.Condition(self.lock)
        """The engine's thread waits here (room for an item, nothing in flight)."""
        self.turns: dict[int, threading.Condition] = {}
        """The conditions of the items that wait for their turn, by index."""
        self.running = 0
        self.waiting = 0
        """Items that finished moving and wait for their turn (not counted in ``running``)."""
        self.backlog = size * BACKLOG_PER_SLOT
        self.handed = 0
        self.turn = 0
        """The index whose commit comes next."""
        self.finished: set[int] = set()
        self.error: BaseException | None = None
        self.pool = ThreadPoolExecutor(max_workers=size + self.backlog, thread_name_prefix="transfer")

    def _has_room(self) -> bool:
        held = self.running + self.waiting
        width = self.size if self.width is None else self.width.width
        if width == 1 and held > 0:
            return False  # alone means alone: measured, or on the engine's thread
        if self.running >= width or held >= self.size + self.backlog:
            return False
        room = self.room()
        return room is None or held < room or held == 0

    def submit(self, transfer: Callable[[int], None]) -> None:
        """Run ``transfer(index)`` on a pool thread once there is room (the engine's thread waits until then)."""
        self.hand(lambda here: transfer)

    def hand(self, make: Callable[[bool], Callable[[int], None]]) -> None:
        """As ``submit``, with the item's transfer made by ``make(here)`` on the calling thread once it is decided
        where the item moves: ``here`` when the calling thread moves it itself, at once (nothing else in flight)."""
        with self.changed:
            self._wait_for_room()
            self.raise_pending()
            index, self.handed = self.handed, self.handed + 1
            self.running += 1
            alone = self.width is not None and self.width.width == 1
            here = alone and self.width is not None and self.width.inline
            if self.width is not None:
                self.width.handed()
        try:
            transfer = make(here)
            if not here:
                self.pool.submit(self._run, transfer, index, alone)
                return
        except BaseException:
            self._finish(index)
            raise
        self._run(transfer, index, alone, watched=False)  # the engine's thread moves it, as with concurrency 1
        self.raise_pending()

    def move_here(self, move: Callable[[], bool]) -> bool:
        """Move the next item on the calling thread at once, measured, when items move one at a time there and
        nothing is in flight (``move``, which says whether the item counts as a measurement: an item skipped as
        known waits on nothing; its errors are raised here): True. Else nothing is moved (False: ``hand`` it).
        An item that moves here needs no pool bookkeeping (no slot, no turn to wait for, no error to carry over):
        at zero latency that bookkeeping cost a twentieth of each small item's time."""
        width = self.width
        if width is None or width.width != 1 or not width.inline or self.running or self.waiting or self.error:
            return False
        with self.changed:
            if self.running + self.waiting or self.error is not None:
                return False
            index, self.handed = self.handed, self.handed + 1
        started, busy = time.monotonic(), busy_seconds() or 0.0
        counted = True
        try:
            counted = move()
        finally:
            wall, spent = time.monotonic() - started, (busy_seconds() or busy) - busy
            with self.changed:
                if counted:
                    width.measured(wall, spent)
                self.turn = index + 1  # every item before it finished: nothing was in flight
        return True

    def _wait_for_room(self) -> None:
        """Until there is room for an item (or an item failed), watching an item moved alone on a pool thread, and
        the items of the wide pool still in flight when it is to be measured again (one of them may be slow: the
        engine's thread would wait for it with nothing else moving, where the wide pool goes on past it)."""
        started: tuple[float, float] | None = None
        while not (self._has_room() or self.error is not None):
            watching = self.width is not None and self.width.width == 1 and self.running > 0
            if watching and started is None:  # read only when waiting: a dozen files per look
                started = (time.monotonic(), process_busy_seconds())
            if not self.changed.wait(WATCH_SECONDS if watching else None) and self.width and self._waits(started):
                self.width.waited()

    def _waits(self, started: tuple[float, float] | None) -> bool:
        """The item moved alone has been waiting on the network for most of WATCH_SECONDS or longer; or, with the
        wide pool's items in flight (none measured alone yet), the process's threads have mostly waited since
        ``started`` (less than half of the time since on a CPU or in a run queue)."""
        if self.alone is None:
            if started is None:
                return False
            wall, busy = started
            elapsed = time.monotonic() - wall
            return elapsed >= WATCH_SECONDS and process_busy_seconds() - busy < elapsed * (1 - WAITING)
        task, wall, busy = self.alone
        now = busy_seconds(task)
        elapsed = time.monotonic() - wall
        return now is not None and elapsed >= WATCH_SECONDS and elapsed - (now - busy) > elapsed * WAITING

    def _run(self, transfer: Callable[[int], None], index: int, alone: bool = False, watched: bool = True) -> None:
        """``alone``: the item is measured; ``watched``: the engine's thread watches it meanwhile (it runs on a pool
        thread)."""
        started = time.monotonic()
        busy = busy_seconds() if alone else None
        if busy is not None and watched:
            with self.changed:
                self.alone = (f"self/task/{threading.get_native_id()}", started, busy)
        try:
            transfer(index)
        except BaseException as error:  # kept for the engine's thread, which handles it as its own
            with self.changed:
                self.error = self.error or error
        finally:
            if busy is not None:
                self._measured(time.monotonic() - started, (busy_seconds() or busy) - busy)
            self._finish(index)

    def _measured(self, wall: float, busy: float) -> None:
        assert self.width is not None
        with self.changed:
            self.alone = None
            self.width.measured(wall, busy)

    def _finish(self, index: int) -> None:
        with self.changed:
            self.running -= 1
            self.finished.add(index)
            while self.turn in self.finished:
                self.finished.discard(self.turn)
                self.turn += 1
            turn = self.turns.get(self.turn)
            if turn is not None:
                turn.notify()
            self.changed.notify_all()  # the engine's thread: no pool thread waits here

    @contextlib.contextmanager
    def in_turn(self, index: int) -> Iterator[None]:
        """The block runs once every item handed in before ``index`` is finished (stored, skipped or failed); until
        then the item's slot is free for the next item."""
        if self.turn == index:  # its turn already (an item on the engine's thread): it stays so until it finishes
            yield
            return
        with self.changed:
            if self.turn != index:
                self.running, self.waiting = self.running - 1, self.waiting + 1
                self.changed.notify_all()  # the engine's thread: no pool thread waits here
                turn = self.turns[index] = threading.Condition(self.lock)
                try:
                    turn.wait_for(lambda: self.turn == index)
                finally:
                    del self.turns[index]
                self.running, self.waiting = self.running + 1, self.waiting - 1
        yield

    def raise_pending(self) -> None:
        """Raise the first error of an item's transfer, once."""
        with self.changed:
            error, self.error = self.error, None
        if error is not None:
            raise error

    def drain(self) -> None:
        """Wait until no item is in flight."""
        with self.changed:
            self.changed.wait_for(lambda: self.running + self.waiting == 0)

    def close(self) -> None:
        self.drain()
        self.pool.shutdown(wait=True)
