"""The last transport error of each thread, kept where the HTTP stack raises it, and compressed bodies that end early.

Neither engine hands its caller the exception of a failed transfer: gallery-dl's downloader turns it into a log line,
and yt-dlp's retry loop reports its text. So the failure classifier (worker/failures.py) would have only words to go
by. Both engines send every request through ``requests.Session.send`` and read every body through urllib3's
``HTTPResponse.read``; wrapped there, the error of the latest request on a thread is kept until an engine reports a
failure, which then classifies it by type (``last_error``).

urllib3 also accepts a gzip or deflate body that stops before the end of its compressed stream (a connection cut
where the length was not declared, or a server that declares the cut length): the engines would store the part as
the whole file. ``install`` makes the decoders refuse that with urllib3's own ``DecodeError``.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import requests
from urllib3 import exceptions, response
from urllib3.util.response import is_fp_closed

_local = threading.local()
_ZLIB_STREAM = type(zlib.decompressobj())
CUT_SHORT = "the compressed body ended before the end of its stream (cut short)"


def last_error() -> BaseException | None:
    """The transport error of this thread's latest request, if it failed; taken (a second call returns None)."""
    error: BaseException | None = getattr(_local, "error", None)
    _local.error = None
    return error


def _keep(error: BaseException) -> None:
    _local.error = error


def _recording(call: Callable[..., Any]) -> Callable[..., Any]:
    """``requests.Session.send``: a new request starts clean; its error is kept."""

    @functools.wraps(call)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        _local.error = None  # what failed before this request is no longer the latest failure
        try:
            return call(*args, **kwargs)
        except Exception as error:
            _keep(error)
            raise

    return recorded


def _ended_early(response: Any) -> bool:
    """Whether the body is over (its connection read to the end) while its gzip or deflate stream is not."""
    decoder = response._decoder
    stream = getattr(decoder, "_obj", None)
    if not getattr(decoder, "gallery_fed", False) or not isinstance(stream, _ZLIB_STREAM):
        return False
    first_member = getattr(decoder, "_state", 0) == 0  # gzip: a later member may be absent, as it ends
    return first_member and not stream.eof and is_fp_closed(response._fp) and not len(response._decoded_buffer)


def _reading(read: Callable[..., bytes], error: type[Exception]) -> Callable[..., bytes]:
    """``HTTPResponse.read``: its error is kept, and a compressed body cut short is one."""

    @functools.wraps(read)
    def checked(response: Any, *args: Any, **kwargs: Any) -> bytes:
        try:
            data = read(response, *args, **kwargs)
            if _ended_early(response):
                raise error(CUT_SHORT)
        except Exception as failure:
            _keep(failure)
            raise
        return data

    return checked


def _streaming(stream: Callable[..., Iterator[bytes]], error: type[Exception]) -> Callable[..., Iterator[bytes]]:
    """``HTTPResponse.stream`` and ``read_chunked``: as ``_reading``, for the generators requests reads."""

    @functools.wraps(stream)
    def checked(response: Any, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        try:
            yield from stream(response, *args, **kwargs)
            if _ended_early(response):
                raise error(CUT_SHORT)
        except Exception as failure:
            _keep(failure)
            raise

    return checked


def _fed(decompress: Callable[..., bytes]) -> Callable[..., bytes]:
    @functools.wraps(decompress)
    def counted(decoder: Any, data: bytes, *args: Any, **kwargs: Any) -> bytes:
        if data:
            decoder.gallery_fed = True
        return decompress(decoder, data, *args, **kwargs)

    return counted


def install() -> None:
    """For the rest of this process: record transport errors per thread, and refuse compressed bodies cut short."""
    if getattr(requests.Session.send, "__wrapped__", None) is not None:
        return  # installed already
    requests.Session.send = _recording(requests.Session.send)  # type: ignore[method-assign]
    body = response.HTTPResponse
    body.read = _reading(body.read, exceptions.DecodeError)  # type: ignore[method-assign]
    body.stream = _streaming(body.stream, exceptions.DecodeError)  # type: ignore[method-assign,assignment]
    body.read_chunked = _streaming(body.read_chunked, exceptions.DecodeError)  # type: ignore[method-assign,assignment]
    for decoder in (response.GzipDecoder, response.DeflateDecoder):
        decoder.decompress = _fed(decoder.decompress)  # type: ignore[method-assign]
