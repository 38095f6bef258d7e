"""gallery-dl as a library behind the engine interface (worker/engines.py)."""

from __future__ import annotations

import collections
import copy
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gallery_dl import config, exception, extractor, job, text
from gallery_dl.extractor.generic import GenericExtractor

from gallery_operator.api.spec import GalleryDownloadSpec
from gallery_operator.worker import options, transport
from gallery_operator.worker.archives import set_aside_unusable_sqlite
from gallery_operator.worker.engines import Sink, Stopped
from gallery_operator.worker.failures import classify, failure_url, reason_for_error, wording
from gallery_operator.worker.hosts import Hosts
from gallery_operator.worker.inputs import RequestsEnvironment
from gallery_operator.worker.items import ItemBytes, ItemFile, next_item
from gallery_operator.worker.page_links import MediaLinks, SourceLinks
from gallery_operator.worker.transfers import Transfers
from gallery_operator.worker.url_lookup import gallery_dl_find
from gallery_operator.workerconfig import GALLERY_DL_ARCHIVE


class _ErrorCapture(logging.Handler):
    """Turns an engine's log lines into failures with the offending URL.

    gallery-dl logs the HTTP status as a warning (`'404 Not Found' for 'URL'`) and then a bare error
    (`Failed to download NAME`); the warning's text makes the error's reason.
    """

    def __init__(self, sink: Sink, default_url: str) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink
        self.default_url = default_url
        self.item_url: Callable[[], str] | None = None
        """The URL of the item this thread transfers, when items have threads of their own: a line that names no
        URL is that item's failure."""
        self.count = 0
        self.last = threading.local()
        """The last warning and its error, per thread: each transfer's lines pair up with its own."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.sink.should_stop():
            return  # a download cut short by a limit is not a failure of its own
        message = record.getMessage()
        last_warning: str = getattr(self.last, "warning", "")
        # The exception behind the line: logged with it, being handled while it is logged, or the transport error
        # gallery-dl's downloader turned into text (worker/transport.py). gallery-dl's own error for a page's
        # request (HttpError) carries the transport error as text only: the one recorded is the one behind it.
        template = wording(record)
        handled, recorded = (record.exc_info or sys.exc_info())[1], transport.last_error()
        if handled is None or reason_for_error(handled) is None:
            handled = recorded or handled
        error = handled or getattr(self.last, "error", None)
        if record.levelno < logging.ERROR:
            self.last.warning, self.last.error, self.last.template = message, error, template
            return
        self.count += 1
        detail = f"{last_warning}; {message}" if last_warning else message
        fixed = f"{getattr(self.last, 'template', '')} {template}" if last_warning else template
        self.last.warning, self.last.error = "", None
        reason = classify(detail, error=error)
        default = self.item_url() if self.item_url is not None else self.default_url
        self.sink.failed(failure_url(detail, fixed, default), reason, detail)


def _place_items(pathfmt: Any, sink: Sink, source: Callable[[], str]) -> None:
    """Wrap gallery-dl's PathFormat.build_path so the run decides the final name of each item: two items whose
    names are the same (every album's `cover.jpg`) never land on one path, and gallery-dl's "already there" check
    then only skips the item that is really there."""
    original = pathfmt.build_path

    def build_path() -> None:
        original()
        chosen = pathfmt.realpath
        placed = sink.place(chosen, source())
        if placed == chosen:
            return
        name = os.path.basename(placed)  # noqa: PTH119 - gallery-dl's paths are strings
        pathfmt.filename = name
        pathfmt.path = pathfmt.directory + name
        pathfmt.realpath = placed
        if pathfmt.temppath == chosen:
            pathfmt.temppath = placed

    pathfmt.build_path = build_path


class GalleryDlItemFile(ItemFile):
    """An ItemFile whose run-stopping write ends the download as gallery-dl's own downloaders expect:
    StopExtraction, which its HTTP downloader answers by closing the response and keeping the .part file. With
    ``hosts``, the bytes are paced by their host's shared rate (options.rateLimit for all transfers together)."""

    def __init__(self, handle: Any, item: ItemBytes, hosts: Hosts | None = None) -> None:
        super().__init__(handle, item)
        self._hosts = hosts

    def write(self, data: bytes) -> int:
        if self._hosts is not None:
            self._hosts.take(self._item.source_url, len(data))
        try:
            return super().write(data)
        except Stopped:
            raise exception.StopExtraction() from None


@dataclass
class ItemFiles:
    """What every job and transfer of one gallery-dl run shares for its items' files: the pod's politeness per host
    and the folders made so far."""

    hosts: Hosts | None = None
    folders: set[str] = field(default_factory=set)


def track_items(pathfmt: Any, sink: Sink, source: Callable[[], str], files: ItemFiles | None = None) -> None:
    """Wrap gallery-dl's PathFormat.open so every download goes through an ItemFile. A fresh download ("w+b")
    starts a new item; a resumed one ("r+b", after a cut connection) continues the item it left off, or, for a
    partial file from an earlier pod, is counted but hashed from disk afterwards."""
    shared = ItemFiles() if files is None else files
    original = pathfmt.open
    pathfmt.gallery_item = None

    def open_item(mode: str = "wb") -> Any:
        def fresh() -> ItemBytes:
            return ItemBytes(sink, sink.stream(pathfmt.realpath), source_url=source())

        item = next_item(pathfmt.gallery_item, mode, pathfmt.part_size, fresh, pathfmt.filename)
        if item is None:
            item = ItemBytes(sink, None, hashing=False)  # counted, and hashed from disk afterwards
        if "r" not in mode and pathfmt.realdirectory not in shared.folders:
            # gallery-dl makes a missing folder when opening fails, without exist_ok: with items transferred at
            # once, a sibling making it first failed this item with FileExistsError (and its finalize, moving a
            # .part file, took that error for a vanished file). The folder is made first, by whichever comes, once
            # a run (a system call and a path less per item).
            Path(pathfmt.realdirectory).mkdir(parents=True, exist_ok=True)
            shared.folders.add(pathfmt.realdirectory)
        handle = original(mode)
        pathfmt.gallery_item = item
        return GalleryDlItemFile(handle, item, shared.hosts) if handle is not None else None

    pathfmt.open = open_item


def _redacted(kwdict: dict[str, Any], sink: Sink) -> dict[str, Any]:
    """An item's metadata as gallery-dl builds folder and file names from it, without the run's secret values (a
    site may echo them into titles and names). Keys starting with `_` are gallery-dl's own request details (headers
    for the download): they never name anything and stay as they are, as do values without text (numbers)."""
    clean = sink.clean
    return {k: v if k.startswith("_") or type(v) in _PLAIN else clean(v) for k, v in kwdict.items()}


_PLAIN = frozenset({int, float, bool, type(None)})


class PortAwareGeneric(GenericExtractor):  # type: ignore[misc]
    """gallery-dl's generic extractor (images linked from any page), for hosts with a port too: the upstream
    pattern has no port in its domain part, so `http://host:8080/page` would not match."""

    pattern = re.compile(
        r"(?i)(?P<generic>)(?P<scheme>https?://)(?P<domain>[-\w.]+(?::\d+)?)(?P<path>/[^?#]*)?"
        r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?$"
    )


def search_pages_in_linear_time() -> None:
    """For the rest of this process: gallery-dl's generic extractor searches pages with the finders of
    worker/page_links.py (its own expressions take time quadratic in a run of URL characters: an inline image of
    48 KB, 6.3 s), handed over under their expressions' text where this gallery-dl's extractor searches with them."""
    searches = GenericExtractor.images.__code__.co_consts
    for finder in (MediaLinks(), SourceLinks()):
        if finder.pattern in searches:
            text.PATTERN_CACHE[finder.pattern] = finder


_FILE_KEYS: dict[int, set[str]] = {}
"""The entries of gallery-dl's archive file, read once per connection (every job of a run shares one)."""


class _CatalogueArchive:
    """gallery-dl's download archive, answered by the catalogue: an item is known when a catalogue record carries its
    archive key. The key is written with the record (one line: the item is stored and archived at once, and only
    once it is stored; a store that failed leaves it unknown, so the next run fetches it again), instead of an entry
    in gallery-dl's SQLite file per item (six writes an item, besides its own). That file's entries (of workers
    before this one, and of items counted without a record of their own) are read once and still count; an item
    counted without a record of its own gets its entry there (``keep``)."""

    _lock = threading.Lock()

    def __init__(self, archive: Any, sink: Sink, absent: Callable[[], None] | None = None) -> None:
        self._archive = archive
        self._sink = sink
        self._absent = absent
        """Told of each item found absent (with a pool: it breaks the run of known items before it, whatever its
        transfer's outcome, as the items handed to the pool do)."""
        connection = archive.connection
        keys = _FILE_KEYS.get(id(connection))
        if keys is None:
            try:
                keys = {str(row[0]) for row in connection.execute("SELECT entry FROM archive")}
            except Exception:  # an unreadable file knows no item; the catalogue still does
                keys = set()
            _FILE_KEYS[id(connection)] = keys
        self._file_keys = keys

    def check(self, kwdict: Any) -> bool:
        key = kwdict[self._archive._cache_key] = self._archive.keygen(kwdict)
        known = key in self._file_keys or self._sink.archived(key)
        if not known and self._absent is not None:
            self._absent()
        return known

    def add(self, kwdict: Any) -> None:
        """Nothing here: the item's catalogue record carries its key (``_RecordingJob._report_stored``)."""

    def keep(self, kwdict: Any) -> None:
        """An item counted without a record of its own (its path was catalogued for it before): its entry goes
        into the file."""
        with self._lock:
            self._archive.add(kwdict)
            self._file_keys.add(kwdict.get(self._archive._cache_key) or self._archive.keygen(kwdict))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._archive, name)


