"""The reconcile loop: a de-duplicating work queue of downloads and the level-based reconcile of one download.

Events (a download, its Job, a worker report) only enqueue the download's key. Workers take keys one at a
time per key, read the cached state (kopf indexes), decide with the pure core and apply idempotently.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import json
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from gallery_operator import API_GROUP, kube, metrics
from gallery_operator.api.spec import describe_validation, parse_spec
from gallery_operator.config import Settings
from gallery_operator.egress import first_violation, tighten
from gallery_operator.jobs import (
    LABEL_DOWNLOAD_UID,
    LABEL_RUN,
    Download,
    build_cleanup_job,
    build_job,
    build_pvc,
    egress_rules,
    job_name,
    run_id,
    spec_problem,
)
from gallery_operator.queue import Candidate, admit
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot
from gallery_operator.status import (
    ACTIVE_STATES,
    FINISHED_STATES,
    TERMINAL_PHASES,
    Observation,
    compute_status,
    job_state,
)
from gallery_operator.workerconfig import Egress, Report

log = logging.getLogger(__name__)
Key = tuple[str, str]


FINALIZER = f"{API_GROUP}/cleanup"
CLEANUP_TIMEOUT_SECONDS = 600


def needs_cleanup(download: Download) -> bool:
    """Deletion has work only under policy Delete, and not for a template claim (its owner reference suffices)."""
    pvc = download.spec.target.pvc
    return download.spec.deletion_policy == "Delete" and not (pvc is not None and pvc.template is not None)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def status_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``before`` into ``after`` at the top level (removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in after.items() if before.get(k) != v}
    patch |= {k: None for k in before if k not in after}
    return patch


@dataclass(frozen=True)
class WorkerJob:
    """A Job a download controls: where it is, and the uid of that download."""

    namespace: str
    name: str
    owner: str


@dataclass
class Controller:
    settings: Settings
    downloads: Mapping[Key, Collection[DownloadSnapshot]]
    """kopf's index: (namespace, name) -> [the download's snapshot]."""
    jobs: Mapping[str, Collection[JobSnapshot]]
    """kopf's index: download uid -> [snapshots of the worker Jobs it controls]."""
    namespace_rules: Mapping[str, Any] = field(default_factory=dict)
    """Index: namespace -> [(allowed, denied)] for namespaces whose annotations tighten the egress rules."""
    reports: dict[Key, Report] = field(default_factory=dict)
    _final_pods: dict[Key, str] = field(default_factory=dict)
    """The pod (uid) whose final report is held, per download."""
    _queue: asyncio.Queue[Key] = field(default_factory=asyncio.Queue)
    _queued: set[Key] = field(default_factory=set)
    _busy: set[Key] = field(default_factory=set)
    _dirty: set[Key] = field(default_factory=set)
    _reserved: dict[Key, str] = field(default_factory=dict)
    _parsed: dict[tuple[str, int], Download | str] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _written: dict[Key, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """The status this operator last wrote, by download: the cache may lag behind our own writes."""
    _events: asyncio.Queue[tuple[kube.ObjectRef, str, str, str]] = field(default_factory=asyncio.Queue)
    # Counts kept up to date from watch events, so admission costs O(1) per reconcile instead of a scan of the
    # whole cache (which made a burst of N downloads cost O(N^2)).
    _job_active: dict[Key, bool] = field(default_factory=dict)
    """(namespace, Job name) -> whether the Job is Pending or Running, for every worker Job seen."""
    _active_count: dict[str, int] = field(default_factory=dict)
    _unseen: set[Key] = field(default_factory=set)
    """(namespace, Job name) of Jobs this operator created that the watch has not shown yet."""
    _download_keys: set[Key] = field(default_factory=set)
    _downloads_per_namespace: dict[str, int] = field(default_factory=dict)
    _keys_by_uid: dict[str, Key] = field(default_factory=dict)
    """Download uid -> (namespace, name), from watch events."""
    _job_refs: dict[str, WorkerJob] = field(default_factory=dict)
    """Job uid -> the worker Job it is, for every Job a download controls (how a worker pod is identified)."""
    _seeded: bool = False
    indexed: bool = False
    """Set by the first watch event a handler sees: kopf runs handlers only after every cache has its first
    listing, and there is always a namespace to see. /readyz waits for it."""

    # -- queue -------------------------------------------------------------------------------------

    def is_own_status_echo(self, key: Key, body: Mapping[str, Any]) -> bool:
        """True for a watch event that only carries the status this operator last wrote for this generation."""
        written = self._written.get(key)
        meta = body.get("metadata") or {}
        if written is None or written[0] != meta.get("uid") or meta.get("deletionTimestamp"):
            return False
        status = body.get("status") or {}
        return bool(
            status.get("observedGeneration") == meta.get("generation")
            and status.get("phase") == written[1].get("phase")
            and status.get("conditions") == written[1].get("conditions")
        )

    def _seed_counts(self) -> None:
        """Fill the counts from kopf's indexes once, at the first admission: those are complete before any event
        handler runs, while the handlers of one resource kind may run before those of the other (after a restart,
        downloads could otherwise be admitted before the Jobs still running are counted). Later events adjust."""
        if self._seeded:
            return
        self._seeded = True
        for key, snapshots in list(self.downloads.items()):
            for snapshot in snapshots:
                self.observe_download(key, gone=False, uid=snapshot.uid)
        for owner, values in list(self.jobs.items()):
            for job in values:
                key = (job.namespace, job.name)
                if key not in self._job_active:
                    active = job_state(job.job)[0] in ACTIVE_STATES
                    self.observe_job(key[0], key[1], active, gone=False, uid=job.uid, owner=owner)

    def observe_download(self, key: Key, gone: bool, uid: str = "") -> None:
        """A watch event of a download: keep the per-namespace counts and the uid index."""
        if uid and gone:
            self._keys_by_uid.pop(uid, None)
        elif uid:
            self._keys_by_uid[uid] = key
        if gone == (key not in self._download_keys):
            return
        if gone:
            self._download_keys.discard(key)
        else:
            self._download_keys.add(key)
        self._downloads_per_namespace[key[0]] = self._downloads_per_namespace.get(key[0], 0) + (-1 if gone else 1)

    def download_key(self, namespace: str, uid: str) -> Key | None:
        """The download of this uid, if it lives in this namespace (an owner reference names a uid, not a place)."""
        key = self._keys_by_uid.get(uid)
        return key if key is not None and key[0] == namespace else None

    def observe_job(self, namespace: str, name: str, active: bool, gone: bool, uid: str = "", owner: str = "") -> None:
        """A watch event of a worker Job (one a download controls): keep the active counts and the uid index."""
        if uid and gone:
            self._job_refs.pop(uid, None)
        elif uid and owner:
            self._job_refs[uid] = WorkerJob(namespace, name, owner)
        key = (namespace, name)
        self._unseen.discard(key)
        was = self._job_active.pop(key, False)
        if not gone:
            self._job_active[key] = active
        now_active = active and not gone
        if was != now_active:
            self._active_count[namespace] = self._active_count.get(namespace, 0) + (1 if now_active else -1)

    def enqueue(self, key: Key) -> None:
        if key in self._busy:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def enqueue_after(self, key: Key, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.enqueue, key)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"reconciler-{i}") for i in range(self.settings.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self._tasks.append(asyncio.create_task(self._post_events(), name="events"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def alive(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    async def _post_events(self) -> None:
        """Events go out in order, off the reconcile path, so they never delay a Job."""
        while True:
            reference, kind, reason, message = await self._events.get()
            try:
                await asyncio.to_thread(kube.post_event, reference, kind, reason, message)
            except Exception as error:  # an unreachable API server must not end the task (and fail /healthz)
                log.warning("cannot post event %s on %s/%s: %s", reason, reference.namespace, reference.name, error)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for key, _ in list(self.downloads.items()):
                self.enqueue(key)

    async def _work(self) -> None:
        failures: dict[Key, int] = {}
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._busy.add(key)
            started = time.perf_counter()
            try:
                await self.reconcile(key)
                failures.pop(key, None)
            except Exception:
                metrics.RECONCILE_ERRORS.inc()
                failures[key] = failures.get(key, 0) + 1
                delay = min(60.0, 0.5 * 2 ** failures[key])
                log.exception("reconcile of %s/%s failed; retrying in %.1fs", *key, delay)
                self.enqueue_after(key, delay)
            finally:
                metrics.RECONCILE.observe(time.perf_counter() - started)
                self._busy.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)

    # -- cached state ------------------------------------------------------------------------------

    def _snapshot(self, key: Key) -> DownloadSnapshot | None:
        values = list(self.downloads.get(key, []))
        return values[0] if values else None

    def _parse(self, snapshot: DownloadSnapshot) -> Download | str:
        """The parsed download, or the validation message; cached per (uid, generation)."""
        cache_key = (snapshot.uid, snapshot.generation)
        if cache_key not in self._parsed:
            try:
                spec = parse_spec(snapshot.spec)
            except ValidationError as error:
                self._parsed[cache_key] = describe_validation(error)
            else:
                download = Download(
                    namespace=snapshot.namespace,
                    name=snapshot.name,
                    uid=snapshot.uid,
                    generation=snapshot.generation,
                    created=snapshot.created,
                    spec=spec,
                )
                self._parsed[cache_key] = spec_problem(download, self.settings) or download
        return self._parsed[cache_key]

    def _jobs_of(self, download: Download) -> list[JobSnapshot]:
        """The download's worker Jobs: controlled by its uid, in its namespace."""
        return [j for j in self.jobs.get(download.uid, []) if j.namespace == download.namespace]

    def _active_by_namespace(self) -> dict[str, int]:
        """Active worker Jobs per namespace, counting the ones just created that the watch has not shown yet."""
        self._seed_counts()
        active = {namespace: count for namespace, count in self._active_count.items() if count}
        for namespace, _ in self._unseen:
            active[namespace] = active.get(namespace, 0) + 1
        # A namespace takes at most its own cap of the global one, whatever Jobs it holds: Jobs its tenants made
        # themselves (owned by their own downloads) cannot starve other namespaces.
        cap = self.settings.max_active_per_namespace
        return {namespace: min(count, cap) for namespace, count in active.items()}

    def _fits_everyone(self, namespace: str) -> bool:
        """True when even if every known download ran at once, both caps would hold (O(1): from the counts)."""
        self._seed_counts()
        unseen = len(self._unseen)
        active_total = sum(self._active_by_namespace().values())
        active_here = self._active_count.get(namespace, 0) + unseen
        return (
            active_total + len(self._download_keys) <= self.settings.max_active
            and active_here + self._downloads_per_namespace.get(namespace, 0) <= self.settings.max_active_per_namespace
        )

    def _waiting(self) -> list[Candidate]:
        """Every download that wants a Job and has none: the admission queue, rebuilt from the cache."""
        waiting = []
        for key, values in list(self.downloads.items()):
            for snapshot in values:
                if snapshot.deleting or key in self._reserved:
                    continue
                download = self._parse(snapshot)
                if isinstance(download, str) or download.spec.suspend:
                    continue
                name = job_name(download)
                status = snapshot.status
                if status.get("jobName") == name and status.get("phase") in TERMINAL_PHASES:
                    continue
                if any(j.name == name for j in self._jobs_of(download)):
                    continue
                waiting.append(
                    Candidate.of(download.namespace, download.name, download.spec.priority, download.created)
                )
        return waiting

    def phases(self) -> list[str]:
        return [s.status.get("phase", "Pending") for _, values in list(self.downloads.items()) for s in values]

    def wake_queue(self) -> None:
        """A slot may have freed: reconsider every waiting download."""
        for candidate in self._waiting():
            self.enqueue(candidate.key)

    # -- reports -----------------------------------------------------------------------------------

    def worker_of(self, namespace: str, job_name_: str, job_uid: str) -> tuple[Key, str] | None:
        """The download and run a pod controlled by this Job works for: only when the Job (by uid) is the Job of
        the download's current run, in the download's namespace. Anything else is not a worker of any download."""
        ref = self._job_refs.get(job_uid)
        if ref is None or (ref.namespace, ref.name) != (namespace, job_name_):
            return None
        key = self.download_key(namespace, ref.owner)
        snapshot = self._snapshot(key) if key is not None else None
        if key is None or snapshot is None or snapshot.uid != ref.owner:
            return None
        download = self._parse(snapshot)
        if isinstance(download, str) or job_name(download) != ref.name:
            return None  # an older run's Job: its pods report nothing any more
        return key, run_id(download)

    def accept_report(self, key: Key, run: str, pod: str, report: Report) -> bool:
        """Hold a worker's report for its download's current run; False when the run is no longer current. A pod's
        progress after its own final report is late and dropped; a retried pod's progress is its own and counts."""
        if report.run != run or self._current_run(key) != run:
            return False
        current = self.reports.get(key)
        if current is not None and current.final and not report.final and self._final_pods.get(key) == pod:
            return True  # a late progress report must not undo the same pod's final one
        self.reports[key] = report
        if report.final:
            self._final_pods[key] = pod
        self.enqueue(key)
        return True

    def _current_run(self, key: Key) -> str | None:
        snapshot = self._snapshot(key)
        download = self._parse(snapshot) if snapshot is not None else None
        return run_id(download) if isinstance(download, Download) else None

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        snapshot = self._snapshot(key)
        if snapshot is None:
            self.reports.pop(key, None)
            self._final_pods.pop(key, None)
            self._release(key)
            self._written.pop(key, None)
            return
        if snapshot.deleting:
            if FINALIZER in snapshot.finalizers:
                await self._finalize(snapshot)
            return
        written = self._written.get(key)
        previous: dict[str, Any] = written[1] if written and written[0] == snapshot.uid else dict(snapshot.status)
        parsed = self._parse(snapshot)
        stamp = now()
        await self._ensure_finalizer(snapshot, not isinstance(parsed, str) and needs_cleanup(parsed))
        if isinstance(parsed, str):
            observation = Observation(generation=snapshot.generation, now=stamp, invalid=parsed)
            await self._write_status(snapshot, previous, compute_status(previous, observation))
            return
        download = parsed
        blocked = self._blocked(download)
        if blocked is not None and not self._jobs_of(download):
            observation = Observation(generation=download.generation, now=stamp, blocked=blocked)
            await self._write_status(snapshot, previous, compute_status(previous, observation))
            return
        name = job_name(download)
        jobs = self._jobs_of(download)
        for stale in (j for j in jobs if j.name != name):
            log.info("spec changed: deleting Job %s of an earlier run", stale.name)
            await asyncio.to_thread(kube.delete_job, download.namespace, stale.name)
        current = next((j for j in jobs if j.name == name), None)
        if current is not None or self._reserved.get(key) != name:
            self._release(key)
        run = run_id(download)
        report = self.reports.get(key)
        if report is not None and report.run != run:
            report = None

        observation = Observation(generation=download.generation, now=stamp, suspended=download.spec.suspend)
        finished = previous.get("jobName") == name and previous.get("phase") in TERMINAL_PHASES
        if current is not None:
            job = current.job
            suspended_now = bool((job.get("spec") or {}).get("suspend"))
            if download.spec.suspend != suspended_now and job_state(job)[0] not in FINISHED_STATES:
                await asyncio.to_thread(kube.set_job_suspended, download.namespace, name, download.spec.suspend)
            if job_state(job)[0] in FINISHED_STATES and (report is None or not report.final):
                report = await self._final_report(download, current, run) or report
            observation = Observation(
                generation=download.generation,
                now=stamp,
                job_name=name,
                job=job,
                report=report,
                suspended=download.spec.suspend,
            )
        elif self._reserved.get(key) == name:
            observation = Observation(generation=download.generation, now=stamp, job_name=name, report=report)
        elif report is not None and report.final and not finished:
            # The Job is gone (removed by hand, or by its TTL before its end was seen), but the run's final report is
            # here: the run is over and is not started again.
            ended = "Failed" if report.outcome == "Failed" else "Complete"
            gone = {"status": {"conditions": [{"type": ended, "status": "True", "reason": "JobRemoved"}]}}
            observation = Observation(generation=download.generation, now=stamp, job_name=name, job=gone, report=report)
        elif finished or download.spec.suspend:
            pass
        else:
            if self._fits_everyone(download.namespace):
                admitted, position = True, 0  # room for every download there is: no need to rank the queue
            else:
                decision = admit(
                    self._waiting(),
                    self._active_by_namespace(),
                    self.settings.max_active,
                    self.settings.max_active_per_namespace,
                )
                admitted, position = key in decision.admitted, decision.positions.get(key, 0)
            if admitted:
                if not await self._start_run(download):
                    await self.reconcile(key)  # refused by the API server: now an invalid spec
                    return
                waited = _seconds_between(previous.get("queuedAt"), stamp)
                metrics.QUEUE_WAIT.observe(waited or 0.0)
                observation = Observation(generation=download.generation, now=stamp, job_name=name, report=report)
            else:
                observation = Observation(generation=download.generation, now=stamp, queue_position=position)
        status = compute_status(previous, observation)
        await self._write_status(snapshot, previous, status)

    def egress_for(self, namespace: str) -> Egress:
        """The operator's egress rules, tightened by the namespace's annotations when it has any."""
        values = list(self.namespace_rules.get(namespace, []))
        return tighten(self._base_egress, values[0].allowed, values[0].denied) if values else self._base_egress

    @functools.cached_property
    def _base_egress(self) -> Egress:
        return egress_rules(self.settings)

    def _blocked(self, download: Download) -> tuple[str, str] | None:
        """The first destination the egress rules refuse as written, with the reason (checked before any Job: the
        worker enforces the same rules on every request and redirect)."""
        values = list(self.namespace_rules.get(download.namespace, []))
        s3 = download.spec.target.s3
        return first_violation(
            download.spec.urls,
            s3.endpoint if s3 is not None else None,
            self.egress_for(download.namespace),
            self.settings.s3_private_endpoints,
            values[0].problems if values else (),
        )

    def _release(self, key: Key) -> None:
        """Forget the Job reserved for a download (it is in the cache now, or it will never be)."""
        name = self._reserved.pop(key, None)
        if name is not None:
            self._unseen.discard((key[0], name))

    async def _ensure_finalizer(self, snapshot: DownloadSnapshot, wanted: bool) -> None:
        """Our finalizer sits only on downloads whose deletion has work to do (policy Delete)."""
        present = FINALIZER in snapshot.finalizers
        if wanted == present:
            return
        others = [f for f in snapshot.finalizers if f != FINALIZER]
        finalizers = [*others, FINALIZER] if wanted else others
        await asyncio.to_thread(
            kube.set_finalizers, snapshot.namespace, snapshot.name, finalizers, snapshot.resource_version
        )

    async def _finalize(self, snapshot: DownloadSnapshot) -> None:
        """deletionPolicy Delete: stop the workers, run the cleanup Job, then let the download go. Never hangs:
        a failed or overdue cleanup becomes a Warning Event and the finalizer is released anyway."""
        key = snapshot.key
        self.reports.pop(key, None)
        parsed = self._parse(snapshot)
        outcome: tuple[str, str, str] | None = None
        if isinstance(parsed, Download) and needs_cleanup(parsed):
            outcome = await self._cleanup(parsed, snapshot)
            if outcome is None:
                self.enqueue_after(key, 2.0)
                return
        if outcome is not None:
            self._events.put_nowait((snapshot, *outcome))
        others = [f for f in snapshot.finalizers if f != FINALIZER]
        await asyncio.to_thread(kube.set_finalizers, key[0], key[1], others, snapshot.resource_version)

    async def _cleanup(self, download: Download, snapshot: DownloadSnapshot) -> tuple[str, str, str] | None:
        """One step of the cleanup; (event type, reason, message) when it is over, None while it runs."""
        namespace = download.namespace
        workers = f"{LABEL_DOWNLOAD_UID}={download.uid},{LABEL_RUN}"
        for stale in await asyncio.to_thread(kube.list_jobs, namespace, workers, download.uid):
            await asyncio.to_thread(kube.delete_job, namespace, stale)
        overdue = (_seconds_between(snapshot.deletion_timestamp, now()) or 0) > CLEANUP_TIMEOUT_SECONDS
        if overdue:
            return "Warning", "CleanupTimedOut", f"no cleanup within {CLEANUP_TIMEOUT_SECONDS}s; the data may remain"
        if await asyncio.to_thread(kube.count_pods, namespace, workers):
            # A worker still writes: wait until it is gone. (Pods are counted by label: their Jobs may be deleted
            # already. A pod with copied labels can only delay this download's own cleanup, up to the timeout.)
            return None
        cleanup = build_cleanup_job(download, self.settings)
        await asyncio.to_thread(kube.create_job, cleanup)
        state = job_state(await asyncio.to_thread(kube.read_job, namespace, cleanup["metadata"]["name"]))[0]
        if state == "Complete":
            return "Normal", "DataDeleted", "deletionPolicy Delete: the downloaded data was removed"
        if state == "Failed":
            return "Warning", "CleanupFailed", f"the cleanup Job {cleanup['metadata']['name']} failed; data may remain"
        return None

    async def _start_run(self, download: Download) -> bool:
        """Create the run's claim and Job; False when the API server refuses them as invalid (a spec value the schema
        let through but the Job or claim cannot take): then the spec is invalid for this generation."""
        job = build_job(download, self.settings, self.egress_for(download.namespace))
        self._reserved[download.key] = job["metadata"]["name"]
        if (download.namespace, job["metadata"]["name"]) not in self._job_active:
            self._unseen.add((download.namespace, job["metadata"]["name"]))
        try:
            pvc = build_pvc(download)
            if pvc is not None:
                await asyncio.to_thread(kube.create_pvc, pvc)
            created = await asyncio.to_thread(kube.create_job, job)
        except ApiException as error:
            self._release(download.key)  # not created: the retry must try again, and the slot is free
            if error.status not in (400, 422):
                raise
            kind = "claim" if "PersistentVolumeClaim" in str(error.body) else "Job"
            refused = f"the API server refused the worker's {kind}: {kube.error_message(error)}"
            self._parsed[(download.uid, download.generation)] = refused[:1024]
            return False
        except Exception:
            self._release(download.key)
            raise
        if created:
            log.debug("created Job %s", job["metadata"]["name"])
        return True

    async def _final_report(self, download: Download, job: JobSnapshot, run: str) -> Report | None:
        """The last worker's termination message, when the live report missed the end (only from pods that Job,
        by uid, controls)."""
        messages = await asyncio.to_thread(kube.termination_messages, download.namespace, job.name, job.uid)
        for _, message in reversed(messages):
            try:
                report = Report.model_validate(json.loads(message))
            except (ValueError, ValidationError):
                continue
            if report.run == run:
                self.reports[download.key] = report
                self._final_pods.pop(download.key, None)
                return report
        return None

    async def _write_status(self, snapshot: DownloadSnapshot, previous: dict[str, Any], status: dict[str, Any]) -> None:
        patch = status_patch(previous, status)
        if not patch:
            return
        namespace, name = snapshot.key
        await asyncio.to_thread(kube.patch_status, namespace, name, patch)
        self._written[(namespace, name)] = (snapshot.uid, status)
        before, after = previous.get("phase"), status.get("phase")
        if before != after:
            self._on_transition(snapshot, previous, status)

    def _on_transition(self, snapshot: DownloadSnapshot, previous: dict[str, Any], status: dict[str, Any]) -> None:
        phase = status["phase"]
        reason = next((c["reason"] for c in status["conditions"] if c["type"] == "Ready"), phase)
        kind = "Warning" if phase == "Failed" else "Normal"
        message = f"{previous.get('phase', 'New')} -> {phase}: {status.get('message', '')}"
        self._events.put_nowait((snapshot, kind, reason, message))
        log.info(
            "%s/%s: %s",
            snapshot.namespace,
            snapshot.name,
            message,
            extra={"k8s": {"namespace": snapshot.namespace, "name": snapshot.name, "uid": snapshot.uid}},
        )
        if phase in TERMINAL_PHASES:
            duration = _seconds_between(status.get("startedAt"), status.get("finishedAt"))
            if duration is not None:
                metrics.RUN_DURATION.labels(result=phase).observe(duration)
            progress = status.get("progress") or {}
            metrics.ITEMS.inc(progress.get("itemsDone", 0))
            metrics.RETRIES.inc(max(0, int(status.get("attempts") or 0) - 1))
            metrics.BYTES.inc(progress.get("bytesDone", 0))
            for failure in status.get("failures") or []:
                metrics.ERRORS.labels(reason=failure["reason"]).inc()
            if phase == "Failed" and not status.get("failures"):
                metrics.ERRORS.labels(reason=reason).inc()
        if phase in TERMINAL_PHASES | {"Suspended"}:
            self.wake_queue()
