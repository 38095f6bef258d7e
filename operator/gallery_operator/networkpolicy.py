"""The network wall around worker and cleanup pods, pure: the NetworkPolicy the operator keeps in every namespace
with downloads, and what one namespace needs done about it.

Egress only to the cluster's DNS, the operator's report endpoint, the private S3 endpoints and public addresses
(every address but `egress.DENIED_NETWORKS`, the list the admission check and the worker's guard use); no ingress.
The controller makes it before the first Job in a namespace, repairs it when its watch shows it changed or gone,
and removes it once the namespace has no download left and no walled pod that may still run (a worker orphaned by
`kubectl delete --cascade=orphan`, or one still stopping, keeps it) (`controller.py`); apply.py writes it through the
facade.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gallery_operator.config import Settings
from gallery_operator.egress import DENIED_NETWORKS, s3_endpoint_address
from gallery_operator.jobs import LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY
from gallery_operator.snapshots import PolicySnapshot

POLICY_NAME = "gallery-operator-workers"
"""The name of the policy in every namespace with downloads (one per namespace, whatever the download)."""
WALLED_COMPONENTS = ("cleanup", "worker")
"""The pods behind the wall: the values of LABEL_COMPONENT on worker and cleanup pods."""
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
POLICY_LABELS = {LABEL_NAME: "gallery-operator", LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPONENT: "network-policy"}


def walled_pods() -> dict[str, Any]:
    """The policy's pod selector: the pods the operator labels as its worker or cleanup pods. A tenant's own pod
    carrying those labels only gets more restricted."""
    return {
        "matchLabels": {LABEL_MANAGED_BY: MANAGED_BY},
        "matchExpressions": [{"key": LABEL_COMPONENT, "operator": "In", "values": list(WALLED_COMPONENTS)}],
    }


WALLED_POD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT} in ({','.join(WALLED_COMPONENTS)})"
"""`walled_pods` as a label selector string, for listing the pods behind the wall."""
UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"
"""A field selector: pods that may still run (pending, running or stopping)."""
OUTLIVING_RECHECK_SECONDS = 15.0
"""How often a namespace with no download left but walled pods still running is looked at again."""


IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@functools.cache
def denied_cidrs(version: int) -> tuple[str, ...]:
    """The ranges excluded from public addresses of one IP version: DENIED_NETWORKS, as written there, but for the
    IPv4-mapped block. The API server parses `::ffff:0:0/96` as IPv4 and refuses it as an exception of `::/0` ("must
    be a strict subset of cidr"), which would leave a namespace without its policy and so without Jobs. Nothing is
    lost: a mapped address never travels as IPv6 (the kernel sends IPv4 to it), so the IPv4 exceptions judge it.
    Computed once per version (DENIED_NETWORKS is fixed); callers copy it into the policy they build."""
    return tuple(
        str(network)
        for network in DENIED_NETWORKS
        if network.version == version
        and not (isinstance(network, ipaddress.IPv6Network) and network.subnet_of(IPV4_MAPPED))
    )


def _pods_in(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def _private_store_cidrs(settings: Settings) -> list[str]:
    """The private S3 endpoints' addresses: those written as addresses, and the CIDRs the settings list."""
    cidrs = [*settings.s3_private_cidrs]
    for endpoint in settings.s3_private_endpoints:
        address = s3_endpoint_address(endpoint)
        if address is not None:
            cidrs.append(str(ipaddress.ip_network(address)))
    return sorted(set(cidrs))


def worker_policy_spec(settings: Settings) -> dict[str, Any]:
    """The spec of the workers' NetworkPolicy under these settings (the same in every namespace)."""
    egress: list[dict[str, Any]] = [
        {
            "to": [_pods_in(settings.dns_namespace, settings.dns_pod_labels)],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {
            "to": [_pods_in(settings.operator_namespace, settings.operator_pod_labels)],
            "ports": [{"protocol": "TCP", "port": settings.report_port}],
        },
    ]
    if stores := _private_store_cidrs(settings):
        # Any port: a Service's port is translated to the store's own before the policy agent looks.
        egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in stores]})
    private = settings.allow_private_networks  # the platform lets workers reach private addresses: no exceptions
    public: dict[str, Any] = {
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/0"} | ({} if private else {"except": list(denied_cidrs(4))})},
            {"ipBlock": {"cidr": "::/0"} | ({} if private else {"except": list(denied_cidrs(6))})},
        ]
    }
    if settings.network_policy_ports:
        public["ports"] = [{"protocol": "TCP", "port": port} for port in settings.network_policy_ports]
    egress.append(public)
    return {"podSelector": walled_pods(), "policyTypes": ["Ingress", "Egress"], "egress": egress}


def worker_network_policy(namespace: str, settings: Settings) -> dict[str, Any]:
    """The NetworkPolicy the operator keeps in a namespace with downloads, under these settings."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY_NAME, "namespace": namespace, "labels": dict(POLICY_LABELS)},
        "spec": worker_policy_spec(settings),
    }


def in_shape(observed: PolicySnapshot | None, spec: Mapping[str, Any]) -> bool:
    """The observed policy is the one the operator would write: this spec, and the operator's labels."""
    if observed is None:
        return False
    return dict(observed.spec) == dict(spec) and POLICY_LABELS.items() <= observed.labels.items()


# -- what the plan asks for -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeepNetworkPolicy:
    """Create the namespace's worker NetworkPolicy, or put it back in shape."""

    policy: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class RemoveNetworkPolicy:
    namespace: str


def namespace_plan(
    namespace: str, settings: Settings, downloads_left: bool, present: bool, shaped: bool
) -> KeepNetworkPolicy | RemoveNetworkPolicy | None:
    """What a namespace needs done about its policy: kept in shape while downloads are there (and the setting is
    on), removed once none is left (or the setting is off), else nothing."""
    if settings.network_policy and downloads_left:
        return None if shaped else KeepNetworkPolicy(worker_network_policy(namespace, settings))
    return RemoveNetworkPolicy(namespace) if present else None
