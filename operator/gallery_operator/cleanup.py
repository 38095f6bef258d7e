"""What a deletion under deletionPolicy Delete reads before the plan decides its next step (gather's part for
deletion): the download's worker Jobs still there, its worker pods left, and the cleanup Job's state. The steps
themselves are rows of the plan (plan._deletion); the apply step makes the calls."""

from __future__ import annotations

from gallery_operator.facade import Kube
from gallery_operator.plan import CleanupReads, CleanupSeen
from gallery_operator.snapshots import JobView


async def cleanup_seen(kube: Kube, reads: CleanupReads) -> CleanupSeen:
    """The cleanup's view of the cluster, read from the API server (the caches do not hold these objects)."""
    stale = tuple(await kube.list_jobs(reads.namespace, reads.workers, reads.owner_uid))
    left = await kube.count_pods(reads.namespace, reads.workers)
    cleanup = JobView.of(await kube.read_job(reads.namespace, reads.cleanup_job))
    return CleanupSeen(stale, left, cleanup)
