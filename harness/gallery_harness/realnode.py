"""A real node for the local control plane: kubelet and kube-scheduler on a containerd of their own.

What it adds to the process-based node agent: pods run from images (the project's image built from its
Dockerfile, see ``image.py``) in containers with their security context enforced by runc, in their own network
namespace on a CNI bridge, with projected tokens and termination messages handled by the real kubelet.

Parts: containerd (Debian's package; its state in a temporary folder, its root with the images kept in the
image cache between runs, its own socket, the CRI plugin with ``restrict_oom_score_adj`` on, which this sandbox
needs), runc and the CNI plugins from Debian's packages, kubelet and kube-scheduler built from the pinned
Kubernetes module (``harness/go/node``), a volume provisioner (``volumes.py``) that gives each claim a
hostPath PersistentVolume under ``<workdir>/node/claims``, the same layout the node agent uses, and the cluster
network (``network.py``: kube-proxy, kube-router's NetworkPolicy firewall, CoreDNS). Needs root.

Pods reach the host at the bridge's gateway address (``GATEWAY``): the API server (through the `kubernetes`
Service) and the servers the pods must reach (the fixture site, the S3 server, a local operator's report endpoint)
listen there. The bridge is the project's own test host network; nothing leaves the machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from gallery_harness import build, network, procs
from gallery_harness.image import Image, coredns_image, image_cache, pause_image, project_image, unmount_below
from gallery_harness.network import BRIDGE, CLUSTER_DOMAIN, DNS_SERVICE_IP, GATEWAY, SUBNET

CNI_BIN = Path("/usr/lib/cni")
LOCK_FILE = Path(tempfile.gettempdir()) / "gallery-operator-real-node.lock"
CLEAN_MARKER = "stopped-cleanly"  # in containerd's root: the images it holds, written at a clean stop
PACKAGES = ("containerd", "runc", "containernetworking-plugins", "docker.io", "debootstrap", "iptables", "ipset")


def missing_requirements() -> list[str]:
    """What this machine lacks for the real node (root, the Debian packages), in words; empty when ready."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (containerd, runc and the bridge need it)")
    for program in ("containerd", "runc", "dockerd", "debootstrap", "ctr", "iptables", "ipset"):
        if shutil.which(program) is None:
            problems.append(f"{program} (make node-packages installs {' '.join(PACKAGES)})")
    if not (CNI_BIN / "bridge").exists():
        problems.append(f"the CNI plugins in {CNI_BIN} (containernetworking-plugins)")
    return problems


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], capture_output=True, check=check)


