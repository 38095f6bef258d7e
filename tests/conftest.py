"""Shared fixtures: a Kubernetes cluster (local control plane or KUBECONFIG) and an S3 server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from gallery_harness.controlplane import NODE_KINDS, LocalCluster
from gallery_harness.procs import wait_until as wait_for
from gallery_harness.s3server import S3Server


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


@pytest.fixture(scope="session")
def s3_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    root = tmp_path_factory.mktemp("s3")
    with S3Server(root=root, log=root / "versitygw.log", host=cluster.service_host) as server:
        yield server
