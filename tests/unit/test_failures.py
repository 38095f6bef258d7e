"""The failure classifier on the exception chains the HTTP stacks raise (worker/failures.py)."""

from __future__ import annotations

import http.client
import socket
import ssl
import zlib

import pytest
import requests
import urllib3.exceptions as u3
from yt_dlp.networking import exceptions as yt
from yt_dlp.utils import DownloadError

from gallery_operator.egress import Blocked
from gallery_operator.worker.failures import classify, reason_for_error
from gallery_operator.worker.items import StorageFailed


def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as a library does."""
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as error:
        return error


def protocol(cause: BaseException) -> BaseException:
    """requests' ConnectionError around urllib3's ProtocolError around ``cause`` (their own nesting, in args)."""
    return requests.exceptions.ConnectionError(u3.ProtocolError("Connection broken", cause))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (protocol(http.client.IncompleteRead(b"x" * 10, 100)), "NetworkError"),
        (protocol(ConnectionResetError(104, "Connection reset by peer")), "NetworkError"),
        (protocol(http.client.BadStatusLine("HTTX/9.9")), "NetworkError"),
        (protocol(http.client.LineTooLong("header line")), "NetworkError"),
        (requests.exceptions.ChunkedEncodingError(protocol(ValueError("invalid chunk length"))), "NetworkError"),
        (requests.exceptions.ContentDecodingError(u3.DecodeError("gzip", zlib.error("-3"))), "NetworkError"),
        (u3.InvalidHeader("Content-Length contained multiple unmatching values"), "NetworkError"),
        (requests.exceptions.SSLError(ssl.SSLError(1, "WRONG_VERSION_NUMBER")), "NetworkError"),
        (wrapped(socket.gaierror(-2, "Name or service not known"), yt.TransportError("resolve")), "NetworkError"),
        (u3.NameResolutionError("h", None, socket.gaierror(-2, "unknown")), "NetworkError"),  # type: ignore[arg-type]
        (requests.exceptions.InvalidSchema("No connection adapters were found for 'ftp://h/x'"), "Blocked"),
        (wrapped(Blocked("blocked: 10.0.0.1 is private"), u3.NewConnectionError(None, "x")), "Blocked"),  # type: ignore[arg-type]
        (yt.UnsupportedRequest("file:// URLs are disabled by default"), "Blocked"),
        (wrapped(TimeoutError("timed out"), yt.TransportError("read")), "Timeout"),
        (requests.exceptions.ReadTimeout("read timed out"), "Timeout"),
        (wrapped(yt.IncompleteRead(4096, 61440), DownloadError("Got error")), "NetworkError"),
        (DownloadError("x", exc_info=(None, yt.TransportError("cut"), None)), "NetworkError"),
        (wrapped(u3.NewConnectionError(None, "bucket down"), StorageFailed("storage error")), "StorageError"),  # type: ignore[arg-type]
        (ValueError("a bug of the worker"), None),
        (OSError(28, "No space left on device"), None),
    ],
)
def test_transport_errors_are_classified_by_type(error: BaseException, reason: str | None) -> None:
    assert reason_for_error(error) == reason


def test_the_type_decides_before_the_words() -> None:
    """A message with no known words (yt-dlp's "Got error: 0 bytes read") is a network error by its exception;
    without one it stays the worker's own (Internal)."""
    message = "[download] Got error: 0 bytes read"
    assert classify(message, error=yt.IncompleteRead(0)) == "NetworkError"
    assert classify(message) == "Internal"
    assert classify("Failed to download x.jpg", error=ValueError("bug")) == "Internal"


def test_an_http_status_in_the_chain_names_the_reason() -> None:
    class Response:
        status_code = 404

    error = requests.exceptions.HTTPError("404", response=Response())
    assert reason_for_error(error) == "NotFound"
    assert reason_for_error(wrapped(error, RuntimeError("wrapped"))) == "NotFound"


def test_a_body_gallery_dl_found_short_is_a_network_error() -> None:
    assert classify("file size mismatch (4096 < 65536) (1/1); Failed to download 2.jpg") == "NetworkError"
