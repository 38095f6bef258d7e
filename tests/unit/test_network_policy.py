"""The network wall around workers: the NetworkPolicy the operator keeps (a pure builder), the plan that makes it
before the first Job in a namespace, and the controller that repairs it and removes it with the last download."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

import pytest

from gallery_operator.admission import Granted, Waiting
from gallery_operator.config import Settings, load_settings
from gallery_operator.egress import DENIED_NETWORKS, Blocked, check_address
from gallery_operator.jobs import build_cleanup_job, build_job
from gallery_operator.networkpolicy import (
    IPV4_MAPPED,
    POLICY_LABELS,
    POLICY_NAME,
    KeepNetworkPolicy,
    RemoveNetworkPolicy,
    in_shape,
    namespace_plan,
    worker_network_policy,
)
from gallery_operator.plan import FINALIZER, CleanupSeen, Situation, StartCleanup, StartRun, plan
from gallery_operator.snapshots import PolicySnapshot
from gallery_operator.workerconfig import Egress
from tests.unit.builders import parsed, reconcile, snapshot, taken, watch_shows, world
from tests.unit.plan_situations import QUEUED, situation
from tests.unit.plan_situations import snapshot as plan_snapshot

DEFAULT = Settings()


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector's verdict on a pod's labels (matchLabels and the In operator, as the policy uses)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(job: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = job["spec"]["template"]["metadata"]["labels"]
    return labels


def public_blocks(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The ipBlocks of the rule to public addresses (the one with 0.0.0.0/0 and ::/0)."""
    for rule in policy["spec"]["egress"]:
        blocks = [peer["ipBlock"] for peer in rule["to"] if "ipBlock" in peer]
        if {b["cidr"] for b in blocks} == {"0.0.0.0/0", "::/0"}:
            return blocks
    raise AssertionError("no rule to public addresses")


