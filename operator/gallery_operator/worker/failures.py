"""Pure failure classification: engine errors and HTTP statuses to the stable reasons of the status API."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from gallery_operator.api.status import FailureReason

# Reasons that retrying the pod cannot fix: the Job fails at once (worker exit code 2).
PERMANENT: frozenset[FailureReason] = frozenset(
    {"NotFound", "AuthRequired", "Forbidden", "UnsupportedUrl", "LiveStream", "Blocked", "InvalidSpec"}
)

# "HTTP Error 404: Not Found" (yt-dlp), "'404 Not Found' for 'URL'" (gallery-dl), "status code 503".
_STATUS = re.compile(r"(?:HTTP Error |'|status(?: code)?:? ?)([1-5][0-9]{2})\b", re.IGNORECASE)


_URL = re.compile(r"https?://[^\s'\"]+")


def wording(record: logging.LogRecord) -> str:
    """The engine's own wording of a log line: its template when its values were handed apart; nothing for a line
    formatted before it was logged (its text is all values: gallery-dl's `'404 Not Found' for '<item URL>'`)."""
    return str(record.msg) if record.args else ""


def failure_url(text: str, fixed: str, default: str) -> str:
    """The URL a failure's log text names: the first URL in ``text`` that is not part of the engine's own wording
    (``fixed``, the template of a line logged with values apart: gallery-dl's "report this issue on <its tracker>"
    advice after an unexpected error names no item; a line formatted before it was logged, as gallery-dl's downloader
    logs an item's `'404 Not Found' for '<URL>'`, has no wording apart and ``fixed`` is empty), else ``default``."""
    own = {url.rstrip(".,;:)'") for url in _URL.findall(fixed)}
    for found in _URL.finditer(text):
        url = found.group(0).rstrip(".,;:)'")
        if url not in own:
            return url
    return default


def reason_for_status(code: int) -> FailureReason:
    if code in (404, 410):
        return "NotFound"
    if code == 401:
        return "AuthRequired"
    if code == 403:
        return "Forbidden"
    if code == 429:
        return "RateLimited"
    if code >= 500:
        return "NetworkError"
    return "Internal"


_REDIRECT_LOOP = re.compile(r"exceeded \d+ redirects|redirect loop|too many redirects", re.IGNORECASE)


# gallery-dl's verdicts on a response it received whole, without an exception behind them (its HTTP downloader logs
# one of these as a warning, then the job logs "Failed to download NAME"): a page where media was expected, an
# empty body, the first bytes of no file of the expected kind, an extractor's own check that refused the response.
# Matched only at the start of the failure's text, as gallery-dl words them, so that a URL (a redirect's target,
# which a site chooses) cannot make or unmake one.
_CONTENT_VERDICT = re.compile(
    r"(?:(?:HTML response|Empty file|Invalid response|Invalid file signature bytes)(?:;|$)|HTTP redirect to ')"
)


def content_verdict(message: str) -> bool:
    """The engine refused what the site sent as not being the media it expected (reason UnexpectedContent)."""
    return bool(_CONTENT_VERDICT.match(message))


def redirect_loop(message: str) -> bool:
    """The engine gave up following redirects: the site loops, which no retry of the pod changes."""
    return bool(_REDIRECT_LOOP.search(message))


def permanent(reason: FailureReason, message: str) -> bool:
    """Whether retrying the pod cannot help with this failure (the Job then fails at once)."""
    return reason in PERMANENT or (reason == "NetworkError" and redirect_loop(message))


# Exception types by where they are defined (module.qualname of any class in their MRO), so that this module
# imports neither engine. First match in this order wins over the whole chain of an error.
_STORAGE_TYPES = frozenset(
    {
        # The target refused the bytes (an S3 part upload failed): the connection in its chain is the bucket's.
        "gallery_operator.worker.items.StorageFailed",
    }
)
_CONTENT_TYPES = frozenset(
    {
        # A page that links more media than the worker searches one page for (worker/page_links.py).
        "gallery_operator.worker.page_links.TooManyLinks",
    }
)
_BLOCKED_TYPES = frozenset(
    {
        "gallery_operator.egress.Blocked",  # the egress guard refused the destination
        # A URL (a redirect's Location, a link on a page) of a scheme the HTTP stack has no handler for: ftp:,
        # file:, data:, gopher:, javascript: ... Refused, never opened.
        "requests.exceptions.InvalidSchema",
        "requests.exceptions.MissingSchema",
        "urllib3.exceptions.URLSchemeUnknown",
        "yt_dlp.networking.exceptions.UnsupportedRequest",
        "yt_dlp.networking.exceptions.NoSupportingHandlers",
    }
)
_UNREACHABLE_TYPES = frozenset(
    {
        # urllib3 derives these from its ConnectTimeoutError for old callers' sake; they are no timeouts.
        "urllib3.exceptions.NewConnectionError",  # refused, unreachable, and NameResolutionError (DNS)
        "socket.gaierror",
    }
)
_TIMEOUT_TYPES = frozenset(
    {
        "builtins.TimeoutError",  # socket.timeout, and the low-speed limit's abort (worker/pace.py)
        "urllib3.exceptions.TimeoutError",
        "requests.exceptions.Timeout",
    }
)
_NETWORK_TYPES = frozenset(
    {
        "builtins.ConnectionError",  # reset, refused, aborted, broken pipe
        "socket.gaierror",  # DNS
        "socket.herror",
        "ssl.SSLError",  # TLS handshake and certificate errors
        "ssl.CertificateError",
        "http.client.HTTPException",  # bad status line, HTTP/0.9, too many or too long headers, a short body
        "zlib.error",  # a corrupt gzip or deflate body
        "urllib3.exceptions.HTTPError",  # ProtocolError, DecodeError, InvalidHeader, InvalidChunkLength ...
        "requests.exceptions.RequestException",
        "yt_dlp.networking.exceptions.RequestError",  # TransportError, IncompleteRead, SSLError ...
        "yt_dlp.utils.ContentTooShortError",
    }
)
_CHAIN_LIMIT = 32


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it carries: causes, contexts, exceptions among its arguments (urllib3 and requests
    wrap one error in another's args), ``reason`` (urllib3's MaxRetryError) and ``exc_info`` (yt-dlp's
    DownloadError)."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < _CHAIN_LIMIT:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        context = None if current.__suppress_context__ else current.__context__
        carried = [current.__cause__, context, getattr(current, "reason", None)]
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            carried.append(exc_info[1])
        carried += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        pending += [e for e in carried if isinstance(e, BaseException)]


def _type_names(error: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}


def _status_of(error: BaseException) -> int | None:
    """The HTTP status an error carries (yt-dlp's HTTPError, requests' HTTPError with its response)."""
    response = getattr(error, "response", None)
    candidates = (getattr(error, "status", None), getattr(error, "code", None), getattr(response, "status_code", None))
    for status in candidates:
        if isinstance(status, int) and 100 <= status <= 599:
            return status
    return None


def reason_for_error(error: BaseException) -> FailureReason | None:
    """The stable reason for an exception from the transport (or one that wraps it), by the types in its chain; None
    when nothing in the chain is a transport error (then the message decides, or the error is the worker's own)."""
    chain = list(_chain(error))
    names = [_type_names(e) for e in chain]
    if any(n & _STORAGE_TYPES for n in names):
        return "StorageError"
    if any(n & _BLOCKED_TYPES for n in names):
        return "Blocked"
    if any(n & _CONTENT_TYPES for n in names):
        return "UnexpectedContent"
    for e in chain:
        status = _status_of(e)
        if status is not None and status >= 400:
            return reason_for_status(status)
    if any(n & _UNREACHABLE_TYPES for n in names):
        return "NetworkError"
    if any(n & _TIMEOUT_TYPES for n in names):
        return "Timeout"
    if any(n & _NETWORK_TYPES for n in names):
        return "NetworkError"
    return None


def classify(message: str, status: int | None = None, error: BaseException | None = None) -> FailureReason:
    """The stable reason for an engine's error message (and HTTP status, when the engine gave one, and the exception
    behind it, when there is one: its types decide before the message's words do)."""
    if redirect_loop(message):
        return "NetworkError"
    if status is not None:
        return reason_for_status(status)
    if error is not None and (reason := reason_for_error(error)) is not None:
        return reason
    if content_verdict(message):
        return "UnexpectedContent"
    text = message.lower()
    if "storage error" in text:
        return "StorageError"
    if "unsupported url" in text or "no suitable extractor" in text:
        return "UnsupportedUrl"
    if "blocked" in text or "not allowed by" in text:
        return "Blocked"
    if "timed out" in text or "timeout" in text:
        return "Timeout"
    match = _STATUS.search(message)
    if match:
        return reason_for_status(int(match.group(1)))
    if "login" in text or "authentication" in text or "cookies" in text:
        return "AuthRequired"
    if "connection" in text or "resolve" in text or "network" in text or "remote end closed" in text:
        return "NetworkError"
    if "file size mismatch" in text:  # gallery-dl: the body ended before its Content-Length
        return "NetworkError"
    if "no space left" in text or "read-only file system" in text:
        return "StorageError"
    return "Internal"
