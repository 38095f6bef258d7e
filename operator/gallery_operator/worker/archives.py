"""The engines' archive files made usable before an engine opens them (no engine imported here).

An archive file an engine cannot use stopped more than its own run: gallery-dl, failing to open its SQLite file,
runs without any archive (every item of an S3 target is fetched again, run after run), and yt-dlp, reading its text
file as strict UTF-8, fails every run until the file is mended by hand. A damaged file is kept beside the new one
(``<name>.corrupt-<ns>``), never deleted: what it holds may still be read by hand.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger("gallery_operator.worker")

KEPT_ERRORS = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_PERM",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
)
"""SQLite's errors that tell of the moment or the place (a lock held, a folder not writable, a full disk), not of the
file: a file that fails with one of them stays where it is."""
PROBE = "\x00gallery-operator: a write that is rolled back"


def set_aside_unusable_sqlite(archive: Path) -> Path | None:
    """gallery-dl's archive file moved aside when gallery-dl could not use it as it does (open it read-write, make
    its table if missing, read and write its entries); where it went, or None. Damaged pages, a header SQLite
    refuses and a schema of another shape (an index or a view named ``archive``, other columns) are all set aside;
    gallery-dl then makes a new file, and the catalogue's keys still know every item recorded with one."""
    if not archive.is_file():
        return None
    try:
        usable = _usable_sqlite(archive)
    except sqlite3.DatabaseError as error:
        usable = str(getattr(error, "sqlite_errorname", "") or "").startswith(KEPT_ERRORS)
    return None if usable else _set_aside(archive, "SQLite cannot use it as gallery-dl does")


def _usable_sqlite(archive: Path) -> bool:
    connection = sqlite3.connect(archive, timeout=1.0)
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS archive (entry TEXT PRIMARY KEY) WITHOUT ROWID")
        if connection.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
            return False
        connection.execute("SELECT entry FROM archive LIMIT 1").fetchall()
        connection.execute("INSERT OR IGNORE INTO archive (entry) VALUES (?)", (PROBE,))
        return True
    finally:
        connection.rollback()
        connection.close()


def keep_readable_lines(archive: Path) -> Path | None:
    """yt-dlp's archive file (an entry a line) with only the lines that are UTF-8, as yt-dlp reads it, when any
    other line is there (a cut character, foreign bytes); the whole file is set aside first. Where it went, or
    None when every line reads."""
    try:
        data = archive.read_bytes()
    except OSError:
        return None
    try:
        data.decode()
        return None
    except UnicodeDecodeError:
        pass
    readable = [line for line in data.splitlines() if _is_utf8(line)]
    aside = _set_aside(archive, f"{len(data.splitlines()) - len(readable)} of its lines are not UTF-8")
    archive.write_bytes(b"".join(line + b"\n" for line in readable))
    return aside


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode()
    except UnicodeDecodeError:
        return False
    return True


def _set_aside(archive: Path, why: str) -> Path:
    aside = archive.with_name(f"{archive.name}.corrupt-{time.time_ns()}")
    archive.rename(aside)
    log.warning("the archive %s cannot be used (%s): kept as %s, a new one is made", archive.name, why, aside.name)
    return aside
