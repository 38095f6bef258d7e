"""gallery-dl's archive kept in the catalogue, with the real engine: each record carries its item's archive key and
gallery-dl's own archive file gets no entry per item; a target whose items an older worker archived in that file
(records without keys) is still known whole, and nothing is fetched again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gallery_harness.site import Handler
from gallery_operator.workerconfig import GALLERY_DL_ARCHIVE, PvcStorage
from tests.component.workers import catalogue, gallery_page, run_worker

IMAGES = [f"/img/{n}.jpg" for n in (8101, 8102, 8103)]


def fetched() -> list[int]:
    return [Handler.hits.get(image, 0) for image in IMAGES]


def test_records_carry_the_keys_and_an_older_workers_archive_file_still_counts(tmp_path: Path, site: str) -> None:
    root = tmp_path / "claim"
    storage = PvcStorage(root=str(root), location="pvc://media/keys")
    spec = {"urls": [site + gallery_page("keys", IMAGES)], "engine": "gallery-dl", "options": {"retries": 0}}
    code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["itemsDone"]) == (0, 3), report
    records = catalogue(root)
    keys = sorted(record["archiveKey"] for record in records)
    assert keys == sorted(f"generic{site}{image}" for image in IMAGES), keys
    archive_file = root / ".gallery-operator" / GALLERY_DL_ARCHIVE
    with sqlite3.connect(archive_file) as connection:
        assert connection.execute("SELECT count(*) FROM archive").fetchone() == (0,)
        # As an older worker left the target: the entries in the file, the records without keys.
        connection.executemany("INSERT INTO archive (entry) VALUES (?)", [(key,) for key in keys])
    connection.close()
    lines = [json.dumps({k: v for k, v in record.items() if k != "archiveKey"}) for record in records]
    (root / ".gallery-operator" / "catalogue.jsonl").write_text("".join(line + "\n" for line in lines))
    before = fetched()
    code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["itemsDone"], report["failures"]) == (0, 3, []), report
    assert fetched() == before  # every item known: none fetched again
    assert len(catalogue(root)) == 3
