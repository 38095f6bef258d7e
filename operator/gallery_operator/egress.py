"""Egress rules as pure checks: the operator applies them to a download's URLs before it makes a Job, and the
worker (``worker/egress.py``) to every name it resolves, redirects included."""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable, Mapping

from gallery_operator import API_GROUP
from gallery_operator.workerconfig import Egress

ALLOWED_ANNOTATION = f"{API_GROUP}/allowed-domains"
DENIED_ANNOTATION = f"{API_GROUP}/denied-domains"
"""Namespace annotations (comma-separated domains) that tighten the operator's rules for downloads there."""


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


def _split(value: str | None) -> list[str]:
    return [d.strip().lower().strip(".") for d in (value or "").split(",") if d.strip().strip(".")]


def namespace_rules(annotations: Mapping[str, str]) -> tuple[list[str], list[str]] | None:
    """(allowed, denied) from a namespace's annotations, or None when it sets neither."""
    if ALLOWED_ANNOTATION not in annotations and DENIED_ANNOTATION not in annotations:
        return None
    return _split(annotations.get(ALLOWED_ANNOTATION)), _split(annotations.get(DENIED_ANNOTATION))


def tighten(rules: Egress, allowed: list[str], denied: list[str]) -> Egress:
    """The operator's rules narrowed by a namespace's: a host must pass both. Denied lists add up; allowed lists
    intersect (a domain on one list that falls under the other's, e.g. cdn.example.org under example.org)."""
    if allowed and rules.allowed_domains:
        both = {d for d in allowed if _in_domains(d, rules.allowed_domains)}
        both |= {d for d in rules.allowed_domains if _in_domains(d, allowed)}
        # Nothing in common: an allowed list no host can match (an empty list would mean "anything").
        allowed_domains = sorted(both) or ["nothing.invalid"]
    else:
        allowed_domains = list(allowed or rules.allowed_domains)
    return rules.model_copy(
        update={
            "allowed_domains": allowed_domains,
            "denied_domains": sorted({*rules.denied_domains, *denied}),
        }
    )
