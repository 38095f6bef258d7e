"""Leader election, the loop: every retry period a replica reads the Lease and, as leadership.py decides, creates,
takes or renews it (a replace at the resourceVersion read) or waits. A watch of the Lease shows a standby every
change as it happens: it takes a released Lease at once, and an expired one the moment it expires (from the record
the watch showed, without reading it first). The leader writes (the facade's write gate asks
`may_write`) only until its renew deadline after the start of its last successful renewal; a leader that reaches
it, or reads the Lease held by another, has lost: the gate is already shut, and the process exits at once (the
Deployment starts it again, as a standby with fresh memories). A graceful stop fences the writes, waits for the
last one to be answered, and releases the Lease (no holder) so a standby takes it at its next read.

Why not the kubernetes client's `leaderelection` (LeaseLock): it blocks a thread in `time.sleep`, its Lease calls
have no timeout (a leader cut off from the API server hangs inside a renewal and never reaches its deadline, so it
never stops), it never releases the Lease on a graceful stop, and it runs the leader's work in a thread of its own
rather than in kopf's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gallery_operator import metrics
from gallery_operator.facade import GATE, LeaseKube
from gallery_operator.leadership import (
    LeaseRecord,
    Move,
    Timing,
    lease_body,
    lease_spec,
    next_look,
    next_move,
    observed_at,
    released_spec,
    report_target,
    writes_until,
)

log = logging.getLogger(__name__)


def default_identity() -> str:
    """client-go's choice: the host (the pod's name) and a random suffix, so a restarted process is a new one."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def stamp() -> str:
    """The Lease's MicroTime format."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def exit_now() -> None:
    """A leader that lost the Lease ends its process at once: nothing of it may write any more."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)


