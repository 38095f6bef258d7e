"""The Helm chart: lint, render, validate against the API server, install, and run a download under its RBAC."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gallery_harness import build, procs
from gallery_harness.kube import absent, create_claim, create_namespace
from gallery_harness.manifests import BASE, render_base
from tests.conftest import Cluster
from tests.e2e.charts import CHART, KUBE_VERSION, helm, operator_env, render, server_dry_run
from tests.e2e.conftest import REPO, Downloads


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in documents)


def test_chart_lints() -> None:
    result = helm("lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_render() -> None:
    documents = render()
    assert kinds(documents) == [
        "ClusterRole/gallery-gallery-operator",
        "ClusterRole/gallery-gallery-operator-cluster",
        "ClusterRoleBinding/gallery-gallery-operator",
        "ClusterRoleBinding/gallery-gallery-operator-cluster",
        "CustomResourceDefinition/gallerydownloads.gallery-operator.dev",
        "CustomResourceDefinition/gallerysubscriptions.gallery-operator.dev",
        "Deployment/gallery-gallery-operator",
        "NetworkPolicy/gallery-gallery-operator",
        "Role/gallery-gallery-operator-leader-election",
        "RoleBinding/gallery-gallery-operator-leader-election",
        "Service/gallery-gallery-operator",
        "ServiceAccount/gallery-gallery-operator",
    ]
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GALLERY_OPERATOR_NAMESPACES"] == ""
    assert env["GALLERY_OPERATOR_REPORT_URL"] == "http://gallery-gallery-operator.gallery-system.svc:8082/report"
    crds = [d for d in documents if d["kind"] == "CustomResourceDefinition"]
    assert [crd["metadata"]["annotations"] for crd in crds] == [{"helm.sh/resource-policy": "keep"}] * 2
    rules = [r for d in documents if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert not [r for r in rules if "secrets" in r["resources"] or "*" in r["verbs"] or "*" in r["resources"]]


def test_the_report_port_takes_worker_pods_only_and_the_operator_keeps_the_workers_wall() -> None:
    """The chart's own NetworkPolicy guards the operator's ports; the workers' policies (one per namespace with
    downloads, in any mode) are the operator's, configured through its settings."""
    documents = render("ports.report=9443", "networkPolicy.ports={443}", "networkPolicy.s3PrivateCIDRs={10.9.0.0/16}")
    [policy] = [d for d in documents if d["kind"] == "NetworkPolicy"]
    assert policy["metadata"]["namespace"] == "gallery-system"
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # the operator's own egress (the API server) is not walled
    report, probes = policy["spec"]["ingress"]
    assert report == {
        "from": [
            {
                "namespaceSelector": {},
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/managed-by": "gallery-operator",
                        "app.kubernetes.io/component": "worker",
                    }
                },
            },
            {"podSelector": policy["spec"]["podSelector"]},  # the other replicas (a standby forwards reports)
        ],
        "ports": [{"protocol": "TCP", "port": 9443}],
    }
    assert probes == {"ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8081}]}
    env = operator_env(documents)
    assert env["GALLERY_OPERATOR_NETWORK_POLICY"] == "true"
    assert env["GALLERY_OPERATOR_NETWORK_POLICY_PORTS"] == "443"
    assert env["GALLERY_OPERATOR_DNS_NAMESPACE"] == "kube-system"
    assert env["GALLERY_OPERATOR_DNS_POD_LABELS"] == "k8s-app=kube-dns"
    assert env["GALLERY_OPERATOR_S3_PRIVATE_CIDRS"] == "10.9.0.0/16"
    assert env["GALLERY_OPERATOR_OPERATOR_NAMESPACE"] == "gallery-system"
    assert env["GALLERY_OPERATOR_PEER_REPORT_URL"] == "http://$(POD_IP):9443/report"  # the pod's address (POD_IP)
    labels = dict(pair.split("=") for pair in env["GALLERY_OPERATOR_OPERATOR_POD_LABELS"].split(","))
    assert labels == policy["spec"]["podSelector"]["matchLabels"]  # the workers' rule finds the operator's pods

    off = render("networkPolicy.enabled=false")
    assert not [d for d in off if d["kind"] == "NetworkPolicy"]
    assert operator_env(off)["GALLERY_OPERATOR_NETWORK_POLICY"] == "false"


@pytest.mark.parametrize("mode", [("rbac.clusterWide=true",), ("rbac.clusterWide=false", "watchNamespaces={a,b}")])
def test_the_operator_may_keep_network_policies_and_nothing_more(mode: tuple[str, ...]) -> None:
    documents = render(*mode)
    rules = [r for d in documents if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
    policies = [r for r in rules if "networkpolicies" in r["resources"]]
    assert policies, "no RBAC for the workers' NetworkPolicies"
    assert all(r["apiGroups"] == ["networking.k8s.io"] and r["resources"] == ["networkpolicies"] for r in policies)
    assert {tuple(r["verbs"]) for r in policies} == {("list", "watch", "create", "update", "delete")}


def test_namespaced_render_with_monitoring_and_network_policy() -> None:
    documents = render(
        "rbac.clusterWide=false",
        "watchNamespaces={media,team-b}",
        "networkPolicy.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "crds.keep=false",
        "fullnameOverride=" + "x" * 80,
    )
    names = kinds(documents)
    assert "Role/" + "x" * 63 in names and "ClusterRole/" + "x" * 63 not in names
    roles = [d for d in documents if d["kind"] == "Role" and d["metadata"]["name"] == "x" * 63]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["media", "team-b"]
    assert "Role/" + "x" * 46 + "-leader-election" in names  # the Lease's, in the release's namespace
    policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
    assert [p["metadata"]["namespace"] for p in policies] == ["gallery-system"]  # the workers' are the operator's
    [rule] = [d for d in documents if d["kind"] == "PrometheusRule"]
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts == [
        "GalleryDownloadFailureRateHigh",
        "GalleryDownloadQueueStuck",
        "GalleryDownloadRetriesHigh",
        "GalleryOperatorReconcileErrors",
    ]
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GALLERY_OPERATOR_NAMESPACES"] == "media,team-b"
    crds = [d for d in documents if d["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2 and not [crd for crd in crds if "annotations" in crd["metadata"]]


def test_two_replicas_elect_a_leader_spread_out_and_keep_one_through_drains() -> None:
    documents = render("replicaCount=2", "leaderElection.leaseDurationSeconds=20")
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    env = operator_env(documents)
    assert env["GALLERY_OPERATOR_LEADER_ELECTION"] == "true"
    assert env["GALLERY_OPERATOR_LEASE_NAME"] == "gallery-gallery-operator"
    assert env["GALLERY_OPERATOR_LEASE_DURATION_SECONDS"] == "20"
    [budget] = [d for d in documents if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["minAvailable"] == 1
    [role] = [d for d in documents if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")]
    assert role["metadata"]["namespace"] == "gallery-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["gallery-gallery-operator"],
            "verbs": ["get", "update", "list", "watch"],
        },
    ]
    # One replica: no budget (minAvailable 1 would block every drain).
    assert not [d for d in render() if d["kind"] == "PodDisruptionBudget"]


def test_two_replicas_without_leader_election_are_refused() -> None:
    result = helm(
        "template", "gallery", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "replicaCount=2", "--set", "leaderElection.enabled=false",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "replicaCount above 1 needs leaderElection.enabled" in result.stderr


def test_values_schema_rejects_typos() -> None:
    result = helm("template", "g", str(CHART), "--set", "operator.maxActve=3", check=False)
    assert result.returncode != 0
    assert "maxActve" in result.stderr
    result = helm("template", "g", str(CHART), "--set", "worker.memoryLimit=lots", check=False)
    assert result.returncode != 0


def test_rendered_manifests_pass_server_validation(cluster: Cluster, namespace: str) -> None:
    """Every rendered object the API server knows is validated by it (server-side dry run)."""
    documents = render("rbac.clusterWide=false", f"watchNamespaces={{{namespace}}}", "networkPolicy.enabled=true")
    for document in documents:
        document["metadata"]["namespace"] = namespace if "namespace" in document["metadata"] else None
        if document["metadata"]["namespace"] is None:
            del document["metadata"]["namespace"]
    manifest = "\n---\n".join(yaml.safe_dump(d) for d in documents)
    assert server_dry_run(cluster, manifest).count("(server dry run)") == len(documents)


def can_i(cluster: Cluster, user: str, verb: str, resource: str, namespace: str) -> bool:
    result = subprocess.run(
        [
            str(build.binary("kubectl")),
            f"--kubeconfig={cluster.kubeconfig}",
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            namespace,
            f"--as={user}",
        ],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() == "yes"


def test_helm_install_runs_the_operator_under_its_rbac(
    cluster: Cluster, namespace: str, site: str, no_local_operator: None, tmp_path: Path
) -> None:
    local = cluster.require_local()  # the operator pod runs as a local process that must reach the site
    core = client.CoreV1Api(cluster.api)
    release_namespace = f"{namespace}-system"
    create_namespace(cluster.api, release_namespace)
    ports = [procs.free_port() for _ in range(3)]
    values = {
        "rbac": {"clusterWide": False},
        "watchNamespaces": [namespace],
        "ports": {"metrics": ports[0], "health": ports[1], "report": ports[2]},
        # Pods of the local node agent share the host's loopback; a real cluster uses the Service's name.
        "operator": {"reportUrl": f"http://127.0.0.1:{ports[2]}/report", "allowPrivateNetworks": True},
    }
    # CRDs installed earlier without Helm (by another test's fixture) are adopted the way Helm documents it.
    extensions = client.ApiextensionsV1Api(cluster.api)
    installed_crds = {crd.metadata.name for crd in extensions.list_custom_resource_definition().items}
    for crd_name in ("gallerydownloads.gallery-operator.dev", "gallerysubscriptions.gallery-operator.dev"):
        if crd_name not in installed_crds:
            continue
        extensions.patch_custom_resource_definition(
            crd_name,
            {
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {
                        "meta.helm.sh/release-name": "gallery",
                        "meta.helm.sh/release-namespace": release_namespace,
                    },
                }
            },
        )
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    installed = helm(
        "install",
        "gallery",
        str(CHART),
        "-n",
        release_namespace,
        "-f",
        str(values_file),
        "--wait",
        "--timeout",
        "120s",
        kubeconfig=cluster.kubeconfig,
        check=False,
    )
    try:
        assert installed.returncode == 0, installed.stderr
        account = f"system:serviceaccount:{release_namespace}:gallery-gallery-operator"
        assert can_i(cluster, account, "create", "jobs", namespace)
        assert can_i(cluster, account, "patch", "gallerydownloads.gallery-operator.dev/status", namespace)
        assert can_i(cluster, account, "create", "tokenreviews.authentication.k8s.io", namespace)
        assert not can_i(cluster, account, "get", "secrets", namespace)
        assert not can_i(cluster, account, "create", "rolebindings", namespace)
        assert not can_i(cluster, account, "delete", "namespaces", namespace)
        assert not can_i(cluster, account, "create", "jobs", "default")  # namespaced mode: only its namespace
        for verb in ("list", "watch", "create", "update", "delete"):
            assert can_i(cluster, account, verb, "networkpolicies.networking.k8s.io", namespace)
        assert not can_i(cluster, account, "create", "networkpolicies.networking.k8s.io", "default")
        # Leader election: its one Lease, in the release's namespace.
        assert can_i(
            cluster, account, "update", "leases.coordination.k8s.io/gallery-gallery-operator", release_namespace
        )
        assert not can_i(cluster, account, "update", "leases.coordination.k8s.io/other", release_namespace)
        assert can_i(
            cluster, account, "watch", "leases.coordination.k8s.io/gallery-gallery-operator", release_namespace
        )
        assert not can_i(cluster, account, "create", "leases.coordination.k8s.io", namespace)
        worker = f"system:serviceaccount:{namespace}:default"
        assert not can_i(cluster, worker, "get", "gallerydownloads.gallery-operator.dev", namespace)
        assert not can_i(cluster, worker, "get", "secrets", namespace)

        downloads = Downloads(cluster.api, namespace)
        create_claim(cluster.api, namespace)
        downloads.create(
            "charted", {"urls": [f"{site}/img/91.jpg", f"{site}/img/92.jpg"], "target": {"pvc": {"claimName": "media"}}}
        )
        status = downloads.wait_phase("charted", {"Succeeded", "Failed"}, timeout=120)
        assert status["phase"] == "Succeeded", status
        assert status["catalogue"]["items"] == 2
        # The operator under the chart's RBAC walled the worker in (and the chart guards the report port).
        networking = client.NetworkingV1Api(cluster.api)
        assert [p.metadata.name for p in networking.list_namespaced_network_policy(namespace).items] == [
            "gallery-operator-workers"
        ]
        assert [p.metadata.name for p in networking.list_namespaced_network_policy(release_namespace).items] == [
            "gallery-gallery-operator"
        ]
        # The progress came through the report endpoint, authenticated by TokenReview under the chart's RBAC.
        pods = core.list_namespaced_pod(release_namespace).items
        [operator_pod] = pods
        logs = (local.workdir / "node" / "pods").glob(
            f"{release_namespace}_{operator_pod.metadata.name}_*/operator.log"
        )
        text = "".join(p.read_text() for p in logs)
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert records, "the operator pod logged nothing"
        # The chart's RBAC covers everything the operator does: nothing was refused.
        assert not [r for r in records if "forbidden" in r["message"].lower()], text[-3000:]
        assert not [r for r in records if r["level"] == "error" and r["logger"].startswith("gallery_operator")]
    finally:
        helm("uninstall", "gallery", "-n", release_namespace, "--wait", kubeconfig=cluster.kubeconfig, check=False)
    crd = client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition(
        "gallerydownloads.gallery-operator.dev"
    )
    assert crd.metadata.name  # crds.keep: uninstalling the release keeps the CRD and every download


def test_dockerfile_keeps_its_promises() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "ARG PYTHON_IMAGE=python:3.13." in dockerfile  # a pinned patch release of the slim base
    assert "-slim" in dockerfile
    assert "uv sync --frozen" in dockerfile  # the lock file decides every version
    assert "USER 65532:65532" in dockerfile
    assert "ffmpeg" in dockerfile
    assert json.loads(dockerfile.split("ENTRYPOINT ")[1].splitlines()[0]) == ["python", "-m"]
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "*"  # everything is excluded unless listed


def test_kustomize_base_is_the_rendered_chart(cluster: Cluster) -> None:
    assert BASE.read_text() == render_base(), "manifests/base drifted from the chart: run `make manifests`"
    built = subprocess.run(
        [str(build.binary("kubectl")), "kustomize", str(REPO / "manifests" / "base")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    documents = [d for d in yaml.safe_load_all(built) if d]
    assert {d["kind"] for d in documents} >= {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole"}
    # A server-side dry run does not create the namespace its objects go into: make it first.
    core = client.CoreV1Api(cluster.api)
    if absent(lambda: core.read_namespace("gallery-operator")):
        core.create_namespace({"metadata": {"name": "gallery-operator"}})
    server_dry_run(cluster, built)
