"""One catalogue line's record, read alike by the worker and `kubectl gallery`: a line that holds none is skipped,
and what a report shows of a record stays small whatever a site's URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gallery_operator.worker.catalogue import Catalogue
from gallery_operator.workerconfig import MAX_SHOWN_URL, Report, catalogue_record

SHA = "a" * 64
GOOD = {"path": "a.jpg", "size": 1, "sha256": SHA, "sourceUrl": "https://example.org/a.jpg", "metadata": {}}


@pytest.mark.parametrize(
    "line",
    [
        b'{"path": "caf\xc3',
        b"\xff\xfe not text",
        b"[" * 100_000,
        b"[1, 2]",
        json.dumps({**GOOD, "path": 5}).encode(),
        json.dumps({**GOOD, "path": ""}).encode(),
        json.dumps({**GOOD, "size": "many"}).encode(),
        json.dumps({**GOOD, "size": True}).encode(),
        json.dumps({**GOOD, "size": -1}).encode(),
        json.dumps({**GOOD, "size": 2**53}).encode(),
        b'{"path": "c.jpg", "size": 1e400, "sha256": "' + SHA.encode() + b'"}',
        json.dumps({**GOOD, "sha256": "not hex"}).encode(),
        json.dumps({**GOOD, "sourceUrl": 7}).encode(),
        json.dumps({**GOOD, "archiveKey": ["k"]}).encode(),
    ],
)
def test_a_line_that_holds_no_record_is_none(line: bytes) -> None:
    assert catalogue_record(line) is None
    assert catalogue_record(line.decode(errors="replace")) is None


def test_a_record_with_a_line_separator_in_its_text_is_read_whole() -> None:
    line = json.dumps({**GOOD, "metadata": {"title": "one\u2028two\x85three"}}, ensure_ascii=False)
    assert catalogue_record(line) == json.loads(line)
    assert catalogue_record(line.encode()) == json.loads(line)


def test_what_a_report_shows_of_a_record_stays_small_whatever_its_url(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path / "catalogue.jsonl")
    for n in range(10):
        url = f"https://example.org/{n}.jpg?pad=" + "p" * 30_000
        assert catalogue.add({**GOOD, "path": f"{n}.jpg", "sourceUrl": url})
    assert all(len(item.source_url or "") == MAX_SHOWN_URL for item in catalogue.sample)
    report = Report(run="r", items_done=10, sample=catalogue.sample)
    assert len(report.model_dump_json(by_alias=True)) < 64 * 1024
