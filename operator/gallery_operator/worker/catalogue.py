"""The item catalogue: one JSON line per stored file, kept beside the files, free of duplicates across runs."""

from __future__ import annotations

import hashlib
import itertools
import json
import mimetypes
import os
import posixpath
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from gallery_operator.api.status import MAX_SAMPLE, CatalogueItem
from gallery_operator.workerconfig import MAX_SHOWN_URL, catalogue_record

CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_GUESSED: dict[str, str] = {}
"""A name's extension -> the type mimetypes gives a name with it (its parse of each name cost ~10 us an item). Only
short extensions of letters and digits, at most MAX_GUESSED: a site names its files, and so their extensions."""
MAX_GUESSED = 256
MAX_GUESSED_EXTENSION = 16


def append_line(handle: BinaryIO, line: str) -> None:
    """``line`` and its newline appended with one write(2) to a file opened unbuffered (``buffering=0``): a killed pod
    leaves at most a cut last line, and no text layer encodes and buffers it first."""
    data = memoryview((line + "\n").encode())
    while data:
        data = data[handle.write(data) or 0 :]


def content_type(path: Path, header: str | None = None) -> str:
    if header:
        return header.split(";")[0].strip()
    name = path.name
    extension = posixpath.splitext(name)[1]
    guessed = _GUESSED.get(extension)
    if guessed is not None and ":" not in name:
        return guessed
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # The type of a name without a scheme (`data:`) whose extension is no compression (`.gz`) or alias (`.tgz`) of
    # another depends on the extension alone.
    alone = extension not in mimetypes.encodings_map and extension.lower() not in mimetypes.suffix_map
    usual = len(extension) <= MAX_GUESSED_EXTENSION and extension[1:].isalnum() and len(_GUESSED) < MAX_GUESSED
    if alone and usual and ":" not in name:
        _GUESSED[extension] = guessed
    return guessed


MAX_RECORD = 64 * 1024
"""Characters of one catalogue line at most, but for a long source URL or archive key. Every pod and `kubectl gallery`
read the catalogue whole and an S3 target's state sync uploads it again and again: an item's metadata longer than
this (a site's description of megabytes, on every item of its page) is cut (``metadataCut``); the item's sidecar
(options.writeMetadata) keeps it whole."""
CUT_TEXT = 1024
"""Characters a string of cut metadata keeps (then an ellipsis)."""
CUT_ITEMS = 64
"""Entries a list or mapping of cut metadata keeps."""
CUT_DEPTH = 8
"""Levels of cut metadata: a deeper list or mapping becomes an ellipsis."""
ELLIPSIS = "\u2026"


def _ends_a_line(file: Path) -> bool:
    with file.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _cut(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with its metadata cut (strings, lists, mappings and nesting), or none when even that is too long."""
    metadata = _cut_value(record.get("metadata"), CUT_DEPTH)
    cut = {**record, "metadata": metadata, "metadataCut": True}
    if len(json.dumps(metadata, default=str, ensure_ascii=False)) > MAX_RECORD // 2:
        cut["metadata"] = {}
    return cut


def _cut_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= CUT_TEXT else value[:CUT_TEXT] + ELLIPSIS
    if isinstance(value, dict | list) and depth == 0:
        return ELLIPSIS
    if isinstance(value, dict):
        return {_cut_value(str(k), 0): _cut_value(v, depth - 1) for k, v in itertools.islice(value.items(), CUT_ITEMS)}
    if isinstance(value, list):
        return [_cut_value(v, depth - 1) for v in value[:CUT_ITEMS]]
    return value


class Catalogue:
    """Appends records to ``catalogue.jsonl``; a path already recorded (by any earlier pod) is not added twice."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.lock = threading.Lock()
        self.owners: dict[str, str] = {}
        """Catalogued path -> the source URL of the item stored there."""
        self.keys: set[str] = set()
        """The engines' archive keys the records carry (``archiveKey``): the items an engine's archive knows."""
        self.items = 0
        self.bytes = 0
        self.sample: list[CatalogueItem] = []
        self._handle: BinaryIO | None = None
        file.parent.mkdir(parents=True, exist_ok=True)
        for record in self._existing():
            self._count(record)

    def _existing(self) -> Iterator[dict[str, Any]]:
        """The records of earlier pods. A line that holds none is skipped: one cut short by a killed pod (inside a
        character too: a cut line's bytes need not be UTF-8) or by a snapshot taken while a line was written, or
        one that is no record as workers write them (edited by hand). Reading it failed every later run."""
        if not self.file.exists():
            return
        with self.file.open("rb") as handle:
            for line in handle:
                record = catalogue_record(line)
                if record is not None:  # else the item is recorded again if it is stored again
                    yield record

    def _count(self, record: dict[str, Any]) -> None:
        key = record.get("archiveKey")
        if isinstance(key, str):
            self.keys.add(key)
        if record["path"] in self.owners:
            return
        self.owners[record["path"]] = str(record.get("sourceUrl") or "")
        self.items += 1
        self.bytes += int(record["size"])
        if len(self.sample) < MAX_SAMPLE:
            self.sample.append(
                CatalogueItem(
                    path=record["path"],
                    size=record["size"],
                    sha256=record["sha256"],
                    content_type=record.get("contentType"),
                    source_url=(record.get("sourceUrl") or "")[:MAX_SHOWN_URL] or None,
                )
            )

    def __contains__(self, path: str) -> bool:
        return path in self.owners

    def archived(self, key: str) -> bool:
        """Whether a record carries the archive key ``key``."""
        return key in self.keys

    def owner(self, path: str) -> str | None:
        """The source URL of the item catalogued at ``path``, or None when nothing is."""
        return self.owners.get(path)

    def add(self, record: dict[str, Any]) -> bool:
        """Record an item; False when its path is already catalogued."""
        with self.lock:
            if record["path"] in self.owners:
                return False
            line = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
            if len(line) > MAX_RECORD:
                line = json.dumps(_cut(record), sort_keys=True, default=str, ensure_ascii=False)
            if self._handle is None:
                self._handle = self.file.open("ab", buffering=0)
                if self._handle.tell() and not _ends_a_line(self.file):
                    append_line(self._handle, "")  # a cut last line ended: the next record is a line of its own
            # One write(2) per record: a killed pod leaves at most a cut last line, which is skipped.
            append_line(self._handle, line)
            self._count(record)
            return True

    def close(self) -> None:
        with self.lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
