"""Flux's source-controller and kustomize-controller on loopback, against a cluster, out of cluster.

What Flux needs to run outside a cluster (docs/local-cluster.md, "Flux"): the two controllers built from their own
modules (harness/go/flux-*), `KUBECONFIG` and `RUNTIME_NAMESPACE` in their environment, distinct metrics and health
addresses; the source-controller's artifact storage (`--storage-path`) served on loopback (`--storage-addr`) and
advertised there (`--storage-adv-addr`), where the kustomize-controller fetches each revision from; the CRDs of
both (`config/crd/bases/` of each module). No leader election (one replica each), no notification controller.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import config

from gallery_harness import build, procs
from gallery_harness.kube import Kubectl, OutOfCluster, crds_established
from gallery_harness.procs import wait_until

NAMESPACE = "flux-system"
FLUX_VERSION = "v1.9.6"
SOURCE = ("flux-source-controller", "github.com/fluxcd/source-controller")
KUSTOMIZE = ("flux-kustomize-controller", "github.com/fluxcd/kustomize-controller")
SOURCE_GROUP, SOURCE_VERSION = "source.toolkit.fluxcd.io", "v1"
KUSTOMIZE_GROUP, KUSTOMIZE_VERSION = "kustomize.toolkit.fluxcd.io", "v1"


def crd_documents(module: tuple[str, str]) -> list[Any]:
    """The CRDs of one controller, from its module source."""
    folder = build.module_source(*module) / "config" / "crd" / "bases"
    return [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]


def condition(resource: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A condition of a Flux object's status ({} while it has none of that type)."""
    conditions = (resource.get("status") or {}).get("conditions") or []
    return next((dict(c) for c in conditions if c.get("type") == kind), {})


@dataclass
class Flux(OutOfCluster):
    """A running Flux (source-controller, kustomize-controller) managing the cluster of ``kubeconfig``.

    ``start()`` then ``stop()``; GitRepositories and Kustomizations live in any namespace (both controllers watch
    all namespaces), the tests put theirs in ``flux-system`` as `flux bootstrap` does.
    """

    def start(self) -> None:
        source_bin = build.binary("source-controller")
        kustomize_bin = build.binary("kustomize-controller")
        kubectl = Kubectl(self.kubeconfig)
        kubectl.run("create", "namespace", NAMESPACE, check=False)
        kubectl.apply(crd_documents(SOURCE) + crd_documents(KUSTOMIZE))
        self.api = config.new_client_from_config(str(self.kubeconfig))
        crds = [f"gitrepositories.{SOURCE_GROUP}", f"kustomizations.{KUSTOMIZE_GROUP}"]
        wait_until(lambda: crds_established(self.api, crds), 60, "Flux's CRDs to be established")

        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(exist_ok=True)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.workdir),
            "TMPDIR": str(self.workdir / "tmp"),
            "KUBECONFIG": str(self.kubeconfig),
            "RUNTIME_NAMESPACE": NAMESPACE,
        }
        storage_port = procs.free_port()
        source_health = self._controller(
            "source-controller",
            [
                str(source_bin),
                f"--storage-path={storage}",
                f"--storage-addr=127.0.0.1:{storage_port}",
                f"--storage-adv-addr=127.0.0.1:{storage_port}",
            ],
            env,
        )
        kustomize_health = self._controller("kustomize-controller", [str(kustomize_bin)], env)
        for name, port in (("source-controller", source_health), ("kustomize-controller", kustomize_health)):
            url = f"http://127.0.0.1:{port}/readyz"
            wait_until(functools.partial(self.serves, url), 60, f"{name} to be ready (log: {self.log(name)})")

    # -- Flux objects ----------------------------------------------------------------------------

    def apply(self, documents: Sequence[Mapping[str, Any]]) -> None:
        Kubectl(self.kubeconfig).apply([dict(d) for d in documents], NAMESPACE)

    def kustomization(self, name: str) -> dict[str, Any]:
        self.check_alive()
        found = self.custom.get_namespaced_custom_object(
            KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, NAMESPACE, "kustomizations", name
        )
        return dict(found)

    def reconcile(self, kind_plural: str, name: str, group: str, version: str) -> None:
        """Ask a controller to reconcile now (what `flux reconcile` and the notification receiver's webhook do)."""
        body = {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": str(time.time_ns())}}}
        self.custom.patch_namespaced_custom_object(group, version, NAMESPACE, kind_plural, name, body)

    def delete(self, kind: str, name: str) -> None:
        """Delete a Flux object, giving its controller a minute to finish (a Kustomization prunes what it applied);
        best effort, as teardown: the CRD may be missing if the start failed."""
        args = ("delete", kind, name, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s")
        Kubectl(self.kubeconfig).run(*args, check=False)

    # -- helpers -------------------------------------------------------------------------------

    def _controller(self, name: str, argv: list[str], env: Mapping[str, str]) -> int:
        """Start a controller on its own metrics and health ports; the health port."""
        health = procs.free_port()
        ports = [f"--metrics-addr=127.0.0.1:{procs.free_port()}", f"--health-addr=127.0.0.1:{health}"]
        self.spawn(name, [*argv, *ports], env)
        return health
