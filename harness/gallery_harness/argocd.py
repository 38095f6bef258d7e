"""Argo CD's application-controller and repo-server on loopback, against a cluster, out of cluster.

What Argo CD needs to run outside a cluster (docs/local-cluster.md, "Argo CD"): Redis (Debian's redis-server); the
one `argocd` binary started under its argv[0] names; `git-verify-wrapper.sh` from Argo CD's module on PATH (without
it every manifest generation fails with a bare "permission denied"), `ARGOCD_GPG_ENABLED=false`, its own TMPDIR and
askpass socket; the repo-server in plain text (`--disable-tls` needs `--client-ca-path=`); Argo CD's CRDs and its
stock settings objects (argocd-cm, argocd-cmd-params-cm, argocd-rbac-cm, argocd-secret ...) from its module; the
`default` AppProject (normally made by argocd-server); and a cluster Secret naming the API server with TLS data,
since the built-in destination `https://kubernetes.default.svc` needs an in-cluster configuration.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config

from gallery_harness import build, procs
from gallery_harness.kube import Kubectl, OutOfCluster, crds_established
from gallery_harness.procs import wait_until

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
NAMESPACE = "argocd"
GROUP, VERSION = "argoproj.io", "v1alpha1"
CLUSTER_NAME = "local"


def module_source() -> Path:
    """Argo CD's module source (CRDs, stock settings, hack/), from the Go module cache of its build module."""
    return build.module_source("argocd", ARGOCD_MODULE)


def _kubeconfig_identity(kubeconfig: Path) -> tuple[str, dict[str, str]]:
    """The API server URL and the TLS data (CA, client certificate and key) of a certificate kubeconfig."""
    document = yaml.safe_load(kubeconfig.read_text())
    cluster = document["clusters"][0]["cluster"]
    user = document["users"][0]["user"]
    tls = {
        "caData": cluster["certificate-authority-data"],
        "certData": user["client-certificate-data"],
        "keyData": user["client-key-data"],
    }
    return str(cluster["server"]), tls


