"""The test tiers (a marker per folder) and the shared fixtures: the fixture site and an S3 server on loopback, and a
Kubernetes cluster (local control plane or KUBECONFIG) for the e2e tiers.

Tiers (docs/architecture.md, "The harness and the test tiers"), assigned by folder so nobody forgets one:
``tests/unit`` unit, ``tests/component`` component (real programs and servers on loopback, no control plane),
``tests/e2e`` e2e (a control plane), ``tests/e2e/realnode`` realnode (a real kubelet: make test-real-node).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from gallery_harness.controlplane import NODE_KINDS, LocalCluster
from gallery_harness.procs import wait_until as wait_for
from gallery_harness.s3server import S3Server
from gallery_harness.site import serve

# pytest keeps each test module's rewritten bytecode (assertion rewriting) only where Python may write bytecode: with
# PYTHONDONTWRITEBYTECODE set (this environment sets it) every pytest process, each xdist worker included, parsed and
# rewrote all test modules again, about 2 of the 4.4 s of CPU a collection takes. Only this process is affected: the
# programs the tests start keep the variable (the worker's own bytecode is compiled by `make test-fast`).
sys.dont_write_bytecode = False

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "component", "e2e", "realnode")
WITHOUT_A_CLUSTER = ("unit", "component")


def tier_of(path: Path) -> str:
    """The tier a test file's folder gives it; a file outside the tier folders is a mistake worth a clear error."""
    parts = path.resolve().relative_to(TESTS).parts
    if parts[:2] == ("e2e", "realnode"):
        return "realnode"
    if len(parts) > 1 and parts[0] in TIERS:
        return parts[0]
    raise pytest.UsageError(f"{path}: a test belongs in one of the tier folders tests/{{{','.join(TIERS[:3])}}}")


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its folder's tier; refuse a contradicting tier marker, and a unit or component test
    that asks (even through another fixture) for the cluster."""
    for item in items:
        tier = tier_of(item.path)
        other = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS} - {tier})
        if other:
            raise pytest.UsageError(f"{item.nodeid}: marked {other} but its folder makes it {tier!r}")
        if tier in WITHOUT_A_CLUSTER and "cluster" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid}: a {tier} test runs without a control plane (uses `cluster`)")
        item.add_marker(tier)
    # Tests that stop and restart the session's API server run last: the rest of the session does not run against
    # a control plane (and a node agent) that lived through the restart.
    items.sort(key=lambda item: item.get_closest_marker("restarts_api") is not None)


@dataclass
class Cluster:
    """What a test gets: a kubeconfig, an API client, and the local control plane when it is ours."""

    kubeconfig: Path
    api: client.ApiClient
    local: LocalCluster | None

    @property
    def service_host(self) -> str:
        """The address servers listen on for pods to reach them (a real node's pods cannot reach loopback)."""
        return self.local.service_host if self.local else "127.0.0.1"

    def require_local(self) -> LocalCluster:
        if self.local is None:
            pytest.skip("needs the local control plane (KUBECONFIG names another cluster)")
        return self.local


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster named by KUBECONFIG if set, otherwise a fresh local control plane for this session, with the
    node GALLERY_E2E_NODE names: ``agent`` (default, the process-based node agent) or ``kubelet`` (a real node
    running the project's image; make test-real-node)."""
    external = os.environ.get("KUBECONFIG")
    if external:
        yield Cluster(Path(external), config.new_client_from_config(external), None)
        return
    node = os.environ.get("GALLERY_E2E_NODE", "agent")
    if node not in NODE_KINDS:
        raise pytest.UsageError(f"GALLERY_E2E_NODE={node!r}: expected one of {', '.join(NODE_KINDS)}")
    with LocalCluster.create(tmp_path_factory.mktemp("cluster"), node=node) as local:
        yield Cluster(local.kubeconfig, config.new_client_from_config(str(local.kubeconfig)), local)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    core = client.CoreV1Api(cluster.api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"gallery-operator.dev/test": "true"}}})
    # Pods need the namespace's default ServiceAccount, which a controller creates shortly after.
    wait_for(lambda: core.list_namespaced_service_account(name).items, 30, "default ServiceAccount")
    yield name
    core.delete_namespace(name)


def s3_server_on(host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3")
    with S3Server(root=root, log=root / "versitygw.log", host=host) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The real S3 server (versitygw) on loopback; the e2e tiers' own, which pods reach, is in tests/e2e."""
    yield from s3_server_on("127.0.0.1", tmp_path_factory)


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """The fixture media site (gallery_harness.site) on loopback; the e2e tiers' own, which pods reach, is in
    tests/e2e."""
    with serve() as url:
        yield url
