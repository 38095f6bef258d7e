"""Politeness per host, shared by every transfer of the pod (options.concurrency > 1): the pause between items
(sleepSeconds) and the byte rate (rateLimit) hold for the host as a whole, not per transfer, and a 429 or 503 answer
with `Retry-After` pauses every request to that host until then.

The engines send every request through ``requests.Session.send`` (redirects included): the pause is kept there
(``install``). Item starts and bytes are booked where the gallery-dl adapter starts a download and writes its bytes.
"""

from __future__ import annotations

import email.utils
import functools
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests

MAX_PAUSE_SECONDS = 600.0
"""A Retry-After longer than this pauses the host this long (a site cannot park the run for a day)."""
PAUSING_STATUSES = frozenset({429, 503})


def host_of(url: str) -> str:
    """The host a URL's request goes to, with its port: what politeness is counted per. An http(s) URL's host is
    read once per origin (the part before its path, query or fragment): it is asked for every request."""
    if not url.startswith(("http://", "https://")):
        return _host_of_url(url)
    start = url.index("//") + 2
    ends = [at for at in (url.find(mark, start) for mark in "/?#") if at >= 0]
    return _origin_host(url[: min(ends)] if ends else url)


def _host_of_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or ''}"


_origin_host = functools.lru_cache(maxsize=256)(_host_of_url)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delay-seconds or an HTTP date), bounded; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(MAX_PAUSE_SECONDS, max(0.0, seconds))


class _Host:
    __slots__ = ("free_at", "lock", "next_start", "paused_until")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_start = 0.0
        self.paused_until = 0.0
        self.free_at = 0.0


class Hosts:
    """The shared politeness of every host this pod talks to: at most ``rate`` bytes a second from one host (None: no
    limit), the engine's pause between items (sleepSeconds) between the starts of two items from one host."""

    def __init__(
        self,
        rate: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()
        self.hosts: dict[str, _Host] = {}

    def _host(self, url: str) -> _Host:
        key = host_of(url)
        host = self.hosts.get(key)  # asked for every request: known hosts without the lock or a new object
        if host is None:
            with self.lock:
                host = self.hosts.setdefault(key, _Host())
        return host

    def _wait_until(self, moment: float) -> None:
        wait = moment - self.clock()
        if wait > 0:
            self.sleep(wait)

    def start_item(self, url: str, pause: float) -> None:
        """An item's download from ``url`` starts: it waits its turn, ``pause`` seconds after the start the host's
        previous item waited for."""
        if pause <= 0:
            return
        host = self._host(url)
        with host.lock:
            start = max(self.clock(), host.next_start)
            host.next_start = start + pause
        self._wait_until(start)

    def take(self, url: str, size: int) -> None:
        """``size`` bytes arrived from ``url``'s host: wait until the host's rate allows them."""
        if self.rate is None:
            return
        host = self._host(url)
        with host.lock:
            host.free_at = max(host.free_at, self.clock()) + size / self.rate
            due = host.free_at
        self._wait_until(due)

    def before_request(self, url: str) -> None:
        """A request to ``url`` waits while its host is paused (a pause may grow while it waits)."""
        host = self._host(url)
        while (until := host.paused_until) > self.clock():
            self._wait_until(until)

    def answered(self, url: str, status: int, headers: Any) -> None:
        """A 429 or 503 with Retry-After pauses the host for every request of the pod."""
        if status not in PAUSING_STATUSES:
            return
        seconds = retry_after(headers.get("Retry-After"))
        if seconds is None:
            return
        host = self._host(url)
        with host.lock:
            host.paused_until = max(host.paused_until, self.clock() + seconds)

    def install(self) -> None:
        """For the rest of this process: every request the engines send waits for its host's pause, and every
        answer may pause its host."""
        send = requests.Session.send
        hosts = self

        @functools.wraps(send)
        def polite(session: requests.Session, request: Any, **kwargs: Any) -> requests.Response:
            url = str(request.url)
            hosts.before_request(url)
            response = send(session, request, **kwargs)
            hosts.answered(url, response.status_code, response.headers)
            return response

        requests.Session.send = polite  # type: ignore[method-assign,assignment]
