"""The GallerySubscription reconcile loop: gather a subscription's situation from the caches, ask the pure plan
(subscription_plan.py), apply its actions through the facade, and look again at its next tick.

Its own work queue (the same WorkQueue class as the downloads'), fed by the subscriptions' watch, by the watch of
their runs (GalleryDownloads a subscription controls) and by a timer per subscription set to its next tick. Runs are
ordinary downloads: the download controller admits, runs and reports them like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from gallery_operator import SUBSCRIPTION_KIND, metrics
from gallery_operator.api.spec import describe_validation
from gallery_operator.api.subscription import GallerySubscriptionSpec, parse_subscription_spec
from gallery_operator.apply import status_patch
from gallery_operator.facade import SubscriptionKube
from gallery_operator.keys import Key
from gallery_operator.plan import SetFinalizers
from gallery_operator.subscription_plan import (
    CreateRun,
    DeleteRun,
    PostEvent,
    RunSnapshot,
    SubscriptionPlan,
    SubscriptionSituation,
    SubscriptionSnapshot,
    WriteStatus,
    plan_subscription,
)
from gallery_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

MAX_YIELD_SECONDS = 30.0
"""The longest a download reconcile waits for due subscription ticks to be taken up (see Subscriptions.ticks_first):
a download is never starved by a stream of ticks."""


def owning_subscription(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the subscription controlling a GalleryDownload, from its controller reference."""
    for owner in (body.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == SUBSCRIPTION_KIND:
            return str(owner.get("name") or ""), str(owner.get("uid") or "")
    return None


def parse(snapshot: SubscriptionSnapshot) -> GallerySubscriptionSpec | str:
    try:
        return parse_subscription_spec(snapshot.spec)
    except ValidationError as error:
        return describe_validation(error)


@dataclass
class Held:
    """A reconcile's report (the status it decided, the Events it posts), written after the runs are created."""

    status: dict[str, Any] | None
    events: list[PostEvent]


class Subscriptions:
    """The subscriptions' reconcile loop. ``index`` and ``runs`` are kopf indexes: subscriptions by key, and the
    runs (GalleryDownloads) by the uid of the subscription that controls them."""

    def __init__(self, index: Any, runs: Any, facade: SubscriptionKube, workers: int = 4) -> None:
        self.index = index
        self.runs = runs
        self.kube = facade
        self.queue: WorkQueue[Key] = WorkQueue(self.reconcile, workers)
        self.written: dict[Key, dict[str, Any]] = {}
        """The status as this operator last wrote it, per subscription (the cache lags behind its own writes)."""
        self.held: dict[Key, Held] = {}
        """Reports decided but not written yet (``apply``): the next reconcile plans from them."""
        self.due: set[Key] = set()
        """Subscriptions their timer (a tick, or a look again) queued and no reconcile has taken up yet."""
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self.quiet = asyncio.Event()
        """Set while ``due`` is empty."""
        self.quiet.set()
        self.fired: dict[Key, datetime] = {}
        """When each queued subscription's timer fired (for the log line of the run it makes)."""

    def start(self) -> None:
        self.queue.start()

    async def stop(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.due.clear()
        self.quiet.set()
        await self.queue.stop()

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def observe_run(self, namespace: str, body: Mapping[str, Any]) -> None:
        """A GalleryDownload changed: when a subscription controls it, that subscription is looked at, after the
        subscriptions whose timer fired (a run's news never delays another's tick; a thousand runs created on one
        tick are a thousand such events)."""
        owner = owning_subscription(body)
        if owner is not None:
            self.queue.add(Key(namespace, owner[0]), background=True)

    async def ticks_first(self) -> None:
        """The download controller's gate (WorkQueue.yield_to): a download reconcile waits while subscriptions whose
        timer fired wait for theirs (at most MAX_YIELD_SECONDS), so on a tick the API calls go to the runs'
        creations first and the new runs' own reconciles (a Queued status each) come after them."""
        if not self.quiet.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quiet.wait(), MAX_YIELD_SECONDS)

    def snapshot(self, key: Key) -> SubscriptionSnapshot | None:
        return next(iter(self.index.get(key, ())), None)

    async def reconcile(self, key: Key) -> None:
        self.due.discard(key)
        if not self.due:
            self.quiet.set()
        taken, clock = datetime.now(UTC), asyncio.get_running_loop().time()
        snapshot = self.snapshot(key)
        if snapshot is None:
            self.written.pop(key, None)
            self.held.pop(key, None)
            self.fired.pop(key, None)
            timer = self.timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            return
        # Owner references are namespace-local: a download elsewhere naming this uid as its controller (anyone may
        # write one) is no run of this subscription, neither to adopt nor to delete.
        runs = tuple(
            r
            for r in self.runs.get(snapshot.uid, ())
            if isinstance(r, RunSnapshot) and r.namespace == snapshot.namespace
        )
        held = self.held.get(key)
        previous = held.status if held and held.status is not None else self.written.get(key, snapshot.status)
        situation = SubscriptionSituation(snapshot, parse(snapshot), previous, taken, runs)
        plan = plan_subscription(situation)
        await self.apply(snapshot, plan, (self.fired.pop(key, None), taken))
        self._look_again(key, plan.requeue_after, clock)

    async def apply(
        self,
        snapshot: SubscriptionSnapshot,
        plan: SubscriptionPlan,
        woken: tuple[datetime | None, datetime] | None = None,
    ) -> None:
        """The plan's changes to the cluster first, then its report (status and Events): held back while other
        subscriptions whose timer fired wait in the queue, so a thousand runs due on one tick are created before any
        of their reports is written (a report written late is harmless: a run the status does not name yet is
        adopted). A held report goes to the back of the queue with its subscription; watch events (a run's status)
        never hold one back."""
        namespace, name = snapshot.key
        report = Held(None, [])
        for action in plan.actions:
            match action:
                case SetFinalizers(finalizers, resource_version):
                    await self.kube.set_finalizers(namespace, name, list(finalizers), resource_version)
                case CreateRun(body, due):
                    await self._create(body, due, woken)
                case DeleteRun(run, foreground):
                    await self.kube.delete_download(namespace, run, foreground)
                case WriteStatus(status):
                    report.status = status
                case PostEvent():
                    report.events.append(action)
        for outcome, new_items in plan.run_outcomes:
            metrics.SUBSCRIPTION_RUNS.labels(outcome=outcome).inc()
            if new_items is not None:
                metrics.SUBSCRIPTION_NEW_ITEMS.observe(new_items)
        held = self.held.pop(snapshot.key, None)
        if held is not None:
            report = Held(report.status or held.status, [*held.events, *report.events])
        created = any(isinstance(a, CreateRun) for a in plan.actions)
        if created and held is None and self.due:
            # Once, behind the subscriptions now waiting: when it comes round again, they have made their runs (a
            # second hold would only wait for later ticks, and burn a plan per pass while look-again timers fire).
            self.held[snapshot.key] = report
            self.enqueue(snapshot.key)
            return
        await self._report(snapshot, report)

    async def _create(
        self, body: dict[str, Any], due: datetime | None, woken: tuple[datetime | None, datetime] | None
    ) -> None:
        """Create a run; for a scheduled one, its lag goes to the metrics and, step by step, to the log."""
        called = datetime.now(UTC)
        created = await self.kube.create_download(body)
        if not created or due is None:
            return
        done = datetime.now(UTC)
        metrics.SUBSCRIPTION_LAG.observe(max(0.0, (done - due).total_seconds()))
        fired, taken = woken or (None, called)
        steps = [("timer", fired), ("reconcile", taken), ("call", called), ("created", done)]
        log.info(
            "run %s created; after its due time %s: %s",
            body["metadata"]["name"],
            due.isoformat(),
            ", ".join(f"{step} +{(moment - due).total_seconds():.3f}s" for step, moment in steps if moment is not None),
        )

    async def _report(self, snapshot: SubscriptionSnapshot, report: Held) -> None:
        if report.status is not None:
            before = self.written.get(snapshot.key, snapshot.status)
            await self.kube.patch_status(snapshot.namespace, snapshot.name, status_patch(before, report.status))
            self.written[snapshot.key] = report.status
            metrics.STATUS_WRITES.inc()
        for event in report.events:
            await self.kube.post_event(snapshot, event.kind, event.reason, event.message)

    def _look_again(self, key: Key, seconds: float | None, since: float) -> None:
        """Queue the subscription ``seconds`` after the loop time ``since`` (when its plan read the clock): the
        timer counts from the plan's "now", so the time its apply took (status writes under load) never delays the
        next tick."""
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if seconds is not None:
            loop = asyncio.get_running_loop()
            self.timers[key] = loop.call_at(since + max(0.0, seconds), self.fire, key)

    def fire(self, key: Key) -> None:
        """The subscription's timer: its tick (or a look again) is due."""
        self.due.add(key)
        self.quiet.clear()
        self.fired[key] = datetime.now(UTC)
        self.enqueue(key)
