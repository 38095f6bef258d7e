"""The work queue of the reconcile loop: keys (downloads) to reconcile, each handled by one worker at a time.

- a key waits in the queue at most once; a key added while its worker runs is queued again when that worker ends
  (nothing is lost, nothing runs twice at once);
- two lanes: urgent (watch events, reports, slots granted) before background (resync, queue-position refresh), so
  a resync of ten thousand downloads never delays a new one;
- a handler that raises is retried with exponential backoff (0.5 s doubling, at most 60 s);
- what it measures goes to hooks the owner passes in (`failed()`, `handled(seconds)`): the queue knows no metrics;
- another loop's more urgent work can go first (`yield_to`): each key taken waits for that loop's gate before its
  handler runs (it counts as busy meanwhile, so a key added then is handled again after, never twice at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

MAX_BACKOFF_SECONDS = 60.0


def _ignore(*_: object) -> None:
    pass


async def _open() -> None:
    pass


class WorkQueue(Generic[K]):
    def __init__(
        self,
        handle: Callable[[K], Awaitable[None]],
        workers: int,
        failed: Callable[[], None] = _ignore,
        handled: Callable[[float], None] = _ignore,
    ) -> None:
        """`failed()` is called for each handler that raised (it is retried), `handled(seconds)` after every handler
        with the time it took, failed or not."""
        self._handle = handle
        self._workers = workers
        self._failed = failed
        self._handled = handled
        self._urgent: deque[K] = deque()
        self._background: deque[K] = deque()
        self._queued: dict[K, bool] = {}
        """Key -> whether it is queued in the urgent lane."""
        self._items = asyncio.Semaphore(0)
        """Counts entries in both lanes (an entry left behind when a key moved lanes is skipped when taken)."""
        self._busy: set[K] = set()
        self._dirty: set[K] = set()
        self._failures: dict[K, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._gate: Callable[[], Awaitable[object]] = _open

    def yield_to(self, gate: Callable[[], Awaitable[object]]) -> None:
        """Each key taken from now on waits for ``gate()`` to return before its handler runs."""
        self._gate = gate

    def add(self, key: K, background: bool = False) -> None:
        if key in self._busy:
            self._dirty.add(key)
            return
        urgent = self._queued.get(key)
        if urgent or (urgent is not None and background):
            return  # queued already, in a lane at least as fast
        self._queued[key] = not background
        (self._background if background else self._urgent).append(key)
        self._items.release()

    def add_after(self, key: K, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def drain(self, limit: int | None = None) -> list[K]:
        """Take the waiting keys out (at most `limit`) without handling them, in the order they came: for an owner
        whose workers do not run (a test that runs the handler itself; a standby judging its queue before it
        leads). The lanes' entries of keys taken are skipped when taken, and dropped once nothing waits."""
        if self._tasks:
            raise RuntimeError("drain() is for a queue whose workers do not run")
        keys = list(itertools.islice(self._queued, limit))
        for key in keys:
            del self._queued[key]
        if not self._queued:
            self._urgent.clear()
            self._background.clear()
            self._items = asyncio.Semaphore(0)
        return keys

    def __len__(self) -> int:
        return len(self._queued)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"reconciler-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def alive(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def _take(self) -> K:
        while True:
            await self._items.acquire()
            urgent = bool(self._urgent)
            key = (self._urgent if urgent else self._background).popleft()
            if self._queued.get(key) == urgent:  # else a stale entry: the key moved lanes, or was taken already
                del self._queued[key]
                return key

    async def _work(self) -> None:
        while True:
            key = await self._take()
            self._busy.add(key)
            await self._gate()
            started = time.perf_counter()
            try:
                await self._handle(key)
                self._failures.pop(key, None)
            except Exception:
                self._failed()
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                log.exception("reconcile of %s failed; retrying in %.1fs", key, delay)
                self.add_after(key, delay)
            finally:
                self._handled(time.perf_counter() - started)
                self._busy.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
