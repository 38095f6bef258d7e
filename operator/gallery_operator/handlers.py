"""Every kopf decorator of the operator: caches (indexes), event routing, deletion, startup and shutdown."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from gallery_operator import API_GROUP, API_VERSION, PLURAL, kube
from gallery_operator.api.spec import parse_spec
from gallery_operator.config import Settings, load_settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import (
    LABEL_DOWNLOAD_UID,
    LABEL_MANAGED_BY,
    LABEL_RUN,
    MANAGED_BY,
    Download,
    build_cleanup_job,
)
from gallery_operator.status import job_state
from gallery_operator.web import start_servers

log = logging.getLogger(__name__)

GD = (API_GROUP, API_VERSION, PLURAL)
CLEANUP_TIMEOUT_SECONDS = 600
MANAGED_JOBS: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_RUN: kopf.PRESENT}


class Runtime:
    """Process-wide state shared by the handlers (set up in startup, torn down in cleanup)."""

    settings: Settings | None = None
    controller: Controller | None = None
    servers: Any = None


def _controller() -> Controller:
    assert Runtime.controller is not None, "the operator has not started"
    return Runtime.controller


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    config = Runtime.settings or load_settings()
    Runtime.settings = config
    # kopf's own bookkeeping goes to annotations with our prefix, never into .status.
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    settings.batching.worker_limit = 1000
    # kopf passes each index by its function's name; they fill before any other handler runs.
    controller = Controller(config, kwargs["gd_index"], kwargs["job_index"])
    Runtime.controller = controller
    controller.start()
    Runtime.servers = await start_servers(config, controller)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if Runtime.controller is not None:
        await Runtime.controller.stop()
    if Runtime.servers is not None:
        await Runtime.servers.cleanup()


def _key(body: kopf.Body) -> tuple[str, str]:
    return (str(body.metadata.namespace), str(body.metadata.name))


@kopf.index(*GD)
def gd_index(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[tuple[str, str], Any]:
    """The operator's cache of downloads: a plain snapshot per (namespace, name)."""
    meta = body.metadata
    namespace, name = _key(body)
    reference = {"namespace": namespace, "name": name, "uid": meta.uid}
    return {
        (namespace, name): {
            **reference,
            "generation": int(meta.get("generation") or 0),
            "created": str(meta.get("creationTimestamp") or ""),
            "deleting": bool(meta.get("deletionTimestamp")),
            "spec": _plain(spec),
            "status": {k: v for k, v in _plain(status).items() if k != "kopf"},
            "ref": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": reference},
        }
    }


@kopf.index("batch", "v1", "jobs", labels=MANAGED_JOBS)
def job_index(body: kopf.Body, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[str, Any]:
    """The operator's cache of its Jobs, by the uid of the download that owns them."""
    labels = body.metadata.labels
    namespace, name = _key(body)
    return {
        labels[LABEL_DOWNLOAD_UID]: {
            "namespace": namespace,
            "name": name,
            "run": labels.get(LABEL_RUN),
            "job": {"spec": {"suspend": bool(spec.get("suspend"))}, "status": _plain(status)},
        }
    }


def _plain(value: Any) -> Any:
    """A deep plain-dict copy of a kopf body part (kopf's views are live)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@kopf.on.event(*GD)
def on_download(body: kopf.Body, type: str, **_: Any) -> None:
    controller = _controller()
    controller.enqueue(_key(body))
    if type == "DELETED":
        controller.wake_queue()


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED_JOBS)
def on_job(body: kopf.Body, type: str, **_: Any) -> None:
    controller = _controller()
    namespace = str(body.metadata.namespace)
    for owner in body.metadata.get("ownerReferences") or []:
        if owner.get("kind") == "GalleryDownload" and owner.get("apiVersion", "").startswith(f"{API_GROUP}/"):
            controller.enqueue((namespace, owner["name"]))
    if type == "DELETED" or job_state(_plain(body))[0] in ("Complete", "Failed", "Suspended"):
        controller.wake_queue()


@kopf.on.delete(*GD, optional=False)
async def on_delete(body: kopf.Body, spec: kopf.Spec, runtime: datetime.timedelta, **_: Any) -> None:
    """Before the finalizer goes. Retain keeps the data. Delete removes it: a template claim through its owner
    reference, files in an existing claim or under an S3 prefix through a cleanup Job. It never hangs: a failed
    or overdue cleanup is reported as a Warning Event and the download goes anyway."""
    controller = _controller()
    key = _key(body)
    controller.reports.pop(key, None)
    controller.wake_queue()
    if spec.get("deletionPolicy", "Retain") != "Delete":
        return
    try:
        parsed = parse_spec(_plain(spec))
    except ValidationError:
        return  # an invalid spec never ran, so it stored nothing
    meta = body.metadata
    download = Download(
        key[0], key[1], str(meta.uid), int(meta.get("generation") or 0), str(meta.get("creationTimestamp")), parsed
    )
    if parsed.target.pvc is not None and parsed.target.pvc.template is not None:
        return  # the claim is owned by the download: the garbage collector deletes it
    reference = {"namespace": key[0], "name": key[1], "uid": download.uid}
    workers = f"{LABEL_DOWNLOAD_UID}={download.uid},{LABEL_RUN}"
    for stale in await asyncio.to_thread(kube.list_jobs, key[0], workers):
        await asyncio.to_thread(kube.delete_job, key[0], stale)
    if await asyncio.to_thread(kube.count_pods, key[0], workers):
        raise kopf.TemporaryError("waiting for the worker pods to stop before deleting the data", delay=2)
    cleanup = build_cleanup_job(download, _settings())
    await asyncio.to_thread(kube.create_job, cleanup)
    job = await asyncio.to_thread(kube.read_job, key[0], cleanup["metadata"]["name"])
    state = job_state(job)[0]
    if state == "Complete":
        await asyncio.to_thread(
            kube.post_event, reference, "Normal", "DataDeleted", "deletionPolicy Delete: data removed"
        )
        return
    if state == "Failed":
        await asyncio.to_thread(
            kube.post_event,
            reference,
            "Warning",
            "CleanupFailed",
            f"the cleanup Job {cleanup['metadata']['name']} failed; the data may remain",
        )
        return
    if runtime.total_seconds() > CLEANUP_TIMEOUT_SECONDS:
        await asyncio.to_thread(
            kube.post_event,
            reference,
            "Warning",
            "CleanupTimedOut",
            f"the cleanup Job did not finish in {CLEANUP_TIMEOUT_SECONDS}s; the data may remain",
        )
        return
    raise kopf.TemporaryError("waiting for the cleanup Job", delay=2)


def _settings() -> Settings:
    assert Runtime.settings is not None
    return Runtime.settings
