"""Where each item is stored: names a filesystem and a person can take, never two items on one path, and never a
path outside the target (links followed)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import BinaryIO, TypeVar

from gallery_operator.redaction import Redactor
from gallery_operator.worker.catalogue import Catalogue, append_line
from gallery_operator.worker.names import MAX_NAME_BYTES, safe_name, url_hash

PathOrText = TypeVar("PathOrText", Path, str)

MAX_KEY_BYTES = 1024
"""S3's limit on an object key (prefix, folders and name together)."""

PLACED_FILE = "placed.jsonl"
"""In the state folder: every path ``place`` gave out, written before the engine creates the file there."""


class Placement:
    """The paths of one run's items under the target root ``root``. ``key_prefix`` is the S3 prefix when the target
    is a bucket (whose keys are limited), else None."""

    def __init__(
        self,
        root: Path,
        catalogue: Catalogue,
        redactor: Redactor,
        key_prefix: str | None = None,
        journal: Path | None = None,
    ) -> None:
        self.root = root
        self.catalogue = catalogue
        self.redactor = redactor
        self.key_prefix = key_prefix
        self.journal = journal
        """Where the paths given out are written (``PLACED_FILE``), or None to keep no journal."""
        self._journal: BinaryIO | None = None
        self._folders: dict[str, str | None] = {}
        """A folder's path as given (with its trailing slash) -> its place under the root ("" for the root itself,
        else ending with a slash), or None when it resolves outside."""
        self._lock = threading.Lock()
        self._given: dict[str, str] = {}
        """Relative path -> the source URL ``place`` gave it to in this run (items being transferred at once see
        each other's names before either file exists)."""
        self.original_names: dict[str, str] = {}
        """Path chosen by ``place`` -> the name the engine wanted, when they differ (recorded in the catalogue)."""

    def relative(self, path: Path) -> str | None:
        """The path relative to the target root, or None if it escapes it (then the file is removed).

        Symlinks are followed: the folder's real location is resolved once per folder (items share a few), the
        file itself fully whenever it is a link."""
        return self.located(path)[0]

    def located(self, path: Path) -> tuple[str | None, os.stat_result | None]:
        """``relative``, and the status of what is at ``path`` itself (links not followed; None when nothing is):
        the one system call both take."""
        try:
            status: os.stat_result | None = path.lstat()
        except OSError:
            status = None
        try:
            if (status is not None and stat.S_ISLNK(status.st_mode)) or path.name == "..":
                return path.resolve().relative_to(self.root).as_posix(), status
        except ValueError:
            return None, status
        return self.planned(path), status

    def planned(self, path: Path) -> str | None:
        """``relative`` for a name that is not on disk yet (no link to follow): no system call after the first
        item of a folder, which matters per item on slow disks, and no path made, which matters per small item."""
        text = str(path)
        name = text.rpartition("/")[2]
        return self._planned_in(text[: len(text) - len(name)], name)

    def _planned_in(self, folder: str, name: str) -> str | None:
        """``planned`` of ``name`` in ``folder`` (its path as text, with its trailing slash)."""
        try:
            prefix = self._folders[folder]
        except KeyError:
            prefix = self._folders[folder] = self._under_root(Path(folder or "."))
        return None if prefix is None else prefix + name

    def _under_root(self, folder: Path) -> str | None:
        try:
            relative = folder.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        return "" if relative == "." else relative + "/"

    def place(self, path: PathOrText, source_url: str) -> PathOrText:
        """Where an item is stored. First a name a filesystem and a person can take (``names.safe_name``: no control or
        direction-changing characters, at most MAX_NAME_BYTES, fewer when an S3 key would pass 1024 bytes). Then, if
        that name holds another item already (another source URL in the catalogue, or a file the catalogue does not
        know), the name with a short hash of the item's URL before the extension. The same item always gets the same
        name, so a re-run skips it, and two items never share one path. A path given as text comes back as text
        (gallery-dl's paths are strings, and making a path object of each cost several microseconds an item)."""
        placed = self._place(str(path), source_url)
        return placed if isinstance(path, str) else Path(placed)

    def _place(self, text: str, source_url: str) -> str:
        if not text.startswith("/") or "//" in text or "/./" in text or text.endswith(("/", "/.")):
            text = str(Path(text).absolute())  # as a path object would read it
        cut = text.rfind("/") + 1
        folder, given = text[:cut], text[cut:]
        source_url = self.redactor.values(source_url)
        name = self.redactor.values(given)
        room = MAX_NAME_BYTES  # the name is not touched on disk before it is safe: a long one raises ENAMETOOLONG
        if self.key_prefix is not None:
            inside = self._planned_in(folder, "item")
            if inside is None:
                return folder + name  # refused when stored
            used = len(self.key_prefix.encode()) + len(inside.encode()) - len("item") + 1
            room = min(room, max(40, MAX_KEY_BYTES - used))
        safe = safe_name(name, source_url, room)
        relative = self._planned_in(folder, safe)
        if relative is None or name == "..":
            return folder + name  # refused when stored
        with self._lock:
            candidate, tries = safe, 0
            while not self._free_for(folder + candidate, relative, source_url):
                tries += 1
                suffix = url_hash(source_url) if tries == 1 else f"{url_hash(source_url)}-{tries}"
                stem, extension = _stem_and_suffix(safe)
                candidate = f"{stem}-{suffix}{extension}"
                relative = str(self._planned_in(folder, candidate))  # the same folder as ``safe``: inside
            self._given[relative] = source_url
            if candidate != name:
                self.original_names[folder + candidate] = name
            self._write_down(relative)
        return folder + candidate

    def _write_down(self, relative: str) -> None:
        """The path goes into the journal before the engine creates the file (flushed: a killed pod leaves it).
        Each line is `{"path": ...}`, the JSON string written into it as it stands (a dict need not be made)."""
        if self.journal is None:
            return
        if self._journal is None:
            self._journal = self.journal.open("ab", buffering=0)
        append_line(self._journal, '{"path": ' + json.dumps(relative) + "}")

    def clear_leftovers(self) -> list[str]:
        """Before the run: files an earlier pod of this download was given a path for and never catalogued (killed
        between the file's final name and its record) are removed, so that their items are fetched again under
        their own names instead of beside an unknown file. Only paths from this download's own journal, inside the
        target, never a catalogued one; partial files (``.part``) are left to the engines, which resume them.
        The journal then starts over. Returns the paths removed."""
        if self.journal is None or not self.journal.exists():
            return []
        removed = []
        for line in self.journal.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                relative = json.loads(line)["path"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed pod
            if not isinstance(relative, str) or self.catalogue.owner(relative) is not None:
                continue
            if Path(relative).parts[:1] == (self.journal.parent.name,):
                continue  # the state folder's own files are never an item's
            path = self.root / relative
            if self.relative(path) != relative or not (path.is_file() or path.is_symlink()):
                continue  # outside the target, or nothing there
            path.unlink()
            removed.append(relative)
        self.journal.write_text("")
        return removed

    def original_name(self, path: Path) -> str | None:
        """The name the engine wanted for the item stored at ``path``, when ``place`` chose another (asked once)."""
        return self.original_names.pop(str(path), None)

    def _free_for(self, path: str, relative: str, source_url: str) -> bool:
        given = self._given.get(relative)
        if given is not None and given != source_url:
            return False
        owner = self.catalogue.owner(relative)
        if owner is not None:
            return owner == source_url
        return not os.path.exists(path)  # noqa: PTH110 - a path as text: no path object made per item


def _stem_and_suffix(name: str) -> tuple[str, str]:
    """A name's stem and extension as a path object splits them (`.bashrc` has none, `a.` neither)."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")