class Elector:
    """One replica's part in the election on the Lease `namespace/name`."""

    def __init__(
        self,
        kube: LeaseKube,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing,
        lead: Callable[[], Awaitable[None]],
        lost: Callable[[], None] = exit_now,
        report_url: str = "",
    ) -> None:
        self.kube, self.namespace, self.name, self.identity, self.timing = kube, namespace, name, identity, timing
        self.lead, self.lost, self.report_url = lead, lost, report_url
        self.leading = False
        self._until = 0.0
        """Monotonic time until which this replica may write (see leadership.writes_until)."""
        self._record: LeaseRecord | None = None
        self._seen_at = 0.0
        self._stale = False
        """The last attempt's write met a conflict: the next attempt reads the Lease before acting."""
        self._released = asyncio.Event()
        """Set when the watch shows the Lease without a holder: a standby looks at once."""
        self._task: asyncio.Task[None] | None = None
        metrics.LEADER.set(0)

    def may_write(self) -> bool:
        return self.leading and time.monotonic() < self._until

    def start(self, ready: Callable[[], bool]) -> None:
        """Campaign once `ready()` (the caches are filled: a new leader reconciles from warm caches)."""
        self._task = asyncio.create_task(self._run(ready), name="leader-election")

    def alive(self) -> bool:
        """The loop runs (or has not yet been started)."""
        return self._task is None or not self._task.done()

    async def _run(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await asyncio.sleep(0.1)
        log.info("campaigning for the Lease %s/%s as %s", self.namespace, self.name, self.identity)
        loop = asyncio.get_running_loop()
        # Every change to the Lease arrives by watch as well: a released Lease is taken at once, and a standby
        # counts the holder's silence from the moment it saw the last renewal, not from its next read.

        def changed(body: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(self._watched, body)

        self.kube.follow(self.namespace, self.name, changed)
        while True:
            try:
                await asyncio.wait_for(self._attempt(), self._attempt_timeout())
            except Exception as error:  # an unreachable API server is retried like a conflict
                log.warning("the Lease %s/%s: %s", self.namespace, self.name, repr(error))
            if self.leading and not self.may_write():
                self._lose(f"not renewed within the renew deadline ({self.timing.renew_deadline} s)")
                return
            pause = next_look(self._record, self.identity, self._seen_at, time.monotonic(), self.timing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), pause)
            self._released.clear()

    def _watched(self, body: dict[str, Any]) -> None:
        """A version of the Lease the watch showed (a leader keeps the record it wrote itself)."""
        if self.leading:
            return
        record = LeaseRecord.of(body)
        self._seen_at = observed_at(self._record, self._seen_at, record, time.monotonic())
        self._record = record
        if not record.holder:
            self._released.set()

    def _attempt_timeout(self) -> float:
        """A leader's attempt ends by its deadline; a standby's within a retry period (but never under a second)."""
        if self.leading:
            return max(0.05, self._until - time.monotonic())
        return max(1.0, self.timing.retry_period)

    def _known(self, now: float) -> LeaseRecord | None:
        """The record an attempt may act on without reading the Lease first: the leader's own (client-go's fast
        path: renew what it wrote), or a standby's last sight of a Lease it may take now (expired or released, as the
        watch or the last read showed it; a conflict says it changed, and the next attempt reads)."""
        record = self._record
        if record is None or self._stale:
            return None
        if self.leading or next_move(record, self.identity, self._seen_at, now) is Move.TAKE:
            return record
        return None

    async def _attempt(self) -> None:
        started = time.monotonic()
        record = self._known(started)
        if record is None:
            body = await self.kube.read_lease(self.namespace, self.name, self._attempt_timeout())
            record = LeaseRecord.of(body) if body is not None else None
            self._seen_at = observed_at(self._record, self._seen_at, record, started)
            self._record, self._stale = record, False
        if self.leading and (record is None or record.holder != self.identity):
            self._lose(f"the Lease is held by {record.holder if record else 'nobody'!r}")
            return
        move = next_move(record, self.identity, self._seen_at, started)
        if move is Move.WAIT:
            return
        spec = lease_spec(move, record, self.identity, self.timing, stamp())
        timeout = self._attempt_timeout()
        lease = lease_body(spec, self.report_url)
        if record is None:
            written = await self.kube.create_lease(self.namespace, self.name, lease, timeout)
        else:
            written = await self.kube.replace_lease(self.namespace, self.name, lease, record.resource_version, timeout)
        if written is None:  # changed by another meanwhile: read before acting again
            self._record, self._stale = (None, True) if self.leading else (self._record, True)
            return
        self._record, self._seen_at = LeaseRecord.of(written), started
        self._until = writes_until(started, self.timing)
        if not self.leading:
            self.leading = True
            metrics.LEADER.set(1)
            metrics.LEADERSHIP_TRANSITIONS.inc()
            log.info("leading: took the Lease %s/%s as %s", self.namespace, self.name, self.identity)
            await self.lead()

    def report_target(self) -> str | None:
        """Where this replica, while it does not lead, forwards a worker's report (leadership.report_target)."""
        return None if self.leading else report_target(self._record, self.identity)

    def _lose(self, why: str) -> None:
        self.leading = False
        metrics.LEADER.set(0)
        metrics.LEADERSHIP_TRANSITIONS.inc()
        log.critical("lost the Lease %s/%s (%s): no more writes; exiting", self.namespace, self.name, why)
        self.lost()

    def resign(self) -> bool:
        """Stop writing now (a graceful stop's first step): the gate refuses every write from here. Whether this
        replica was leading."""
        was = self.leading
        self.leading = False
        self._until = 0.0
        if self._task is not None:
            self._task.cancel()
        if was:
            metrics.LEADER.set(0)
            metrics.LEADERSHIP_TRANSITIONS.inc()
        return was

    async def release(self, was_leading: bool) -> None:
        """After `resign` and the writers' stop: once the last write is answered, leave the Lease without a holder
        so a standby takes it at its next read. Nothing is released when a write is still unanswered after the
        renew deadline (the Lease then expires as after a crash)."""
        record = self._record
        if not was_leading or record is None or record.holder != self.identity:
            return
        if not await GATE.drained(self.timing.renew_deadline):
            log.warning("a write is still unanswered: the Lease is left to expire")
            return
        spec = released_spec(record, stamp())
        try:
            lease = lease_body(spec, "")
            await self.kube.replace_lease(self.namespace, self.name, lease, record.resource_version, 2.0)
            log.info("released the Lease %s/%s", self.namespace, self.name)
        except Exception as error:  # the Lease then expires as after a crash
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, repr(error))
