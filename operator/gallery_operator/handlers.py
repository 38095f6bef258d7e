"""Every kopf decorator of the operator: caches (indexes), event routing, deletion, startup and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL, facade
from gallery_operator.admission import priority_ceiling
from gallery_operator.config import Settings
from gallery_operator.controller import Controller, StartProgress
from gallery_operator.egress import namespace_rules
from gallery_operator.election import Elector, default_identity
from gallery_operator.jobs import LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, owning_download_uid
from gallery_operator.keys import Key
from gallery_operator.networkpolicy import POLICY_NAME
from gallery_operator.snapshots import ACTIVE_STATES, DownloadSnapshot, JobSnapshot, JobView, PolicySnapshot
from gallery_operator.subscription_plan import RunSnapshot, SubscriptionSnapshot
from gallery_operator.subscriptions import Subscriptions, owning_subscription
from gallery_operator.web import start_servers

log = logging.getLogger(__name__)

GD = (API_GROUP, API_VERSION, PLURAL)
GSUB = (API_GROUP, API_VERSION, SUBSCRIPTION_PLURAL)
MANAGED_JOBS: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RUN: kopf.PRESENT}


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """This operator registers no change handlers, so kopf needs no diff base: skip the deep copy of every
    body that kopf otherwise makes on every watch event (a third of its time under load)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()


@dataclass
class Memo:
    """Process state shared by the handlers, handed to kopf as its memo (kopf gives every handler a shallow copy:
    the controller, the servers and the set below are the same objects everywhere). Set up in startup."""

    settings: Settings
    controller: Controller | None = None
    servers: Any = None
    ruled_namespaces: set[str] = field(default_factory=set)
    """Namespaces seen with egress annotations, so their removal is noticed too."""
    subscriptions: Subscriptions | None = None
    """The GallerySubscriptions' reconcile loop (subscriptions.py)."""
    elector: Elector | None = None
    """This replica's part in the leader election (election.py), when it is on."""
    watchdog: asyncio.Task[None] | None = None
    """Says, while the caches fill, what they hold (see report_start)."""


