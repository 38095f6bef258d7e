"""The apply step: executes a plan's actions in order through the Kube facade. Thin on purpose: every decision was
made by the plan; here are only the calls, what they returned, and the bookkeeping that must follow a write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gallery_operator import metrics
from gallery_operator.api.status import GalleryDownloadStatus
from gallery_operator.facade import Kube, ObjectRef, Refused
from gallery_operator.networkpolicy import POLICY_NAME, KeepNetworkPolicy, RemoveNetworkPolicy
from gallery_operator.plan import (
    Action,
    DeleteJob,
    PostEvent,
    SetFinalizers,
    StartCleanup,
    StartRun,
    SuspendJob,
    WriteStatus,
)
from gallery_operator.snapshots import DownloadSnapshot

log = logging.getLogger(__name__)


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
            await send_event(self.api, reference, event)


async def send_event(api: Kube, reference: ObjectRef, event: PostEvent) -> None:
    """Post one Event; failing is only logged (an unreachable API server must not end the outbox's task and fail
    /healthz, nor keep a finalizer)."""
    try:
        await api.post_event(reference, event.kind, event.reason, event.message)
    except Exception as error:
        log.warning("cannot post event %s on %s/%s: %s", event.reason, reference.namespace, reference.name, error)


@dataclass
class Applied:
    """What the commit step needs to know after the actions ran."""

    written: GalleryDownloadStatus | None = None
    """The status written (the cache will show it later)."""
    launched: bool = False
    """The run's Job was created (or already existed)."""
    refused: str | None = None
    """Why the API server refused the run's Job or claim as invalid: a terminal outcome for this generation."""
    walled: bool | None = None
    """The namespace's worker NetworkPolicy was written (True) or removed (False)."""


def status_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning ``before`` into ``after``: the API server merges objects key by key at
    every depth, so a changed object is patched by its own changes and a key removed at any depth becomes null
    (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if old == value:
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            patch[key] = status_patch(old, value)
        else:
            patch[key] = value
    patch |= {key: None for key in before if key not in after}
    return patch


async def apply(
    actions: Sequence[Action],
    snapshot: DownloadSnapshot,
    kube_: Kube,
    post: Callable[[ObjectRef, PostEvent], None],
) -> Applied:
    """Run the actions in order; an exception stops the rest (the reconcile is retried, and every action is
    idempotent). Events go to `post`, which sends them off the reconcile path."""
    namespace, name = snapshot.key
    applied = Applied()
    for index, action in enumerate(actions):
        match action:
            case SetFinalizers(finalizers, resource_version):
                await kube_.set_finalizers(namespace, name, list(finalizers), resource_version)
            case KeepNetworkPolicy(policy):
                await kube_.keep_network_policy(policy)
                applied.walled = True
            case DeleteJob(job):
                log.info("deleting Job %s (an earlier run's, or a deleted download's)", job)
                await kube_.delete_job(namespace, job)
            case SuspendJob(job, suspend):
                await kube_.set_job_suspended(namespace, job, suspend)
            case StartRun():
                applied.refused = await _start_run(kube_, action)
                if applied.refused is not None:
                    return applied
                applied.launched = True
                metrics.QUEUE_WAIT.observe(action.waited)
            case StartCleanup(job):
                await kube_.create_job(job)
            case WriteStatus(previous, status):
                # The merge patch between the two models' stored forms, dumped here at the edge.
                await kube_.patch_status(namespace, name, status_patch(previous.stored(), status.stored()))
                metrics.STATUS_WRITES.inc()
                applied.written = status
                if status.phase != previous.written_phase:
                    metrics.record_transition(status)
            case PostEvent():
                log.info(
                    "%s/%s: %s",
                    namespace,
                    name,
                    action.message,
                    extra={"k8s": {"namespace": namespace, "name": name, "uid": snapshot.uid}},
                )
                if any(isinstance(later, SetFinalizers) for later in actions[index + 1 :]):
                    # The finalizer is released after this Event (the end of a deletion): post it first, so that
                    # the download is never gone while the Event that says what became of its data is not there.
                    await send_event(kube_, snapshot, action)
                else:
                    post(snapshot, action)
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
