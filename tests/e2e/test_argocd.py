"""GitOps on real parts: a real Argo CD installs the operator from the Helm chart in a git repository, syncs
GalleryDownloads from the same repository, shows their health through the project's health check, and prunes them.

Everything Argo CD is told comes from docs/argocd.md: the `argocd-cm` snippet and the two Application examples are
read out of the page, and only what a loopback cluster needs is changed (repoURL, destination, release name, ports).
The operator runs as the chart's Deployment, a pod of the session's node (the node agent runs it from the project's
environment, as in test_chart.py).
"""

from __future__ import annotations

import copy
import functools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from gallery_harness import procs
from gallery_harness.argocd import ArgoCD
from gallery_harness.controlplane import LocalCluster
from gallery_harness.gitserver import GitRepository, GitServer
from gallery_harness.kube import absent, create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP, API_VERSION, SUBSCRIPTION_PLURAL
from tests.conftest import Cluster
from tests.e2e.conftest import GITOPS_FOLDER, REPO, Downloads, download_file, subscription_file

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "argocd.md"
CHART = REPO / "charts" / "gallery-operator"


def doc_documents() -> list[dict[str, Any]]:
    """Every YAML example of docs/argocd.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def doc_argocd_cm() -> dict[str, str]:
    """The argocd-cm data the page tells users to set (the ConfigMap and the `data:` additions)."""
    data: dict[str, str] = {}
    for document in doc_documents():
        is_argocd_cm = document.get("kind") == "ConfigMap" and document["metadata"]["name"] == "argocd-cm"
        if is_argocd_cm or set(document) == {"data"}:
            data.update(document["data"])
    assert any(key.startswith("resource.customizations.health.") for key in data), "no health check in the page"
    return data


def doc_application(name: str) -> dict[str, Any]:
    [application] = [d for d in doc_documents() if d.get("kind") == "Application" and d["metadata"]["name"] == name]
    return copy.deepcopy(application)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


@dataclass
class GitOps:
    argocd: ArgoCD
    repo: GitRepository
    namespace: str
    local: LocalCluster
    downloads: Downloads

    def resource(self, name: str, kind: str = "GalleryDownload") -> dict[str, Any]:
        """The downloads Application's record of one resource ({} while Argo CD does not list it)."""
        resources = self.argocd.application("media-downloads").get("status", {}).get("resources", [])
        return next((r for r in resources if r["kind"] == kind and r["name"] == name), {})

    def health(self, name: str, kind: str = "GalleryDownload") -> tuple[str, str]:
        health = self.resource(name, kind).get("health") or {}
        return str(health.get("status", "")), str(health.get("message", ""))

    def subscription_status(self, name: str) -> dict[str, Any]:
        custom = client.CustomObjectsApi(self.downloads.api)
        found = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, SUBSCRIPTION_PLURAL, name)
        return dict(found.get("status") or {})

    def app_health(self, application: str = "media-downloads") -> str:
        return str(self.argocd.application(application).get("status", {}).get("health", {}).get("status", ""))

    def synced(self, application: str = "media-downloads") -> bool:
        status = self.argocd.application(application).get("status", {})
        return bool(
            status.get("sync", {}).get("status") == "Synced"
            and status.get("sync", {}).get("revision") == self.repo.commits[-1]
        )

    def push(self, files: dict[str, str | None], message: str) -> None:
        """Commit to git and tell Argo CD (as the git host's webhook would), then wait for the sync."""
        self.repo.commit(files, message)
        self.argocd.refresh("media-downloads")
        wait_until(self.synced, 120, f"Argo CD to sync {self.repo.commits[-1]} (log: {self.argocd.workdir})")


def _cleanup(cluster: Cluster, argocd: ArgoCD, namespaces: list[str], release: str) -> None:
    """Without cascading (the chart's CRD stays: other tests' downloads live in it), then the release's objects."""
    for application in ("media-downloads", "gallery-operator"):
        argocd.delete_application(application)
    argocd.stop()
    core = client.CoreV1Api(cluster.api)
    for name in namespaces:
        absent(functools.partial(core.delete_namespace, name))  # the release's may not exist if the install failed
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    selector = f"app.kubernetes.io/instance={release}"
    for binding in rbac.list_cluster_role_binding(label_selector=selector).items:
        rbac.delete_cluster_role_binding(binding.metadata.name)
    for role in rbac.list_cluster_role(label_selector=selector).items:
        rbac.delete_cluster_role(role.metadata.name)


