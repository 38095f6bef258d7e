"""The coordinator: watch events and reports become keys in the work queue; a reconcile gathers what the caches,
the report inbox and admission know about one download, asks the pure plan what to do, and applies it.

    events -> WorkQueue -> reconcile: gather -> plan (plan.py) -> apply (apply.py) -> status, Jobs, Events
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gallery_operator import metrics
from gallery_operator.admission import Admission, Candidate, Granted, seeded
from gallery_operator.api.status import GalleryDownloadStatus, echoes, held, stored_phase
from gallery_operator.apply import Applied, Outbox, apply, apply_wall
from gallery_operator.cleanup import cleanup_seen
from gallery_operator.config import START_CEILING, Settings
from gallery_operator.download import Download
from gallery_operator.egress import EgressPolicy, NamespaceRules
from gallery_operator.facade import Kube, ThreadedKube
from gallery_operator.jobs import egress_rules, job_name, run_id
from gallery_operator.keys import Key
from gallery_operator.networkpolicy import (
    OUTLIVING_RECHECK_SECONDS,
    UNFINISHED_PODS,
    WALLED_POD_SELECTOR,
    KeepNetworkPolicy,
    RemoveNetworkPolicy,
    in_shape,
    namespace_plan,
    worker_policy_spec,
)
from gallery_operator.plan import (
    CleanupReads,
    Decision,
    Situation,
    parsed,
    plan,
    recall,
    wants_job,
)
from gallery_operator.reports import Directory, Inbox, WorkerJob, final_report
from gallery_operator.snapshots import ACTIVE_STATES, DownloadSnapshot, JobSnapshot, JobView, PolicySnapshot
from gallery_operator.workerconfig import Report
from gallery_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

TYPED_STATUSES = 1024
"""How many downloads' statuses typed from the cache are kept (see Controller._typed): about 2 MB."""


PREPLAN_SECONDS = 1.0
"""How often a standby judges the keys its queue gathered (see Controller.preplan)."""
PREPLAN_BATCH = 200
"""How many keys a standby judges before it lets the event loop run (its Lease, its watches, /healthz)."""


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StartProgress:
    """Objects seen by kind since the process began (each once, by uid), and when the last new one came: a start
    whose first listings still bring new objects is slow (many objects, a busy API server), not stuck. Changes to
    objects already seen do not count, so a tenant editing its own objects cannot keep a stuck start looking busy."""

    counts: Counter[str] = field(default_factory=Counter)
    last: float = field(default_factory=time.monotonic)
    _uids: set[tuple[str, str | None]] | None = field(default_factory=set)

    def seen(self, kind: str, uid: str | None) -> None:
        if self._uids is None or (kind, uid) in self._uids:
            return
        self._uids.add((kind, uid))
        self.counts[kind] += 1
        self.last = time.monotonic()

    def finish(self) -> None:
        """The caches are filled: no more counting (and the uids are let go)."""
        self._uids = None

    def __str__(self) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in sorted(self.counts.items())) or "none"