def _controller(memo: Memo) -> Controller:
    assert memo.controller is not None, "the operator has not started"
    return memo.controller


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings for this operator."""
    # kopf only watches and caches here (no change handlers), so it writes nothing to the objects; any
    # bookkeeping of its own would go to annotations with our prefix, never into .status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = NoDiffBase(prefix=API_GROUP, key="last-handled-configuration")
    # kopf posts no Event of its own (kopf.event() and friends, or log messages of its per-object loggers): it would
    # post past the facade's write gate, from a standby too. Every Event the operator posts is its own, gated; a
    # handler's failure is logged. kopf.warn() looks only at the level, hence a level above every message's.
    settings.posting.enabled = False
    settings.posting.loggers = False
    settings.posting.level = logging.CRITICAL + 1
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    # No wait of kopf's is unbounded: a watch stream (or a listing's request) on a connection that died without a
    # reset is cut and started again, instead of holding its cache (and, before the first listing, readiness).
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.connect_timeout = 30
    settings.networking.request_timeout = 60
    # First listings in pages of 500: each page is its own request (bounded by the timeout above, however many objects
    # the cluster holds), and its objects reach the caches before the next page is asked for, so a long listing
    # shows as progress (StartProgress) instead of one request that may be cut and begun again for ever.
    settings.watching.chunk_size = LISTING_PAGE
    settings.execution.max_workers = 8
    # No cap on kopf's per-object workers: until its caches are filled, each object's worker waits for every other
    # object's first event to be indexed, so with a cap (it was 1,000) a first listing of more objects than the cap
    # left the capped workers waiting for objects whose workers could never start: never ready, never acting.
    # A worker ends a few seconds after its object's last event.
    settings.queueing.worker_limit = None


@kopf.on.startup(errors=kopf.ErrorsMode.PERMANENT)
async def startup(settings: kopf.OperatorSettings, memo: Memo, **kwargs: Any) -> None:
    # A failed start ends the process (its Deployment starts a fresh one): retried in place, it found its metrics
    # collector and report port taken by its own first attempt and stayed unready for ever.
    config = memo.settings
    configure(settings)
    # kopf passes each index by its function's name; they fill before any other handler runs.
    # API calls run in threads (the kubernetes client is synchronous): one per reconciler.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(config.concurrency, "kube"))
    await facade.warm_up()
    controller = Controller(
        config,
        kwargs["gd_index"],
        kwargs["job_index"],
        kwargs["namespace_index"],
        policies=kwargs["policy_index"],
        namespace_downloads=kwargs["gd_namespace_index"],
        namespace_ceilings=kwargs["namespace_ceiling_index"],
        progress=PROGRESS,
    )
    memo.controller = controller
    # The subscriptions' calls in threads of their own, and the downloads' reconciles after due ticks are taken up:
    # a tick's runs are created first (docs/architecture.md, "Runs before reports").
    workers = config.subscription_concurrency
    subscription_kube = facade.ThreadedSubscriptionKube(ThreadPoolExecutor(workers, "kube-subscriptions"))
    memo.subscriptions = Subscriptions(kwargs["gsub_index"], kwargs["gsub_run_index"], subscription_kube, workers)
    controller.work.yield_to(memo.subscriptions.ticks_first)
    memo.elector = _elector(memo) if config.leader_election else None
    memo.servers = await start_servers(config, controller, memo.elector)
    memo.watchdog = asyncio.create_task(report_start(controller), name="start-up report")
    if memo.elector is None:
        await _lead(memo)
    else:
        facade.GATE.may_write = memo.elector.may_write
        controller.stand_by()
        memo.elector.start(ready=lambda: controller.indexed)


LISTING_PAGE = 500
"""Objects per request of kopf's first listings (the API server's `limit`)."""
START_REPORT_SECONDS = 30.0
"""How often a start whose caches are not filled yet says what they hold."""
PROGRESS = StartProgress()
"""Objects seen by kind since the process began: what a slow or stuck start has of each first listing."""


async def report_start(controller: Controller) -> None:
    """Until the caches are filled (kopf runs handlers only once every first listing is indexed), a warning every
    START_REPORT_SECONDS with the objects seen so far; once no new object has come for the ready deadline (or four
    times that has passed), an error: the start is stuck and /healthz answers 500 from then on
    (Controller.stuck_starting). Once they are filled, how long that took."""
    next_report = controller.began + START_REPORT_SECONDS
    while not controller.indexed:
        now = time.monotonic()
        if controller.stuck_starting():
            log.error(
                "not ready %.0f s after start-up began, and no cache has grown for %.0f s: the caches are not "
                "filled (objects seen so far: %s); /healthz answers 500 so that the process is restarted",
                now - controller.began,
                controller.settings.ready_deadline_seconds,
                controller.progress,
            )
            return
        if now > next_report:
            log.warning("the caches are still filling (objects seen so far: %s)", controller.progress)
            next_report = now + START_REPORT_SECONDS
        await asyncio.sleep(0.5)
    took = time.monotonic() - controller.began
    log.info("ready %.1f s after start-up began: the caches are filled (objects seen: %s)", took, controller.progress)
    controller.progress.finish()


def _elector(memo: Memo) -> Elector:
    config = memo.settings
    identity = config.leader_identity or default_identity()
    lease = (config.operator_namespace, config.lease_name)
    timing, url = config.election_timing(), config.peer_report_url
    return Elector(facade.ThreadedLeaseKube(), *lease, identity, timing, lambda: _lead(memo), report_url=url)


async def _lead(memo: Memo) -> None:
    """This replica leads (or runs alone): its reconcilers start, from caches kopf has kept filled."""
    _controller(memo).start()
    if memo.subscriptions is not None:
        for key in list(memo.subscriptions.index.keys()):
            memo.subscriptions.enqueue(key)
        memo.subscriptions.start()


@kopf.on.cleanup()
async def cleanup(memo: Memo, **_: Any) -> None:
    """A graceful stop: writes stop first (the gate shuts), then the reconcilers; the Lease is released last, once
    the last write is answered, so the standby that takes it over never writes beside this replica."""
    was_leading = memo.elector.resign() if memo.elector is not None else False
    if memo.watchdog is not None:
        memo.watchdog.cancel()
    if memo.controller is not None:
        await memo.controller.stop()
    if memo.subscriptions is not None:
        await memo.subscriptions.stop()
    if memo.elector is not None:
        await memo.elector.release(was_leading)
    if memo.servers is not None:
        await memo.servers.cleanup()


def _key(body: kopf.Body) -> Key:
    return Key(str(body.metadata.namespace), str(body.metadata.name))


# Every handler is async: they only copy and enqueue, and a sync handler would cost kopf a thread hop per event.
@kopf.index(*GD)
async def gd_index(body: kopf.Body, **_: Any) -> dict[Key, DownloadSnapshot]:
    """The operator's cache of downloads, by (namespace, name)."""
    PROGRESS.seen("gallerydownloads", body.metadata.uid)
    return {_key(body): DownloadSnapshot.of(body)}


@kopf.index(*GD)
async def gd_namespace_index(namespace: str | None, name: str, **_: Any) -> dict[str, str]:
    """The names of the downloads in each namespace: the worker NetworkPolicy stays while one is there."""
    return {str(namespace): name}


@kopf.index("networking.k8s.io", "v1", "networkpolicies")
async def policy_index(body: kopf.Body, name: str, **_: Any) -> dict[str, PolicySnapshot]:
    """The worker NetworkPolicy of each namespace, by its name (so a copy without the operator's labels is seen
    too, and put back in shape)."""
    PROGRESS.seen("networkpolicies", body.metadata.uid)
    return {str(body.metadata.namespace): PolicySnapshot.of(body)} if name == POLICY_NAME else {}