@pytest.fixture(scope="module")
def gitops(cluster: Cluster, site: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOps]:
    local = cluster.require_local()
    # The chart's operator reconciles this namespace; a session-wide local operator must not race it.
    paused = [p for p in OperatorProcess.instances if p.process is not None]
    for process in paused:
        process.stop()
    workdir = tmp_path_factory.mktemp("argocd")
    namespace = f"argo-{uuid.uuid4().hex[:8]}"
    release = f"gallery-{namespace}"
    create_namespace(cluster.api, namespace)
    # The claim is made outside Argo CD: the node agent does not bind claims, and Argo CD counts an unbound claim as
    # Progressing, which would hold the Application's health there.
    create_claim(cluster.api, namespace)
    argocd_cm = {**doc_argocd_cm(), "timeout.reconciliation": "20s"}
    with GitServer(workdir / "git") as server:
        repo = server.repository("gitops", workdir / "worktree")
        repo.copy_tree(CHART, "charts/gallery-operator")
        repo.commit({f"{GITOPS_FOLDER}/README.md": "GalleryDownloads of the media team.\n"}, "The chart, a folder")
        argocd = ArgoCD(cluster.kubeconfig, workdir / "argocd", argocd_cm)
        try:
            argocd.start()
            ports = [procs.free_port() for _ in range(3)]
            local_values = {
                "rbac": {"clusterWide": False},
                "watchNamespaces": [namespace],
                "ports": {"metrics": ports[0], "health": ports[1], "report": ports[2]},
                # The node agent's pods share the host's loopback; a real cluster uses the Service's name.
                "operator": {"reportUrl": f"http://127.0.0.1:{ports[2]}/report", "allowPrivateNetworks": True},
            }
            operator_app = doc_application("gallery-operator")
            source = operator_app["spec"]["source"]
            source["repoURL"] = repo.url
            source["helm"]["releaseName"] = release
            source["helm"]["valuesObject"] = merge(source["helm"].get("valuesObject") or {}, local_values)
            operator_app["spec"]["destination"] = {"server": argocd.server, "namespace": f"{namespace}-system"}
            argocd.apply_application(operator_app)
            gitops = GitOps(argocd, repo, namespace, local, Downloads(cluster.api, namespace))
            wait_until(
                lambda: gitops.synced("gallery-operator") and gitops.app_health("gallery-operator") == "Healthy",
                240,
                f"Argo CD to install the operator from the chart (logs: {argocd.workdir / 'logs'})",
            )
            downloads_app = doc_application("media-downloads")
            downloads_app["spec"]["source"]["repoURL"] = repo.url
            downloads_app["spec"]["destination"] = {"server": argocd.server, "namespace": namespace}
            argocd.apply_application(downloads_app)
            wait_until(gitops.synced, 120, "Argo CD to sync the downloads folder")
            yield gitops
        finally:
            _cleanup(cluster, argocd, [namespace, f"{namespace}-system"], release)
            for process in paused:
                process.start()


def test_argocd_shows_each_download_health_and_the_application_follows(gitops: GitOps, site: str) -> None:
    downloads = gitops.downloads
    gitops.push(
        download_file("fetched", {"urls": [f"{site}/img/2101.jpg", f"{site}/img/2102.jpg"]})
        | download_file("slow", {"urls": [f"{site}/slow/2103.jpg?seconds=15"]}),
        "Two downloads, one slow",
    )

    def running_and_progressing() -> bool:
        health, _ = gitops.health("slow")
        running = downloads.status("slow").get("phase") == "Running"
        return running and health == "Progressing" and gitops.app_health() == "Progressing"

    wait_until(running_and_progressing, 60, "the running download (and the Application) to show Progressing")

    def all_healthy() -> bool:
        return gitops.health("fetched")[0] == gitops.health("slow")[0] == "Healthy" == gitops.app_health()

    wait_until(all_healthy, 90, "both downloads and the Application to be Healthy")
    assert downloads.status("fetched")["phase"] == "Succeeded"
    assert downloads.status("slow")["phase"] == "Succeeded"

    gitops.push(download_file("paused", {"urls": [f"{site}/img/2104.jpg"], "suspend": True}), "A suspended one")
    wait_until(
        lambda: gitops.health("paused")[0] == "Suspended" == gitops.app_health(),
        60,
        "the suspended download (and the Application) to show Suspended",
    )
    assert downloads.status("paused")["phase"] == "Suspended"

    gitops.push(download_file("broken", {"urls": [f"{site}/missing/2105.jpg"]}), "A download that fails")
    wait_until(lambda: gitops.health("broken")[0] == "Degraded", 90, "the failed download to show Degraded")
    status = downloads.status("broken")
    assert status["phase"] == "Failed"
    stalled = downloads.condition("broken", "Stalled")
    _, message = gitops.health("broken")
    assert message.startswith(f"{stalled['reason']}: "), message
    wait_until(lambda: gitops.app_health() == "Degraded", 30, "the Application to show Degraded")