@dataclass
class Controller:
    settings: Settings
    downloads: Mapping[Key, Collection[DownloadSnapshot]]
    """kopf's index: (namespace, name) -> [the download's snapshot]."""
    jobs: Mapping[str, Collection[JobSnapshot]]
    """kopf's index: download uid -> [snapshots of the worker Jobs it controls]."""
    namespace_rules: Mapping[str, Collection[NamespaceRules]] = field(default_factory=dict)
    """kopf's index: namespace -> [its egress annotations], for namespaces that tighten the rules."""
    policies: Mapping[str, Collection[PolicySnapshot]] = field(default_factory=dict)
    """kopf's index: namespace -> [the operator's worker NetworkPolicy there]."""
    namespace_downloads: Mapping[str, Collection[str]] = field(default_factory=dict)
    """kopf's index: namespace -> [names of its downloads], so a namespace's last download is noticed in O(1)."""
    namespace_ceilings: Mapping[str, Collection[int]] = field(default_factory=dict)
    """kopf's index: namespace -> [the priority ceiling its annotation sets], for namespaces that set one."""
    api: Kube = field(default_factory=ThreadedKube)
    inbox: Inbox = field(default_factory=Inbox)
    directory: Directory = field(default_factory=Directory)
    indexed: bool = False
    """Set by the first watch event a handler sees: kopf runs handlers only after every cache has its first
    listing, and there is always a namespace to see. /readyz waits for it."""
    leading: bool = False
    """Reconciling (`start`); a standby keeps its caches warm and writes nothing."""
    began: float = field(default_factory=time.monotonic)
    """When start-up began (monotonic)."""
    progress: StartProgress = field(default_factory=StartProgress)
    """What the first listings have brought so far: readiness is due within `ready_deadline_seconds` of start-up
    or of the last index event, whichever is later."""
    _admission: Admission | None = None
    _parsed: dict[Key, tuple[str, int, Download | str, str]] = field(default_factory=dict)
    """Per download, the last (uid, generation) parsed, the result and its run's Job name ("" for an invalid spec):
    one entry per download, dropped with it."""
    _written: dict[Key, tuple[str, GalleryDownloadStatus]] = field(default_factory=dict)
    """The status this operator last wrote, by download (and uid): the cache may lag behind our own writes. Held as
    the model, made light to hold (`api.status.held`: 1.9 KB per download against 5.3 KB as built, 1.4 KB in its
    stored form; docs/benchmarks.md)."""
    _typed: OrderedDict[Key, tuple[Mapping[str, Any], GalleryDownloadStatus]] = field(default_factory=OrderedDict)
    """The status typed from the cache of the most recently reconciled downloads that this operator has not written
    since it started (at most TYPED_STATUSES), by the stored form it was typed from (the same object): a busy
    download is not validated again on every reconcile."""
    _terminal: dict[Key, tuple[str, int, str]] = field(default_factory=dict)
    """Terminal outcomes, by download: (uid, generation, why) when the API server refused the run's Job or claim
    as invalid. Gather reads it: the generation fails instead of asking again (controller-runtime's TerminalError)."""
    _settled: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    """What each download's last reconcile saw (see _fingerprint): a resync skips downloads that still match."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _pending: dict[Key, None] = field(default_factory=dict)
    """A standby's keys whose reconcile would write, in the order judged (see preplan): a takeover's first work."""
    _walls: dict[str, bool] = field(default_factory=dict)
    """Per namespace, whether its worker NetworkPolicy is in shape as this operator last wrote or judged it; any
    watch event of the policy drops the entry (the cache is as new as this then)."""
    _busy: dict[str, int] = field(default_factory=dict)
    """Download reconciles under way, by namespace: a namespace's policy is not removed while one runs."""
    _rechecks: set[str] = field(default_factory=set)
    """Namespaces with a look at their outliving walled pods pending (see _outliving_pods)."""
    _wall_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a policy is written or removed, and by a reconcile from its policy write to its Job: a removal
    and a first Job in the same namespace never interleave."""

    def __post_init__(self) -> None:
        self.work: WorkQueue[Key] = WorkQueue(
            self.reconcile, self.settings.concurrency, metrics.RECONCILE_ERRORS.inc, metrics.RECONCILE.observe
        )
        self.outbox = Outbox(self.api)
        private = self.settings.s3_private_endpoints
        self.egress = EgressPolicy(egress_rules(self.settings), self.namespace_rules, private)
        self._policy_spec = worker_policy_spec(self.settings)

    # -- events in ---------------------------------------------------------------------------------

    def enqueue(self, key: Key) -> None:
        self.work.add(key)

    def is_own_status_echo(self, key: Key, body: Mapping[str, Any]) -> bool:
        """True for a watch event that only carries the status this operator last wrote for this generation."""
        written = self._written.get(key)
        meta = body.get("metadata") or {}
        if written is None or written[0] != meta.get("uid") or meta.get("deletionTimestamp"):
            return False
        return echoes(body.get("status") or {}, written[1], meta.get("generation"))

    def observe_download(self, key: Key, gone: bool, uid: str = "") -> None:
        if uid:
            self.directory.observe_download(key, uid, gone)

    def observe_job(self, namespace: str, name: str, active: bool, gone: bool, uid: str = "", owner: str = "") -> None:
        """A watch event of a worker Job (one a download controls): its slot, and who its pods work for."""
        if uid and owner:
            self.directory.observe_job(WorkerJob(namespace, name, owner), uid, gone)
        self.admission.observe_job(namespace, name, active, gone)
        self._grant()

    def worker_of(self, namespace: str, job_name_: str, job_uid: str) -> tuple[Key, str] | None:
        """The download and run a pod controlled by this Job works for: only when the Job (by uid) is the Job of
        the download's current run, in the download's namespace. Anything else is not a worker of any download."""
        ref = self.directory.job(job_uid)
        if ref is None or (ref.namespace, ref.name) != (namespace, job_name_):
            return None
        key = self.directory.download(namespace, ref.owner)
        snapshot = self._snapshot(key) if key is not None else None
        if key is None or snapshot is None or snapshot.uid != ref.owner:
            return None
        download = self._parse(snapshot)
        if isinstance(download, str) or job_name(download) != ref.name:
            return None  # an older run's Job: its pods report nothing any more
        return key, run_id(download)

    def expects_pod(self, namespace: str, pod_name: str) -> bool:
        """Whether a current run's worker Job in the namespace would have a pod of this name: the report gate's
        filter before a TokenReview (from the caches only)."""
        return any(
            self.worker_of(namespace, job.name, uid) is not None
            for uid, job in self.directory.jobs_of_pod(namespace, pod_name)
        )

    def accept_report(self, key: Key, run: str, pod: str, report: Report, created: str = "") -> bool:
        """Hold a worker's report for its download's current run; False when the run is no longer current.
        ``created``: when the pod was created (see Inbox.put)."""
        snapshot = self._snapshot(key)
        download = self._parse(snapshot) if snapshot is not None else None
        if report.run != run or not isinstance(download, Download) or run_id(download) != run:
            return False
        if self.inbox.put(key, pod, report, created):
            self.enqueue(key)
        return True

    def observe_policy(self, namespace: str) -> None:
        """A watch event of a namespace's worker NetworkPolicy (a tenant's edit or deletion, or our own write): the
        namespace is looked at when the policy is not as it should be."""
        self._walls.pop(namespace, None)
        if self._wall_plan(namespace) is not None or not self._downloads_left(namespace):
            # Without downloads the namespace may still hold walled pods that outlive them: _keep_wall looks.
            self.enqueue(Key(namespace, ""))

    # -- the network wall --------------------------------------------------------------------------

    def walled(self, namespace: str) -> bool:
        """The namespace's worker NetworkPolicy is in shape (or the operator keeps none): from memory, else judged
        from the cache once and remembered until the policy's next watch event."""
        if not self.settings.network_policy:
            return True
        known = self._walls.get(namespace)
        if known is None:
            values = list(self.policies.get(namespace, ()))
            known = self._walls[namespace] = in_shape(values[0] if values else None, self._policy_spec)
        return known

    def _downloads_left(self, namespace: str) -> bool:
        return bool(self.namespace_downloads.get(namespace)) or namespace in self._busy

    def _wall_plan(self, namespace: str, pods_left: bool = False) -> KeepNetworkPolicy | RemoveNetworkPolicy | None:
        left = self._downloads_left(namespace) or pods_left
        present = self._walls.get(namespace) is True or bool(self.policies.get(namespace))
        return namespace_plan(namespace, self.settings, left, present, self.walled(namespace))

    async def _outliving_pods(self, namespace: str) -> bool:
        """With no download left in the namespace: whether a walled pod there may still run: a Job with the walled
        labels that has not finished (orphaned by a `--cascade=orphan` deletion of its download; it may make another
        pod after a failed one) or such a pod still running or stopping. The wall stays, in shape, until they ended;
        the namespace is looked at again meanwhile."""
        if not self.settings.network_policy or self._downloads_left(namespace):
            return False
        jobs = await self.api.job_bodies(namespace, WALLED_POD_SELECTOR)
        running = any(not JobView.of(job).finished for job in jobs)
        if not running and not await self.api.count_pods(namespace, WALLED_POD_SELECTOR, UNFINISHED_PODS):
            return False
        if namespace not in self._rechecks:  # one pending look per namespace, however many events came
            self._rechecks.add(namespace)
            asyncio.get_running_loop().call_later(OUTLIVING_RECHECK_SECONDS, self._recheck, namespace)
        return True

    @property
    def rechecks(self) -> frozenset[str]:
        """Namespaces whose look at their outliving walled pods is pending (read-only)."""
        return frozenset(self._rechecks)

    def _recheck(self, namespace: str) -> None:
        self._rechecks.discard(namespace)
        self.enqueue(Key(namespace, ""))

    async def _keep_wall(self, namespace: str) -> None:
        """Reconcile a namespace's worker NetworkPolicy (the work queue's key `(namespace, "")`)."""
        async with self._wall_lock:
            pods_left = await self._outliving_pods(namespace)
            # Planned after the look, with no wait before _walls is set: a reconcile starting meanwhile sees it.
            action = self._wall_plan(namespace, pods_left)
            if isinstance(action, RemoveNetworkPolicy):
                self._walls[namespace] = False  # before the call: a reconcile starting meanwhile puts it back first
            if action is not None:
                self._walls[namespace] = await apply_wall(action, self.api)

    # -- process -----------------------------------------------------------------------------------

    def stand_by(self) -> None:
        """A standby (leader election): its queue fills from the watches as a leader's would, and every
        PREPLAN_SECONDS it judges what came (see preplan), so that a takeover's first reconciles are the ones that
        write."""
        self._tasks = [asyncio.create_task(self._preplan_loop(), name="preplan")]

    async def _preplan_loop(self) -> None:
        while True:
            await asyncio.sleep(PREPLAN_SECONDS)
            while self.indexed and self.preplan(PREPLAN_BATCH):
                await asyncio.sleep(0)  # a long queue (the first listing) is judged in batches: the loop stays free

    def preplan(self, limit: int | None = None) -> bool:
        """A standby's look at the keys queued since its last look (at most `limit`; whether some are left): gather
        (from the caches and memories only) and the plan, nothing applied. A key whose reconcile would write (or
        must read the API to know) waits for the takeover in `_pending`; one that would write nothing is dropped
        from it (its next watch event brings it back). Keys not judged yet stay queued (a takeover takes them
        first)."""
        for key in self.work.drain(limit):
            try:
                writes = self._would_write(key)
            except Exception:  # judged wrongly is only judged late: the leader reconciles it anyway
                log.exception("pre-planning %s failed", key)
                writes = True
            if writes:
                self._pending[key] = None
            else:
                self._pending.pop(key, None)
        return len(self.work) > 0

    def pending(self) -> list[Key]:
        """The keys a standby judged to write at its takeover, in the order judged (read-only)."""
        return list(self._pending)

    def _would_write(self, key: Key) -> bool:
        """Whether reconciling `key` now would write something, or must read the API server to know."""
        if not key[1]:
            return True  # a namespace's wall: cheap to look at, and a write when it is out of shape
        snapshot = self._snapshot(key)
        if snapshot is None:
            self._forget(key)
            return False
        situation, cleanup, ended = self._recalled(snapshot)
        if cleanup is not None or ended is not None:
            return True
        decision = plan(situation, self.settings, self.egress.rules_for(snapshot.namespace))
        return bool(decision.actions) or decision.again_after is not None

    def start(self) -> None:
        """Start reconciling (a standby's caches and memories are kept all along; it starts when it leads): first
        the keys a standby judged to write (and those it had not judged yet), then, in the background lane, every
        other download the caches hold, once."""
        for task in self._tasks:
            task.cancel()  # the standby's pre-planning
        self.leading = True
        self._admission = None  # seeded again from the caches at first use, as after a restart: a standby's grants
        # were never launched, and the old leader's Jobs hold their slots
        log.info("leading: %d keys to reconcile first, then the other downloads", len(self._pending) + len(self.work))
        for key in self._pending:
            self.work.add(key)
        self._pending.clear()
        for key in list(self.downloads.keys()):
            self.work.add(key, background=True)
        self.work.start()
        loops = (self._resync(), self._refresh_positions(), self.outbox.run())
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    async def stop(self) -> None:
        await self.work.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stuck_starting(self) -> bool:
        """Not ready, and no new object for `ready_deadline_seconds` since start-up began (or START_CEILING times
        that since it began): a start that may wait for ever, which only a new process ends (/healthz answers 500).
        A start over many objects whose first listings still grow is not stuck before the ceiling (a restart would
        only begin the listings again)."""
        now, deadline = time.monotonic(), self.settings.ready_deadline_seconds
        quiet = now - max(self.began, self.progress.last) > deadline
        return not self.indexed and (quiet or now - self.began > START_CEILING * deadline)

    def alive(self) -> bool:
        """A standby while it pre-plans (or before `stand_by`); a leader while its reconcilers and loops run."""
        loops = not any(t.done() for t in self._tasks)
        return loops if not self.leading else self.work.alive() and loops

    def phases(self) -> list[str]:
        return [stored_phase(s.status) for _, values in list(self.downloads.items()) for s in values]

    async def _resync(self) -> None:
        """The safety net, spread over its period and behind all other work: downloads whose object or Jobs differ
        from what their last reconcile saw (an event that was missed)."""
        while True:
            keys = list(self.downloads.keys())
            pause = self.settings.resync_seconds / max(1, len(keys))
            for key in keys:
                await asyncio.sleep(pause)
                snapshot = self._snapshot(key)
                if snapshot is not None and self._settled.get(key) != self._fingerprint(snapshot, self.inbox.get(key)):
                    self.work.add(key, background=True)
            if not keys:
                await asyncio.sleep(self.settings.resync_seconds)

    async def _refresh_positions(self) -> None:
        """Queued downloads whose shown position is out of date get it refreshed, from the head of the queue and
        at most `queue_refresh_writes` per period: status writes stay bounded however fast the queue moves."""
        while True:
            await asyncio.sleep(self.settings.queue_refresh_seconds)
            self.refresh_positions()

    def refresh_positions(self) -> None:
        """One refresh: the first queued downloads whose shown position is stale are reconciled (in the background
        lane), at most `queue_refresh_writes` of them."""
        if self._admission is None:
            return
        budget = self.settings.queue_refresh_writes
        for position, key in enumerate(self._admission.in_order(10 * budget), 1):
            snapshot = self._snapshot(key)
            if budget and snapshot is not None and self._previous(snapshot).queue_position != position:
                self.work.add(key, background=True)
                budget -= 1

    # -- admission ---------------------------------------------------------------------------------

    @property
    def admission(self) -> Admission:
        """Seeded from the caches at first use: kopf fills them before any handler runs, so the Jobs still running
        after a restart hold their slots and the queue's order holds from the first grant."""
        if self._admission is None:
            jobs = [
                (job.namespace, job.name, job.view.state in ACTIVE_STATES)
                for values in list(self.jobs.values())
                for job in values
            ]
            waiting = [c for values in list(self.downloads.values()) for s in values if (c := self._candidate(s))]
            ceilings = {ns: v for ns, values in list(self.namespace_ceilings.items()) for v in values}
            self._admission = seeded(
                self.settings.max_active,
                self.settings.max_active_per_namespace,
                jobs,
                waiting,
                self.settings.max_priority,
                ceilings,
            )
        return self._admission

    def set_priority_ceiling(self, namespace: str, ceiling: int | None) -> None:
        """A namespace's priority ceiling annotation changed (None: removed): its waiting downloads move."""
        self.admission.set_ceiling(namespace, ceiling)
        self._grant()

    def _candidate(self, snapshot: DownloadSnapshot) -> Candidate | None:
        download = self._parse(snapshot)
        if isinstance(download, str):
            return None
        report = self.inbox.get(snapshot.key)
        situation = Situation(snapshot, download, self._previous(snapshot), "", self._jobs_of(download), report)
        return wants_job(replace(situation, blocked=self._blocked(download)))

    def _release(self, key: Key) -> None:
        """The download gives back its place or its unused slot; the downloads granted one meanwhile are reconciled."""
        for other in self.admission.ask(key, None)[1]:
            self.enqueue(other)

    def _grant(self) -> None:
        """Hand out the free slots; the downloads granted one are reconciled."""
        for key in self.admission.pump():
            self.enqueue(key)

    # -- reconcile ---------------------------------------------------------------------------------

    def _snapshot(self, key: Key) -> DownloadSnapshot | None:
        values = list(self.downloads.get(key, ()))
        return values[0] if values else None

    def _parse(self, snapshot: DownloadSnapshot) -> Download | str:
        """A spec is parsed once per (uid, generation)."""
        return self._parsed_entry(snapshot)[2]

    def _parsed_entry(self, snapshot: DownloadSnapshot) -> tuple[str, int, Download | str, str]:
        cached = self._parsed.get(snapshot.key)
        if cached is None or cached[:2] != (snapshot.uid, snapshot.generation):
            cached = self._parsed[snapshot.key] = (snapshot.uid, snapshot.generation, *parsed(snapshot, self.settings))
        return cached

    def _jobs_of(self, download: Download) -> tuple[JobSnapshot, ...]:
        """The download's worker Jobs: controlled by its uid, in its namespace."""
        return tuple(j for j in self.jobs.get(download.uid, ()) if j.namespace == download.namespace)

    def _blocked(self, download: Download) -> tuple[str, str] | None:
        s3 = download.spec.target.s3
        return self.egress.blocked(download.namespace, download.spec.urls, s3.endpoint if s3 is not None else None)

    def _previous(self, snapshot: DownloadSnapshot) -> GalleryDownloadStatus:
        """The status as this operator last wrote it, else as the cache shows it (typed once per stored form)."""
        written = self._written.get(snapshot.key)
        if written is not None and written[0] == snapshot.uid:
            return written[1]
        stored, key = snapshot.status, snapshot.key
        typed = self._typed.get(key)
        if typed is not None and typed[0] is stored:
            self._typed.move_to_end(key)
            return typed[1]
        status = held(GalleryDownloadStatus.of_stored(stored))
        self._typed[key] = (stored, status)
        self._typed.move_to_end(key)
        if len(self._typed) > TYPED_STATUSES:
            self._typed.popitem(last=False)
        return status

    def terminal(self, key: Key) -> tuple[str, int, str] | None:
        """The terminal outcome remembered for a download: (uid, generation, why), or None (read-only)."""
        return self._terminal.get(key)

    def parsed(self, key: Key) -> Download | str | None:
        """The download's last parse: the Download, why its spec is invalid, or None when not parsed (read-only)."""
        entry = self._parsed.get(key)
        return None if entry is None else entry[2]

    def _terminal_outcome(self, snapshot: DownloadSnapshot) -> str | None:
        terminal = self._terminal.get(snapshot.key)
        return terminal[2] if terminal is not None and terminal[:2] == (snapshot.uid, snapshot.generation) else None

    def _fingerprint(self, snapshot: DownloadSnapshot, report: Report | None) -> tuple[Any, ...]:
        jobs = self.jobs.get(snapshot.uid, ())
        states = tuple(sorted((j.name, j.uid, j.view.state) for j in jobs))
        return (snapshot.uid, snapshot.generation, snapshot.deleting, snapshot.finalizers, states, id(report))

    def _forget(self, key: Key) -> None:
        self.inbox.drop(key)
        for memory in (self._written, self._settled, self._parsed, self._terminal, self._typed):
            memory.pop(key, None)
        if self._admission is not None:
            self._release(key)

    async def reconcile(self, key: Key) -> None:
        """Reconcile a download, or (for the key `(namespace, "")`) a namespace's worker NetworkPolicy."""
        namespace, name = key
        if not name:
            await self._keep_wall(namespace)
            return
        self._busy[namespace] = self._busy.get(namespace, 0) + 1
        try:
            await self._reconcile(key)
        finally:
            if left := self._busy.pop(namespace) - 1:
                self._busy[namespace] = left
            elif isinstance(self._wall_plan(namespace), RemoveNetworkPolicy):
                self.enqueue(Key(namespace, ""))  # the namespace's last download is gone

    async def _reconcile(self, key: Key) -> None:
        """gather (reads only) -> plan (the one decision) -> apply (the API calls) -> commit (the memories)."""
        snapshot = self._snapshot(key)
        if snapshot is None:
            self._forget(key)
            return
        situation = await self._gather(key, snapshot)
        decision = plan(situation, self.settings, self.egress.rules_for(snapshot.namespace))
        applied = await self._apply(key, situation, decision)
        self._commit(key, situation, decision, applied)

    def _recalled(self, snapshot: DownloadSnapshot) -> tuple[Situation, CleanupReads | None, JobSnapshot | None]:
        """Gather's part from the caches and the memories (no API call): the situation with the report held and
        admission's answer, what a deletion's cleanup must read, and the ended Job whose last worker's termination
        message must be read (plan.unrecorded_end)."""
        _, _, parsed, job = self._parsed_entry(snapshot)
        download = self._terminal_outcome(snapshot) or parsed
        jobs: tuple[JobSnapshot, ...] = ()
        blocked = None
        if isinstance(download, Download) and not snapshot.deleting:
            jobs, blocked = self._jobs_of(download), self._blocked(download)
        previous, walled = self._previous(snapshot), self.walled(snapshot.namespace)
        situation = Situation(snapshot, download, previous, now(), jobs, blocked=blocked, walled=walled)
        recalled = recall(situation, self.inbox, self.admission, job)
        for other in recalled.granted:
            self.enqueue(other)
        return recalled.situation, recalled.cleanup, recalled.ended

    async def _gather(self, key: Key, snapshot: DownloadSnapshot) -> Situation:
        """What the plan decides from: the caches, the memories (the report held, admission's answer), the last
        worker's termination message, and for a deletion under policy Delete what the cleanup sees."""
        situation, cleanup, ended = self._recalled(snapshot)
        if cleanup is not None:
            return replace(situation, cleanup=await cleanup_seen(self.api, cleanup))
        if ended is not None and isinstance(situation.download, Download):
            report = await self._final_report(situation.download, ended, situation.report)
            if report is not situation.report:
                situation = replace(situation, report=report)
        return situation

    async def _apply(self, key: Key, situation: Situation, decision: Decision) -> Applied:
        """The decision's calls; a wall write holds the wall lock up to the Job (see _wall_lock)."""
        snapshot = situation.snapshot
        fresh = isinstance(situation.slot, Granted) and not situation.slot.launched
        walling = any(isinstance(action, KeepNetworkPolicy) for action in decision.actions)
        try:
            async with self._wall_lock if walling else contextlib.nullcontext():
                applied = await apply(decision.actions, snapshot, self.api, self.outbox.post)
                if applied.walled:
                    self._walls[snapshot.namespace] = True
        except Exception:
            if fresh:
                self._release(key)  # not created: the slot is free, and the retry queues again
            raise
        return applied

    def _commit(self, key: Key, situation: Situation, decision: Decision, applied: Applied) -> None:
        """What the operator remembers of this reconcile: the grant launched or given back, the status written, a
        terminal outcome, when to look again, and what the reconcile saw."""
        snapshot = situation.snapshot
        if applied.refused is not None:
            # A terminal outcome: the next reconcile (queued now) fails this generation with the API server's words.
            self._terminal[key] = (snapshot.uid, snapshot.generation, applied.refused)
            self._release(key)
            self.enqueue(key)
            return
        if applied.launched:
            self.admission.launch(key)
        if applied.written is not None:
            self._written[key] = (snapshot.uid, held(applied.written))
            self._typed.pop(key, None)  # the memory answers from now on
        if decision.again_after is not None:
            self.work.add_after(key, decision.again_after)
        self._settled[key] = self._fingerprint(snapshot, situation.report)

    async def _final_report(self, download: Download, ended: JobSnapshot, report: Report | None) -> Report | None:
        """The run's final report from the termination messages of the pods its ended Job (by uid) controls, when a
        pod that started after the held report's wrote one; else the report held. (Admission's answer does not
        depend on it: a download whose current Job exists wants no slot.)"""
        ends = await self.api.termination_messages(download.namespace, ended.name, ended.uid)
        key = download.key
        mine = report is not None and report.run == run_id(download)  # an earlier run's pod places nothing
        held, created = (self.inbox.pod(key), self.inbox.created(key)) if mine else ("", "")
        found = final_report(ends, run_id(download), held, created)
        if found is None:
            return report
        final, pod = found
        self.inbox.put(key, pod, final, next((start for start, uid, _ in ends if uid == pod), ""))
        return final
