"""gallery-dl's content verdicts (worker/failures.py) and the README's list of stable reasons."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import requests

from gallery_operator.api.status import FailureReason
from gallery_operator.worker.failures import classify, permanent

README = Path(__file__).resolve().parents[2] / "README.md"

# As the failure's text is built (worker/gallerydl.py): gallery-dl's warning, then its "Failed to download NAME".
VERDICTS = [
    "HTML response; Failed to download page.jpg",
    "Empty file; Failed to download empty.jpg",
    "Invalid response; Failed to download 12.png",  # an extractor's own check of the response refused it
    "Invalid file signature bytes; Failed to download 4.webm",  # 4chan's and exhentai's check of the first bytes
    "HTTP redirect to 'https://example.org/removed.html'; Failed to download 1.jpg",
    "HTML response",  # a verdict without the job's line after it
]


@pytest.mark.parametrize("message", VERDICTS)
def test_a_content_verdict_is_unexpected_content_and_may_be_retried(message: str) -> None:
    assert classify(message) == "UnexpectedContent"
    assert not permanent("UnexpectedContent", message)


@pytest.mark.parametrize(
    "target", ["https://h/login?next=x", "https://h/blocked.html", "https://h/timeout", "https://h/e/404", "h'; x"]
)
def test_the_words_of_a_redirect_target_do_not_decide(target: str) -> None:
    """A site chooses where it redirects: "login", "blocked", "timeout" or a status in that URL made the reason
    before (AuthRequired, Blocked, Timeout, NotFound)."""
    assert classify(f"HTTP redirect to '{target}'; Failed to download a.jpg") == "UnexpectedContent"


def test_a_verdict_named_elsewhere_in_a_message_is_no_verdict() -> None:
    """Only gallery-dl's own wording at the start of the failure counts; elsewhere the other rules decide."""
    assert classify("Failed to download HTML response.jpg") == "Internal"
    assert classify("'404 Not Found' for 'https://h/HTML response'; Failed to download x") == "NotFound"


def test_an_error_behind_the_verdict_decides_first() -> None:
    error = requests.exceptions.ConnectionError("Connection reset by peer")
    assert classify("Empty file; Failed to download a.jpg", error=error) == "NetworkError"
    assert classify("HTML response; Failed to download a.jpg", status=403) == "Forbidden"


def test_the_readme_lists_every_reason_once() -> None:
    """The README's list of stable reasons is the enum's, in its order."""
    text = README.read_text()
    start = text.index("Reasons are stable:")
    listed = re.findall(r"`([A-Za-z]+)`", text[start : text.index("\n\n", start)].split(". A failure")[0])
    assert listed == list(typing.get_args(FailureReason))
