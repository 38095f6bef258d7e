"""The operator's ServiceAccount with exactly the chart's RBAC, as a fixture for the RBAC tests of both kinds."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gallery_harness import REPO_ROOT
from tests.conftest import Cluster

MANIFEST = REPO_ROOT / "manifests" / "base" / "gallery-operator.yaml"
ACCOUNT = "gallery-operator"


@pytest.fixture
def operator_account(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig that authenticates as a ServiceAccount holding exactly the chart's RBAC."""
    core, rbac_api = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": ACCOUNT}})
    documents = chart_rbac(namespace)
    for document in documents:
        if document["kind"] == "ClusterRole":
            rbac_api.create_cluster_role(document)
        else:
            rbac_api.create_cluster_role_binding(document)
    token = core.create_namespaced_service_account_token(
        ACCOUNT, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    yield kubeconfig
    for document in documents:
        name = document["metadata"]["name"]
        if document["kind"] == "ClusterRole":
            rbac_api.delete_cluster_role(name)
        else:
            rbac_api.delete_cluster_role_binding(name)


def chart_rbac(namespace: str) -> list[dict[str, Any]]:
    """The chart's ClusterRoles and their bindings, renamed for this test and bound to the test's ServiceAccount."""
    documents = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    rbac = [copy.deepcopy(d) for d in documents if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert {d["kind"] for d in rbac} == {"ClusterRole", "ClusterRoleBinding"}, "the chart renders cluster-wide RBAC"
    for document in rbac:
        document["metadata"]["name"] += f"-{namespace}"
        if document["kind"] == "ClusterRoleBinding":
            document["roleRef"]["name"] += f"-{namespace}"
            document["subjects"] = [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]
    return rbac