def policy_admits(policy: dict[str, Any], address: str) -> bool:
    """Whether the public-address rule lets a worker reach this address (ports aside). An IPv4-mapped address
    travels as its IPv4 address, and is judged as that."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for block in public_blocks(policy):
        network = ipaddress.ip_network(block["cidr"])
        if ip.version == network.version and ip in network:
            return not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    return False


# -- the builder ---------------------------------------------------------------------------------------------


def test_the_policy_walls_in_worker_and_cleanup_pods_and_nothing_else() -> None:
    policy = worker_network_policy("tenant", DEFAULT)
    download = parsed(plan_snapshot())
    selector = policy["spec"]["podSelector"]
    assert selects(selector, pod_labels(build_job(download, DEFAULT)))
    assert selects(selector, pod_labels(build_cleanup_job(download, DEFAULT)))
    assert not selects(selector, {"app.kubernetes.io/name": "gallery-operator", "app.kubernetes.io/component": "x"})
    assert not selects(selector, {"app": "tenant"})
    assert policy["metadata"] == {"name": POLICY_NAME, "namespace": "tenant", "labels": POLICY_LABELS}
    # No ingress at all, and egress only by the rules below.
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in policy["spec"]


def test_the_excepted_ranges_are_the_guards_denied_list() -> None:
    excepted = {
        ipaddress.ip_network(e) for b in public_blocks(worker_network_policy("t", DEFAULT)) for e in b["except"]
    }
    # All of it but the IPv4-mapped block, which the API server refuses in an exception of ::/0 (a mapped address
    # travels as IPv4, so the IPv4 exceptions judge it; the real API server's verdict is in the e2e tests).
    assert excepted == set(DENIED_NETWORKS) - {IPV4_MAPPED}
    assert IPV4_MAPPED in DENIED_NETWORKS


ADDRESSES = [
    *(str(n.network_address) for n in DENIED_NETWORKS),
    *(str(n.broadcast_address) for n in DENIED_NETWORKS),
    "168.63.129.16",
    "169.254.169.254",
    "fd00:ec2::254",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "::ffff:8.8.8.8",
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "11.0.0.1",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_policy_and_the_guard_agree_on_every_address(address: str) -> None:
    """On the wire, that is: the guard refuses every mapped address, the policy sees a mapped one as IPv4."""
    mapped = ipaddress.ip_address(address)
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        address = str(mapped.ipv4_mapped)
    try:
        check_address(address, Egress())
        guard_allows = True
    except Blocked:
        guard_allows = False
    assert policy_admits(worker_network_policy("t", DEFAULT), address) == guard_allows


def test_with_private_networks_allowed_the_policy_excepts_nothing() -> None:
    settings = Settings(allow_private_networks=True)
    assert all("except" not in block for block in public_blocks(worker_network_policy("t", settings)))
    assert policy_admits(worker_network_policy("t", settings), "10.1.2.3")


def rule_to(policy: dict[str, Any], peer_key: str) -> list[dict[str, Any]]:
    return [rule for rule in policy["spec"]["egress"] if any(peer_key in peer for peer in rule["to"])]


def test_dns_and_the_report_endpoint_are_reached_by_their_pods_only() -> None:
    settings = load_settings(
        {
            "GALLERY_OPERATOR_DNS_NAMESPACE": "dns",
            "GALLERY_OPERATOR_DNS_POD_LABELS": "k8s-app=coredns",
            "GALLERY_OPERATOR_OPERATOR_NAMESPACE": "ops",
            "GALLERY_OPERATOR_OPERATOR_POD_LABELS": "app=op,tier=control",
            "GALLERY_OPERATOR_REPORT_PORT": "9443",
        }
    )
    dns, report = rule_to(worker_network_policy("t", settings), "podSelector")
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
            "podSelector": {"matchLabels": {"k8s-app": "coredns"}},
        }
    ]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert report["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}
    assert report["to"][0]["podSelector"] == {"matchLabels": {"app": "op", "tier": "control"}}
    assert report["ports"] == [{"protocol": "TCP", "port": 9443}]


def test_public_ports_are_80_and_443_unless_set_and_every_port_when_empty() -> None:
    def ports(settings: Settings) -> Any:
        [rule] = [r for r in worker_network_policy("t", settings)["spec"]["egress"] if r["to"][0].get("ipBlock")]
        return rule.get("ports")

    assert ports(DEFAULT) == [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443}]
    assert ports(load_settings({"GALLERY_OPERATOR_NETWORK_POLICY_PORTS": "8443"})) == [
        {"protocol": "TCP", "port": 8443}
    ]
    assert ports(load_settings({"GALLERY_OPERATOR_NETWORK_POLICY_PORTS": ""})) is None


def test_private_s3_endpoints_are_reached_at_their_addresses() -> None:
    settings = load_settings(
        {
            "GALLERY_OPERATOR_S3_PRIVATE_ENDPOINTS": "http://10.0.0.7:9000,http://minio.storage.svc:9000",
            "GALLERY_OPERATOR_S3_PRIVATE_CIDRS": "10.244.3.0/24",
        }
    )
    [store] = [
        r for r in worker_network_policy("t", settings)["spec"]["egress"] if "cidr" in r["to"][0].get("ipBlock", {})
    ][:1]
    assert store == {"to": [{"ipBlock": {"cidr": "10.0.0.7/32"}}, {"ipBlock": {"cidr": "10.244.3.0/24"}}]}
    assert not any(
        "10.0.0.7/32" in str(r) for r in rule_to(worker_network_policy("t", DEFAULT), "ipBlock")
    )  # none without endpoints


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"GALLERY_OPERATOR_S3_PRIVATE_ENDPOINTS": "http://minio.storage.svc:9000"},
            "GALLERY_OPERATOR_S3_PRIVATE_CIDRS: the worker NetworkPolicy needs the addresses of",
        ),
        ({"GALLERY_OPERATOR_S3_PRIVATE_CIDRS": "10.0.0.0/33"}, "GALLERY_OPERATOR_S3_PRIVATE_CIDRS"),
        ({"GALLERY_OPERATOR_DNS_POD_LABELS": "k8s-app"}, "GALLERY_OPERATOR_DNS_POD_LABELS: .*not key=value"),
        ({"GALLERY_OPERATOR_OPERATOR_POD_LABELS": ""}, "GALLERY_OPERATOR_OPERATOR_POD_LABELS: .*at least one label"),
        ({"GALLERY_OPERATOR_NETWORK_POLICY_PORTS": "0"}, "GALLERY_OPERATOR_NETWORK_POLICY_PORTS"),
    ],
)
def test_bad_policy_settings_are_named(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_settings(environ)


def test_a_named_private_store_needs_no_addresses_without_the_policy() -> None:
    environ = {"GALLERY_OPERATOR_S3_PRIVATE_ENDPOINTS": "http://minio.storage.svc:9000"}
    assert not load_settings({**environ, "GALLERY_OPERATOR_NETWORK_POLICY": "false"}).network_policy


def test_a_policy_is_in_shape_only_as_the_operator_writes_it() -> None:
    policy = worker_network_policy("t", DEFAULT)
    observed = PolicySnapshot("t", {**POLICY_LABELS, "extra": "ok"}, policy["spec"])
    assert in_shape(observed, policy["spec"])
    widened = {**policy["spec"], "egress": [*policy["spec"]["egress"], {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}
    assert not in_shape(dataclasses.replace(observed, spec=widened), policy["spec"])
    assert not in_shape(dataclasses.replace(observed, labels={}), policy["spec"])
    assert not in_shape(None, policy["spec"])


# -- the plan ------------------------------------------------------------------------------------------------

OFF = Settings(network_policy=False)


def words(actions: list[Any]) -> list[str]:
    return [type(a).__name__ for a in actions if isinstance(a, KeepNetworkPolicy | StartRun | StartCleanup)]


GRANTED = situation(previous=QUEUED, slot=Granted())
DELETING = situation(spec={"deletionPolicy": "Delete"}, deleting=True, finalizers=(FINALIZER,), cleanup=CleanupSeen())


@pytest.mark.parametrize(
    ("given", "walled", "settings", "expected"),
    [
        (GRANTED, False, DEFAULT, ["KeepNetworkPolicy", "StartRun"]),  # the first Job in a namespace: policy first
        (GRANTED, True, DEFAULT, ["StartRun"]),  # the policy is there (watched, or just written)
        (GRANTED, False, OFF, ["StartRun"]),  # the setting is off: never a policy
        (situation(slot=Waiting(2)), False, DEFAULT, []),  # no Job to make yet: no policy yet
        (DELETING, False, DEFAULT, ["KeepNetworkPolicy", "StartCleanup"]),  # a cleanup pod is walled in too
        (DELETING, True, DEFAULT, ["StartCleanup"]),
        # A Job running without the wall (made before the setting was on): the wall now.
        (situation(jobs=("current",), ready=True), False, DEFAULT, ["KeepNetworkPolicy"]),
        (situation(jobs=("current",), ready=True), True, DEFAULT, []),
        (situation(jobs=("current",), job_conditions=("Complete",)), False, DEFAULT, []),  # ended: no pod to wall
    ],
)
def test_no_job_in_a_namespace_before_its_policy(
    given: Situation, walled: bool, settings: Settings, expected: list[str]
) -> None:
    actions = plan(dataclasses.replace(given, walled=walled), settings, Egress()).actions
    assert words(actions) == expected
    for action in actions:
        if isinstance(action, KeepNetworkPolicy):
            assert action.policy == worker_network_policy("ns", settings)


@pytest.mark.parametrize(
    ("on", "left", "present", "shaped", "expected"),
    [
        (True, True, False, False, KeepNetworkPolicy),  # downloads there, no policy yet (or deleted by a tenant)
        (True, True, True, False, KeepNetworkPolicy),  # edited by a tenant: put back in shape
        (True, True, True, True, None),  # as it should be
        (True, False, True, True, RemoveNetworkPolicy),  # the last download is gone
        (True, False, False, False, None),
        (False, True, True, True, RemoveNetworkPolicy),  # the setting was turned off
        (False, True, False, False, None),
    ],
)
def test_a_namespace_keeps_its_policy_while_downloads_are_there(
    on: bool, left: bool, present: bool, shaped: bool, expected: type | None
) -> None:
    action = namespace_plan("ns", Settings(network_policy=on), left, present, shaped)
    assert (type(action) if action is not None else None) is expected


# -- the controller ------------------------------------------------------------------------------------------


def policy_calls(fake: Any) -> list[tuple[str, Any]]:
    return [c for c in fake.calls if c[0] in ("keep_network_policy", "delete_network_policy", "create_job")]


def test_the_first_job_of_a_namespace_waits_for_its_policy_and_later_ones_cost_nothing() -> None:
    controller, fake = world(snapshot("a"), snapshot("b"), snapshot("c"))
    reconcile(controller, "a", "b", "c")
    calls = policy_calls(fake)
    assert calls[0] == ("keep_network_policy", "ns")
    assert [c[0] for c in calls[1:]] == ["create_job", "create_job", "create_job"]
    reconcile(controller, "a", "b", "c")  # again: no policy call in steady state
    assert len(fake.named("keep_network_policy")) == 1


def test_a_tenants_deletion_or_edit_of_the_policy_is_repaired() -> None:
    controller, fake = world(snapshot("a"))
    reconcile(controller, "a")
    policy = worker_network_policy("ns", DEFAULT)
    watch_shows(controller, policy)  # the echo of our own write: nothing to do
    assert not taken(controller)
    watch_shows(controller, None)  # a tenant deleted it
    assert taken(controller) == {("ns", "")}
    reconcile(controller, "")
    assert fake.named("keep_network_policy") == ["ns", "ns"]
    widened = {**policy, "spec": {**policy["spec"], "egress": [{}]}}
    watch_shows(controller, widened)  # a tenant opened it to everything
    assert taken(controller) == {("ns", "")}
    reconcile(controller, "")
    assert fake.named("keep_network_policy") == ["ns", "ns", "ns"]


def test_the_policy_goes_with_the_namespaces_last_download() -> None:
    controller, fake = world(snapshot("a"), snapshot("b"))
    reconcile(controller, "a", "b")
    names = controller.namespace_downloads
    downloads = controller.downloads
    assert isinstance(names, dict) and isinstance(downloads, dict)
    del downloads[("ns", "a")]
    names["ns"] = ["b"]
    reconcile(controller, "a")
    assert ("ns", "") not in taken(controller) and not fake.named("delete_network_policy")  # b is still there
    del downloads[("ns", "b")]
    del names["ns"]
    reconcile(controller, "b")
    assert ("ns", "") in taken(controller)
    reconcile(controller, "")
    assert fake.named("delete_network_policy") == ["ns"]


def test_with_the_setting_off_no_policy_is_made_and_an_old_one_is_removed() -> None:
    controller, fake = world(snapshot("a"), network_policy=False)
    reconcile(controller, "a")
    assert fake.named("create_job") and not fake.named("keep_network_policy")
    watch_shows(controller, worker_network_policy("ns", DEFAULT))  # left from when the setting was on
    assert taken(controller) == {("ns", "")}
    reconcile(controller, "")
    assert fake.named("delete_network_policy") == ["ns"]
