"""The apply step: executes a plan's actions in order through the Kube facade. Thin on purpose: every decision was
made by the plan; here are only the calls, what they returned, and the bookkeeping that must follow a write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gallery_operator import metrics
from gallery_operator.cleanup import cleanup_step
from gallery_operator.config import Settings
from gallery_operator.download import Download
from gallery_operator.facade import Kube, ObjectRef, Refused
from gallery_operator.networkpolicy import POLICY_NAME, KeepNetworkPolicy, RemoveNetworkPolicy
from gallery_operator.plan import (
    Action,
    Cleanup,
    DeleteJob,
    PostEvent,
    SetFinalizers,
    StartRun,
    SuspendJob,
    WriteStatus,
    without_ours,
)
from gallery_operator.snapshots import DownloadSnapshot

log = logging.getLogger(__name__)

CLEANUP_POLL_SECONDS = 2.0


class Outbox:
    """Events go out in order, off the reconcile path, so they never delay a Job; failing to post one is logged."""

    def __init__(self, api: Kube) -> None:
        self.api = api
        self._queue: asyncio.Queue[tuple[ObjectRef, PostEvent]] = asyncio.Queue()

    def post(self, reference: ObjectRef, event: PostEvent) -> None:
        self._queue.put_nowait((reference, event))

    async def run(self) -> None:
        while True:
            reference, event = await self._queue.get()
            try:
                await self.api.post_event(reference, event.kind, event.reason, event.message)
            except Exception as error:  # an unreachable API server must not end the task (and fail /healthz)
                where = f"{reference.namespace}/{reference.name}"
                log.warning("cannot post event %s on %s: %s", event.reason, where, error)


@dataclass
class Applied:
    """What the controller needs to know after the actions ran."""

    written: dict[str, Any] | None = None
    """The status written (the cache will show it later)."""
    launched: bool = False
    """The run's Job was created (or already existed)."""
    refused: str | None = None
    """Why the API server refused the run's Job or claim as invalid: the spec is invalid for this generation."""
    again_after: float | None = None
    """Reconcile again after this many seconds (a cleanup still runs)."""
    walled: bool | None = None
    """The namespace's worker NetworkPolicy was written (True) or removed (False)."""


async def apply(
    actions: Sequence[Action],
    snapshot: DownloadSnapshot,
    download: Download | str,
    kube_: Kube,
    settings: Settings,
    post: Callable[[ObjectRef, PostEvent], None],
    now: str,
) -> Applied:
    """Run the actions in order; an exception stops the rest (the reconcile is retried, and every action is
    idempotent). Events go to `post`, which sends them off the reconcile path."""
    namespace, name = snapshot.key
    applied = Applied()
    for action in actions:
        match action:
            case SetFinalizers(finalizers, resource_version):
                await kube_.set_finalizers(namespace, name, list(finalizers), resource_version)
            case KeepNetworkPolicy(policy):
                await kube_.keep_network_policy(policy)
                applied.walled = True
            case DeleteJob(job):
                log.info("spec changed: deleting Job %s of an earlier run", job)
                await kube_.delete_job(namespace, job)
            case SuspendJob(job, suspend):
                await kube_.set_job_suspended(namespace, job, suspend)
            case StartRun():
                applied.refused = await _start_run(kube_, action)
                if applied.refused is not None:
                    return applied
                applied.launched = True
                metrics.QUEUE_WAIT.observe(action.waited)
            case WriteStatus(patch, status):
                await kube_.patch_status(namespace, name, patch)
                metrics.STATUS_WRITES.inc()
                applied.written = status
                if "phase" in patch:
                    metrics.record_transition(status)
            case PostEvent():
                log.info(
                    "%s/%s: %s",
                    namespace,
                    name,
                    action.message,
                    extra={"k8s": {"namespace": namespace, "name": name, "uid": snapshot.uid}},
                )
                post(snapshot, action)
            case Cleanup():
                assert isinstance(download, Download)
                ended = await cleanup_step(kube_, download, snapshot.deletion_timestamp, now, settings)
                if ended is None:
                    applied.again_after = CLEANUP_POLL_SECONDS
                    return applied
                post(snapshot, ended)
                others = list(without_ours(snapshot.finalizers))
                await kube_.set_finalizers(namespace, name, others, snapshot.resource_version)
    return applied


async def apply_wall(action: KeepNetworkPolicy | RemoveNetworkPolicy, kube_: Kube) -> bool:
    """A namespace's plan for its worker NetworkPolicy; whether the policy is there now."""
    match action:
        case KeepNetworkPolicy(policy):
            log.info("keeping the worker NetworkPolicy in %s", policy["metadata"]["namespace"])
            await kube_.keep_network_policy(policy)
            return True
        case RemoveNetworkPolicy(namespace):
            log.info("no download left in %s: removing the worker NetworkPolicy", namespace)
            await kube_.delete_network_policy(namespace, POLICY_NAME)
            return False


async def _start_run(kube_: Kube, action: StartRun) -> str | None:
    """Create the run's claim and Job; the reason when the API server refuses them as invalid (a spec value the
    schema let through but the Job or claim cannot take)."""
    try:
        if action.pvc is not None:
            await kube_.create_pvc(action.pvc)
        if await kube_.create_job(action.job):
            log.debug("created Job %s", action.job["metadata"]["name"])
    except Refused as refusal:
        return str(refusal)
    return None
