"""Egress rules, enforced where every connection of the worker starts, so redirects cannot slip past them.

Every request, and every redirect, resolves its host through ``socket.getaddrinfo`` before connecting. The guard
wraps it: the host name is checked against the allow and deny lists, and every address in the answer must be
public (not private, loopback, link-local, reserved or multicast) unless private networks are allowed. The
stack then connects only to addresses from that vetted answer, so DNS cannot change it between check and use.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

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


class Guard:
    """Installs the checks into name resolution, which every HTTP stack here goes through before connecting
    (http.client, urllib3 for requests and boto3, and yt-dlp's own connection helper)."""

    def __init__(self, rules: Egress, exempt_hosts: Iterable[str] = ()) -> None:
        self.rules = rules
        self.exempt = frozenset(h for h in exempt_hosts if h)
        self._resolve = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        answers = self._resolve(host, port, *args, **kwargs)
        if name in self.exempt:
            return answers
        check_host(name, self.rules)
        for answer in answers:
            check_address(str(answer[4][0]), self.rules)
        return answers

    def install(self) -> None:
        socket.getaddrinfo = self.getaddrinfo
