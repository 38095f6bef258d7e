"""The last transport error of each thread, kept where the HTTP stack raises it, and compressed bodies that end early.

Neither engine hands its caller the exception of a failed transfer: gallery-dl's downloader turns it into a log line,
and yt-dlp's retry loop reports its text. So the failure classifier (worker/failures.py) would have only words to go
by. Both engines send every request through ``requests.Session.send`` and read every body through the urllib3
response requests' adapter got; wrapped there, the error of the latest request on a thread is kept until an engine
reports a failure, which then classifies it by type (``last_error``). Only the responses behind requests are
wrapped (``EngineResponse``): botocore's S3 client and the worker's other urllib3 users keep urllib3's own class.

urllib3 also accepts a gzip or deflate body that stops before the end of its compressed stream (a connection cut
where the length was not declared, or a server that declares the cut length): the engines would store the part as
the whole file; and one that inflates without bound (a page is read whole, past any item limit). The engines'
responses refuse both with urllib3's own ``DecodeError``.
"""

from __future__ import annotations

import functools
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import requests
import requests.adapters
from urllib3 import exceptions, response
from urllib3.util.response import is_fp_closed

_local = threading.local()
_ZLIB_STREAM = type(zlib.decompressobj())
_SWALLOWING = getattr(getattr(response, "GzipDecoderState", None), "SWALLOW_DATA", 2)
"""urllib3's gzip decoder past the end of its last whole member, swallowing what follows."""
CUT_SHORT = "the compressed body ended before the end of its stream (cut short)"
INFLATED_RATIO = 100
"""How many times its compressed size a body may inflate to past INFLATED_FLOOR: text inflates some ten times, a
decompression bomb a thousand (600 KB of gzip made a page of 600 MB, held whole by the engine that reads it)."""
INFLATED_FLOOR = 64 * 1024 * 1024
"""Also the most a body read whole (requests' ``Response.content``: a request not streamed, as gallery-dl's pages and
API answers are; a redirect's body, which requests reads before it follows; an error answer gallery-dl looks into
for a site's challenge) may hold, compressed or not: 6 MB of gzip at fifty to one made a page of 300 MiB, and the
worker's peak 705 MB; 300 MiB sent as it is took it to 650 MB, and as a redirect's body to an item 651 MB."""
BOMB = f"the compressed body inflates to more than {INFLATED_RATIO} times its size (a decompression bomb)"
WHOLE_BOMB = f"the compressed page inflates past {INFLATED_FLOOR // 1024 // 1024} MiB (a decompression bomb)"
WHOLE_TOO_LARGE = f"the answer is larger than {INFLATED_FLOOR // 1024 // 1024} MiB (it is read whole)"


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


def _ended_early(response: EngineResponse) -> bool:
    """Whether the body is over (its connection read to the end) while its compressed stream is not. urllib3
    inflates at most so much a read and keeps the rest of what arrived in its decoder (``has_unconsumed_tail``):
    until that is out too, the stream is not over however much of the body came (a whole answer over about 10 KB was
    taken for a cut one once its last bytes had arrived)."""
    decoder = response._decoder
    if not response.gallery_fed or decoder is None or not is_fp_closed(response._fp):
        return False
    if len(response._decoded_buffer) or getattr(decoder, "has_unconsumed_tail", False):
        return False
    return _finished(decoder) is False


def _finished(decoder: Any) -> bool | None:
    """Whether a decoder has reached the end of its compressed stream; None for a kind this cannot tell. Layered
    encodings (`gzip, br`) each to its end; gzip's last member to its end (a later member cut short is a cut body;
    what follows a whole member and is no member is swallowed, as gzip clients do); brotli to its end."""
    layers = getattr(decoder, "_decoders", None)
    if layers is not None:
        states = [_finished(layer) for layer in layers]
        return None if None in states else all(states)
    stream = getattr(decoder, "_obj", None)
    if isinstance(stream, _ZLIB_STREAM):
        return bool(stream.eof) or getattr(decoder, "_state", None) == _SWALLOWING
    finished = getattr(stream, "is_finished", None)
    return bool(finished()) if callable(finished) else None


