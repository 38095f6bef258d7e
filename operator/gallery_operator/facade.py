"""The operator's Kubernetes calls as one async interface: the seam between the reconcile's apply step (and the
cleanup) and the API server. `ThreadedKube` runs the synchronous client of kube.py in the default executor; unit
tests of the apply step pass a recording fake, the e2e tests prove the real one on the control plane."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from gallery_operator import kube


class Kube(Protocol):
    async def create_job(self, job: dict[str, Any]) -> bool: ...
    async def create_pvc(self, pvc: dict[str, Any]) -> None: ...
    async def keep_network_policy(self, policy: dict[str, Any]) -> None: ...
    async def delete_network_policy(self, namespace: str, name: str) -> None: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def set_job_suspended(self, namespace: str, name: str, suspended: bool) -> None: ...
    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None: ...
    async def list_jobs(self, namespace: str, selector: str, owner_uid: str) -> list[str]: ...
    async def job_bodies(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    async def count_pods(self, namespace: str, selector: str, fields: str = "") -> int: ...
    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str]]: ...
    async def post_event(self, reference: kube.ObjectRef, kind: str, reason: str, message: str) -> None: ...


class ThreadedKube:
    """The real API server, through kube.py's synchronous calls in worker threads."""

    async def create_job(self, job: dict[str, Any]) -> bool:
        return await asyncio.to_thread(kube.create_job, job)

    async def create_pvc(self, pvc: dict[str, Any]) -> None:
        await asyncio.to_thread(kube.create_pvc, pvc)

    async def keep_network_policy(self, policy: dict[str, Any]) -> None:
        await asyncio.to_thread(kube.keep_network_policy, policy)

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(kube.delete_network_policy, namespace, name)

    async def delete_job(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(kube.delete_job, namespace, name)

    async def set_job_suspended(self, namespace: str, name: str, suspended: bool) -> None:
        await asyncio.to_thread(kube.set_job_suspended, namespace, name, suspended)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await asyncio.to_thread(kube.patch_status, namespace, name, patch)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        await asyncio.to_thread(kube.set_finalizers, namespace, name, finalizers, resource_version)

    async def list_jobs(self, namespace: str, selector: str, owner_uid: str) -> list[str]:
        return await asyncio.to_thread(kube.list_jobs, namespace, selector, owner_uid)

    async def job_bodies(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(kube.job_bodies, namespace, selector)

    async def count_pods(self, namespace: str, selector: str, fields: str = "") -> int:
        return await asyncio.to_thread(kube.count_pods, namespace, selector, fields)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.read_job, namespace, name)

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str]]:
        return await asyncio.to_thread(kube.termination_messages, namespace, job_name, job_uid)

    async def post_event(self, reference: kube.ObjectRef, kind: str, reason: str, message: str) -> None:
        await asyncio.to_thread(kube.post_event, reference, kind, reason, message)