@kopf.on.event("networking.k8s.io", "v1", "networkpolicies")
async def on_policy(name: str, namespace: str | None, memo: Memo, **_: Any) -> None:
    """A change to a namespace's worker NetworkPolicy (a tenant's edit or deletion is repaired)."""
    if name == POLICY_NAME:
        _controller(memo).observe_policy(str(namespace))


@kopf.index("batch", "v1", "jobs", labels=MANAGED_JOBS)
async def job_index(body: kopf.Body, **_: Any) -> dict[str, JobSnapshot]:
    """The operator's cache of worker Jobs, by the uid of the download that controls them. The labels only narrow
    the watch: a Job counts only when a GalleryDownload is its controller (checked against the download's namespace
    where it is used), so a Job a tenant labels like a worker is neither counted nor deleted."""
    PROGRESS.seen("jobs", body.metadata.uid)
    owner = owning_download_uid(body.metadata)
    if owner is None:
        return {}
    return {owner: JobSnapshot.of(body, LABEL_RUN)}


@kopf.index("", "v1", "namespaces")
async def namespace_index(name: str, uid: str | None, annotations: kopf.Annotations, **_: Any) -> dict[str, Any]:
    """Namespaces whose annotations tighten the egress rules: name -> NamespaceRules."""
    PROGRESS.seen("namespaces", uid)
    rules = namespace_rules(annotations)
    return {name: rules} if rules is not None else {}


@kopf.index("", "v1", "namespaces")
async def namespace_ceiling_index(name: str, annotations: kopf.Annotations, **_: Any) -> dict[str, int]:
    """Namespaces whose annotation sets their priority ceiling: name -> ceiling."""
    ceiling = priority_ceiling(annotations)
    return {name: ceiling} if ceiling is not None else {}


@kopf.on.event("", "v1", "namespaces")
async def on_namespace(name: str, annotations: kopf.Annotations, memo: Memo, **_: Any) -> None:
    """Every namespace event. The first one means every cache is filled (see Controller.indexed). The namespace's
    priority ceiling is kept current. When a namespace's egress rules are set, or were, its downloads are
    reconsidered (those without a Job yet)."""
    controller = _controller(memo)
    controller.indexed = True
    controller.set_priority_ceiling(name, priority_ceiling(annotations))
    rules = namespace_rules(annotations)
    if rules is None and name not in memo.ruled_namespaces:
        return
    if rules is None:
        memo.ruled_namespaces.discard(name)
    else:
        memo.ruled_namespaces.add(name)
    for key in [k for k in list(controller.downloads.keys()) if k[0] == name]:
        controller.enqueue(key)


@kopf.on.event(*GD)
async def on_download(body: kopf.Body, type: str, memo: Memo, **_: Any) -> None:
    if memo.subscriptions is not None:
        memo.subscriptions.observe_run(str(body.metadata.namespace), body)  # a run: its subscription looks again
    controller = _controller(memo)
    controller.observe_download(_key(body), gone=type == "DELETED", uid=str(body.metadata.uid))
    if type == "MODIFIED" and controller.is_own_status_echo(_key(body), body):
        return  # the watch echoing our own status patch: nothing to reconcile
    controller.enqueue(_key(body))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_JOBS)
async def on_job(body: kopf.Body, type: str, memo: Memo, **_: Any) -> None:
    owner = owning_download_uid(body.metadata)
    if owner is None:
        return  # not a worker Job of a download: never counted, never deleted
    controller = _controller(memo)
    namespace = str(body.metadata.namespace)
    state = JobView.of(body).state
    controller.observe_job(
        namespace,
        str(body.metadata.name),
        state in ACTIVE_STATES,
        gone=type == "DELETED",
        uid=str(body.metadata.uid),
        owner=owner,
    )
    key = controller.directory.download(namespace, owner)
    if key is not None:
        controller.enqueue(key)


# -- GallerySubscription (subscriptions.py) ---------------------------------------------------------------------


@kopf.index(*GSUB)
async def gsub_index(body: kopf.Body, **_: Any) -> dict[tuple[str, str], SubscriptionSnapshot]:
    """The operator's cache of subscriptions, by (namespace, name)."""
    PROGRESS.seen("gallerysubscriptions", body.metadata.uid)
    return {_key(body): SubscriptionSnapshot.of(body)}


@kopf.index(*GD)
async def gsub_run_index(body: kopf.Body, **_: Any) -> dict[str, RunSnapshot]:
    """The subscriptions' runs: GalleryDownloads by the uid of the subscription that controls them."""
    owner = owning_subscription(body)
    return {owner[1]: RunSnapshot.of(body)} if owner is not None else {}


@kopf.on.event(*GSUB)
async def on_subscription(body: kopf.Body, memo: Memo, **_: Any) -> None:
    if memo.subscriptions is not None:
        memo.subscriptions.enqueue(_key(body))
