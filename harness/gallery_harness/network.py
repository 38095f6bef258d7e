"""The real node's cluster network: Services, cluster DNS and NetworkPolicy enforcement, as a real cluster has them.

- **kube-proxy** 1.34.4 (``harness/go/node``, the pinned Kubernetes module) in iptables mode, a host process
  like kubelet: Service addresses route, the `kubernetes` Service to the API server at the node's address.
- **kube-router** v2.1.0 (``harness/go/kube-router``), its network-policy controller only (no router, no
  service proxy), a host process as its DaemonSet would run it (host network): NetworkPolicy enforced with iptables
  and ipsets, for pod traffic that is routed and for pod-to-pod traffic on the bridge (br_netfilter). Chosen because
  kube-network-policies, the agent kind ships, queues packets with nftables' ``queue`` statement, which these
  machines' kernel lacks (``CONFIG_NFT_QUEUE``), and kube-router's controller needs only iptables and ipset. v2.1.0 is
  the only release the module proxy serves and advisories are reported against it: it runs only inside this local
  test cluster.
- **CoreDNS** (``harness/go/coredns``) as a Deployment in ``kube-system`` behind the Service ``kube-dns`` at
  ``DNS_SERVICE_IP``, labelled ``k8s-app: kube-dns`` like a real cluster's. A pod, not a host process: a NetworkPolicy
  selects pods, and the chart's DNS rule names the kube-dns pods. It answers Service and pod names (``kubernetes``
  plugin) and the fixture sites' test names (``hosts`` plugin, ``FIXTURE_HOSTS``).

The rules kube-proxy and kube-router write live in the host's tables: they are removed at stop, and before a start in
case a run was killed (``clean_rules``).
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

BRIDGE = "gallery0"
SUBNET = "10.89.0.0/16"
GATEWAY = "10.89.0.1"  # the node's address on the pods' bridge: the API server and the test servers listen here
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: the first address of the range
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
# Names the cluster DNS answers for the fixture sites (they listen on the node's bridge address).
FIXTURE_HOSTS = {"gallery.test": GATEWAY}
BINARIES = ("kube-proxy", "kube-router", "coredns")


def iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


def rules(table: str = "filter") -> str:
    """The host's iptables rules of one table, as iptables-save prints them."""
    return subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout


# Pods route through the node (their default route), but nothing is forwarded off the bridge: no test traffic
# leaves the machine. The rule carries this comment so that clean_rules finds it.
ISOLATION = "gallery-node isolation"
ISOLATION_RULE = ("FORWARD", "-i", BRIDGE, "!", "-o", BRIDGE, "-m", "comment", "--comment", ISOLATION, "-j", "DROP")
# What kube-router's network-policy controller writes: chains in the filter table and ipsets, by name prefix.
KUBE_ROUTER_CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-", ISOLATION)
KUBE_ROUTER_SETS = ("KUBE-SRC-", "KUBE-DST-")


def clean_rules(binaries: Mapping[str, Path]) -> None:
    """Remove what kube-proxy and kube-router wrote into the host's tables, and the bridge's isolation rule.
    kube-proxy's own cleanup mode does it; kube-router v2.1.0's (``--cleanup-config``) removes none of its firewall
    rules (an empty controller) and then crashes in its service proxy's cleanup, so its chains and ipsets are
    removed here by their name prefixes."""
    subprocess.run([str(binaries["kube-proxy"]), "--cleanup"], capture_output=True, check=False)
    saved = rules().splitlines()
    kept = [line for line in saved if not any(prefix in line for prefix in KUBE_ROUTER_CHAINS)]
    if len(kept) < len(saved):
        # The filter table as it was, less kube-router's chains and the jumps to them, in one atomic restore.
        subprocess.run(["iptables-restore", "-w"], input="\n".join(kept) + "\n", text=True, check=True)
    listed = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True, check=False).stdout.split()
    for name in listed:
        if name.startswith(KUBE_ROUTER_SETS):
            subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)