def ensure_bridge() -> None:
    """The pods' bridge with the gateway address, made before any pod so servers can listen on it."""
    if _ip("link", "show", BRIDGE, check=False).returncode != 0:
        _ip("link", "add", BRIDGE, "type", "bridge")
    prefix = SUBNET.split("/")[1]
    addresses = _ip("-o", "addr", "show", "dev", BRIDGE).stdout.decode()
    if f"{GATEWAY}/{prefix}" not in addresses:
        _ip("addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


Starter = Callable[[str, list[str]], subprocess.Popen[bytes]]


@dataclass
class RealNode:
    """containerd + kube-scheduler + kubelet + the volume provisioner, for one control plane."""

    workdir: Path
    node_name: str
    runtime: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gallery-node-")))
    images: dict[str, Image] = field(default_factory=dict)
    binaries: dict[str, Path] = field(default_factory=dict)
    lock: IO[str] | None = None
    emptied: bool = False  # every container was removed at stop: the root may be reused
    load_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds from each part's start until it was ready
    pending: dict[str, tuple[float, subprocess.Popen[bytes], Callable[[], bool]]] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.runtime / "containerd.sock"

    @property
    def claims(self) -> Path:
        return self.workdir / "node" / "claims"

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args], capture_output=True, check=check
        )

    def prepare(self) -> None:
        """Check the machine, build what is missing (binaries, images) and make the bridge: before any server
        that pods must reach starts listening on the gateway address."""
        problems = missing_requirements()
        if problems:
            raise RuntimeError("the real node needs: " + "; ".join(problems))
        # One real node per machine: two would share the bridge and hand out the same pod addresses.
        self.lock = LOCK_FILE.open("a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.seek(0)
            raise RuntimeError(f"another real node runs on this machine ({self.lock.read().strip()})") from None
        self.lock.truncate(0)
        self.lock.write(f"pid {os.getpid()}, state in {self.workdir}\n")
        self.lock.flush()
        self.binaries = {name: build.binary(name) for name in ("kubelet", "kube-scheduler", *network.BINARIES)}
        self.images = {"pause": pause_image(), "coredns": coredns_image(), "project": project_image()}
        network.clean_rules(self.binaries)  # rules a killed run left behind
        ensure_bridge()
        network.bridge_netfilter()
        network.isolate_bridge()

    def start(self, start: Starter, kubeconfig: Path, ca: Path, node_ready: Callable[[], bool]) -> None:
        """Start every part (``start`` runs and tracks one process by name), load the images and wait until the
        node is Ready (``node_ready``) and its Services and policies are enforced."""
        binaries, images = self.binaries, self.images
        self._prepare_root({image.ref for image in images.values()})
        started = time.monotonic()
        containerd = start("containerd", ["containerd", f"--config={self.containerd_config(images['pause'])}"])
        procs.wait_until(
            lambda: containerd.poll() is None and self.ctr("version", check=False).returncode == 0,
            30,
            "containerd",
            interval=0.1,
        )
        self.timings["containerd"] = time.monotonic() - started
        present = set(self.ctr("images", "list", "--quiet").stdout.decode().split())
        for image in images.values():
            if image.ref not in present:
                self.load(image)
        self.timings["image import"] = self.load_seconds
        start(
            "kube-scheduler",
            [str(binaries["kube-scheduler"]), f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--v=1"],
        )
        self._spawn(
            "kubelet",
            start,
            [
                str(binaries["kubelet"]),
                f"--config={self.kubelet_config(ca)}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.runtime / 'kubelet'}",
                f"--cert-dir={self.runtime / 'kubelet-pki'}",
                f"--hostname-override={self.node_name}",
                f"--node-ip={GATEWAY}",
                "--v=1",
            ],
            node_ready,
        )
        start(
            "volumes",
            [sys.executable, "-m", "gallery_harness.volumes", f"--kubeconfig={kubeconfig}", f"--root={self.claims}"],
        )
        healthz = procs.free_port()
        proxy = network.kube_proxy_argv(binaries["kube-proxy"], kubeconfig, self.node_name, healthz)
        self._spawn("kube-proxy", start, proxy, lambda: network.kube_proxy_ready(healthz))
        self._wait_ready()
        # kube-router finds its node by name at start (a DaemonSet would restart it until kubelet registered it).
        router = network.kube_router_argv(binaries["kube-router"], kubeconfig, self.node_name)
        self._spawn("kube-router", start, router, network.kube_router_ready)
        self._wait_ready()

    def _spawn(self, name: str, start: Starter, argv: list[str], ready: Callable[[], bool]) -> None:
        self.pending[name] = (time.monotonic(), start(name, argv), ready)

    def _wait_ready(self, timeout: float = 90) -> None:
        """Wait until every part started is ready, recording each one's seconds from its start; a part that exits
        fails the start at once."""
        deadline = time.monotonic() + timeout
        while self.pending:
            for name, (began, process, ready) in list(self.pending.items()):
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} (see its log)")
                try:
                    done = ready()
                except Exception:  # not answering yet
                    done = False
                if done:
                    self.timings[name] = time.monotonic() - began
                    del self.pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {', '.join(self.pending)}")
            time.sleep(0.1)

    def start_dns(self, kubectl: Path, kubeconfig: Path) -> None:
        """CoreDNS as the cluster's DNS Service (after the node is Ready: it runs as a pod there)."""
        began = time.monotonic()
        network.apply(kubectl, kubeconfig, network.dns_objects(self.images["coredns"].ref))
        procs.wait_until(lambda: network.dns_ready(kubectl, kubeconfig), 90, "CoreDNS ready", interval=0.2)
        self.timings["coredns"] = time.monotonic() - began

    # -- configuration ---------------------------------------------------------------------------

    def containerd_config(self, pause: Image) -> Path:
        cni = self.runtime / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        bridge = {
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "isDefaultGateway": True,  # Service addresses and the node's other addresses route through the node
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                "dataDir": str(self.runtime / "ipam"),
            },
        }
        conflist = {"cniVersion": "1.0.0", "name": "gallery", "plugins": [bridge]}
        (cni / "10-gallery.conflist").write_text(json.dumps(conflist))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        lines = [
            "version = 2",
            f'root = "{self.root}"',
            f'state = "{self.runtime / "state"}"',
            "[grpc]",
            f'  address = "{self.socket}"',
            f"[{cri}]",
            f'  sandbox_image = "{pause.ref}"',
            # Writing a negative oom_score_adj is refused in this sandbox; without this every sandbox fails with
            # runc's "can't get final child's PID from pipe".
            "  restrict_oom_score_adj = true",
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_BIN}"',
            f'  conf_dir = "{cni}"',
        ]
        config = self.runtime / "containerd.toml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def kubelet_config(self, ca: Path) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": GATEWAY,  # the API server reaches the kubelet at the node's address (kubectl logs)
            "port": procs.free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": procs.free_port(),
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,  # the project's machines have cgroup v1
            "failSwapOn": False,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(ca)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            # Pods with the Default DNS policy (CoreDNS itself) get no resolver: nothing resolves outside the cluster.
            "resolvConf": "",
            "podLogsDir": str(self.workdir / "node" / "pod-logs"),
            "volumePluginDir": str(self.runtime / "volume-plugins"),
            # The images are loaded, never pulled: keep them whatever the disk holds.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
        }
        path = self.workdir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    # -- lifecycle -------------------------------------------------------------------------------

    def load(self, image: Image) -> None:
        """Import an image tar into the node's containerd (kubelet then finds it without a pull)."""
        started = time.monotonic()
        self.ctr("images", "import", str(image.tar))
        self.load_seconds += time.monotonic() - started

    def remove_containers(self) -> None:
        """SIGKILL and delete every container and its task (while containerd still runs, after kubelet stopped).
        When none is left, the root may be reused by the next start (``cleanup`` marks it)."""
        if not self.socket.exists():
            return
        listed = self.ctr("tasks", "list", "--quiet", check=False)
        for task in listed.stdout.decode().split():
            self.ctr("tasks", "kill", "--signal=SIGKILL", task, check=False)
            self.ctr("tasks", "delete", "--force", task, check=False)
        containers = self.ctr("containers", "list", "--quiet", check=False).stdout.decode().split()
        if containers:
            self.ctr("containers", "delete", *containers, check=False)
        left = self.ctr("containers", "list", "--quiet", check=False)
        self.emptied = left.returncode == 0 and not left.stdout.strip()

    @property
    def root(self) -> Path:
        """containerd's root (image content and snapshots), kept in the image cache between runs so that images
        already there are not imported again (about 30 s for the project image). One real node per machine
        (the lock) makes sharing it safe."""
        return image_cache() / "containerd"

    def _prepare_root(self, wanted: set[str]) -> None:
        """Reuse the root only after a clean stop that left no container, and only when it holds exactly the
        images wanted (so it never grows); otherwise start it empty."""
        marker = self.root / CLEAN_MARKER
        held = set(marker.read_text().split()) if marker.exists() else None
        if held != wanted and self.root.exists():
            unmount_below(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
        marker.unlink(missing_ok=True)  # in use: not clean until this node stops cleanly

    def cleanup(self) -> None:
        """After containerd stopped: unmount what the node mounted and delete its runtime folder."""
        unmount_below(self.runtime)
        shutil.rmtree(self.runtime, ignore_errors=True)
        if self.binaries:
            network.clean_rules(self.binaries)
        if self.emptied and self.images:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / CLEAN_MARKER).write_text("\n".join(sorted(i.ref for i in self.images.values())) + "\n")
        if self.lock is not None:
            self.lock.close()  # releases the machine's real-node lock
            self.lock = None


def main() -> int:
    """``python -m gallery_harness.realnode``: can this machine run the real node? (``make node-packages`` installs
    the packages it names.)"""
    problems = missing_requirements()
    print("the real node needs: " + "; ".join(problems) if problems else "ready for the real node")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
