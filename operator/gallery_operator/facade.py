"""The operator's Kubernetes calls as one async interface: the seam between the reconcile's apply step (and the
cleanup, and the report endpoint's TokenReview and pod reads) and the API server. `ThreadedKube` runs the
synchronous client of kube.py in the default executor; unit tests of the apply step pass a recording fake, the e2e
tests prove the real one on the control plane. No other module imports kube.py or the kubernetes package (an
import-linter contract in pyproject.toml): the client's exceptions end here, a refusal as `Refused`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeAlias, TypeVar

from kubernetes.client.rest import ApiException

from gallery_operator import kube

T = TypeVar("T")
ObjectRef: TypeAlias = kube.ObjectRef
"""What an Event names (a download's snapshot will do)."""


class Refused(Exception):
    """The API server refused an object the operator made as invalid (400 or 422): the message says which object
    and gives the API server's own words."""


class NotLeader(Exception):
    """A write refused because this replica does not lead (or may no longer: its renew deadline passed)."""


class WriteGate:
    """Every write the operator makes passes here, in the thread that sends it, just before it is sent: a replica
    that does not lead (a standby, or a leader past its renew deadline) sends nothing. `in_flight` counts the
    writes past the gate and not yet answered, so a leader stopping gracefully releases its Lease only after its
    last write is answered."""

    def __init__(self) -> None:
        self.may_write: Callable[[], bool] = lambda: True
        self._lock = threading.Lock()
        self._in_flight = 0

    def run(self, call: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if not self.may_write():
                raise NotLeader("this replica does not hold the leader Lease: nothing is written")
            self._in_flight += 1
        try:
            return call(*args)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def drained(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until no write is under way; whether none is."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self._in_flight


GATE = WriteGate()
"""The process's one write gate (election.py sets `may_write` when leader election is on)."""


async def _write(call: Callable[..., T], *args: Any) -> T:
    """A write, in a thread, through the gate."""
    return await asyncio.to_thread(GATE.run, call, *args)


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
    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]: ...
    async def post_event(self, reference: ObjectRef, kind: str, reason: str, message: str) -> None: ...
    async def review_token(self, token: str, audience: str) -> dict[str, Any] | None: ...
    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...


async def warm_up() -> None:
    """Build the client's API objects before the first reconcile (see kube.warm_up)."""
    await asyncio.to_thread(kube.warm_up)


async def _create(what: str, create: Callable[[dict[str, Any]], T], body: dict[str, Any]) -> T:
    """Create the worker's `what` in a thread; a 400 or 422 comes back as `Refused`, any other error as it came."""
    try:
        return await _write(create, body)
    except ApiException as error:
        if error.status not in (400, 422):
            raise
        raise Refused(f"the API server refused the worker's {what}: {kube.error_message(error)}"[:1024]) from error


class ThreadedKube:
    """The real API server, through kube.py's synchronous calls in worker threads."""

    async def create_job(self, job: dict[str, Any]) -> bool:
        return await _create("Job", kube.create_job, job)

    async def create_pvc(self, pvc: dict[str, Any]) -> None:
        await _create("claim", kube.create_pvc, pvc)

    async def keep_network_policy(self, policy: dict[str, Any]) -> None:
        await _write(kube.keep_network_policy, policy)

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        await _write(kube.delete_network_policy, namespace, name)

    async def delete_job(self, namespace: str, name: str) -> None:
        await _write(kube.delete_job, namespace, name)

    async def set_job_suspended(self, namespace: str, name: str, suspended: bool) -> None:
        await _write(kube.set_job_suspended, namespace, name, suspended)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await _write(kube.patch_status, namespace, name, patch)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        await _write(kube.set_finalizers, namespace, name, finalizers, resource_version)

    async def list_jobs(self, namespace: str, selector: str, owner_uid: str) -> list[str]:
        return await asyncio.to_thread(kube.list_jobs, namespace, selector, owner_uid)

    async def job_bodies(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(kube.job_bodies, namespace, selector)

    async def count_pods(self, namespace: str, selector: str, fields: str = "") -> int:
        return await asyncio.to_thread(kube.count_pods, namespace, selector, fields)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.read_job, namespace, name)

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]:
        return await asyncio.to_thread(kube.termination_messages, namespace, job_name, job_uid)

    async def post_event(self, reference: ObjectRef, kind: str, reason: str, message: str) -> None:
        await _write(kube.post_event, reference, kind, reason, message)

    async def review_token(self, token: str, audience: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.review_token, token, audience)

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(kube.read_pod, namespace, name)


class SubscriptionKube(Protocol):
    """The API calls of a subscription's reconcile (subscriptions.py); ThreadedSubscriptionKube: kube.py."""

    async def create_download(self, body: dict[str, Any]) -> bool: ...
    async def delete_download(self, namespace: str, name: str, foreground: bool) -> None: ...
    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None: ...
    async def post_event(self, reference: ObjectRef, kind: str, reason: str, message: str) -> None: ...


class ThreadedSubscriptionKube:
    """The real API server for a subscription's reconcile, like ThreadedKube, in threads of its own when given an
    executor: a tick's run creations never wait for a thread behind the download controller's calls."""

    def __init__(self, executor: ThreadPoolExecutor | None = None) -> None:
        self.executor = executor

    async def _write(self, call: Callable[..., T], *args: Any) -> T:
        if self.executor is None:
            return await _write(call, *args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, GATE.run, call, *args)

    async def create_download(self, body: dict[str, Any]) -> bool:
        return await self._write(kube.create_download, body)

    async def delete_download(self, namespace: str, name: str, foreground: bool) -> None:
        await self._write(kube.delete_download, namespace, name, foreground)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._write(kube.patch_subscription_status, namespace, name, patch)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        await self._write(kube.set_subscription_finalizers, namespace, name, finalizers, resource_version)

    async def post_event(self, reference: ObjectRef, kind: str, reason: str, message: str) -> None:
        await self._write(kube.post_subscription_event, reference, kind, reason, message)


class LeaseKube(Protocol):
    """The Lease calls of leader election (election.py); ThreadedLeaseKube: kube.py. Each is bounded by `timeout`
    seconds; a conflict (another replica changed the Lease first) answers None. A `lease` written is its spec and its
    annotations (leadership.lease_body)."""

    async def read_lease(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None: ...
    async def create_lease(
        self, namespace: str, name: str, lease: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None: ...
    async def replace_lease(
        self, namespace: str, name: str, lease: dict[str, Any], resource_version: str, timeout: float
    ) -> dict[str, Any] | None: ...
    def follow(self, namespace: str, name: str, changed: Callable[[dict[str, Any]], None]) -> None: ...


class ThreadedLeaseKube:
    """The real API server for leader election, in threads of its own: a renewal never waits behind the reconciles'
    calls in the default executor (under a burst it did, until the renew deadline). The Lease's own writes do not
    pass the write gate: they are how a replica comes to lead, and a leader's renewal is what lets it keep writing."""

    def __init__(self) -> None:
        self.threads = ThreadPoolExecutor(2, "lease")

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.threads, call, *args)

    async def read_lease(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        return await self._call(kube.read_lease, namespace, name, timeout)

    async def create_lease(
        self, namespace: str, name: str, lease: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        return await self._call(kube.create_lease, namespace, name, lease, timeout)

    async def replace_lease(
        self, namespace: str, name: str, lease: dict[str, Any], resource_version: str, timeout: float
    ) -> dict[str, Any] | None:
        return await self._call(kube.replace_lease, namespace, name, lease, resource_version, timeout)

    def follow(self, namespace: str, name: str, changed: Callable[[dict[str, Any]], None]) -> None:
        """Call `changed(body)` (from another thread) with every version of the Lease a watch shows, from a thread
        of its own (not the executor's: it never returns)."""
        args = (namespace, name, changed)
        threading.Thread(target=kube.follow_lease, args=args, daemon=True, name="lease-watch").start()
