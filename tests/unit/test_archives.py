"""The engines' archive files made usable before an engine opens them: a gallery-dl SQLite file gallery-dl could
not use (it then ran without any archive) and a yt-dlp text file with lines that are no UTF-8 (every run failed)
are set aside and kept; a sound, missing or locked file stays as it is."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gallery_operator.worker.archives import keep_readable_lines, set_aside_unusable_sqlite

NAME = "gallery-dl-archive.sqlite3"


def sqlite_with(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


def sound(path: Path, entries: int = 10) -> None:
    sqlite_with(path, "CREATE TABLE archive (entry TEXT PRIMARY KEY) WITHOUT ROWID")
    with sqlite3.connect(path) as connection:
        connection.executemany("INSERT INTO archive VALUES (?)", [(f"generic{n:06d}" * 8,) for n in range(entries)])
    connection.close()


def rewritten(path: Path, change: Callable[[bytearray], object]) -> None:
    data = bytearray(path.read_bytes())
    change(data)
    path.write_bytes(bytes(data))


def damaged_page(path: Path) -> None:
    sound(path, 2000)
    rewritten(path, lambda data: data.__setitem__(slice(len(data) // 2, len(data) // 2 + 4096), b"\xa5" * 4096))


def schema_format_5(path: Path) -> None:
    sound(path)
    rewritten(path, lambda data: data.__setitem__(slice(44, 48), (5).to_bytes(4, "big")))  # "unsupported format"


UNUSABLE: dict[str, Callable[[Path], object]] = {
    "not a database": lambda path: path.write_bytes(b"not a database, " * 512),
    "a damaged page": damaged_page,
    "a header SQLite refuses": schema_format_5,
    "an index named archive": lambda path: sqlite_with(
        path, "CREATE TABLE t (e TEXT)", "CREATE INDEX archive ON t (e)"
    ),
    "a view named archive": lambda path: sqlite_with(
        path, "CREATE TABLE t (e TEXT)", "CREATE VIEW archive AS SELECT e AS entry FROM t"
    ),
    "other columns": lambda path: sqlite_with(path, "CREATE TABLE archive (key TEXT)"),
}


@pytest.mark.parametrize("kind", sorted(UNUSABLE))
def test_an_archive_file_gallery_dl_could_not_use_is_set_aside_and_kept(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / NAME
    UNUSABLE[kind](archive)
    before = archive.read_bytes()
    aside = set_aside_unusable_sqlite(archive)
    assert aside is not None and aside.parent == tmp_path and aside.name.startswith(NAME + ".corrupt-")
    assert aside.read_bytes() == before and not archive.exists()


def test_a_sound_an_empty_a_missing_and_a_locked_archive_file_stay(tmp_path: Path) -> None:
    archive = tmp_path / NAME
    assert set_aside_unusable_sqlite(archive) is None
    archive.write_bytes(b"")  # SQLite takes an empty file for an empty database
    assert set_aside_unusable_sqlite(archive) is None and archive.is_file()
    archive.unlink()
    sound(archive)
    before = archive.read_bytes()
    assert set_aside_unusable_sqlite(archive) is None and archive.read_bytes() == before  # the probe rolled back
    holder = sqlite3.connect(archive, timeout=0.1)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("INSERT INTO archive VALUES ('held')")
    holder.commit()  # the exclusive lock stays with this connection, as gallery-dl's stays with its run
    try:
        assert set_aside_unusable_sqlite(archive) is None and archive.is_file()
    finally:
        holder.close()


@pytest.mark.parametrize(
    "body", [b"youtube abc\ngeneric caf\xc3", b"youtube abc\n\x00\xff\xfe\x80 binary\ngeneric d\n"]
)
def test_a_yt_dlp_archive_keeps_its_readable_lines_and_the_whole_file_aside(tmp_path: Path, body: bytes) -> None:
    archive = tmp_path / "yt-dlp-archive.txt"
    archive.write_bytes(body)
    aside = keep_readable_lines(archive)
    assert aside is not None and aside.read_bytes() == body
    kept = [line for line in body.splitlines() if line.isascii()]
    assert archive.read_bytes() == b"".join(line + b"\n" for line in kept)
    assert keep_readable_lines(archive) is None  # every line reads now


def test_a_readable_or_missing_yt_dlp_archive_stays(tmp_path: Path) -> None:
    archive = tmp_path / "yt-dlp-archive.txt"
    assert keep_readable_lines(archive) is None
    archive.write_bytes("generic café\n".encode())
    assert keep_readable_lines(archive) is None and list(tmp_path.iterdir()) == [archive]
