"""Egress rules, enforced where every connection of the worker starts, so redirects cannot slip past them.

Every request, and every redirect, resolves its host through ``socket.getaddrinfo`` before connecting. The guard
wraps it: the host name is checked against the allow and deny lists, and every address in the answer must be
public (not private, loopback, link-local, reserved or multicast) unless private networks are allowed. The
stack then connects only to addresses from that vetted answer, so DNS cannot change it between check and use.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from gallery_operator.egress import Blocked, check_address, check_host
from gallery_operator.workerconfig import Egress

__all__ = ["Blocked", "Guard"]


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
