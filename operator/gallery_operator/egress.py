"""Egress rules as pure checks: the operator applies them to a download's URLs before it makes a Job, and the
worker (``worker/egress.py``) to every name it resolves, redirects included."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable

from gallery_operator.workerconfig import Egress


class Blocked(OSError):
    """A destination the egress rules refuse; its message starts with 'blocked' for the failure classifier."""


def _in_domains(host: str, domains: Iterable[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == d.lower().rstrip(".") or host.endswith("." + d.lower().strip(".")) for d in domains)


def check_host(host: str, rules: Egress) -> None:
    """Raise Blocked if the host name is not allowed."""
    if _in_domains(host, rules.denied_domains):
        raise Blocked(f"blocked by egress rules: {host} is on the denied list")
    if rules.allowed_domains and not _in_domains(host, rules.allowed_domains):
        raise Blocked(f"blocked by egress rules: {host} is not on the allowed list")


def check_address(address: str, rules: Egress) -> None:
    """Raise Blocked for a non-public address unless private networks are allowed."""
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if rules.allow_private_networks:
        return
    if not ip.is_global or ip.is_multicast:
        raise Blocked(f"blocked by egress rules: {address} is not a public address")


def url_violation(url: str, rules: Egress) -> str | None:
    """Why the rules refuse this URL as written, or None. Without resolving names: an address written in the URL
    and `localhost` are checked as addresses, names against the lists (the worker checks what names resolve to)."""
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".")
    try:
        check_host(host, rules)
        try:
            check_address(host, rules)
        except ValueError:  # a name, not an address
            if host.lower() == "localhost" or host.lower().endswith(".localhost"):
                check_address("127.0.0.1", rules)
    except Blocked as error:
        return str(error)
    return None
