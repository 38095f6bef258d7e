"""The TLS contexts of one run's YoutubeDLs (worker/ytdlp.py, ``_TlsContexts``): made once per set of parameters, as
yt-dlp makes them, and shared by the engine thread's YoutubeDL and every pool thread's."""

from __future__ import annotations

import ssl
from typing import Any

import yt_dlp

from gallery_operator.worker.ytdlp import _TlsContexts


def handlers(params: dict[str, Any], tls: _TlsContexts) -> list[Any]:
    ydl = yt_dlp.YoutubeDL({"quiet": True, **params})
    tls.share(ydl)
    return [h for h in ydl._request_director.handlers.values() if h.RH_KEY in ("Requests", "Urllib")]


def test_the_youtubedls_of_a_run_share_one_context_per_set_of_parameters() -> None:
    tls = _TlsContexts()
    first, second = handlers({}, tls), handlers({}, tls)
    assert first and len(first) == len(second)
    for mine, theirs in zip(first, second, strict=True):  # each kind of handler its own
        assert mine.RH_KEY == theirs.RH_KEY and mine._make_sslcontext() is theirs._make_sslcontext()
    context = first[0]._make_sslcontext()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the bundle yt-dlp loads

    unverified = handlers({"nocheckcertificate": True}, tls)[0]._make_sslcontext()
    assert unverified is not context and unverified.verify_mode == ssl.CERT_NONE
    legacy = first[0]._make_sslcontext(legacy_ssl_support=True)
    assert legacy is not context and legacy.options & 4  # SSL_OP_LEGACY_SERVER_CONNECT, as yt-dlp sets it
    assert first[0]._make_sslcontext(legacy_ssl_support=True) is legacy


def test_runs_do_not_share_contexts() -> None:
    assert handlers({}, _TlsContexts())[0]._make_sslcontext() is not handlers({}, _TlsContexts())[0]._make_sslcontext()