def test_pruning_a_download_from_git_runs_its_deletion_policy(gitops: GitOps, site: str) -> None:
    downloads = gitops.downloads
    gitops.push(
        download_file("kept", {"urls": [f"{site}/img/2111.jpg"]})
        | download_file("wiped", {"urls": [f"{site}/img/2112.jpg"], "deletionPolicy": "Delete"}),
        "One download that keeps its files, one that removes them",
    )
    wait_until(
        lambda: gitops.health("kept")[0] == gitops.health("wiped")[0] == "Healthy",
        90,
        "both downloads to be Healthy",
    )
    claim = gitops.local.volumes_root / gitops.namespace / "media"
    assert (claim / "kept" / "2111.jpg").exists()
    assert (claim / "wiped" / "2112.jpg").exists()

    gitops.push({**download_file("kept", None), **download_file("wiped", None)}, "Remove both")
    for name in ("kept", "wiped"):

        def pruned(name: str = name) -> bool:
            return absent(lambda: downloads.get(name))

        wait_until(pruned, 90, f"{name} to be pruned (its finalizer released)")
    wait_until(lambda: not gitops.resource("kept") and not gitops.resource("wiped"), 30, "Argo CD to drop both")
    assert (claim / "kept" / "2111.jpg").exists()  # deletionPolicy Retain (the default)
    assert list((claim / "wiped").iterdir()) == []  # deletionPolicy Delete: the cleanup Job emptied its folder
    core = client.CoreV1Api(gitops.downloads.api)
    events = core.list_namespaced_event(gitops.namespace, field_selector="involvedObject.name=wiped").items
    assert "DataDeleted" in {e.reason for e in events}


def test_argocd_shows_subscription_health(gitops: GitOps, site: str) -> None:
    template = {"urls": [f"{site}/img/2121.jpg"], "target": {"pvc": {"claimName": "media", "subPath": "library"}}}
    gitops.push(
        subscription_file("library", {"interval": "12h", "downloadTemplate": template})
        | subscription_file("held", {"interval": "12h", "suspend": True, "downloadTemplate": template}),
        "Two subscriptions, one suspended",
    )

    def health(name: str) -> str:
        return gitops.health(name, "GallerySubscription")[0]

    wait_until(lambda: health("held") == "Suspended", 90, "the suspended subscription to show Suspended")
    wait_until(lambda: health("library") == "Healthy", 120, "the subscription to show Healthy")


def test_argocd_shows_subscription_progressing_and_degraded(gitops: GitOps, site: str) -> None:
    # A subscription in a namespace the chart's operator does not watch is never picked up: Progressing.
    unwatched = f"{gitops.namespace}-unwatched"
    create_namespace(gitops.downloads.api, unwatched)
    template = {"urls": [f"{site}/img/2131.jpg"], "target": {"pvc": {"claimName": "media"}}}
    [(path, text)] = subscription_file("waiting", {"interval": "12h", "downloadTemplate": template}).items()
    document = yaml.safe_load(text or "")
    document["metadata"]["namespace"] = unwatched
    waiting: dict[str, str | None] = {path: yaml.safe_dump(document)}
    # A subscription whose every run fails for a permanent reason (the page is gone) stalls after three runs.
    failing = {"urls": [f"{site}/missing/2132.jpg"], "target": {"pvc": {"claimName": "media"}}}
    failing |= {"options": {"retries": 0}}
    gitops.push(
        waiting | subscription_file("gone", {"interval": "10s", "jitter": "0s", "downloadTemplate": failing}),
        "A subscription nobody picks up, one that keeps failing",
    )

    def health(name: str) -> tuple[str, str]:
        return gitops.health(name, "GallerySubscription")

    wait_until(lambda: health("waiting")[0] == "Progressing", 90, "the unobserved subscription to show Progressing")
    assert "Waiting for the operator" in health("waiting")[1]
    wait_until(lambda: health("gone")[0] == "Degraded", 240, "the failing subscription to show Degraded")
    stalled = next(c for c in gitops.subscription_status("gone")["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert health("gone")[1].startswith(f"{stalled['reason']}: "), health("gone")
    assert gitops.app_health() == "Degraded"

    # Not both removed: Argo CD's automated sync refuses to empty an Application (allowEmpty is off).
    gone = {"interval": "10s", "suspend": True, "downloadTemplate": failing}
    gitops.push(subscription_file("waiting", None) | subscription_file("gone", gone), "Remove one, suspend the other")
    client.CoreV1Api(gitops.downloads.api).delete_namespace(unwatched)
