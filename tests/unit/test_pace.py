"""The low-speed limit on real sockets (a socketpair): idle connections stay, a stalled read is cut."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gallery_operator.worker.pace import LowSpeedLimit


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket, socket.SocketIO]]:
    """Our end (read through SocketIO, as http.client does) and the server's end of a connection."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, theirs, socket.SocketIO(ours, "rb")


def test_an_idle_connection_stays_and_a_stalled_read_is_cut(
    pair: tuple[socket.socket, socket.socket, socket.SocketIO],
) -> None:
    limit = LowSpeedLimit(min_rate=100, seconds=0.3)
    _, theirs, stream = pair
    buffer = bytearray(10)
    theirs.sendall(b"x" * 10)
    assert limit.readinto(stream, buffer) == 10
    time.sleep(1.3)  # idle (keep-alive): nobody reads for longer than IDLE_GAP_SECONDS
    limit.check()
    theirs.sendall(b"y")
    assert limit.readinto(stream, buffer) == 1  # still open
    outcome: list[BaseException | int | None] = []

    def read() -> None:
        try:
            outcome.append(limit.readinto(stream, buffer))
        except BaseException as error:
            outcome.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 5
    while reader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
        limit.check()  # what the watchdog thread does
    reader.join(timeout=1)
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    assert "less than 100 bytes/s" in str(outcome[0])


def test_a_fast_transfer_is_left_alone(pair: tuple[socket.socket, socket.socket, socket.SocketIO]) -> None:
    limit = LowSpeedLimit(min_rate=100, seconds=0.2)
    ours, theirs, stream = pair
    buffer = bytearray(1000)
    for _ in range(6):
        theirs.sendall(b"z" * 1000)
        assert limit.readinto(stream, buffer) == 1000
        time.sleep(0.1)
        limit.check()
    with pytest.raises(BlockingIOError):
        ours.setblocking(False)
        ours.recv(1)
