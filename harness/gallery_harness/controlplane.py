"""A real local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager and a node.

The node is either the process-based node agent (``node="agent"``, the default: no root, no images) or a real
node (``node="kubelet"``: kubelet, kube-scheduler and containerd running the project's image, see realnode.py).
Everything listens on free loopback ports (the real node's pods reach the host at its bridge address), every
process dies with the harness, and ``stop()`` leaves no process behind. Used by the pytest fixtures and by
``python -m gallery_harness``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from gallery_harness import REPO_ROOT, build, procs
from gallery_harness.network import GATEWAY, KUBERNETES_SERVICE_IP, SERVICE_CIDR
from gallery_harness.pki import KeyPair, Pki, create_pki
from gallery_harness.realnode import RealNode
from gallery_harness.s3server import S3Server

NodeKind = Literal["agent", "kubelet"]
NODE_KINDS: tuple[NodeKind, ...] = get_args(NodeKind)


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    """``--node agent|kubelet`` for the command lines that start a control plane (default: $GALLERY_NODE or agent)."""
    parser.add_argument(
        "--node",
        choices=NODE_KINDS,
        default=os.environ.get("GALLERY_NODE", "agent"),
        help="agent: the process-based node agent; kubelet: a real node running the project's image (root)",
    )


NODE_NAME = "gallery-node"

# Controllers for Jobs and the operator's Deployment (names as kube-controller-manager 1.34 spells them).
CONTROLLERS = (
    "job-controller",
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    # Fills ResourceQuota status, without which the API server's quota admission refuses everything a quota names.
    "resourcequota-controller",
    # Makes Jobs of CronJobs: bench/subscriptions.py measures the subscriptions' schedule lag against it.
    "cronjob-controller",
)
# The real node: claims bound to the volumes its provisioner makes; the not-ready taint lifted once it is Ready;
# EndpointSlices for Services (kube-proxy and CoreDNS read them).
REAL_NODE_CONTROLLERS = ("persistentvolume-binder-controller", "node-lifecycle-controller", "endpointslice-controller")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    """A self-contained kubeconfig (certificates embedded) for one client identity."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert),
                    "client-key-data": _b64(client.key),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class LocalCluster:
    """One running control plane. Use as a context manager, or call start() and stop()."""

    workdir: Path
    with_node: bool = True
    node: NodeKind = "agent"
    with_s3: bool = False
    keep_workdir: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = 0
    etcd_port: int = 0
    kubeconfig: Path = Path()
    pki: Pki | None = None
    startup_seconds: float = 0.0

    s3: S3Server | None = None
    real_node: RealNode | None = None

    @classmethod
    def create(cls, workdir: Path | None = None, **options: Any) -> LocalCluster:
        folder = workdir or Path(tempfile.mkdtemp(prefix="gallery-cluster-"))
        return cls(workdir=folder, keep_workdir=workdir is not None, **options)

    @property
    def api_host(self) -> str:
        """Where the API server listens: loopback, or on a real node its bridge address, which the `kubernetes`
        Service routes pods to."""
        return GATEWAY if self.node == "kubelet" and self.with_node else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.api_host}:{self.api_port}"

    @property
    def service_host(self) -> str:
        """The address servers that pods must reach listen on (the site, S3, the operator's reports)."""
        return GATEWAY if self.real_node else "127.0.0.1"

    @property
    def volumes_root(self) -> Path:
        """Where the node agent keeps PersistentVolumeClaim data: ``<root>/<namespace>/<claim>``."""
        return self.workdir / "node" / "claims"

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        binaries = {name: build.binary(name) for name in ("etcd", "kube-apiserver", "kube-controller-manager")}
        if self.with_s3:
            binaries["versitygw"] = build.binary("versitygw")
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.with_node and self.node == "kubelet":
            self.real_node = RealNode(self.workdir, NODE_NAME)
            self.real_node.prepare()
        self.pki = create_pki(self.workdir / "pki", (GATEWAY, KUBERNETES_SERVICE_IP) if self.real_node else ())
        self._start_etcd(binaries["etcd"])
        self._start_apiserver(binaries["kube-apiserver"])
        self.kubeconfig = write_kubeconfig(
            self.workdir / "kubeconfig", self.server, self.pki.ca.cert, self.pki.admin, "admin"
        )
        procs.wait_until(self._ready, timeout=60, what=f"kube-apiserver /readyz (log: {self.log('apiserver')})")
        self._start_controller_manager(binaries["kube-controller-manager"])
        if self.with_s3:
            self._start_s3(binaries["versitygw"])
        if self.real_node:
            assert self.pki is not None
            self.real_node.start(self._start, self.kubeconfig, self.pki.ca.cert, self._node_ready)
        elif self.with_node:
            self._start_node_agent()
        procs.wait_until(
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default") is not None,
            timeout=60,
            what="the default ServiceAccount (kube-controller-manager)",
        )
        if self.with_node:
            procs.wait_until(self._node_ready, timeout=60, what=f"node {NODE_NAME} Ready")
        if self.real_node:
            self.real_node.start_dns(build.binary("kubectl"), self.kubeconfig)
        self.startup_seconds = time.monotonic() - started
        if self.real_node:  # what each part of the real node cost at start (docs/local-cluster.md)
            timings = {**self.real_node.timings, "control plane and node, total": self.startup_seconds}
            self.log("real-node-timings").with_suffix(".json").write_text(json.dumps(timings, indent=1))

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            if name == "containerd" and self.real_node:
                self.real_node.remove_containers()  # kubelet is stopped; nothing restarts them now
            procs.stop(self.processes.pop(name), grace=15)
        if self.real_node:
            self.real_node.cleanup()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def check_alive(self) -> None:
        """Raise if a component died, naming it and its log."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}; log tail:\n{tail}")

    # -- components ------------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start and track one component; Python ones (node agent, volume provisioner) import from the checkout."""
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (REPO_ROOT / "harness", REPO_ROOT))}
        self.processes[name] = procs.spawn(argv, self.log(name), env=environment)
        return self.processes[name]

    def _start_etcd(self, binary: Path) -> None:
        self.etcd_port = procs.free_port()
        peer_port = procs.free_port()
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self._start(
            "etcd",
            [
                str(binary),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
        )

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM, as a rollout of the control plane does); etcd and the rest keep running."""
        procs.stop(self.processes.pop("apiserver"), grace=15)

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port, over the same etcd; return once it is ready."""
        self._start_apiserver(build.binary("kube-apiserver"))
        procs.wait_until(self._ready, timeout=60, what=f"kube-apiserver /readyz (log: {self.log('apiserver')})")

    def _start_apiserver(self, binary: Path) -> None:
        assert self.pki is not None
        self.api_port = self.api_port or procs.free_port()  # a restart keeps the port the kubeconfigs name
        self._start(
            "apiserver",
            [
                str(binary),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={self.pki.serving.cert}",
                f"--tls-private-key-file={self.pki.serving.key}",
                f"--client-ca-file={self.pki.ca.cert}",
                f"--secure-port={self.api_port}",
                f"--bind-address={self.api_host}",
                f"--advertise-address={self.api_host}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.pki.service_account_pub}",
                f"--service-account-signing-key-file={self.pki.service_account_key}",
                # On a real node the `kubernetes` Service's endpoint is the API server's address (kube-proxy routes
                # pods to it); without a Service proxy there is nothing to point at.
                f"--endpoint-reconciler-type={'lease' if self.real_node else 'none'}",
                # kubectl logs/exec on the real node: the API server authenticates to the kubelet as admin.
                f"--kubelet-client-certificate={self.pki.admin.cert}",
                f"--kubelet-client-key={self.pki.admin.key}",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
                "--v=1",
            ],
        )

    def _start_controller_manager(self, binary: Path) -> None:
        assert self.pki is not None
        kubeconfig = write_kubeconfig(
            self.workdir / "controller-manager.kubeconfig",
            self.server,
            self.pki.ca.cert,
            self.pki.controller_manager,
            "system:kube-controller-manager",
        )
        self._start(
            "controller-manager",
            [
                str(binary),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--controllers={','.join(CONTROLLERS + (REAL_NODE_CONTROLLERS if self.real_node else ()))}",
                "--use-service-account-credentials=true",
                f"--root-ca-file={self.pki.ca.cert}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
        )

    def _start_s3(self, binary: Path) -> None:
        self.s3 = S3Server(binary, self.workdir / "s3", self.log("s3"), host=self.service_host)
        self.s3.start()
        assert self.s3.process is not None
        self.processes["s3"] = self.s3.process

    def _start_node_agent(self) -> None:
        assert self.pki is not None
        self._start(
            "node-agent",
            [
                sys.executable,
                "-m",
                "gallery_harness.nodeagent",
                f"--kubeconfig={self.kubeconfig}",
                f"--root={self.workdir / 'node'}",
                f"--node-name={NODE_NAME}",
                f"--api-port={self.api_port}",
                # pods/log (kubectl logs): the API server's serving pair names loopback; its clients carry the CA's.
                "--logs-tls",
                str(self.pki.serving.cert),
                str(self.pki.serving.key),
                str(self.pki.ca.cert),
            ],
        )

    # -- probes ----------------------------------------------------------------------------------

    def _ssl(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return context

    def _get(self, path: str) -> Any:
        """GET an API path as admin; None on 404."""
        request = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(request, context=self._ssl(), timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return json.loads(body) if body.startswith(b"{") else body.decode()

    def _ready(self) -> bool:
        self.check_alive()
        return bool(self._get("/readyz") == "ok")

    def _node_ready(self) -> bool:
        self.check_alive()
        node = self._get(f"/api/v1/nodes/{NODE_NAME}")
        if not node:
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def env(self) -> dict[str, str]:
        """Environment variables a client needs to reach this cluster (and its S3 server)."""
        values = {"KUBECONFIG": str(self.kubeconfig)}
        if self.s3:
            values |= self.s3.env()
        return values
