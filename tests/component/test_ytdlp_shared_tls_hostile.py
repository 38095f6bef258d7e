"""A hostile review of ``TlsContexts`` (worker/ytdlp.py) with real yt-dlp against a TLS server on loopback whose
certificate no public CA signed: YoutubeDLs that share a run's contexts keep each one's own verification (one that
checks certificates is refused however many unchecked fetches came before it, in either order) and present each
one's own client certificate (or none)."""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from yt_dlp.networking.exceptions import RequestError

from gallery_operator.worker.ytdlp import TlsContexts
from tests.fixtures.sites import write_certificates


@contextlib.contextmanager
def tls_server(folder: Path, client_cas: list[Path]) -> Iterator[str]:
    """An HTTPS server on loopback answering with the common name of the client certificate it was shown."""
    (folder / "server").mkdir()
    _, cert, key = write_certificates(folder / "server", ["localhost"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_OPTIONAL
    for ca in client_cas:
        context.load_verify_locations(ca)

    class Answer(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            peer: Any = self.connection.getpeercert()
            name = dict(item[0] for item in peer["subject"])["commonName"] if peer else "none"
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def fetch(tls: TlsContexts, url: str, **params: Any) -> str:
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, **params}) as ydl:
        tls.share(ydl)
        return str(ydl.urlopen(url).read().decode())


def client(folder: Path, name: str) -> tuple[Path, Path, Path]:
    (folder / name).mkdir()
    return write_certificates(folder / name, [name])


@pytest.mark.parametrize("unchecked_first", [True, False])
def test_a_checking_youtubedl_is_refused_whatever_shared_the_contexts_before(
    tmp_path: Path, unchecked_first: bool
) -> None:
    with tls_server(tmp_path, []) as url:
        tls = TlsContexts()
        if unchecked_first:
            assert fetch(tls, url, nocheckcertificate=True) == "none"
        with pytest.raises(RequestError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(tls, url)
        assert fetch(tls, url, nocheckcertificate=True) == "none"
        with pytest.raises(RequestError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(tls, url, legacyserverconnect=True)


def test_each_youtubedl_presents_its_own_client_certificate(tmp_path: Path) -> None:
    (ca_a, cert_a, key_a), (ca_b, cert_b, key_b) = client(tmp_path, "client-a"), client(tmp_path, "client-b")
    with tls_server(tmp_path, [ca_a, ca_b]) as url:
        tls = TlsContexts()
        unchecked = {"nocheckcertificate": True}
        a = {"client_certificate": str(cert_a), "client_certificate_key": str(key_a)}
        b = {"client_certificate": str(cert_b), "client_certificate_key": str(key_b)}
        assert fetch(tls, url, **unchecked, **a) == "client-a"
        assert fetch(tls, url, **unchecked, **b) == "client-b"
        assert fetch(tls, url, **unchecked) == "none"
        assert fetch(tls, url, **unchecked, **a) == "client-a"
        assert len(tls.made) == 3
