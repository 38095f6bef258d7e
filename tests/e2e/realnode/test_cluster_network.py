"""The real node's cluster network (harness/gallery_harness/network.py) carrying the product's promises: the worker
NetworkPolicy enforced by a policy agent, Services and cluster DNS for the report path and for downloads that name
their site, and the chart's operator running unmodified.

Connections are tried from inside a pod with the worker's labels by a program other than the worker (a few lines of
Python run in the pod's container), so what is measured is the network's verdict, not the worker's own guard.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

from kubernetes import client

from gallery_harness import network
from gallery_harness.kube import create_claim, create_namespace
from gallery_harness.network import BRIDGE, FIXTURE_HOSTS, KUBERNETES_SERVICE_IP
from gallery_harness.procs import wait_until
from gallery_harness.realnode import RealNode
from gallery_operator.networkpolicy import worker_network_policy as worker_network_policy_of
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec
from tests.e2e.realnode.node_parts import (
    PROBE_PORT,
    WORKER_LABELS,
    WORKER_SECURITY,
    ChartOperator,
    chart_operator,
    chart_values,
    real_node,
)

# A connection attempt from inside the pod; prints {name: "connected" | "resolved <address>" | the error}.
PROBE = r"""
import json, socket, sys
results = {}
for name, host, port in json.loads(sys.argv[1]):
    try:
        if port == 0:
            results[name] = "resolved " + socket.getaddrinfo(host, 53, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        else:
            socket.create_connection((host, port), timeout=3).close()
            results[name] = "connected"
    except OSError as error:
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


# -- the chart's operator, unmodified ------------------------------------------------------------------------------


# -- the policy under test and the probes --------------------------------------------------------------------------


def worker_network_policy(chart: ChartOperator, namespace: str) -> dict[str, Any]:
    """THE worker NetworkPolicy these tests prove enforced: the one the chart's operator keeps in a namespace with
    downloads (``networkpolicy.worker_network_policy`` under the settings the chart hands the operator), under a
    name and labels of its own so that the operator, which removes its policy from a namespace without downloads,
    leaves the test's copy alone."""
    policy = worker_network_policy_of(namespace, chart.settings())
    policy["metadata"] = {"name": "probe-" + policy["metadata"]["name"], "namespace": namespace}
    return policy


def denied_ranges(policy: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    """The IPv4 ranges the policy's catch-all rule excepts, that a probe address can be put in on this machine (not
    loopback, multicast or reserved, and not overlapping a network the machine is on)."""
    ranges = [
        ipaddress.ip_network(cidr)
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
        for cidr in peer.get("ipBlock", {}).get("except", [])
    ]
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    machine = [
        ipaddress.ip_interface(line.split()[3]).network
        for line in shown.splitlines()
        if line.split()[1] not in {"lo", BRIDGE}
    ]
    return [
        r
        for r in ranges
        if isinstance(r, ipaddress.IPv4Network)
        and not (r.is_loopback or r.is_multicast or r.is_reserved or r.is_unspecified)
        and not any(r.overlaps(m) for m in machine)
    ]


def probe_address(cidr: ipaddress.IPv4Network) -> str:
    """An address inside the range, away from its well-known ones (169.254.169.254, gateways at .1)."""
    offset = 89 * 256 + 89
    return str(cidr.network_address + offset) if cidr.num_addresses > offset + 1 else str(cidr.network_address)


@contextlib.contextmanager
def listeners(addresses: list[str]) -> Iterator[None]:
    """A listening socket on PROBE_PORT at each address, the address put on the pods' bridge meanwhile (pods reach
    it through their default route, the node)."""
    sockets = []
    try:
        for address in addresses:
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", BRIDGE], check=True, capture_output=True)
            sockets.append(socket.create_server((address, PROBE_PORT)))
        yield
    finally:
        for sock in sockets:
            sock.close()
        for address in addresses:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", BRIDGE], check=False, capture_output=True)


def run_pod(
    cluster: Cluster, node: RealNode, namespace: str, name: str, labels: dict[str, str], command: list[str]
) -> client.V1Pod:
    """A pod of the project's image under the worker's security context, running ``command``; returned Running."""
    core = client.CoreV1Api(cluster.api)
    security = WORKER_SECURITY
    # The tenant's listener on port 80 without a capability (a safe sysctl, namespaced to the pod).
    sysctls = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": str(PROBE_PORT)}] if "tenant" in name else []
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "automountServiceAccountToken": False,
                "restartPolicy": "Never",
                "securityContext": {"sysctls": sysctls},
                "containers": [
                    {
                        "name": "main",
                        "image": node.images["project"].ref,
                        "imagePullPolicy": "Never",
                        "command": command,
                        "securityContext": security,
                    }
                ],
            },
        },
    )
    wait_until(lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running", 60, f"pod {name} Running")
    pod: client.V1Pod = core.read_namespaced_pod(name, namespace)
    return pod


def probe(node: RealNode, pod: client.V1Pod, targets: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Try each target from inside the pod's container (port 0: resolve the name through the pod's resolver)."""
    [status] = pod.status.container_statuses
    container = str(status.container_id).removeprefix("containerd://")
    listed = json.dumps([[name, host, port] for name, (host, port) in targets.items()])
    exec_id = f"probe-{uuid.uuid4().hex[:8]}"
    ran = node.ctr("tasks", "exec", f"--exec-id={exec_id}", container, "python", "-c", PROBE, listed, check=False)
    assert ran.returncode == 0, ran.stderr.decode()
    results: dict[str, str] = json.loads(ran.stdout)
    return results


def policy_synced(policy_name: str, pod_name: str, namespace: str, on: bool) -> bool:
    """kube-router's rules for the pod follow the policy: its chain runs the policy, or no chain does."""
    rules = network.rules()
    jumps = f"rule to jump traffic from POD name:{pod_name} namespace: {namespace}" in rules
    runs = f"run through nw policy {policy_name}" in rules
    return jumps and runs if on else not runs


PUBLIC_SITE = "11.89.89.89"  # a public address, put on the bridge for the test: the site a download may reach
PRIVATE_STORE = "10.250.89.3"  # a private address listed as the in-cluster S3 store (outside the pod subnet)


def test_the_worker_network_policy_is_enforced(cluster: Cluster, namespace: str) -> None:
    """With the operator's worker NetworkPolicy on, a worker pod cannot connect to another namespace's pod, the API
    server's Service address, or an address in any denied range, and still reaches a public site, the in-cluster S3
    store the settings list, DNS and the operator's report endpoint (by its Service name); with the policy off, every
    probe connects, so each refusal is the policy's. The report port takes worker pods only (the chart's policy)."""
    node = real_node(cluster)
    values = chart_values(node, namespace, private_sites=False)
    values["operator"]["s3PrivateEndpoints"] = [f"http://{PRIVATE_STORE}:{PROBE_PORT}"]
    other = f"{namespace}-other"
    create_namespace(cluster.api, other)
    with chart_operator(cluster, values, f"{namespace}-system") as chart:
        policy = worker_network_policy(chart, namespace)
        ranges = denied_ranges(policy)
        assert {str(r) for r in ranges} >= {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"}
        addresses = {f"denied {r}": probe_address(r) for r in ranges}
        listen = [
            "python",
            "-c",
            f"import socket, time; s = socket.create_server(('', {PROBE_PORT})); time.sleep(3600)",
        ]
        tenant = run_pod(cluster, node, other, "tenant", {"app": "tenant"}, listen)
        worker = run_pod(
            cluster, node, namespace, "probe", WORKER_LABELS, ["python", "-c", "import time; time.sleep(3600)"]
        )
        report = (chart.service_host, chart.report_port)
        blocked = {
            "another namespace's pod": (tenant.status.pod_ip, PROBE_PORT),
            "the API server's Service": (KUBERNETES_SERVICE_IP, 443),
            **{name: (address, PROBE_PORT) for name, address in addresses.items()},
        }
        allowed = {
            "a public site": (PUBLIC_SITE, PROBE_PORT),
            "the S3 store": (PRIVATE_STORE, PROBE_PORT),
            "DNS": ("kube-dns.kube-system.svc.cluster.local", 0),
            "the report endpoint": report,
        }
        # The chart's report-port policy is in place from the start: a pod that is not a worker is refused there.
        wait_until(
            lambda: probe(node, tenant, {"the report endpoint": report})["the report endpoint"] != "connected",
            30,
            "the report port to refuse a pod that is not a worker",
        )
        with listeners([*addresses.values(), PUBLIC_SITE, PRIVATE_STORE]):
            off = probe(node, worker, blocked | allowed)
            dns = off.pop("DNS")
            assert dns.startswith("resolved "), f"DNS: {dns}; the rest: {off}"
            assert off == dict.fromkeys(off, "connected"), f"with the policy off, every probe connects: {off}"

            policies = client.NetworkingV1Api(cluster.api)
            policies.create_namespaced_network_policy(namespace, policy)
            name = policy["metadata"]["name"]
            wait_until(lambda: policy_synced(name, "probe", namespace, on=True), 30, "kube-router to apply the policy")
            on = probe(node, worker, blocked | allowed)
            refused = {target: on[target] for target in blocked if on[target] == "connected"}
            assert not refused, f"the policy let these through: {refused}"
            dns = on.pop("DNS")
            assert dns.startswith("resolved "), f"DNS: {dns}; the rest: {on}"
            reached = {target: on[target] for target in allowed if target != "DNS"}
            assert reached == dict.fromkeys(reached, "connected"), reached

            policies.delete_namespaced_network_policy(name, namespace)
            wait_until(lambda: policy_synced(name, "probe", namespace, on=False), 30, "kube-router to drop the policy")
            again = probe(node, worker, {"the API server's Service": blocked["the API server's Service"]})
            assert again == {"the API server's Service": "connected"}
    client.CoreV1Api(cluster.api).delete_namespace(other)


# -- names ---------------------------------------------------------------------------------------------------------


def by_name(site: str) -> str:
    """The fixture site's URL with its host name (answered by the cluster DNS) instead of its address."""
    parts = urllib.parse.urlsplit(site)
    [name] = [n for n, address in FIXTURE_HOSTS.items() if address == parts.hostname]
    return parts._replace(netloc=f"{name}:{parts.port}").geturl()


def test_a_download_names_its_site_by_host_name(cluster: Cluster, downloads: Downloads, site: str) -> None:
    """The worker in its pod resolves the site's name through the cluster DNS (its guard checks what the name
    resolves to: private, allowed by the session operator's settings) and downloads."""
    named = by_name(site)
    downloads.create("named", pvc_spec([f"{named}/img/{n}.jpg" for n in (451, 452)]))
    status = downloads.wait_phase("named", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    folder = cluster.require_local().volumes_root / downloads.namespace / "media" / "named"
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["451.jpg", "452.jpg"]


def test_a_name_resolving_to_a_private_address_is_blocked_in_the_pod(
    cluster: Cluster, namespace: str, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    """With private networks not allowed, the operator passes a URL naming a host (it does not resolve names); the
    worker's guard in the pod resolves it through the cluster DNS, finds the bridge's private address and refuses:
    Blocked, from the pod, before any connection."""
    named = by_name(site)
    settings = {"GALLERY_OPERATOR_NAMESPACES": namespace, "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "false"}
    guarded = operator_for(cluster, tmp_path / "operator.log", settings)
    try:
        guarded.start()
        create_claim(cluster.api, namespace)
        downloads = Downloads(cluster.api, namespace)
        downloads.create("private", pvc_spec([f"{named}/img/461.jpg"]))
        status = downloads.wait_phase("private", {"Succeeded", "Failed"}, timeout=120)
    finally:
        guarded.stop()
        type(guarded).instances.remove(guarded)
    assert status["phase"] == "Failed", status
    [failure] = status["failures"]
    assert failure["reason"] == "Blocked", failure
    assert f"{cluster.service_host} is not a public address" in failure["message"], failure
    assert downloads.jobs("private"), "the worker's guard refused it in a pod, not the operator before any Job"
