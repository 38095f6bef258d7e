"""The TLS contexts of one run's YoutubeDLs (worker/ytdlp.py, ``TlsContexts``): made once per set of parameters, as
yt-dlp makes them, and shared by the engine thread's YoutubeDL and every pool thread's."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import yt_dlp
from yt_dlp.networking import Request

from gallery_operator.worker.ytdlp import TlsContexts

REFUSED = "https://127.0.0.1:1/"  # the handler makes its context before it connects; nothing listens there


def fetch(tls: TlsContexts, params: dict[str, Any] | None = None, **extensions: Any) -> None:
    ydl = yt_dlp.YoutubeDL({"quiet": True, **(params or {})})
    tls.share(ydl)
    with contextlib.suppress(Exception):
        ydl.urlopen(Request(REFUSED, extensions=extensions))


def test_the_youtubedls_of_a_run_share_one_context_per_set_of_parameters() -> None:
    tls = TlsContexts()
    fetch(tls)
    fetch(tls)
    [context] = tls.made.values()  # the second YoutubeDL's handler got the first one's
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the bundle yt-dlp loads
    fetch(tls, {"nocheckcertificate": True})
    fetch(tls, legacy_ssl=True)
    assert len(tls.made) == 3
    unverified, legacy = list(tls.made.values())[1:]
    assert unverified.verify_mode == ssl.CERT_NONE
    assert legacy.options & 4  # SSL_OP_LEGACY_SERVER_CONNECT, as yt-dlp sets it


def test_runs_do_not_share_contexts() -> None:
    first, second = TlsContexts(), TlsContexts()
    fetch(first)
    fetch(second)
    assert len(first.made) == len(second.made) == 1
    assert next(iter(first.made.values())) is not next(iter(second.made.values()))
