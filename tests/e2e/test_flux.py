"""GitOps on real parts: a real Flux (source-controller and kustomize-controller built from source) syncs
GalleryDownloads from a git repository and judges their health with kstatus alone: the Kustomization waits for the
downloads (`wait: true`), goes Ready when they succeed and fails its health check naming the one that failed.

What Flux is told comes from docs/flux.md: the GitRepository and the Kustomization are read out of the page, and only
what a loopback cluster needs is changed (url, targetNamespace, intervals). The operator is the session's operator;
the downloads run as worker pods of the session's node (a real kubelet under `make test-real-node`).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from gallery_harness import flux as fluxlib
from gallery_harness.flux import Flux, condition
from gallery_harness.gitserver import GitRepository, GitServer
from gallery_harness.kube import absent, create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from tests.conftest import Cluster
from tests.e2e.conftest import GITOPS_FOLDER, REPO, Downloads, download_file

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "flux.md"


def doc_object(kind: str) -> dict[str, Any]:
    """The one object of ``kind`` among docs/flux.md's YAML examples."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)]
    [document] = [d for d in blocks if d.get("kind") == kind]
    return copy.deepcopy(document)


@dataclass
class FluxGitOps:
    flux: Flux
    repo: GitRepository
    source: str
    kustomization: str
    downloads: Downloads

    def ready(self) -> dict[str, Any]:
        return condition(self.flux.kustomization(self.kustomization), "Ready")

    def applied(self, field: str = "lastAttemptedRevision") -> bool:
        """The Kustomization has attempted (or applied) the latest commit."""
        revision = str(self.flux.kustomization(self.kustomization).get("status", {}).get(field, ""))
        return revision.endswith(self.repo.commits[-1])

    def push(self, files: dict[str, str | None], message: str) -> None:
        """Commit, tell Flux (what the git host's webhook to a notification receiver does), and wait until the
        Kustomization has started on the commit."""
        self.repo.commit(files, message)
        self.flux.reconcile("gitrepositories", self.source, fluxlib.SOURCE_GROUP, fluxlib.SOURCE_VERSION)
        wait_until(self.applied, 120, f"Flux to apply {self.repo.commits[-1]} (logs: {self.flux.workdir / 'logs'})")


@pytest.fixture(scope="module")
def gitops(
    cluster: Cluster, crd: None, operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FluxGitOps]:
    workdir = tmp_path_factory.mktemp("flux")
    namespace = f"flux-{uuid.uuid4().hex[:8]}"
    create_namespace(cluster.api, namespace)
    create_claim(cluster.api, namespace)
    with GitServer(workdir / "git") as server:
        repo = server.repository("gitops", workdir / "worktree")
        repo.commit({f"{GITOPS_FOLDER}/README.md": "GalleryDownloads of the media team.\n"}, "A folder")
        source, kustomization = doc_object("GitRepository"), doc_object("Kustomization")
        source["spec"]["url"] = repo.url
        kustomization["spec"]["targetNamespace"] = namespace
        names = source["metadata"]["name"], kustomization["metadata"]["name"]
        flux = Flux(cluster.kubeconfig, workdir / "flux")
        try:
            flux.start()
            flux.apply([source, kustomization])
            gitops = FluxGitOps(flux, repo, *names, Downloads(cluster.api, namespace))
            wait_until(lambda: gitops.applied("lastAppliedRevision"), 120, "Flux to apply the first commit")
            yield gitops
        finally:
            flux.delete("kustomization", names[1])
            flux.delete("gitrepository", names[0])
            flux.stop()
            client.CoreV1Api(cluster.api).delete_namespace(namespace)


def test_the_kustomization_waits_for_the_downloads_and_goes_ready(gitops: FluxGitOps, site: str) -> None:
    downloads = gitops.downloads
    gitops.push(
        download_file("fetched", {"urls": [f"{site}/img/2201.jpg", f"{site}/img/2202.jpg"]})
        | download_file("slow", {"urls": [f"{site}/slow/2203.jpg?seconds=15"]}),
        "Two downloads, one slow",
    )

    def running_and_waiting() -> bool:
        ready = gitops.ready()
        return downloads.status("slow").get("phase") == "Running" and ready.get("status") == "Unknown"

    wait_until(running_and_waiting, 60, "the Kustomization to wait (Ready Unknown) while a download runs")
    assert gitops.ready()["reason"] == "Progressing", gitops.ready()

    wait_until(lambda: gitops.ready().get("status") == "True", 120, "the Kustomization to be Ready")
    # Ready only once both downloads are: kstatus saw them Current (Ready=True, Reconciling=False).
    assert downloads.status("fetched")["phase"] == "Succeeded"
    assert downloads.status("slow")["phase"] == "Succeeded"
    assert gitops.applied("lastAppliedRevision")


def test_a_failed_download_fails_the_health_check_naming_it(gitops: FluxGitOps, site: str) -> None:
    downloads = gitops.downloads
    gitops.push(download_file("broken", {"urls": [f"{site}/missing/2211.jpg"]}), "A download that fails")

    def failed() -> bool:
        ready = gitops.ready()
        return ready.get("status") == "False" and ready.get("reason") == "HealthCheckFailed"

    wait_until(failed, 120, "the Kustomization to report HealthCheckFailed")
    assert downloads.status("broken")["phase"] == "Failed"
    message = gitops.ready()["message"]
    assert f"GalleryDownload/{downloads.namespace}/broken" in message, message

    gitops.push(download_file("broken", None), "Remove the failing download")
    wait_until(lambda: gitops.ready().get("status") == "True", 120, "the Kustomization to be Ready again")
    wait_until(lambda: absent(lambda: downloads.get("broken")), 60, "the removed download to be pruned")