class _RecordingJob(job.DownloadJob):  # type: ignore[misc]
    """A DownloadJob that reports each stored, skipped and failed file to the sink (gallery-dl makes child jobs of
    the same class, with the parent job: they report to its sink).

    With ``transfers`` (options.concurrency > 1), the engine's thread extracts and each item's handling (archive
    check, download, post-processors, archive entry, report) runs on a pool thread with a path format and
    downloaders of its own; items are reported in the order they were extracted."""

    def __init__(
        self,
        url: Any,
        parent: _RecordingJob | None = None,
        *,
        sink: Sink | None = None,
        run_url: str = "",
        transfers: Transfers | None = None,
        files: ItemFiles | None = None,
    ) -> None:
        self._thread = threading.local()  # before gallery-dl's __init__, which sets pathfmt and downloaders
        self.skips = 0
        """Items skipped as known so far (``_here`` tells a skip from a move by it)."""
        self.files: ItemFiles = (files or ItemFiles()) if parent is None else parent.files
        super().__init__(url, parent)
        self.sink: Sink = sink if sink is not None else parent.sink  # type: ignore[union-attr]
        self.run_url: str = run_url or (parent.run_url if parent is not None else "")
        self.transfers: Transfers | None = transfers if parent is None else parent.transfers
        self.hosts: Hosts | None = self.files.hosts
        self.item_pause: Any = None
        self.current_url = self.run_url
        """The URL of the item being handled (the run's URL before the first)."""

    # Per transfer thread: the item's URL, index and path format, and the thread's downloaders; the engine's thread
    # (and a run without a pool) uses the job's own.
    @property
    def pathfmt(self) -> Any:
        return getattr(self._thread, "pathfmt", None) or self.__dict__.get("_pathfmt")

    @pathfmt.setter
    def pathfmt(self, value: Any) -> None:
        self.__dict__["_pathfmt"] = value

    @property
    def current_url(self) -> str:
        return str(getattr(self._thread, "url", None) or self.__dict__["_current_url"])

    @current_url.setter
    def current_url(self, value: str) -> None:
        self.__dict__["_current_url"] = value

    # gallery-dl's count of known items in a row (the stop rule, `skip: "abort:N"`). With transfers it is kept by the
    # engine's thread alone, in gallery order (`_known_in_order`): a pool thread's writes (the reset when its item's
    # download ends, which may be long after later items were looked at) are dropped and it reads 0.
    @property
    def _skipcnt(self) -> int:
        return 0 if self._on_pool_thread() else int(self.__dict__.get("_known_in_a_row", 0))

    @_skipcnt.setter
    def _skipcnt(self, value: int) -> None:
        if not self._on_pool_thread():
            self.__dict__["_known_in_a_row"] = value

    def _none_known_in_a_row(self) -> None:
        self._skipcnt = 0

    def _on_pool_thread(self) -> bool:
        return getattr(self._thread, "index", None) is not None

    @property
    def downloaders(self) -> dict[str, Any]:
        if getattr(self, "transfers", None) is None:
            return self.__dict__.setdefault("_downloaders", {})  # type: ignore[no-any-return]
        return self._thread.__dict__.setdefault("downloaders", {})  # type: ignore[no-any-return]

    @downloaders.setter
    def downloaders(self, value: dict[str, Any]) -> None:
        self.__dict__["_downloaders"] = value

    def initialize(self, kwdict: Any = None) -> None:
        super().initialize(kwdict)
        self._wrap(self.pathfmt)
        hooks: Any = self.__dict__.get("hooks")
        if not isinstance(hooks, dict):
            hooks = collections.defaultdict(list)
            self.__dict__["hooks"] = hooks  # gallery-dl leaves an empty tuple without post-processors
        hooks.setdefault("after", []).append(self._after)
        if self.__dict__.get("archive") is not None:
            # An item is archived by its catalogue record, written in its turn (gallery order) as gallery-dl does
            # one item at a time: a pod killed while earlier items are still in flight leaves no archived item the
            # catalogue lacks, and the state an S3 target uploads with the record holds its key.
            absent = self._none_known_in_a_row if self.transfers is not None else None
            self.__dict__["archive"] = _CatalogueArchive(self.__dict__["archive"], self.sink, absent)
        if self.transfers is not None:
            # The pause between items is the host's (worker/hosts.py), not each transfer thread's.
            self.item_pause, self.__dict__["sleep"] = self.__dict__.get("sleep"), None

    def _wrap(self, pathfmt: Any) -> None:
        track_items(pathfmt, self.sink, lambda: self.current_url, self.files)
        _place_items(pathfmt, self.sink, lambda: self.current_url)

    def _copy_pathfmt(self) -> Any:
        """The job's path format as it is now (its folder), for one item's transfer: gallery-dl's methods wrapped
        afresh, so the copy's names and file are its own."""
        if self.pathfmt is None:
            self.initialize()
        item_pathfmt = copy.copy(self.pathfmt)
        for wrapped in ("build_path", "open"):
            item_pathfmt.__dict__.pop(wrapped, None)
        self._wrap(item_pathfmt)
        return item_pathfmt

    def dispatch(self, messages: Any) -> Any:
        if self.transfers is None:
            return super().dispatch(messages)
        try:
            result = super().dispatch(messages)
        finally:
            self.transfers.drain()  # the job's items are all handled before gallery-dl finalizes it
        self.transfers.raise_pending()
        return result

    def handle_url(self, item_url: str, kwdict: dict[str, Any]) -> None:
        if self.sink.should_stop():
            raise exception.StopExtraction()
        kwdict = _redacted(kwdict, self.sink)  # a copy: extractors may reuse their dict for the next item
        if self.transfers is None:
            self._here(item_url, kwdict)
            return
        if self.transfers.move_here(functools.partial(self._here, item_url, kwdict)):
            return
        if self._known_in_order(item_url, kwdict):
            return
        self.transfers.hand(functools.partial(self._handed, item_url, kwdict))

    def _here(self, item_url: str, kwdict: dict[str, Any]) -> bool:
        """The item handled on this thread, as gallery-dl handles one item after another (its archive check and
        its count of known items in a row included). False when it was skipped as known (no measure of the
        network: the pool's width is decided by the items that moved, as without this path)."""
        self.current_url = item_url
        skips = self.skips
        super().handle_url(item_url, kwdict)
        return self.skips == skips

    def _handed(self, item_url: str, kwdict: dict[str, Any], here: bool) -> Callable[[int], None]:
        """The item's transfer: on the engine's thread (``here``, nothing else in flight) with the job's own path
        format, as one item after another; on a pool thread with a copy of it as it is now."""
        return functools.partial(self._transfer, item_url, kwdict, None if here else self._copy_pathfmt())

    def _known_in_order(self, item_url: str, kwdict: dict[str, Any]) -> bool:
        """On the engine's thread, in gallery order: an item the archive holds is skipped here (counted by the stop
        rule, which may end the run), and any other item breaks the run of known ones before it goes to the pool,
        as gallery-dl counts them one item at a time."""
        archive = self.__dict__.get("archive")
        if archive is None:
            return False
        if self.pathfmt is None:
            self.initialize()
        self.pathfmt.set_filename(kwdict)
        if not archive.check(kwdict):
            return False  # the run of known items is broken (_none_known_in_a_row)
        self.current_url = item_url
        self.pathfmt.fix_extension()
        self.handle_skip()
        return True

    def _transfer(self, item_url: str, kwdict: dict[str, Any], pathfmt: Any, index: int) -> None:
        """One item's handling in the pool (``pathfmt`` None: the job's own, on the engine's thread)."""
        local = self._thread
        local.pathfmt, local.url, local.index = pathfmt, item_url, index
        try:
            if self.sink.should_stop():
                return
            super().handle_url(item_url, kwdict)
        finally:
            local.pathfmt = local.url = local.index = None

    def download(self, url: str) -> Any:
        if self.hosts is not None and self.item_pause is not None:
            self.hosts.start_item(url, self.item_pause())
        return super().download(url)

    def handle_directory(self, kwdict: dict[str, Any]) -> None:
        super().handle_directory(_redacted(kwdict, self.sink))

    def handle_skip(self) -> None:
        self.skips += 1
        super().handle_skip()
        path = Path(self.pathfmt.path) if self.pathfmt and self.pathfmt.path else None
        self.sink.skipped(path, self.current_url)

    def _after(self, pathfmt: Any) -> None:
        index = getattr(self._thread, "index", None)
        if self.transfers is None or index is None:
            self._report_stored(pathfmt)
            return
        with self.transfers.in_turn(index):
            self._report_stored(pathfmt)

    def _report_stored(self, pathfmt: Any) -> None:
        metadata = {k: v for k, v in pathfmt.kwdict.items() if not k.startswith("_")}
        item: ItemBytes | None = pathfmt.gallery_item
        pathfmt.gallery_item = None
        digest = item.sha256() if item is not None else None
        path = Path(pathfmt.path)
        sidecar = (pathfmt.path + ".json", metadata)
        category = self.extractor.category
        in_flight = item.size if item is not None else 0  # becomes stored bytes in the same step
        archive = self.__dict__.get("archive")
        key = pathfmt.kwdict.get(archive._cache_key) if isinstance(archive, _CatalogueArchive) else None
        recorded = self.sink.stored(
            path, self.current_url, "gallery-dl", category, metadata, digest, sidecar, in_flight, archive_key=key
        )
        if recorded is False and isinstance(archive, _CatalogueArchive):
            archive.keep(pathfmt.kwdict)


