"""gallery-dl's archive answered by the catalogue: a record carries its item's archive key, written with it; only a
stored item is archived, and a new pod knows what the records know."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gallery_operator.redaction import REDACTED, Redactor
from gallery_operator.worker.gallerydl import set_aside_unreadable
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


def archive_with(path: Path, entries: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE archive (entry TEXT PRIMARY KEY) WITHOUT ROWID")
        connection.executemany("INSERT INTO archive VALUES (?)", [(f"generic{n:06d}" * 8,) for n in range(entries)])
    connection.close()


def damage_the_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xa5" * 4096
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["not a database", "a damaged page"])
def test_a_damaged_archive_file_is_set_aside_and_kept(tmp_path: Path, damage: str) -> None:
    archive = tmp_path / "gallery-dl-archive.sqlite3"
    if damage == "not a database":
        archive.write_bytes(b"not a database, " * 512)
    else:
        archive_with(archive, 2000)
        damage_the_middle(archive)
    before = archive.read_bytes()
    aside = set_aside_unreadable(archive)
    assert aside is not None and aside.parent == tmp_path and aside.name.startswith(archive.name + ".corrupt-")
    assert aside.read_bytes() == before and not archive.exists()


def test_a_sound_a_missing_and_a_locked_archive_file_stay(tmp_path: Path) -> None:
    archive = tmp_path / "gallery-dl-archive.sqlite3"
    assert set_aside_unreadable(archive) is None
    archive_with(archive, 10)
    assert set_aside_unreadable(archive) is None and archive.is_file()
    holder = sqlite3.connect(archive, timeout=0.1)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("INSERT INTO archive VALUES ('held')")
    holder.commit()  # the exclusive lock stays with this connection, as gallery-dl's stays with its run
    try:
        assert set_aside_unreadable(archive) is None and archive.is_file()
    finally:
        holder.close()