def settings_objects(source: Path, argocd_cm: Mapping[str, str], server: str, tls: Mapping[str, str]) -> list[Any]:
    """Argo CD's stock settings objects with ``argocd_cm`` merged into argocd-cm's data, the `default` AppProject
    and the cluster Secret for ``server``."""
    objects: list[dict[str, Any]] = []
    for name in ("argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm", "argocd-secret"):
        document: dict[str, Any] = yaml.safe_load((source / "manifests/base/config" / f"{name}.yaml").read_text())
        if name == "argocd-cm":
            document["data"] = {**(document.get("data") or {}), **argocd_cm}
        if name == "argocd-cmd-params-cm":  # recorded as a cluster would carry it; the flag is passed below
            document["data"] = {"controller.resource.health.persist": "true"}
        objects.append(document)
    objects.append(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "AppProject",
            "metadata": {"name": "default"},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        }
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "cluster-local",
                "labels": {"argocd.argoproj.io/secret-type": "cluster", "app.kubernetes.io/part-of": "argocd"},
            },
            "stringData": {"name": CLUSTER_NAME, "server": server, "config": json.dumps({"tlsClientConfig": tls})},
        }
    )
    return objects


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ArgoCD(OutOfCluster):
    """A running Argo CD (application-controller, repo-server, Redis) managing the cluster of ``kubeconfig``.

    ``argocd_cm`` is merged into argocd-cm's data (health checks, resource customizations). ``start()`` then
    ``stop()``; Applications live in namespace ``argocd`` and name ``server`` (set by start) as their destination.
    """

    argocd_cm: Mapping[str, str] = field(default_factory=dict)
    server: str = ""

    def start(self) -> None:
        binaries = build.binary("argocd").parent
        source = module_source()
        self.server, tls = _kubeconfig_identity(self.kubeconfig)
        self._kubectl("create", "namespace", NAMESPACE, check=False)
        self._apply([yaml.safe_load(p.read_text()) for p in sorted((source / "manifests/crds").glob("*-crd.yaml"))])
        self.api = config.new_client_from_config(str(self.kubeconfig))
        crds = [f"{plural}.{GROUP}" for plural in ("applications", "applicationsets", "appprojects")]
        wait_until(lambda: crds_established(self.api, crds), 60, "Argo CD's CRDs to be established")
        self._apply(settings_objects(source, self.argocd_cm, self.server, tls), namespace=NAMESPACE)

        # git-verify-wrapper.sh is read-only in the module cache: an executable copy on PATH.
        tools = self.workdir / "bin"
        tools.mkdir(parents=True, exist_ok=True)
        wrapper = tools / "git-verify-wrapper.sh"
        shutil.copyfile(source / "hack/git-verify-wrapper.sh", wrapper)
        wrapper.chmod(0o755)
        for folder in ("home", "tmp"):
            (self.workdir / folder).mkdir(exist_ok=True)
        env = {
            "PATH": f"{tools}:{build.binary('helm').parent}:/usr/bin:/bin",
            "HOME": str(self.workdir / "home"),
            "TMPDIR": str(self.workdir / "tmp"),
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_ASK_PASS_SOCK": str(self.workdir / "askpass.sock"),
            "KUBECONFIG": str(self.kubeconfig),
        }

        redis_port, repo_port = procs.free_port(), procs.free_port()
        self.spawn(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            env,
        )
        wait_until(lambda: _listening(redis_port), 30, f"redis-server (log: {self.log('redis')})")
        self.spawn(
            "repo-server",
            [
                str(binaries / "argocd-repo-server"),
                "--address=127.0.0.1",
                f"--port={repo_port}",
                "--metrics-address=127.0.0.1",
                "--disable-tls",
                "--client-ca-path=",  # required with --disable-tls
                f"--redis=127.0.0.1:{redis_port}",
                f"--metrics-port={procs.free_port()}",
            ],
            env,
        )
        wait_until(lambda: _listening(repo_port), 60, f"argocd-repo-server (log: {self.log('repo-server')})")
        metrics = procs.free_port()
        self.spawn(
            "application-controller",
            [
                str(binaries / "argocd-application-controller"),
                f"--kubeconfig={self.kubeconfig}",
                f"--namespace={NAMESPACE}",
                f"--repo-server=127.0.0.1:{repo_port}",
                "--repo-server-plaintext",
                f"--redis=127.0.0.1:{redis_port}",
                f"--metrics-port={metrics}",
                # Since Argo CD 3.0 resource health lives in Redis for its API server; the tests read it from the
                # Application (what argocd-cmd-params-cm's controller.resource.health.persist sets in a cluster).
                "--persist-resource-health",
            ],
            env,
        )
        wait_until(
            lambda: self.serves(f"http://127.0.0.1:{metrics}/metrics"),
            60,
            f"argocd-application-controller (log: {self.log('application-controller')})",
        )

    # -- Applications ----------------------------------------------------------------------------

    def apply_application(self, application: Mapping[str, Any]) -> None:
        self._apply([dict(application)], namespace=NAMESPACE)

    def application(self, name: str) -> dict[str, Any]:
        self.check_alive()
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "applications", name
        )
        return result

    def refresh(self, name: str) -> None:
        """Ask Argo CD to compare the Application with git now (what a webhook from the git host does)."""
        body = {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "applications", name, body)

    def delete_application(self, name: str) -> None:
        """Delete an Application without cascading to what it deployed (no resources finalizer is set)."""
        self._kubectl("delete", "application", name, "-n", NAMESPACE, "--ignore-not-found", "--wait=false")

    # -- helpers -------------------------------------------------------------------------------

    def _apply(self, documents: list[Any], namespace: str | None = None) -> None:
        Kubectl(self.kubeconfig).apply(documents, namespace)

    def _kubectl(self, *args: str, check: bool = True) -> str:
        return Kubectl(self.kubeconfig).run(*args, check=check)