class EngineResponse(response.HTTPResponse):
    """urllib3's response as the engines' requests sessions receive it: its read error is kept, and a compressed
    body cut short is one (urllib3's own ``DecodeError``). botocore's responses, from its own urllib3 pools, stay
    plain ``HTTPResponse`` objects: the S3 upload pays nothing for this."""

    gallery_fed = False
    """Whether compressed data has reached the decoder (an empty body that says gzip is no cut gzip stream)."""
    gallery_whole = False
    """Whether the body is read whole (``Response.content``), as a page is."""
    gallery_refused = False
    """Whether the body was refused (too large, a bomb): nothing more of it is read, the connection is closed."""
    gallery_compressed = 0
    gallery_inflated = 0
    """Bytes in and out of the decoder (out: also a body sent as it is, which a page read whole counts against)."""

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        if self.gallery_refused:  # requests reads a redirect's body again after an error, all at once: not held
            self.close()
            return b""
        try:
            data = super().read(*args, **kwargs)
            if _ended_early(self):
                raise exceptions.DecodeError(CUT_SHORT)
        except Exception as failure:
            _keep(failure)
            raise
        return data

    def stream(self, *args: Any, **kwargs: Any) -> Generator[bytes]:
        return self._checked(super().stream(*args, **kwargs))

    def read_chunked(self, *args: Any, **kwargs: Any) -> Generator[bytes]:
        return self._checked(super().read_chunked(*args, **kwargs))

    def _checked(self, chunks: Iterator[bytes]) -> Generator[bytes]:
        """``stream`` and ``read_chunked``: as ``read``, for the generators requests reads."""
        try:
            yield from chunks
            if _ended_early(self):
                raise exceptions.DecodeError(CUT_SHORT)
        except Exception as failure:
            _keep(failure)
            raise

    def _decode(
        self, data: bytes, decode_content: bool | None, flush_decoder: bool, max_length: int | None = None
    ) -> bytes:
        if data and decode_content and self._decoder is not None:
            self.gallery_fed = True
            self.gallery_compressed += len(data)
        decoded = super()._decode(data, decode_content, flush_decoder, max_length)
        self.gallery_inflated += len(decoded)
        if self.gallery_whole and self.gallery_inflated > INFLATED_FLOOR:
            self.gallery_refused = True
            raise exceptions.DecodeError(WHOLE_BOMB if self.gallery_fed else WHOLE_TOO_LARGE)
        if self.gallery_fed and self.gallery_inflated > max(INFLATED_FLOOR, INFLATED_RATIO * self.gallery_compressed):
            self.gallery_refused = True
            raise exceptions.DecodeError(BOMB)
        return decoded


def _engine_responses(build: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
    """``HTTPAdapter.build_response``: the urllib3 response behind each of the engines' requests becomes an
    EngineResponse before anything reads its body."""

    @functools.wraps(build)
    def built(adapter: Any, request: Any, raw: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if type(raw) is response.HTTPResponse:
            raw.__class__ = EngineResponse
        return build(adapter, request, raw, *args, **kwargs)

    return built


_CONTENT = requests.models.Response.content


def _whole_content(self: requests.Response) -> bytes | None:
    """``Response.content``: the body read whole, so it holds INFLATED_FLOOR at most (requests reads it for a request
    not streamed, for a redirect before it follows, and engines for their pages and API answers)."""
    raw = self.raw
    if isinstance(raw, EngineResponse) and self._content is False and not self._content_consumed:
        raw.gallery_whole = True
    content: bytes | None = _CONTENT.fget(self)  # type: ignore[attr-defined]
    return content


def install() -> None:
    """For the rest of this process: record the engines' transport errors per thread, and refuse compressed bodies
    cut short. Only requests' sessions are touched (both engines send through them; botocore does not)."""
    if getattr(requests.Session.send, "__wrapped__", None) is not None:
        return  # installed already
    requests.Session.send = _recording(requests.Session.send)  # type: ignore[method-assign]
    adapter = requests.adapters.HTTPAdapter
    adapter.build_response = _engine_responses(adapter.build_response)  # type: ignore[method-assign]
    requests.models.Response.content = property(_whole_content)  # type: ignore[assignment,method-assign]
