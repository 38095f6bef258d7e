"""Fixtures for operator e2e tests: the CRD, a running operator, the fixture site, helpers on downloads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster import procs
from tests.cluster.procs import wait_until
from tests.conftest import Cluster
from tests.fixtures.site import serve

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "gallerydownloads.gallery-operator.dev.yaml"


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    """Install (or update) the committed CRD and wait until it is served."""
    ext = client.ApiextensionsV1Api(cluster.api)
    manifest = yaml.safe_load(CRD_FILE.read_text())
    name = manifest["metadata"]["name"]
    try:
        existing = ext.read_custom_resource_definition(name)
        manifest["metadata"]["resourceVersion"] = existing.metadata.resource_version
        ext.replace_custom_resource_definition(name, manifest)
    except ApiException as error:
        if error.status != 404:
            raise
        ext.create_custom_resource_definition(manifest)

    def established() -> bool:
        conditions = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(established, 30, "the CRD to be established")


@dataclass
class OperatorProcess:
    """The operator as a local process, as the chart would run it, with settings passed as environment."""

    kubeconfig: Path
    log: Path
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    metrics_port: int = 0
    instances: ClassVar[list[OperatorProcess]] = []

    def start(self) -> None:
        if self not in OperatorProcess.instances:
            OperatorProcess.instances.append(self)
        report_port = procs.free_port()
        self.health_port = procs.free_port()
        self.metrics_port = procs.free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "GALLERY_OPERATOR_REPORT_PORT": str(report_port),
            "GALLERY_OPERATOR_REPORT_URL": f"http://127.0.0.1:{report_port}/report",
            "GALLERY_OPERATOR_HEALTH_PORT": str(self.health_port),
            "GALLERY_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true",
            "GALLERY_OPERATOR_JOB_TTL_SECONDS": "600",
            **self.settings,
        }
        self.process = procs.spawn([sys.executable, "-m", "gallery_operator"], self.log, env=env)
        wait_until(self.healthy, 30, f"the operator's /healthz (log: {self.log})")

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"operator exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as when a node dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """A running operator (per-namespace cap 2, so one test's downloads cannot starve another's)."""
    if cluster.local is None and os.environ.get("GALLERY_E2E_OPERATOR") == "installed":
        pytest.skip("the operator is installed in the cluster; this fixture runs a local one")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(
        cluster.kubeconfig,
        log,
        {"GALLERY_OPERATOR_MAX_ACTIVE": "50", "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": "2"},
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    with serve() as url:
        yield url


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

    def jobs(self, name: str) -> list[Any]:
        batch = client.BatchV1Api(self.api)
        uid = self.get(name)["metadata"]["uid"]
        return list(batch.list_namespaced_job(self.namespace, label_selector=f"{API_GROUP}/download-uid={uid}").items)


@pytest.fixture
def downloads(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Downloads:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": "media"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    return Downloads(cluster.api, namespace)
