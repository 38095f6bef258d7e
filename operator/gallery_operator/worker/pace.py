"""A low-speed limit for every transfer the worker reads (curl's --speed-limit / --speed-time idea).

A request timeout bounds only the gap between two bytes: a server that sends one byte a second keeps a download
alive for as long as it likes. The engines cannot see such a trickle either: they read 1 MiB blocks, and a read
blocks until its block is full. So the limit sits where bytes arrive: every HTTP response of this process is read
through ``socket.SocketIO.readinto`` (http.client, and so urllib3, requests, gallery-dl and yt-dlp). While a
connection is being read, a watchdog thread compares what arrived in the last ``seconds`` with ``min_rate``; below it,
the connection is shut down and the read raises ``TimeoutError`` ("timed out: ..."), which the engines report as
reason ``Timeout``. Idle keep-alive connections are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)
IDLE_GAP_SECONDS = 1.0
"""A read that starts this long after the previous one ended begins a new measurement (a new request)."""


class _Transfer:
    __slots__ = ("__weakref__", "killed", "last_end", "reading", "sock", "window_bytes", "window_start")

    def __init__(self, sock: Any) -> None:
        now = time.monotonic()
        self.sock = sock
        self.window_start = now
        self.window_bytes = 0
        self.reading = False
        self.last_end = now
        self.killed = False


class LowSpeedLimit:
    """Less than ``min_rate`` bytes per second for ``seconds`` while a connection is read aborts that read."""

    def __init__(self, min_rate: int, seconds: float) -> None:
        self.min_rate = min_rate
        self.seconds = seconds
        self.message = f"timed out: less than {min_rate} bytes/s for {seconds:g}s (options.lowSpeedLimit)"
        self.transfers: weakref.WeakSet[_Transfer] = weakref.WeakSet()
        self.lock = threading.Lock()
        self._original = socket.SocketIO.readinto

    def readinto(self, stream: Any, buffer: Any) -> int | None:
        # The hot path of every download: no lock (the watchdog's view may be a read behind, which a window of
        # seconds does not notice), the measurement kept on the stream itself.
        transfer: _Transfer | None = stream.__dict__.get("_low_speed")
        now = time.monotonic()
        if transfer is None:
            transfer = stream.__dict__["_low_speed"] = _Transfer(stream._sock)
            with self.lock:
                self.transfers.add(transfer)
        elif not transfer.reading and now - transfer.last_end > IDLE_GAP_SECONDS:
            transfer.window_start, transfer.window_bytes = now, 0
        transfer.reading = True
        try:
            count: int | None = self._original(stream, buffer)
        except OSError:
            if transfer.killed:
                raise TimeoutError(self.message) from None
            raise
        finally:
            transfer.reading = False
            transfer.last_end = time.monotonic()
        if transfer.killed:
            raise TimeoutError(self.message)
        transfer.window_bytes += count or 0
        return count

    def check(self) -> None:
        """One look at every connection being read: too slow over a whole window is shut down."""
        now = time.monotonic()
        with self.lock:
            for transfer in list(self.transfers):
                if transfer.killed or now - transfer.window_start < self.seconds:
                    continue
                busy = transfer.reading or now - transfer.last_end <= IDLE_GAP_SECONDS
                if busy and transfer.window_bytes < self.min_rate * self.seconds:
                    transfer.killed = True
                    log.warning(
                        "%s: %d bytes in the last %.0fs",
                        self.message,
                        transfer.window_bytes,
                        now - transfer.window_start,
                    )
                    with contextlib.suppress(OSError):
                        transfer.sock.shutdown(socket.SHUT_RDWR)
                else:
                    transfer.window_start, transfer.window_bytes = now, 0

    def _watch(self) -> None:
        interval = max(0.1, min(1.0, self.seconds / 4))
        while True:
            time.sleep(interval)
            self.check()

    def install(self) -> None:
        """For the rest of this process: every socket read is measured, and a watchdog thread checks them."""
        limit = self

        def readinto(stream: Any, buffer: Any) -> int | None:
            return limit.readinto(stream, buffer)

        socket.SocketIO.readinto = readinto  # type: ignore[method-assign,assignment]
        threading.Thread(target=self._watch, name="low-speed", daemon=True).start()
