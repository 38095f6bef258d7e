"""Pure failure classification: engine errors and HTTP statuses to the stable reasons of the status API."""

from __future__ import annotations

import re

from gallery_operator.api.status import FailureReason

# Reasons that retrying the pod cannot fix: the Job fails at once (worker exit code 2).
PERMANENT: frozenset[FailureReason] = frozenset(
    {"NotFound", "AuthRequired", "Forbidden", "UnsupportedUrl", "LiveStream", "Blocked", "InvalidSpec"}
)

# "HTTP Error 404: Not Found" (yt-dlp), "'404 Not Found' for 'URL'" (gallery-dl), "status code 503".
_STATUS = re.compile(r"(?:HTTP Error |'|status(?: code)?:? ?)([1-5][0-9]{2})\b", re.IGNORECASE)


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


def redirect_loop(message: str) -> bool:
    """The engine gave up following redirects: the site loops, which no retry of the pod changes."""
    return bool(_REDIRECT_LOOP.search(message))


def permanent(reason: FailureReason, message: str) -> bool:
    """Whether retrying the pod cannot help with this failure (the Job then fails at once)."""
    return reason in PERMANENT or (reason == "NetworkError" and redirect_loop(message))


def classify(message: str, status: int | None = None) -> FailureReason:
    """The stable reason for an engine's error message (and HTTP status, when the engine gave one)."""
    if redirect_loop(message):
        return "NetworkError"
    if status is not None:
        return reason_for_status(status)
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
    if "no space left" in text or "read-only file system" in text:
        return "StorageError"
    return "Internal"
