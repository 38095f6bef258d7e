"""The fixture site's network options (latency, bandwidth cap) and its request log, on a real loopback server."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import pytest

from gallery_harness.site import Handler, Pacer, image_bytes, serve


def test_pacer_books_bytes_one_after_another() -> None:
    """Each booking starts where the one before it ends: two callers' bytes share one rate. On a clock that stands
    still (a fake: the real monotonic clock of a machine up for a day leaves too few bits for exact milliseconds), 1 MB
    at 1 GB/s books a millisecond, and the third booking waits for the two before it."""
    slept: list[float] = []
    pacer = Pacer(rate=1_000_000_000, clock=lambda: 1_000_000.0, sleep=slept.append)
    pacer.take(500_000)
    pacer.take(500_000)
    pacer.take(2_000_000)
    assert pacer.free_at - 1_000_000.0 == pytest.approx(0.003, rel=1e-6)
    assert slept == [pytest.approx(0.003, rel=1e-6)]  # the third waits for all three; 1 ms or less is not slept


@pytest.mark.parametrize("shared", [False, True])
def test_capped_site_still_answers_whole_bodies(shared: bool) -> None:
    with serve(latency=0.01, bandwidth=4 * 1024 * 1024, shared=shared) as url:
        with urllib.request.urlopen(f"{url}/img/7.jpg?size=300000") as response:
            assert response.read() == image_bytes(7, 300_000)
        with urllib.request.urlopen(f"{url}/big/2.mp4") as response:
            assert len(response.read()) == 2 * 1024 * 1024


def test_busy_path_refuses_once_with_retry_after_and_is_logged() -> None:
    with serve() as url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/busy/3.jpg?after=2")
        assert refused.value.code == 429
        assert refused.value.headers["Retry-After"] == "2"
        with urllib.request.urlopen(f"{url}/busy/3.jpg?after=2") as response:
            assert response.read() == image_bytes(3)
    answers = [(entry.path, entry.status) for entry in Handler.log if entry.path == "/busy/3.jpg"]
    assert answers[-2:] == [("/busy/3.jpg", 429), ("/busy/3.jpg", 200)]


def test_gallery_links_its_busy_image_under_busy() -> None:
    with serve() as url, urllib.request.urlopen(f"{url}/gallery/?n=3&busy=2") as response:
        page = response.read().decode()
    assert '"/img/1.jpg"' in page and '"/busy/2.jpg"' in page and '"/img/3.jpg"' in page
    assert '"/img/2.jpg"' not in page


def gone_before_the_answer(url: str) -> None:
    with contextlib.suppress(OSError):
        urllib.request.urlopen(url, timeout=0.3)


def test_a_handler_of_an_earlier_site_still_answering_is_not_counted_by_the_next() -> None:
    """A site a test left with a request still being answered (a held item whose client went away) is not counted
    by the next site: its answer, given while the next site serves, is not in the request log, and requests answered
    one at a time there show one at a time. (The log and the count were shared by all sites of a process, so a test
    after one that left a held item saw every request 'beside' another and a stray answer in its log.)"""
    with serve() as url:
        held = threading.Thread(target=gone_before_the_answer, args=(f"{url}/slow/1.jpg?seconds=1",))
        held.start()
        deadline = time.monotonic() + 5
        while Handler.hits.get("/slow/1.jpg", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    with serve() as url:
        Handler.overlap.clear()
        started = len(Handler.log)
        for n in (1, 2, 3):
            with urllib.request.urlopen(f"{url}/img/{n}.jpg") as response:
                assert response.read() == image_bytes(n)
        assert (Handler.overlap.most, Handler.overlap.beside) == (1, 0), vars(Handler.overlap)
        time.sleep(1.2)  # the earlier site's held answer is given meanwhile
        assert [entry.path for entry in Handler.log[started:]] == ["/img/1.jpg", "/img/2.jpg", "/img/3.jpg"]
    held.join()


def test_a_client_resetting_a_kept_alive_connection_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """A client that resets its kept-alive connection (a worker's pool at its end, a killed pod) is how connections
    end: the site prints no traceback for it (the playlist benchmark printed about 80 a round)."""
    with serve() as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET /img/1.jpg HTTP/1.1\r\nHost: site\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends a reset
        time.sleep(0.3)
    assert "Traceback" not in capsys.readouterr().err


def test_requests_one_after_another_never_overlap_while_a_handler_finishes_after_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client sends its next request as soon as it has read an answer, which may be before the handler's thread
    runs again (on a loaded machine it waits its turn): the site's overlap count still sees requests one after
    another. The handler's wait is made here (`Handler.linger`); under `make test-fast`'s four processes the count
    saw two requests at once, one 'beside' another."""
    monkeypatch.setattr(Handler, "linger", 0.05)
    with serve() as url:
        for n in (1, 2, 3):
            with urllib.request.urlopen(f"{url}/img/{n}.jpg") as response:
                assert response.read() == image_bytes(n)
        assert (Handler.overlap.most, Handler.overlap.beside) == (1, 0), vars(Handler.overlap)
