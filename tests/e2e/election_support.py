"""Two operator replicas electing a leader on a Lease in a test's namespace: the replicas, the Lease, the metrics
that say who leads (tests/e2e/test_leader_election.py, tests/e2e/test_report_forwarding.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness.kube import create_claim
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from tests.conftest import Cluster
from tests.e2e.conftest import operator_for

LEASE = "gallery-operator-test"


def metric(process: OperatorProcess, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", process.metrics(), re.MULTILINE)
    assert found is not None, f"{name} is not exported"
    return float(found.group(1))


def leads(process: OperatorProcess) -> bool:
    return metric(process, "gallery_operator_leader") == 1.0


@dataclass
class Pair:
    """Two replicas, `a` and `b`, electing a leader on the Lease LEASE in the test's namespace."""

    cluster: Cluster
    namespace: str
    tmp: Path

    def replica(
        self, identity: str, kubeconfig: Path | None = None, settings: dict[str, str] | None = None
    ) -> OperatorProcess:
        settings = {
            "GALLERY_OPERATOR_LEADER_ELECTION": "true",
            "GALLERY_OPERATOR_LEADER_IDENTITY": identity,
            "GALLERY_OPERATOR_OPERATOR_NAMESPACE": self.namespace,
            "GALLERY_OPERATOR_LEASE_NAME": LEASE,
            "GALLERY_OPERATOR_NAMESPACES": self.namespace,
            **(settings or {}),
        }
        process = operator_for(self.cluster, self.tmp / f"operator-{identity}.log", settings)
        if kubeconfig is not None:
            process.kubeconfig = kubeconfig
        try:
            process.start()  # returns when /readyz answers: a warm standby is ready too
        except TimeoutError:  # a loaded machine: the caches take longer than the harness's 30 s to fill
            wait_until(process.healthy, 300, f"replica {identity} to be ready")
        return process

    def lease(self) -> client.V1Lease:
        return client.CoordinationV1Api(self.cluster.api).read_namespaced_lease(LEASE, self.namespace)

    def holder(self) -> str:
        try:
            return str(self.lease().spec.holder_identity or "")
        except ApiException as error:
            if error.status == 404:
                return ""
            raise


@pytest.fixture
def pair(cluster: Cluster, namespace: str, crd: None, no_local_operator: None, tmp_path: Path) -> Iterator[Pair]:
    create_claim(cluster.api, namespace)
    made = Pair(cluster, namespace, tmp_path)
    yield made
    for process in list(OperatorProcess.instances):
        if process.log.parent == tmp_path:
            process.stop()
            OperatorProcess.instances.remove(process)


def slow_images(site: str, first: int, count: int, seconds: float) -> list[str]:
    return [f"{site}/slow/{n}.jpg?seconds={seconds}" for n in range(first, first + count)]
