"""The network wall against a tenant who deletes its downloads but keeps their workers: `kubectl delete
--cascade=orphan` leaves a worker Job and its pod running with no download left in the namespace. The operator's
NetworkPolicy must stay around that pod until it ends, on the real control plane (real garbage collector)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gallery_harness.kube import Watching, absent
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from gallery_operator.jobs import LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY
from gallery_operator.networkpolicy import POLICY_NAME
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec

WORKERS = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}=worker"
FINISHED = {"Succeeded", "Failed"}


class Ends(Watching):
    """The revision at which the worker pods stopped running (finished or deleted) and the policy was deleted, from
    watches started before the deletion."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.pods_ended: dict[str, int] = {}
        self.policy_deleted: list[int] = []
        super().__init__(
            namespace,
            [
                (client.CoreV1Api(cluster.api).list_namespaced_pod, self._pod),
                (client.NetworkingV1Api(cluster.api).list_namespaced_network_policy, self._policy),
            ],
        )

    def _pod(self, kind: str, pod: Any) -> None:
        if kind == "DELETED" or (pod.status and pod.status.phase in FINISHED):
            self.pods_ended.setdefault(pod.metadata.name, int(pod.metadata.resource_version))

    def _policy(self, kind: str, policy: Any) -> None:
        if kind == "DELETED" and policy.metadata.name == POLICY_NAME:
            self.policy_deleted.append(int(policy.metadata.resource_version))


@pytest.fixture
def ends(cluster: Cluster, namespace: str) -> Iterator[Ends]:
    seen = Ends(cluster, namespace)
    yield seen
    seen.stop()


def test_the_policy_stays_while_an_orphaned_worker_runs(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str, ends: Ends
) -> None:
    """The tenant deletes its only download with `--cascade=orphan` while its worker runs: the policy is removed
    only after that worker pod stopped running (and is removed then)."""
    namespace = downloads.namespace
    core = client.CoreV1Api(cluster.api)
    downloads.create("orphaned", pvc_spec([f"{site}/slow/{n}.jpg?seconds=15" for n in (611, 612)]))

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector=WORKERS).items
        return [p for p in pods if p.status.phase == "Running"]

    wait_until(running, 120, "the worker pod running")
    policies = client.NetworkingV1Api(cluster.api)
    assert not absent(lambda: policies.read_namespaced_network_policy(POLICY_NAME, namespace))
    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
        API_GROUP, API_VERSION, namespace, PLURAL, "orphaned", propagation_policy="Orphan"
    )
    wait_until(lambda: absent(lambda: downloads.get("orphaned")), 60, "the download gone")
    assert running(), "the orphaned worker still runs after its download is gone"
    workers = [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=WORKERS).items]
    seen = f"the worker pods' end seen (watch ended: {ends.ended})"
    wait_until(lambda: set(workers) <= set(ends.pods_ended), 180, seen)
    wait_until(lambda: ends.policy_deleted, 90, f"the policy removed after the orphan ended (watch: {ends.ended})")
    last_worker = max(ends.pods_ended[w] for w in workers)
    assert ends.policy_deleted[0] > last_worker, (ends.policy_deleted, ends.pods_ended)
