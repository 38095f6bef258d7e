"""A failure's URL is an item's or the run's, never one the engine's own wording carries: gallery-dl's line after an
unexpected error (a site extractor's KeyError when a site changes its pages) ends with the address of gallery-dl's
issue tracker, which became the failure's URL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from gallery_dl import config, job
from gallery_dl.extractor.common import Extractor

from gallery_operator.worker.failures import failure_url, wording

PAGE = "http://127.0.0.1/breaks/page"


class _Breaks(Extractor):  # type: ignore[misc]
    """A site extractor that meets a page it does not expect (raises what it is given)."""

    category = "breaks"
    subcategory = "page"
    pattern = r"http://127\.0\.0\.1/breaks/.*"
    raised: BaseException = KeyError("images")

    def items(self) -> Iterator[tuple[object, ...]]:
        raise self.raised
        yield ()  # a generator, as gallery-dl's extractors are


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _unexpected_error_line(raised: BaseException) -> logging.LogRecord:
    """The ERROR line gallery-dl's own job logs when an extractor raises ``raised``."""
    config.clear()
    _Breaks.raised = raised
    lines = _Lines()
    logging.getLogger().addHandler(lines)
    try:
        match = re.match(_Breaks.pattern, PAGE)
        assert match is not None
        job.DownloadJob(_Breaks(match)).run()
    finally:
        logging.getLogger().removeHandler(lines)
        config.clear()
    (record,) = lines.records
    return record


def test_the_engines_tracker_address_is_no_failure_url() -> None:
    record = _unexpected_error_line(KeyError("images"))
    message = record.getMessage()
    assert re.search(r"https?://", message)  # gallery-dl's advice names its tracker: the first URL of the line
    assert failure_url(message, wording(record), PAGE) == PAGE


@pytest.mark.parametrize("item", ["http://127.0.0.1/breaks/a.jpg", "https://cdn.example.test/b.png?x=1"])
def test_a_url_in_the_lines_values_is_the_failure_url(item: str) -> None:
    record = _unexpected_error_line(ValueError(f"no image at {item}"))
    assert failure_url(record.getMessage(), wording(record), PAGE) == item


def test_a_plain_line_gives_its_first_url() -> None:
    assert failure_url("'404 Not Found' for 'http://h/x.jpg'", "%s", "d") == "http://h/x.jpg"
    assert failure_url("no address here", "%s", "d") == "d"


def test_a_line_formatted_before_logging_gives_its_first_url() -> None:
    # gallery-dl's downloader: log.warning(f"'404 Not Found' for '{url}'"), no values apart (record.args empty)
    item = "http://cdn.example.test/a/1.jpg"
    record = logging.LogRecord("generic", logging.WARNING, __file__, 1, f"'404 Not Found' for '{item}'", (), None)
    assert failure_url(record.getMessage(), wording(record), PAGE) == item
