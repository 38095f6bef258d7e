"""The real node's test parts: the worker pod's labels and security context as the chart sets them, the node, kubectl,
and the chart's operator installed unmodified."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from gallery_harness import build
from gallery_harness.kube import create_namespace
from gallery_harness.procs import wait_until
from gallery_harness.realnode import RealNode
from gallery_operator.config import Settings, load_settings
from tests.conftest import Cluster
from tests.e2e.charts import render

WORKER_LABELS = {"app.kubernetes.io/managed-by": "gallery-operator", "app.kubernetes.io/component": "worker"}


WORKER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


PROBE_PORT = 80  # a port the policy allows to public addresses: only its address rules can refuse these probes


def real_node(cluster: Cluster) -> RealNode:
    node = cluster.require_local().real_node
    assert node is not None, "run with GALLERY_E2E_NODE=kubelet (make test-real-node)"
    return node


def kubectl(cluster: Cluster, *args: str, manifest: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", *args]
    return subprocess.run(command, input=manifest, text=True, capture_output=True, check=False)


@dataclass
class ChartOperator:
    """The operator as the chart deploys it, in its own namespace, watching one namespace."""

    release_namespace: str
    documents: list[dict[str, Any]]

    @property
    def service_host(self) -> str:
        [service] = [d for d in self.documents if d["kind"] == "Service"]
        return f"{service['metadata']['name']}.{self.release_namespace}.svc"

    @property
    def report_port(self) -> int:
        [service] = [d for d in self.documents if d["kind"] == "Service"]
        return int(next(p["port"] for p in service["spec"]["ports"] if p["name"] == "report"))

    def settings(self) -> Settings:
        """The operator's settings as the chart's Deployment hands them to it."""
        [deployment] = [d for d in self.documents if d["kind"] == "Deployment"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        return load_settings({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})


def chart_values(node: RealNode, namespace: str, *, private_sites: bool = True) -> dict[str, Any]:
    """Values for a test install: the local image, one watched namespace, the operator's NetworkPolicy on (the
    chart's default). With ``private_sites`` the fixture sites on the bridge (private addresses) are allowed, to the
    guard and to the policy alike, on every port."""
    repository, tag = node.images["project"].ref.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "rbac": {"clusterWide": False},
        "watchNamespaces": [namespace],
        "operator": {"allowPrivateNetworks": private_sites},
        "networkPolicy": {"enabled": True, "ports": [] if private_sites else [PROBE_PORT]},
    }


@contextlib.contextmanager
def chart_operator(cluster: Cluster, values: dict[str, Any], release_namespace: str) -> Iterator[ChartOperator]:
    """Install the rendered chart (the session's CRD kept; its report-port NetworkPolicy included) and wait until
    the operator's Deployment is available; remove it afterwards."""
    create_namespace(cluster.api, release_namespace)
    documents = [
        d for d in render(values=values, namespace=release_namespace) if d["kind"] != "CustomResourceDefinition"
    ]
    installed = yaml.safe_dump_all(documents)
    applied = kubectl(cluster, "apply", "-f", "-", manifest=installed)
    assert applied.returncode == 0, applied.stderr
    try:
        apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
        [deployment] = [d for d in documents if d["kind"] == "Deployment"]
        name = deployment["metadata"]["name"]
        try:
            wait_until(
                lambda: (apps.read_namespaced_deployment(name, release_namespace).status.available_replicas or 0) == 1,
                120,
                "the operator's Deployment to be available (its readiness probe passed)",
            )
        except TimeoutError:
            [pod] = core.list_namespaced_pod(release_namespace).items
            restarted = bool(pod.status.container_statuses and pod.status.container_statuses[0].restart_count)
            log = core.read_namespaced_pod_log(pod.metadata.name, release_namespace, previous=restarted)
            raise AssertionError(f"the operator pod did not become ready; its log:\n{log[-3000:]}") from None
        yield ChartOperator(release_namespace, documents)
    finally:
        kubectl(cluster, "delete", "--wait=false", "-f", "-", manifest=installed)
