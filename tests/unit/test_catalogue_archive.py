"""gallery-dl's archive answered by the catalogue: a record carries its item's archive key, written with it; only a
stored item is archived, and a new pod knows what the records know."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery_operator.redaction import REDACTED, Redactor
from gallery_operator.worker.run import Run, open_catalogue
from tests.unit.worker_runs import claim_run

KEY = "generichttps://example.org/a.jpg"


def stored(run: Run, name: str, key: str | None, source: str = "https://example.org/a.jpg") -> bool | None:
    path = run.root / name
    path.write_bytes(b"\xff\xd8\xff\xe0" + name.encode())
    return run.stored(path, source, "gallery-dl", "generic", {"title": name}, archive_key=key)


def test_a_record_carries_its_archive_key_and_a_new_pod_knows_it(tmp_path: Path) -> None:
    run = claim_run(tmp_path)
    assert not run.archived(KEY)
    assert stored(run, "a.jpg", KEY) is True
    assert run.archived(KEY)
    run.catalogue.close()
    assert open_catalogue(run.store).archived(KEY)  # read back from the file, as the next pod does


def test_an_item_whose_storing_failed_is_not_archived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next run fetches it again (an entry made before the record, as gallery-dl's own archive was, skipped it
    for good: 'skipped as stored, but the catalogue holds no ...' on every later run)."""
    run = claim_run(tmp_path)

    def unreachable(*args: object) -> None:
        raise OSError("the bucket is unreachable")

    monkeypatch.setattr(run.store, "stored", unreachable)
    assert stored(run, "a.jpg", KEY) is None
    assert not run.archived(KEY)
    assert [f.reason for f in run.failures] == ["StorageError"]


def test_an_item_counted_by_an_earlier_record_says_so(tmp_path: Path) -> None:
    """Its key cannot ride on a record of its own: the engine keeps it in its own archive instead."""
    run = claim_run(tmp_path)
    assert stored(run, "a.jpg", None) is True  # catalogued before keys were recorded
    assert stored(run, "a.jpg", KEY) is False
    assert not run.archived(KEY)


def test_the_key_loses_the_secret_values_as_the_source_url_does(tmp_path: Path) -> None:
    secret = "s3cr3t-t0ken-value"
    plain = claim_run(tmp_path)
    run = Run(plain.config, plain.store, tmp_path / "scratch", plain.catalogue, Redactor([secret]))
    key = f"generichttps://example.org/a.jpg?token={secret}"
    assert stored(run, "a.jpg", key) is True
    line = (run.state / "catalogue.jsonl").read_text()
    assert secret not in line and f"token={REDACTED}" in line
    assert run.archived(key)  # asked with the engine's own key, as gallery-dl asks


def test_a_catalogue_keeps_its_records_past_lines_that_hold_none(tmp_path: Path) -> None:
    run = claim_run(tmp_path)
    assert stored(run, "a.jpg", KEY) is True
    run.catalogue.close()
    damaged = [
        b'{"path": "caf\xc3',  # cut inside a character
        b"\xff\xfe not text",
        b"[1, 2]",
        b'{"path": 5, "size": 1}',
        b'{"path": "b.jpg", "size": "many", "sha256": "' + b"a" * 64 + b'"}',
        b'{"path": "c.jpg", "size": 1e400, "sha256": "' + b"a" * 64 + b'"}',
        b'{"path": "d.jpg", "size": 1, "sha256": "not hex"}',
        b'{"path": "e.jpg", "size": 1, "sha256": "' + b"a" * 64 + b'", "sourceUrl": 7}',
    ]
    with run.catalogue.file.open("ab") as handle:
        handle.write(b"\n".join(damaged))
    again = open_catalogue(run.store)
    assert (again.items, again.archived(KEY), "a.jpg" in again) == (1, True, True)
