"""A TCP proxy on loopback that a test can cut: a process whose API server address is the proxy loses its API
access at `cut()` (every open connection closed, new ones refused) while it keeps running, as in a network partition;
or stalls between `pause()` and `resume()` (nothing moves, connections stay open), as a peer that stops reading.
With a function for its target it spreads connections like a Service (each new connection to the address the
function answers then).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import yaml

Address = tuple[str, int]


class TcpProxy:
    """Forwards every connection to `target` (host, port), or to what `target()` answers for it, until `cut()`."""

    def __init__(self, target: Address | Callable[[], Address], host: str = "127.0.0.1") -> None:
        self.target = target if callable(target) else lambda: target
        self.listener = socket.create_server((host, 0))
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.is_cut = False
        self.flowing = threading.Event()
        self.flowing.set()
        self.sent = 0
        """Bytes forwarded from clients so far."""
        self.pause_at: int | None = None
        threading.Thread(target=self._accept, daemon=True, name="tcpproxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target(), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                if self.is_cut:
                    client.close()
                    upstream.close()
                    return
                self.open |= {client, upstream}
            for source, sink, outgoing in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(source, sink, outgoing), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outgoing: bool) -> None:
        with contextlib.suppress(OSError):
            while self.flowing.wait() and (data := source.recv(65536)):
                sink.sendall(data)
                if outgoing:
                    self._count(len(data))
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def _count(self, size: int) -> None:
        with self.lock:
            self.sent += size
            if self.pause_at is not None and self.sent >= self.pause_at:
                self.flowing.clear()

    def pause(self, after: int = 0) -> None:
        """Stop moving bytes either way once clients have sent ``after`` more bytes (connections stay open): a
        sender's writes block when the socket buffers fill, as with a stalled peer. Each pipe stops before its next
        read."""
        with self.lock:
            self.pause_at = self.sent + after
            if after <= 0:
                self.flowing.clear()

    def resume(self) -> None:
        with self.lock:
            self.pause_at = None
            self.flowing.set()

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        with self.lock:
            self.is_cut = True
            ends, self.open = set(self.open), set()
        self.listener.close()
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def proxied_kubeconfig(kubeconfig: Path, proxy: TcpProxy, path: Path) -> Path:
    """A copy of ``kubeconfig`` (written to ``path``) whose API server address is the proxy's."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        server = urllib.parse.urlsplit(cluster["cluster"]["server"])
        cluster["cluster"]["server"] = f"{server.scheme}://{server.hostname}:{proxy.address[1]}"
    path.write_text(yaml.safe_dump(config))
    return path
