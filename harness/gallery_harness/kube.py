"""Small helpers for tests that talk to the Kubernetes API."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from gallery_harness import build, procs
from gallery_harness.procs import wait_until


class Watching:
    """Watches of a namespace started now, in threads: each hands every event's type and object to its callback.
    etcd's revisions (the objects' resourceVersions) order what they see across watches."""

    def __init__(self, namespace: str, follows: list[tuple[Callable[..., Any], Callable[[str, Any], None]]]) -> None:
        self.ended: Exception | None = None
        self._watches = [watch.Watch() for _ in follows]
        self._threads = [
            threading.Thread(target=self._follow, args=(w, listing, namespace, record), daemon=True)
            for w, (listing, record) in zip(self._watches, follows, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, w: watch.Watch, listing: Any, namespace: str, record: Callable[[str, Any], None]) -> None:
        try:
            for event in w.stream(listing, namespace, timeout_seconds=300):
                record(event["type"], event["object"])
        except Exception as error:  # the watch ends with the cluster; a test that still needed it fails waiting
            self.ended = error

    def stop(self) -> None:
        for w in self._watches:
            w.stop()


def absent(read: Callable[[], object]) -> bool:
    """True when ``read()`` answers 404 Not Found; other API errors propagate."""
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def create_namespace(api: client.ApiClient, name: str) -> None:
    """A namespace, ready for pods: its default ServiceAccount (made by a controller) exists."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_until(lambda: core.list_namespaced_service_account(name).items, 30, f"the default ServiceAccount in {name}")


def create_claim(api: client.ApiClient, namespace: str, name: str = "media", size: str = "1Gi") -> None:
    client.CoreV1Api(api).create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        },
    )


@dataclass(frozen=True)
class Kubectl:
    """kubectl on one kubeconfig: what the GitOps harnesses (Argo CD, Flux) install their CRDs and settings with."""

    kubeconfig: Path

    def run(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        command = [str(build.binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, input=input_text, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()}")
        return result.stdout

    def apply(self, documents: Sequence[Any], namespace: str | None = None) -> None:
        """Server-side apply of ``documents`` (as the field manager gallery-tests)."""
        manifest = yaml.safe_dump_all(list(documents))
        args = ["apply", "--server-side", "--force-conflicts", "--field-manager=gallery-tests", "-f", "-"]
        self.run(*args, *(["-n", namespace] if namespace else []), input_text=manifest)


def crds_established(api: client.ApiClient, names: Sequence[str]) -> bool:
    """True when every CRD of ``names`` (plural.group) is Established."""
    extensions = client.ApiextensionsV1Api(api)
    for name in names:
        conditions = extensions.read_custom_resource_definition(name).status.conditions
        if not any(c.type == "Established" and c.status == "True" for c in conditions or []):
            return False
    return True


@dataclass
class OutOfCluster:
    """Controllers that manage a cluster from outside it (Argo CD, Flux): processes started by :meth:`spawn`, each
    logging to ``workdir/logs/<name>.log``, checked together and stopped together."""

    kubeconfig: Path
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, kw_only=True)
    api: client.ApiClient | None = field(default=None, kw_only=True)

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.processes[name] = procs.spawn(argv, self.log(name), env=env, cwd=self.workdir)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            procs.stop(process)
        self.processes.clear()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}: {self.log(name).read_text()[-3000:]}")

    def serves(self, url: str) -> bool:
        """The endpoint answers 200 (and every process still runs)."""
        self.check_alive()
        return procs.serves(url)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)
