"""The entries of a yt-dlp playlist transferred concurrently (options.concurrency > 1, issue 26).

yt-dlp lists the playlist on the engine's thread, as it always does (its extractor, its entry selection, its
archive check and match filter on each entry, its break on an archived entry). Where it would process an entry of
the top-level playlist itself, the entry is handed to a bounded pool (worker/transfers.py) instead; a pool thread
processes it with a YoutubeDL of its own (extraction of the entry, format choice, download, post-processing),
made like the engine thread's (the same hooks, see worker/ytdlp.py) and sharing its download archive (one set, its
writes one at a time) and its cookie jar. Each entry's file is reported to the run in playlist order (the entry's
turn), and its archive entry is written only after that.

Politeness is the pod's per host (worker/hosts.py): the pause between items (sleepSeconds) is booked where a
download starts, the rate (rateLimit) where its bytes arrive, for the host as a whole; yt-dlp's own per-download
pause and rate are off in the pool's YoutubeDLs. A 429 or 503 with Retry-After pauses the host's requests where
requests sends them.

The stop rule stays exact: an entry found in the archive on a pool thread (whose flat listing had no id to check)
ends the listing as yt-dlp's break-on-existing does; entries after it that were in flight are not stored (their
files are removed in their turn), entries before it are.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gallery_operator.worker.engines import Sink
from gallery_operator.worker.hosts import Hosts
from gallery_operator.worker.transfers import Transfers

TRANSIENT: frozenset[str] = frozenset({"NetworkError", "Timeout", "RateLimited"})
"""Failures worth another try: of a whole extraction (worker/ytdlp.py), of one entry in the pool."""
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
BEYOND_STOP = "stopped: an earlier entry of the playlist ended it (options.stopAfterKnown or a limit)"


class HostRate:
    """A progress hook of the pool's YoutubeDLs: the bytes of each download are paced by their host's shared rate
    (the download's URL's host; bytes of a redirect target on another host count against the first)."""

    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts
        self.counted: dict[str, int] = {}

    def __call__(self, progress: dict[str, Any]) -> None:
        name = str(progress.get("tmpfilename") or progress.get("filename"))
        if progress.get("status") != "downloading":
            self.counted.pop(name, None)
            return
        now = int(progress.get("downloaded_bytes") or 0)
        delta, self.counted[name] = now - self.counted.get(name, 0), now
        if delta > 0:
            info = progress.get("info_dict") or {}
            self.hosts.take(str(info.get("url") or ""), delta)


def entry_options(opts: dict[str, Any], hosts: Hosts | None) -> dict[str, Any]:
    """The YoutubeDL parameters of a pool thread: the engine thread's, without yt-dlp's download count (the run's
    item limit decides which entries start: worker/transfers.py) and, with the pod's hosts, without yt-dlp's own
    per-download pause and rate (the host's hold instead)."""
    params = {k: v for k, v in opts.items() if k != "max_downloads"}
    if hosts is not None:
        params.pop("sleep_interval", None)
        params.pop("ratelimit", None)
        params["progress_hooks"] = [*params.get("progress_hooks", ()), HostRate(hosts)]
    return params


def entry_downloader(opts: dict[str, Any], extractors: list[Any]) -> Any:
    """A YoutubeDL with ``opts`` whose extractor table is ``extractors`` (another YoutubeDL's, made from the same
    parameters, as ``list(ydl._ies.values())`` before its first extraction). yt-dlp would build the same table anew
    by scanning its ~1,800 extractor names with list look-ups: 40 ms of CPU for each YoutubeDL, under the one
    interpreter lock, for every pool thread. Extractor classes are shared; an extractor instance (bound to the
    YoutubeDL it belongs to) is made anew."""
    import yt_dlp  # noqa: PLC0415 - imported by the run only

    ydl = yt_dlp.YoutubeDL(opts, auto_init=False)
    for extractor in extractors:
        ydl.add_info_extractor(extractor if isinstance(extractor, type) else type(extractor)())
    return ydl


class Entries:
    """The pool of one extraction's playlist entries. ``prepare`` makes a YoutubeDL the worker's (the hooks of
    worker/ytdlp.py); ``reason`` names the failure of a DownloadError (a transient one is tried again, the entry
    alone, up to ``retries`` times)."""

    def __init__(
        self,
        main: Any,
        opts: dict[str, Any],
        sink: Sink,
        prepare: Callable[[Any], None],
        reason: Callable[[Exception], str],
        *,
        size: int,
        hosts: Hosts | None,
        pause: float,
        retries: int,
    ) -> None:
        self.main = main
        self.opts = entry_options(opts, hosts)
        self.sink = sink
        self.prepare = prepare
        self.reason = reason
        self.hosts = hosts
        self.pause = pause
        self.retries = retries
        self.transfers = Transfers(size, sink.room)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.archive_lock = threading.Lock()
        self.instances: list[Any] = []
        self.extractors = list(main._ies.values())
        """The engine thread's extractors, in yt-dlp's order, before any is bound to it (see ``_instance``)."""
        self.stop_at: int | None = None
        """The index of the first entry that ended the listing on a pool thread."""
        self._attach()

    def _attach(self) -> None:
        """The engine thread's YoutubeDL hands each entry of its top-level playlist to the pool."""
        main = self.main
        process = main._YoutubeDL__process_iterable_entry

        def pooled(entry: dict[str, Any], download: bool, extra_info: Any) -> Any:
            if main._playlist_level != 1 or not download:
                return process(entry, download, extra_info)
            self.transfers.submit(functools.partial(self._transfer, entry, dict(extra_info)))
            return entry

        main._YoutubeDL__process_iterable_entry = pooled

    def _instance(self) -> Any:
        """This pool thread's YoutubeDL, made on its first entry."""
        ydl = getattr(self.local, "ydl", None)
        if ydl is not None:
            return ydl
        ydl = entry_downloader(self.opts, self.extractors)
        ydl.archive = self.main.archive  # one set: an entry archived on one thread is known on every other
        ydl.__dict__["cookiejar"] = self.main.cookiejar  # one jar (a cached property of YoutubeDL)
        record_archive = ydl.record_download_archive

        def record(info: dict[str, Any]) -> None:
            with self.archive_lock:
                record_archive(info)

        ydl.record_download_archive = record
        if self.hosts is not None:
            ydl.dl = self._polite(ydl.dl)
        self.prepare(ydl)
        with self.lock:
            self.instances.append(ydl)
        self.local.ydl = ydl
        return ydl

    def _polite(self, download: Callable[..., Any]) -> Callable[..., Any]:
        """yt-dlp's ``dl``: a video's download starts in its host's turn (sleepSeconds between two starts)."""
        hosts = self.hosts
        assert hosts is not None

        def dl(name: str, info: dict[str, Any], subtitle: bool = False, test: bool = False) -> Any:
            if not (subtitle or test):
                hosts.start_item(str(info.get("url") or ""), self.pause)
            return download(name, info, subtitle, test)

        return dl

    def _transfer(self, entry: dict[str, Any], extra: dict[str, Any], index: int) -> None:
        """One entry, on a pool thread."""
        self.local.index = index
        try:
            if self.sink.should_stop() or self._beyond_stop(index):
                return
            self._attempts(self._instance(), entry, extra, index)
        finally:
            self.local.index = None

    def _attempts(self, ydl: Any, entry: dict[str, Any], extra: dict[str, Any], index: int) -> None:
        from yt_dlp.utils import DownloadCancelled, DownloadError  # noqa: PLC0415 - imported by the run only

        for attempt in range(self.retries + 1):
            try:
                ydl._YoutubeDL__process_iterable_entry(dict(entry), True, extra)
                return
            except DownloadCancelled:  # break-on-existing, a limit: the listing ends here
                with self.lock:
                    self.stop_at = index if self.stop_at is None else min(self.stop_at, index)
                raise
            except DownloadError as error:
                if self.reason(error) not in TRANSIENT or attempt == self.retries or self.sink.should_stop():
                    raise
            time.sleep(min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))

    def _beyond_stop(self, index: int) -> bool:
        with self.lock:
            return self.stop_at is not None and index > self.stop_at

    @contextlib.contextmanager
    def in_order(self) -> Iterator[bool]:
        """On a pool thread, the block runs once every earlier entry is finished; it is told whether the entry still
        counts (False after the entry that ended the listing). Elsewhere it runs at once, and counts."""
        index = getattr(self.local, "index", None)
        if index is None:
            yield True
            return
        with self.transfers.in_turn(index):
            yield not self._beyond_stop(index)

    @contextlib.contextmanager
    def turn(self, path: str) -> Iterator[None]:
        """Around the report of a stored file, in the entry's order. An entry after the one that ended the listing
        is not stored: its file goes, and its processing ends there (no archive entry)."""
        from yt_dlp.utils import DownloadCancelled  # noqa: PLC0415 - imported by the run only

        with self.in_order() as counts:
            if not counts:
                Path(path).unlink(missing_ok=True)
                raise DownloadCancelled(BEYOND_STOP)
            yield

    def close(self) -> None:
        """Wait for the entries in flight; close the pool's YoutubeDLs."""
        try:
            self.transfers.close()
        finally:
            for ydl in self.instances:
                ydl.close()

    def raise_pending(self) -> None:
        self.transfers.raise_pending()
