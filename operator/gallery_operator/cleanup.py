"""Deletion under deletionPolicy Delete: stop the workers, run the cleanup Job, and say when it is over. One step
per call (the controller calls again after a pause while it runs); it never hangs: a failed or overdue cleanup ends
with a Warning and the finalizer is released anyway."""

from __future__ import annotations

from gallery_operator.config import Settings
from gallery_operator.download import Download
from gallery_operator.facade import Kube
from gallery_operator.jobs import LABEL_DOWNLOAD_UID, LABEL_RUN, build_cleanup_job
from gallery_operator.plan import PostEvent
from gallery_operator.status import job_state, seconds_between

CLEANUP_TIMEOUT_SECONDS = 600


async def cleanup_step(
    kube: Kube, download: Download, deletion_timestamp: str, now: str, settings: Settings
) -> PostEvent | None:
    """One step of the cleanup: the Event that ends it, or None while it runs."""
    namespace = download.namespace
    workers = f"{LABEL_DOWNLOAD_UID}={download.uid},{LABEL_RUN}"
    for stale in await kube.list_jobs(namespace, workers, download.uid):
        await kube.delete_job(namespace, stale)
    if (seconds_between(deletion_timestamp, now) or 0) > CLEANUP_TIMEOUT_SECONDS:
        return PostEvent(
            "Warning", "CleanupTimedOut", f"no cleanup within {CLEANUP_TIMEOUT_SECONDS}s; the data may remain"
        )
    if await kube.count_pods(namespace, workers):
        # A worker still writes: wait until it is gone. (Pods are counted by label: their Jobs may be deleted
        # already. A pod with copied labels can only delay this download's own cleanup, up to the timeout.)
        return None
    cleanup = build_cleanup_job(download, settings)
    name = cleanup["metadata"]["name"]
    await kube.create_job(cleanup)
    state = job_state(await kube.read_job(namespace, name))[0]
    if state == "Complete":
        return PostEvent("Normal", "DataDeleted", "deletionPolicy Delete: the downloaded data was removed")
    if state == "Failed":
        return PostEvent("Warning", "CleanupFailed", f"the cleanup Job {name} failed; data may remain")
    return None