BRIDGE_NETFILTER = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def bridge_netfilter() -> None:
    """Traffic between pods on the bridge passes iptables (br_netfilter): NetworkPolicy between pods needs it, and so
    does every Service whose endpoint is on the bridge (the reply skips the node and its reverse NAT otherwise)."""
    if not BRIDGE_NETFILTER.exists():
        raise RuntimeError("the real node's network needs br_netfilter (modprobe br_netfilter)")
    if BRIDGE_NETFILTER.read_text().strip() != "1":
        BRIDGE_NETFILTER.write_text("1\n")


def isolate_bridge() -> None:
    if iptables("-C", *ISOLATION_RULE).returncode != 0:
        iptables("-I", ISOLATION_RULE[0], "1", *ISOLATION_RULE[1:])


def kube_proxy_argv(binary: Path, kubeconfig: Path, node_name: str, healthz_port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node_name}",
        "--proxy-mode=iptables",
        f"--cluster-cidr={SUBNET}",  # pod traffic to Services keeps its source address (NetworkPolicy sees the pod)
        f"--healthz-bind-address=127.0.0.1:{healthz_port}",
        "--metrics-bind-address=",
        f"--nodeport-addresses={GATEWAY}/32",
        # Leave the machine's conntrack settings as they are (shared machine, sandboxed sysctls).
        "--conntrack-max-per-core=0",
        "--conntrack-tcp-timeout-established=0",
        "--conntrack-tcp-timeout-close-wait=0",
        "--v=1",
    ]


def kube_proxy_ready(healthz_port: int) -> bool:
    """Healthy, and the `kubernetes` Service routes (kube-proxy writes a Service's rule once it has endpoints)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{healthz_port}/healthz", timeout=2) as response:
        if response.status != 200:
            return False
    return f"-d {KUBERNETES_SERVICE_IP}/32" in rules("nat")


def kube_router_argv(binary: Path, kubeconfig: Path, node_name: str) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node_name}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        "--enable-pod-egress=false",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--health-port=0",
        "--metrics-port=0",
        "--v=1",
    ]


def kube_router_ready() -> bool:
    """Its top-level chain is hooked into FORWARD: the controller has synced once."""
    return "-j KUBE-ROUTER-FORWARD" in rules()


def corefile() -> str:
    hosts = "\n".join(f"        {address} {name}" for name, address in sorted(FIXTURE_HOSTS.items()))
    return f""".:53 {{
    errors
    health :8080
    ready :8181
    hosts {{
{hosts}
        ttl 5
        fallthrough {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa
    }}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
"""


def dns_objects(image: str) -> list[dict[str, Any]]:
    """CoreDNS as a real cluster runs it: its RBAC, its Corefile, a Deployment and the `kube-dns` Service."""
    meta = {"name": "coredns", "namespace": DNS_NAMESPACE, "labels": DNS_LABELS}
    read = ["list", "watch"]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": read},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:coredns"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
        "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": DNS_NAMESPACE}],
    }
    pod_spec = {
        "serviceAccountName": "coredns",
        "dnsPolicy": "Default",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
            # Port 53 without a capability (a safe sysctl, namespaced to the pod).
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
        },
        "containers": [
            {
                "name": "coredns",
                "image": image,
                "imagePullPolicy": "Never",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        role,
        binding,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": corefile()}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": DNS_LABELS},
                "template": {"metadata": {"labels": DNS_LABELS}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**meta, "name": "kube-dns"},
            "spec": {
                "clusterIP": DNS_SERVICE_IP,
                "selector": DNS_LABELS,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
    ]


def apply(kubectl: Path, kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
    subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=yaml.safe_dump_all(objects),
        text=True,
        capture_output=True,
        check=True,
    )


def dns_ready(kubectl: Path, kubeconfig: Path) -> bool:
    """CoreDNS is ready (its readiness probe: the kubernetes plugin has synced) and its Service routes."""
    available = subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={kubeconfig}",
            "--namespace",
            DNS_NAMESPACE,
            "get",
            "deployment",
            "coredns",
            "--output=jsonpath={.status.availableReplicas}",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return available == "1" and f"-d {DNS_SERVICE_IP}/32" in rules("nat")
