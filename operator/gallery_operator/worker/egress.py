"""Egress rules, enforced where every connection of the worker starts, so redirects cannot slip past them.

Every request, and every redirect, resolves its host through ``socket.getaddrinfo`` before connecting. The guard
wraps it: the host name is checked against the allow and deny lists, and every address in the answer must be
public (not private, loopback, link-local, reserved or multicast, nor an IPv6 form of such an IPv4 address) unless
private networks are allowed. The stack then connects only to addresses from that vetted answer, so DNS cannot
change it between check and use.

Two destinations are the operator's, not the tenant's: the operator's report endpoint and an S3 endpoint the
operator lists as private. They are trusted only inside the code that talks to them (``Guard.trusting``, entered by
the reporter and by the S3 client's own HTTP session), never for a download or a redirect to the same host.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gallery_operator.egress import Blocked, check_address, check_host, normalize_host
from gallery_operator.workerconfig import Egress

__all__ = ["Blocked", "Guard", "Trust"]


@dataclass(frozen=True)
class Trust:
    """A destination of the worker's own: connections to ``host`` (or a subdomain, for virtual-hosted buckets) skip
    the domain lists; with ``private`` they skip the address rules too (the operator's service, an in-cluster
    object store the operator lists)."""

    host: str
    private: bool


class Guard:
    """Installs the checks into name resolution, which every HTTP stack here goes through before connecting
    (http.client, urllib3 for requests and boto3, and yt-dlp's own connection helper)."""

    def __init__(self, rules: Egress) -> None:
        self.rules = rules
        self._resolve = socket.getaddrinfo
        self._local = threading.local()

    @contextlib.contextmanager
    def trusting(self, trust: Trust | None) -> Iterator[None]:
        """Within this block, on this thread, connections to ``trust.host`` are the worker's own (None: nothing)."""
        if trust is None:
            yield
            return
        previous = getattr(self._local, "trust", None)
        self._local.trust = Trust(normalize_host(trust.host), trust.private)
        try:
            yield
        finally:
            self._local.trust = previous

    def trusted(self, trust: Trust, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` made inside ``trusting(trust)`` (for an HTTP session's send method, whatever thread calls it)."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self.trusting(trust):
                return call(*args, **kwargs)

        return wrapped

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = normalize_host(host if isinstance(host, str | bytes) else str(host))
        trust: Trust | None = getattr(self._local, "trust", None)
        own = trust is not None and (name == trust.host or name.endswith("." + trust.host))
        if not own:
            check_host(name, self.rules)
        answers = self._resolve(host, port, *args, **kwargs)
        if own and trust is not None and trust.private:
            return answers
        for answer in answers:
            check_address(str(answer[4][0]), self.rules)
        return answers

    def check_url(self, url: str) -> None:
        """Raise Blocked unless the rules let this thread connect to the URL's host (resolving it, as a connection
        would): a clear reason up front where a client would only say it could not connect."""
        parts = urllib.parse.urlsplit(url)
        self.getaddrinfo(parts.hostname or "", parts.port or 0, type=socket.SOCK_STREAM)

    def install(self) -> None:
        socket.getaddrinfo = self.getaddrinfo
