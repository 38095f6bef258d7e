"""Fixtures shared by unit tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


@dataclass
class SilentApi:
    kubeconfig: Path
    """A kubeconfig (namespace `ns`) naming the server."""
    connections: list[socket.socket]
    """The connections it took so far."""


@pytest.fixture
def silent_api(tmp_path: Path) -> Iterator[SilentApi]:
    """An API server on loopback that accepts every connection and never answers, as a connection that died without
    a reset looks."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    path = tmp_path / "silent.kubeconfig"
    server = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "silent", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "silent", "user": "u", "namespace": "ns"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    yield SilentApi(path, held)
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()
