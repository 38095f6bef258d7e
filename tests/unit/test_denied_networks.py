"""The one list of denied address ranges: what the admission check and the worker's guard refuse."""

from __future__ import annotations

import ipaddress

import pytest

from gallery_operator.egress import DENIED_NETWORKS, Blocked, check_address
from gallery_operator.workerconfig import Egress


@pytest.mark.parametrize(
    "address",
    [
        "168.63.129.16",  # Azure's wire server and metadata address (a public address)
        "fd00:ec2::254",  # AWS's IPv6 metadata address
        "100.100.100.200",  # Alibaba's metadata address (CGNAT)
        "192.0.0.192",  # Oracle's metadata address
        "fec0::1",  # site-local
        "192.88.99.1",  # the 6to4 relay anycast
        # IPv4-embedding IPv6 forms are refused whole, whatever they embed: the NetworkPolicy cannot look inside.
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "64:ff9b:1::808:808",  # local-use NAT64
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo
        "::ffff:8.8.8.8",  # IPv4-mapped
        "::ffff:0:808:808",  # IPv4-translated
        "::8.8.8.8",  # IPv4-compatible
        "ff02::1",  # multicast
        "240.0.0.1",
        "255.255.255.255",
    ],
)
def test_every_denied_range_is_refused_by_the_guard(address: str) -> None:
    with pytest.raises(Blocked, match="not a public address"):
        check_address(address, Egress())
    check_address(address, Egress(allow_private_networks=True))


def _edges(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    return [str(network.network_address), str(network.broadcast_address)]


# Every range Python's standard library itself calls private or reserved is in the list too.
STDLIB_NON_GLOBAL = [
    *ipaddress._IPv4Constants._private_networks,  # type: ignore[attr-defined]
    *ipaddress._IPv6Constants._private_networks,  # type: ignore[attr-defined]
    ipaddress._IPv4Constants._public_network,  # type: ignore[attr-defined]
    ipaddress.IPv4Network("224.0.0.0/4"),
    ipaddress.IPv6Network("ff00::/8"),
]


@pytest.mark.parametrize("address", [a for network in STDLIB_NON_GLOBAL for a in _edges(network)])
def test_the_list_covers_every_range_the_standard_library_calls_non_global(address: str) -> None:
    assert any(ipaddress.ip_address(address) in network for network in DENIED_NETWORKS)
    with pytest.raises(Blocked):
        check_address(address, Egress())


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "2a00:1450::1"])
def test_public_addresses_stay_reachable(address: str) -> None:
    check_address(address, Egress())