class GalleryDl:
    """gallery-dl: image galleries and direct media links. Its config is process-global: one run per process."""

    name = "gallery-dl"

    def __init__(
        self,
        spec: GalleryDownloadSpec,
        root: Path,
        state: Path,
        scratch: Path,
        credentials: options.Credentials,
        requests: RequestsEnvironment,
        hosts: Hosts | None = None,
    ) -> None:
        config.clear()
        set_aside_unusable_sqlite(state / GALLERY_DL_ARCHIVE)
        search_pages_in_linear_time()
        self.hosts = hosts
        self.concurrency = spec.options.concurrency
        sites = options.credential_sites(spec, self.category) if credentials.any() else frozenset()
        settings = options.gallery_dl_config(spec, root, state, scratch, credentials, sites)
        if ("extractor", "proxy-env") not in settings and not requests.shaped:
            # No proxy settings in the environment, so requests need not scan it again for every request (a fifth
            # of the time per small file). A CA bundle named there is passed on as gallery-dl's `verify`.
            settings[("extractor", "proxy-env")] = False
            bundle = requests.ca_bundle
            if bundle and settings.get(("extractor", "verify"), True) is True:
                settings[("extractor", "verify")] = bundle
        for path, value in settings.items():
            config.set(path[:-1], path[-1], value)

    def find(self, url: str) -> Any:
        """gallery-dl's extractor for the URL, as its own search finds it (worker/url_lookup.py: the patterns that
        cannot match are skipped unseen, and only the modules of those that may are imported)."""
        return gallery_dl_find(url)

    def supports(self, url: str) -> bool:
        return self.find(url) is not None

    def knows(self, site: str) -> bool:
        """Whether ``site`` is a category of gallery-dl: of an extractor, or of one of the instances of a site
        software that many sites run (Danbooru, Mastodon ...), whose extractors take the instance's category."""
        for cls in extractor.extractors():
            if cls.category == site or any(instance[0] == site for instance in getattr(cls, "instances", ())):
                return True
        return False

    def category(self, url: str) -> str:
        """The extractor category of a URL, matched without fetching anything (`generic` when none matches)."""
        found = self.find(url)
        return str(found.category) if found is not None else PortAwareGeneric.category

    def run(self, url: str, sink: Sink) -> None:
        # A site-specific extractor when gallery-dl has one, else the generic one (images linked from the page).
        found = self.find(url) or PortAwareGeneric.from_url(url)
        if found is None:
            sink.failed(url, "UnsupportedUrl", "no gallery-dl extractor for this URL")
            return
        capture = _ErrorCapture(sink, url)
        root = logging.getLogger()  # gallery-dl's loggers all propagate here
        root.addHandler(capture)
        transfers = Transfers(self.concurrency, sink.room, adaptive=True) if self.concurrency > 1 else None
        files = ItemFiles(self.hosts)
        try:
            recording = _RecordingJob(found, sink=sink, run_url=url, transfers=transfers, files=files)
            if transfers is not None:
                capture.item_url = lambda: recording.current_url
            code = recording.run()
        finally:
            if transfers is not None:
                transfers.close()
            root.removeHandler(capture)
        if code and not capture.count and not sink.should_stop():
            sink.failed(url, "Internal", f"gallery-dl finished with status {code}")
