"""The operator as a local process against the local control plane, as the chart would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness import REPO_ROOT, procs
from gallery_harness.controlplane import LocalCluster
from gallery_harness.procs import wait_until


@dataclass
class OperatorProcess:
    """The operator as a local process, as the chart would run it, with settings passed as environment."""

    kubeconfig: Path
    log: Path
    settings: dict[str, str] = field(default_factory=dict)
    report_host: str = "127.0.0.1"  # where worker pods reach the report endpoint (a real node: its bridge address)
    process: subprocess.Popen[bytes] | None = None
    health_port: int = 0
    metrics_port: int = 0
    report_url: str = ""
    ready_seconds: float = 60.0
    """How long start() waits for /readyz (benchmarks that kill and restart it on a loaded machine wait longer)."""
    launcher: tuple[str, ...] = ()
    """A command the operator's command line is handed to (the benchmarks' `env -u` for an older revision)."""
    instances: ClassVar[list[OperatorProcess]] = []

    def start(self, up: Callable[[], bool] | None = None) -> None:
        """Start the process and wait until ``up()`` (default: /readyz answers 200)."""
        if self not in OperatorProcess.instances:
            OperatorProcess.instances.append(self)
        for attempt in range(3):
            try:
                self._start_once(up or self.healthy)
                return
            except TimeoutError:
                # A free port can be taken by another process between picking it and the operator binding it (the
                # operator's failed start ends it): start again on new ports, as a Deployment's pod would restart.
                lost_port = self.process is not None and self.process.poll() is not None
                if attempt == 2 or not lost_port or "address already in use" not in self.log.read_text()[-3000:]:
                    raise

    def _start_once(self, up: Callable[[], bool]) -> None:
        self.launch()
        wait_until(up, self.ready_seconds, f"the operator's /healthz (log: {self.log})")

    def launch(self, *options: str) -> None:
        """Start the process on fresh ports without waiting for it (``options``: the operator's command line)."""
        report_port = procs.free_port()
        self.report_url = f"http://{self.report_host}:{report_port}/report"
        self.health_port = procs.free_port()
        self.metrics_port = procs.free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "GALLERY_OPERATOR_REPORT_PORT": str(report_port),
            "GALLERY_OPERATOR_REPORT_URL": self.report_url,
            # Where another local replica forwards reports when this one leads (leader election).
            "GALLERY_OPERATOR_PEER_REPORT_URL": f"http://127.0.0.1:{report_port}/report",
            "GALLERY_OPERATOR_HEALTH_PORT": str(self.health_port),
            "GALLERY_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true",
            # Fixture sites listen on random ports: the worker NetworkPolicy lets workers reach every port.
            "GALLERY_OPERATOR_NETWORK_POLICY_PORTS": "",
            "GALLERY_OPERATOR_JOB_TTL_SECONDS": "600",
            **self.settings,
        }
        self.process = procs.spawn(
            [*self.launcher, sys.executable, "-m", "gallery_operator", *options], self.log, env=env
        )

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"operator exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
        try:
            # Ready, not only alive: the operator's caches are filled, as a Deployment's readiness probe waits for.
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
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

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM, SIGKILL after ``grace`` seconds (a pod's is 30 s); the exit code (-9: it was killed)."""
        code = None
        if self.process is not None:
            code = procs.stop(self.process, grace)
            self.process = None
        return code


def operator_for(kubeconfig: Path, local: LocalCluster | None, log: Path, settings: dict[str, str]) -> OperatorProcess:
    """An operator process whose worker pods run on the cluster's node: on a real node from the project's image,
    reporting to the address pods can reach."""
    real_node = local.real_node if local else None
    if real_node:
        settings = {"GALLERY_OPERATOR_WORKER_IMAGE": real_node.images["project"].ref, **settings}
    return OperatorProcess(kubeconfig, log, settings, report_host=local.service_host if local else "127.0.0.1")


CRD_FILE = REPO_ROOT / "crds" / "gallerydownloads.gallery-operator.dev.yaml"


def apply_crd(api: client.ApiClient) -> None:
    """Install (or update) the committed CRDs (GalleryDownload, GallerySubscription) and wait until they are served."""
    for path in sorted(CRD_FILE.parent.glob("*.yaml")):
        _apply_crd(api, path)


def _apply_crd(api: client.ApiClient, path: Path) -> None:
    ext = client.ApiextensionsV1Api(api)
    manifest = yaml.safe_load(path.read_text())
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
