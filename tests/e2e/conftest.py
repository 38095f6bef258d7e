"""Fixtures for operator e2e tests: the CRD, a running operator, the fixture site, helpers on downloads."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gallery_harness import REPO_ROOT
from gallery_harness.kube import create_claim
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.localoperator import operator_for as local_operator_for
from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from gallery_harness.site import image_bytes, serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from tests.conftest import Cluster, s3_server_on

REPO = REPO_ROOT

# The real-node tier (tests/e2e/realnode) needs the session's node to be a real kubelet: make test-real-node.
collect_ignore = [] if os.environ.get("GALLERY_E2E_NODE") == "kubelet" else ["realnode"]


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    """The committed CRD, installed (or updated) and served."""
    apply_crd(cluster.api)


def operator_for(cluster: Cluster, log: Path, settings: dict[str, str]) -> OperatorProcess:
    """An operator process for the session's cluster (its worker pods run on the session's node)."""
    return local_operator_for(cluster.kubeconfig, cluster.local, log, settings)


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """A running operator (per-namespace cap 2, so one test's downloads cannot starve another's)."""
    if cluster.local is None and os.environ.get("GALLERY_E2E_OPERATOR") == "installed":
        pytest.skip("the operator is installed in the cluster; this fixture runs a local one")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    settings = {"GALLERY_OPERATOR_MAX_ACTIVE": "50", "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": "2"}
    process = operator_for(cluster, log, settings)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def no_local_operator() -> Iterator[None]:
    """Two operators must not reconcile the same downloads: pause the session's local one if it runs."""
    paused = [p for p in OperatorProcess.instances if p.process is not None]
    for process in paused:
        process.stop()
    yield
    for process in paused:
        process.start()


@pytest.fixture(scope="session")
def site(cluster: Cluster) -> Iterator[str]:
    """The fixture site where the cluster's pods reach it (a real node's pods cannot reach loopback)."""
    with serve(host=cluster.service_host) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The S3 server where the cluster's pods reach it."""
    yield from s3_server_on(cluster.service_host, tmp_path_factory)


def pvc_spec(urls: list[str], **extra: Any) -> dict[str, Any]:
    """A download of ``urls`` into the test namespace's claim `media`, without retries (tests want quick ends)."""
    return {"urls": urls, "target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}, **extra}


GITOPS_FOLDER = "downloads/media"
"""The folder of the GitOps tests' repository that Argo CD and Flux sync (docs/argocd.md, docs/flux.md)."""


def _gitops_file(kind: str, name: str, spec: dict[str, Any] | None) -> dict[str, str | None]:
    if spec is None:  # removed from git
        return {f"{GITOPS_FOLDER}/{name}.yaml": None}
    document = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return {f"{GITOPS_FOLDER}/{name}.yaml": yaml.safe_dump(document)}


def download_file(name: str, spec: dict[str, Any] | None) -> dict[str, str | None]:
    """A GalleryDownload's file in the GitOps folder (None: the file removed), into the claim `media`, no retries."""
    full = None if spec is None else {"target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}, **spec}
    return _gitops_file("GalleryDownload", name, full)


def subscription_file(name: str, spec: dict[str, Any] | None) -> dict[str, str | None]:
    """A GallerySubscription's file in the GitOps folder (None: the file removed)."""
    return _gitops_file("GallerySubscription", name, spec)


@dataclass
class Downloads:
    """Create, read and wait on GalleryDownloads in one namespace."""

    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "GalleryDownload",
            "metadata": {"name": name},
            "spec": spec,
        }
        result: dict[str, Any] = self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, body
        )
        return result

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name
        )
        return result

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions", []) if c["type"] == kind), {})

    def wait_phase(self, name: str, phases: set[str], timeout: float = 90) -> dict[str, Any]:
        started = time.monotonic()
        wait_until(
            lambda: self.status(name).get("phase") in phases,
            timeout,
            f"{self.namespace}/{name} to reach {sorted(phases)}",
        )
        status = self.status(name)
        status["_waited"] = time.monotonic() - started
        return status

    def reports_live(self, name: str) -> bool:
        """Running with an item done: only a live report (not the termination message at the end) shows this."""
        status = self.status(name)
        return status.get("phase") == "Running" and status.get("progress", {}).get("itemsDone", 0) >= 1

    def jobs(self, name: str) -> list[Any]:
        batch = client.BatchV1Api(self.api)
        uid = self.get(name)["metadata"]["uid"]
        return list(batch.list_namespaced_job(self.namespace, label_selector=f"{API_GROUP}/download-uid={uid}").items)


@pytest.fixture
def downloads(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Downloads:
    create_claim(cluster.api, namespace)
    return Downloads(cluster.api, namespace)


def check_catalogue(records: list[dict[str, Any]], files: dict[str, bytes], images: range) -> None:
    """The catalogue names each of the site's ``images`` once, and the stored files are exactly those, with the
    catalogue's sizes and digests."""
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == len(images), paths
    expected = {f"{n}.jpg": image_bytes(n) for n in images}
    assert sorted(files) == sorted(expected), sorted(files)
    for record in records:
        body = files[record["path"]]
        assert body == expected[record["path"]]
        assert (record["size"], record["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())


def s3_target(cluster: Cluster, namespace: str, server: S3Server, bucket: str) -> dict[str, Any]:
    """A new bucket on ``server`` and a Secret `s3` of its keys in ``namespace``: the spec's target for them."""
    server.client().create_bucket(Bucket=bucket)
    keys = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    client.CoreV1Api(cluster.api).create_namespaced_secret(namespace, {"metadata": {"name": "s3"}, "stringData": keys})
    credentials = {"credentialsSecret": {"name": "s3"}}
    return {"s3": {"bucket": bucket, "endpoint": server.endpoint, "forcePathStyle": True, **credentials}}


def s3_files(server: S3Server, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``, by its key below the prefix."""
    s3 = server.client()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"].removeprefix(prefix): s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}
