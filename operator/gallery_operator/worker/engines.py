"""gallery-dl and yt-dlp as libraries, behind one small interface."""

from __future__ import annotations

import collections
import hashlib
import importlib
import logging
import os
import queue
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from gallery_dl import config, exception, extractor, job
from gallery_dl.extractor.generic import GenericExtractor

from gallery_operator.api.spec import GalleryDownloadSpec
from gallery_operator.worker import options
from gallery_operator.worker.failures import classify, redirect_loop
from gallery_operator.worker.lookahead import Lookahead
from gallery_operator.worker.names import url_hash
from gallery_operator.worker.storage import PartUpload
from gallery_operator.workerconfig import PASSWORD_ENV, TOKEN_ENVS, USERNAME_ENV

_URL_IN_MESSAGE = re.compile(r"https?://[^\s'\"]+")
TRANSIENT: frozenset[str] = frozenset({"NetworkError", "Timeout", "RateLimited"})
"""Failures worth another try of a whole extraction."""
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
LIVE_REFUSED = (
    "live streams are not downloaded: they have no end, and yt-dlp would hand them to ffmpeg, which connects past "
    "the egress rules"
)


class Sink(Protocol):
    """What an engine tells the run about each item."""

    def stored(
        self,
        path: Path,
        source_url: str,
        engine: str,
        extractor: str,
        metadata: dict[str, Any],
        sha256: str | None = None,
        sidecar: tuple[Path, dict[str, Any]] | None = None,
    ) -> None:
        """An item is stored; ``sidecar`` is where its full metadata goes and what it is, when sidecars are on."""
        ...

    def skipped(self, path: Path | None, source_url: str) -> None: ...
    def failed(self, url: str, reason: str, message: str) -> None: ...
    def should_stop(self) -> bool: ...
    def count(self, size: int) -> bool:
        """Bytes of an unfinished file arrived (or, negative, left the count); True when the byte limit is crossed."""
        ...

    def stream(self, path: Path) -> PartUpload | None:
        """Where the bytes of ``path`` go while they are written, when the target takes them that way."""
        ...

    def place(self, path: Path, source_url: str) -> Path:
        """Where the item from ``source_url`` is stored, when its engine would name it ``path``."""
        ...

    def overdue(self, started: float) -> str | None:
        """Why an item downloading since ``started`` (time.monotonic) must stop now, or None."""
        ...


class Engine(Protocol):
    name: str

    def supports(self, url: str) -> bool: ...
    def run(self, url: str, sink: Sink) -> None: ...


class _ErrorCapture(logging.Handler):
    """Turns an engine's log lines into failures with the offending URL.

    gallery-dl logs the HTTP status as a warning (`'404 Not Found' for 'URL'`) and then a bare error
    (`Failed to download NAME`); the warning's text makes the error's reason.
    """

    def __init__(self, sink: Sink, default_url: str) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink
        self.default_url = default_url
        self.count = 0
        self.last_warning = ""

    def emit(self, record: logging.LogRecord) -> None:
        if self.sink.should_stop():
            return  # a download cut short by a limit is not a failure of its own
        message = record.getMessage()
        if record.levelno < logging.ERROR:
            self.last_warning = message
            return
        self.count += 1
        detail = f"{self.last_warning}; {message}" if self.last_warning else message
        self.last_warning = ""
        match = _URL_IN_MESSAGE.search(detail)
        self.sink.failed(match.group(0).rstrip(".,;:)'") if match else self.default_url, classify(detail), detail)


class StorageFailed(OSError):
    """The target refused bytes of the file being written (an S3 part upload failed)."""


class _ItemBytes:
    """Everything written for one item's file, across re-opens of its ``.part`` file by gallery-dl's retries.

    The bytes are hashed as they arrive (past the first few MiB on a second thread: hashlib releases the GIL on
    large buffers, so the digest runs on the other core while the download thread reads the socket), counted
    against the run's byte limit (the run stops within one chunk of it), and handed to the store's upload stream
    when the target has one.
    """

    INLINE_BYTES = 4 * 1024 * 1024
    QUEUED_CHUNKS = 16

    def __init__(
        self,
        sink: Sink,
        upload: PartUpload | None,
        hashing: bool = True,
        source_url: str = "",
        counting: bool = True,
    ) -> None:
        self.sink = sink
        self.upload = upload
        self.source_url = source_url
        self.counting = counting  # False where the engine counts bytes itself (yt-dlp's progress hook)
        self.digest = hashlib.sha256() if hashing else None
        self.size = 0
        self.started = time.monotonic()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def _hash_in_background(self, chunks: queue.Queue[bytes | None]) -> None:
        assert self.digest is not None
        while (chunk := chunks.get()) is not None:
            self.digest.update(chunk)

    def take(self, data: bytes) -> bool:
        """Account for written bytes; True when the upload stream took them and they need not be on disk."""
        if self.digest is not None:
            if self._queue is not None:
                self._queue.put(bytes(data))
            elif self.size + len(data) > self.INLINE_BYTES:
                self._queue = queue.Queue(maxsize=self.QUEUED_CHUNKS)  # bounded: memory stays flat
                self._thread = threading.Thread(
                    target=self._hash_in_background, args=(self._queue,), name="sha256", daemon=True
                )
                self._thread.start()
                self._queue.put(bytes(data))
            else:
                self.digest.update(data)
        self.size += len(data)
        if self.counting and self.sink.count(len(data)):
            raise exception.StopExtraction()  # gallery-dl ends this download and keeps its .part file
        if self.counting and self.sink.overdue(self.started):
            raise exception.StopExtraction()  # as for the byte limit: the run stops, the .part file is not kept
        if self.upload is None:
            return False
        streaming = self.upload.started
        try:
            self.upload.write(data)
        except Exception as error:
            # Ends gallery-dl's extraction as an unexpected error; the message makes it a StorageError of the
            # item's own URL (the first URL in it), not of the bucket's.
            raise StorageFailed(f"storage error for {self.source_url}: {error}") from error
        return streaming

    def discard(self) -> None:
        """Never to be stored (its file starts over, or another one follows): out of the in-flight count, and its
        parts are dropped now rather than at the end of the run."""
        if self.counting:
            self.sink.count(-self.size)
        if self.upload is not None:
            self.upload.abort()

    def drain(self) -> None:
        """Wait for the hashing thread (the file is closed; a re-open starts another)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._queue = self._thread = None

    def sha256(self) -> str | None:
        self.drain()
        return self.digest.hexdigest() if self.digest is not None else None


class _ItemFile:
    """The file object gallery-dl writes a download into. Bytes the upload stream took are skipped on disk (a seek,
    so the file keeps its length but not its blocks); the first part always lands on disk, where gallery-dl may
    read a resumed file's header."""

    def __init__(self, handle: Any, item: _ItemBytes) -> None:
        self._handle = handle
        self._item = item

    def write(self, data: bytes) -> int:
        if self._item.take(data):
            self._handle.seek(len(data), os.SEEK_CUR)
            return len(data)
        written: int = self._handle.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _ItemFile:
        self._handle.__enter__()
        return self

    def _finish(self) -> None:
        if self._item.upload is not None and self._item.upload.started and not self._handle.closed:
            self._handle.truncate(self._handle.tell())  # the file's length, past the skipped bytes

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._handle.__exit__(*exc)
        self._item.drain()

    def close(self) -> None:  # yt-dlp closes its files instead of using them as context managers
        self._finish()
        self._handle.close()
        self._item.drain()


def _next_item(
    earlier: _ItemBytes | None,
    mode: str,
    size_on_disk: Callable[[], int],
    fresh: Callable[[], _ItemBytes],
    name: str,
) -> _ItemBytes | None:
    """The item an engine's (re)opened file belongs to. A fresh download ("wb", "w+b") starts a new one; a resumed
    one ("r+b", "ab", after a cut connection) continues the item it left off. None: a partial file from an earlier
    pod is resumed, nothing of it was seen here."""
    if mode in ("wb", "w+b"):
        if earlier is not None:  # never stored: a download started over, or a new file after a failed one
            earlier.discard()
        return fresh()
    if earlier is not None and earlier.size == size_on_disk():
        return earlier
    if earlier is not None and earlier.upload is not None and earlier.upload.started:
        raise OSError(f"cannot resume {name}: its bytes went to the upload, not to disk")
    if earlier is not None:
        earlier.discard()
    return None


def _place_items(pathfmt: Any, sink: Sink, source: Callable[[], str]) -> None:
    """Wrap gallery-dl's PathFormat.build_path so the run decides the final name of each item: two items whose
    names are the same (every album's `cover.jpg`) never land on one path, and gallery-dl's "already there" check
    then only skips the item that is really there."""
    original = pathfmt.build_path

    def build_path() -> None:
        original()
        chosen = pathfmt.realpath
        placed = str(sink.place(Path(chosen), source()))
        if placed == chosen:
            return
        name = os.path.basename(placed)  # noqa: PTH119 - gallery-dl's paths are strings
        pathfmt.filename = name
        pathfmt.path = pathfmt.directory + name
        pathfmt.realpath = placed
        if pathfmt.temppath == chosen:
            pathfmt.temppath = placed

    pathfmt.build_path = build_path


def _track_items(pathfmt: Any, sink: Sink, source: Callable[[], str]) -> None:
    """Wrap gallery-dl's PathFormat.open so every download goes through an _ItemFile. A fresh download ("w+b")
    starts a new item; a resumed one ("r+b", after a cut connection) continues the item it left off, or, for a
    partial file from an earlier pod, is counted but hashed from disk afterwards."""
    original = pathfmt.open
    pathfmt.gallery_item = None

    def open_item(mode: str = "wb") -> Any:
        def fresh() -> _ItemBytes:
            return _ItemBytes(sink, sink.stream(Path(pathfmt.realpath)), source_url=source())

        item = _next_item(pathfmt.gallery_item, mode, pathfmt.part_size, fresh, pathfmt.filename)
        if item is None:
            item = _ItemBytes(sink, None, hashing=False)  # counted, and hashed from disk afterwards
        handle = original(mode)
        pathfmt.gallery_item = item
        return _ItemFile(handle, item) if handle is not None else None

    pathfmt.open = open_item


class PortAwareGeneric(GenericExtractor):  # type: ignore[misc]
    """gallery-dl's generic extractor (images linked from any page), for hosts with a port too: the upstream
    pattern has no port in its domain part, so `http://host:8080/page` would not match."""

    pattern = re.compile(
        r"(?i)(?P<generic>)(?P<scheme>https?://)(?P<domain>[-\w.]+(?::\d+)?)(?P<path>/[^?#]*)?"
        r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?$"
    )


class GalleryDl:
    """gallery-dl: image galleries and direct media links. Its config is process-global: one run per process."""

    name = "gallery-dl"

    def __init__(
        self,
        spec: GalleryDownloadSpec,
        root: Path,
        state: Path,
        scratch: Path,
        cookies: Path | None,
        lookahead: Lookahead | None = None,
    ) -> None:
        config.clear()
        settings = options.gallery_dl_config(spec, root, state, scratch, _credentials(cookies))
        if ("extractor", "proxy-env") not in settings and not _environment_shapes_requests():
            # No proxy settings in the environment, so requests need not scan it again for every request (a fifth
            # of the time per small file). A CA bundle named there is passed on as gallery-dl's `verify`.
            settings[("extractor", "proxy-env")] = False
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and settings.get(("extractor", "verify"), True) is True:
                settings[("extractor", "verify")] = bundle
        for path, value in settings.items():
            config.set(path[:-1], path[-1], value)
        self.lookahead = lookahead

    def find(self, url: str) -> Any:
        """gallery-dl's extractor for the URL, from the lookahead when it has the answer (importing only that
        module), else by gallery-dl's own search."""
        answers = self.lookahead.result() if self.lookahead is not None else {}
        if url not in answers:
            return extractor.find(url)
        found = answers[url]
        if found is None:
            return None
        cls = getattr(importlib.import_module(found[0]), found[1])
        # gallery-dl compiles a module's patterns when it lists the module; leave its class attribute alone
        pattern = re.compile(cls.pattern) if isinstance(cls.pattern, str) else cls.pattern
        match = pattern.match(url)
        return cls(match) if match else extractor.find(url)

    def supports(self, url: str) -> bool:
        return self.find(url) is not None

    def run(self, url: str, sink: Sink) -> None:
        class RecordingJob(job.DownloadJob):  # type: ignore[misc]
            """A DownloadJob that reports each stored, skipped and failed file (child jobs are the same class)."""

            current_url = url

            def initialize(self, kwdict: Any = None) -> None:
                super().initialize(kwdict)
                _track_items(self.pathfmt, sink, lambda: self.current_url)
                _place_items(self.pathfmt, sink, lambda: self.current_url)
                hooks: Any = self.__dict__.get("hooks")
                if not isinstance(hooks, dict):
                    hooks = collections.defaultdict(list)
                    self.__dict__["hooks"] = hooks  # gallery-dl leaves an empty tuple without post-processors
                hooks.setdefault("after", []).append(self._after)

            def handle_url(self, item_url: str, kwdict: dict[str, Any]) -> None:
                if sink.should_stop():
                    raise exception.StopExtraction()
                self.current_url = item_url
                super().handle_url(item_url, kwdict)

            def handle_skip(self) -> None:
                super().handle_skip()
                path = Path(self.pathfmt.path) if self.pathfmt and self.pathfmt.path else None
                sink.skipped(path, self.current_url)

            def _after(self, pathfmt: Any) -> None:
                metadata = {k: v for k, v in pathfmt.kwdict.items() if not k.startswith("_")}
                item: _ItemBytes | None = pathfmt.gallery_item
                pathfmt.gallery_item = None
                digest = item.sha256() if item is not None else None
                if item is not None:
                    sink.count(-item.size)  # now counted as stored
                path = Path(pathfmt.path)
                sidecar = (path.with_name(path.name + ".json"), metadata)
                sink.stored(path, self.current_url, "gallery-dl", self.extractor.category, metadata, digest, sidecar)

        # A site-specific extractor when gallery-dl has one, else the generic one (images linked from the page).
        found = self.find(url) or PortAwareGeneric.from_url(url)
        if found is None:
            sink.failed(url, "UnsupportedUrl", "no gallery-dl extractor for this URL")
            return
        capture = _ErrorCapture(sink, url)
        root = logging.getLogger()  # gallery-dl's loggers all propagate here
        root.addHandler(capture)
        try:
            code = RecordingJob(found).run()
        finally:
            root.removeHandler(capture)
        if code and not capture.count and not sink.should_stop():
            sink.failed(url, "Internal", f"gallery-dl finished with status {code}")


def _normal(path: str) -> str:
    return str(Path(path).resolve())


class _DirectFiles:
    """yt-dlp's plain HTTP downloads of one file that nothing rewrites afterwards go through an _ItemFile: hashed as
    written and, for S3 targets, streamed into the bucket so scratch space keeps only the file's length. What else
    yt-dlp writes (formats it merges, HLS, containers it fixes up with ffmpeg, subtitles) stays an ordinary file
    that is hashed and uploaded when finished: those are read back from disk by yt-dlp or ffmpeg."""

    def __init__(self, sink: Sink, url: str) -> None:
        self.sink = sink
        self.url = url
        self.plan: tuple[str, str] | None = None
        """(temp file name, final path) of the media file of the video being processed, when it qualifies."""
        self.items: dict[str, _ItemBytes] = {}
        """Final path -> what was written for it."""

    @staticmethod
    def qualifies(info: Mapping[str, Any]) -> bool:
        return (
            not info.get("requested_formats")
            and info.get("protocol") in ("http", "https")
            and info.get("container") != "m4a_dash"
            and info.get("stretched_ratio") in (None, 1)
            and not info.get("is_live")
        )

    def process_info(self, ydl: Any, original: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        def planned(info: dict[str, Any]) -> Any:
            if self.qualifies(info):
                final = _normal(ydl.prepare_filename(info))
                self.plan = (_normal(ydl.prepare_filename(info, "temp")), final)
            try:
                return original(info)
            finally:
                self.plan = None

        return planned

    def sanitize_open(self, original: Callable[..., tuple[Any, str]]) -> Callable[..., tuple[Any, str]]:
        def opened(downloader: Any, filename: str, open_mode: str) -> tuple[Any, str]:
            stream, name = original(downloader, filename, open_mode)
            if self.plan is None or _normal(name) not in (self.plan[0], self.plan[0] + ".part"):
                return stream, name
            final = self.plan[1]

            def fresh() -> _ItemBytes:
                return _ItemBytes(self.sink, self.sink.stream(Path(final)), source_url=self.url, counting=False)

            try:
                item = _next_item(self.items.get(final), open_mode, lambda: Path(name).stat().st_size, fresh, name)
            except OSError:
                stream.close()
                raise
            if item is None:
                return stream, name  # hashed from disk when finished
            self.items[final] = item
            return _ItemFile(stream, item), name

        return opened

    def sha256(self, path: str) -> str | None:
        """The digest of a finished file written through an _ItemFile, else None (to be read from disk)."""
        item = self.items.pop(_normal(path), None)
        return item.sha256() if item is not None else None


def _place_videos(ydl: Any, sink: Sink) -> None:
    """Per YoutubeDL instance: two items never share a name or an archive entry. yt-dlp's generic extractor names an
    item after the last part of its URL (`/a/cover.jpg` and `/b/cover.jpg` are both `cover`), so its archive entries
    also carry a hash of the URL, and a name another item holds gets one too (as ``Run.place`` decides)."""
    archive_id = ydl._make_archive_id
    process_info = ydl.process_info

    def source(info: Mapping[str, Any]) -> str:
        return str(info.get("webpage_url") or info.get("original_url") or info.get("url") or "")

    def unique_archive_id(info: dict[str, Any]) -> Any:
        key = archive_id(info)
        generic = (info.get("extractor_key") or info.get("ie_key")) == "Generic"
        return f"{key} {url_hash(source(info))}" if key and generic and source(info) else key

    def placed(info: dict[str, Any]) -> Any:
        info[options.NAME_SUFFIX] = ""
        wanted = Path(ydl.prepare_filename(info))
        chosen = sink.place(wanted, source(info))
        if chosen.stem.startswith(wanted.stem) and chosen.suffix == wanted.suffix:
            info[options.NAME_SUFFIX] = chosen.stem[len(wanted.stem) :]
        return process_info(info)

    ydl._make_archive_id = unique_archive_id
    ydl.process_info = placed


class YtDlp:
    """yt-dlp: video pages, direct video files, playlists and HLS streams."""

    name = "yt-dlp"

    def __init__(self, spec: GalleryDownloadSpec, root: Path, state: Path, scratch: Path, cookies: Path | None) -> None:
        self.base = options.yt_dlp_options(spec, root, state, scratch, _credentials(cookies))
        self.retries = spec.options.retries

    def supports(self, url: str) -> bool:
        return True  # its generic extractor tries any page

    def run(self, url: str, sink: Sink) -> None:
        # Imported here: yt-dlp takes half a second to import, and many runs never need it.
        import yt_dlp  # noqa: PLC0415
        from yt_dlp.downloader.http import HttpFD  # noqa: PLC0415
        from yt_dlp.postprocessor.common import PostProcessor  # noqa: PLC0415
        from yt_dlp.utils import DownloadCancelled, DownloadError  # noqa: PLC0415

        stored_in_attempt = [False]
        direct = _DirectFiles(sink, url)

        class Record(PostProcessor):  # type: ignore[misc]
            def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
                path = info.get("filepath")
                if path:
                    stored_in_attempt[0] = True
                    metadata = {
                        k: info.get(k)
                        for k in (
                            "id",
                            "title",
                            "ext",
                            "duration",
                            "upload_date",
                            "uploader",
                            "webpage_url",
                            "width",
                            "height",
                        )
                    }
                    source = str(info.get("webpage_url") or info.get("url") or url)
                    media = Path(path)
                    full = self._downloader.sanitize_info(info) if self._downloader is not None else {}
                    sink.stored(
                        media,
                        source,
                        "yt-dlp",
                        str(info.get("extractor_key") or "generic"),
                        {k: v for k, v in metadata.items() if v is not None},
                        direct.sha256(path),
                        (media.with_name(media.stem + ".info.json"), full),
                    )
                return [], info

        class Logger:
            def debug(self, message: str) -> None:
                if "has already been recorded in the archive" in message:
                    sink.skipped(None, url)

            def info(self, message: str) -> None:
                self.debug(message)

            def warning(self, message: str) -> None:
                pass

            def error(self, message: str) -> None:
                pass  # raised as DownloadError below, with the HTTP status when there is one

        refused_live: set[str] = set()

        def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
            if sink.should_stop():
                return "limit reached"
            if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
                source = str(info.get("webpage_url") or info.get("original_url") or url)
                if source not in refused_live:
                    refused_live.add(source)
                    sink.failed(source, "LiveStream", LIVE_REFUSED)
                return "a live stream"
            return None

        counted: dict[str, int] = {}
        started: dict[str, float] = {}

        def count_bytes(progress: dict[str, Any]) -> None:
            """Bytes in flight count against the run's byte limit; crossing it cancels the download at once."""
            name = str(progress.get("tmpfilename") or progress.get("filename"))
            if progress.get("status") == "downloading":
                now = int(progress.get("downloaded_bytes") or 0)
                delta, counted[name] = now - counted.get(name, 0), now
                if delta and sink.count(delta):
                    raise DownloadCancelled("limits.maxBytes reached")
                if why := sink.overdue(started.setdefault(name, time.monotonic())):
                    raise DownloadCancelled(why)
            else:  # finished (then stored and counted as such) or error
                sink.count(-counted.pop(name, 0))
                started.pop(name, None)

        opts = {**self.base, "logger": Logger(), "match_filter": match_filter, "progress_hooks": [count_bytes]}
        # yt-dlp retries fragments and downloads, but not the first request for a page (its extractors' probe): a
        # transient failure before anything was stored is retried here, the whole extraction, with backoff. (After
        # something was stored, yt-dlp's own retries have been spent on the download that failed.)
        plain_open = HttpFD.sanitize_open
        HttpFD.sanitize_open = direct.sanitize_open(plain_open)  # this process runs one engine at a time
        try:
            for attempt in range(self.retries + 1):
                stored_in_attempt[0] = False
                with yt_dlp.YoutubeDL(opts) as ydl:
                    ydl.process_info = direct.process_info(ydl, ydl.process_info)
                    _place_videos(ydl, sink)  # outermost: names are settled before the direct-file plan is made
                    ydl.add_post_processor(Record(), when="after_move")
                    try:
                        ydl.extract_info(url, download=True)
                        return
                    except DownloadCancelled:
                        return  # the run's limit, recorded by the run
                    except DownloadError as error:
                        cause = error.exc_info[1] if error.exc_info else None
                        status = getattr(cause, "status", None) or getattr(cause, "code", None)
                        message = str(error).removeprefix("ERROR: ")
                        reason = classify(message, int(status) if status else None)
                if redirect_loop(message) or not self._again(reason, attempt, stored_in_attempt[0], sink):
                    sink.failed(url, reason, message)
                    return
                time.sleep(min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))
        finally:
            HttpFD.sanitize_open = plain_open

    def _again(self, reason: str, attempt: int, stored: bool, sink: Sink) -> bool:
        """Whether a failed extraction is tried again: transient, retries left, nothing stored, no limit hit."""
        return reason in TRANSIENT and attempt < self.retries and not stored and not sink.should_stop()


def _environment_shapes_requests() -> bool:
    """Whether requests' ``trust_env`` would change more than the CA bundle: proxy variables or a netrc."""
    if urllib.request.getproxies() or os.environ.get("NETRC"):
        return True
    # os.path.expanduser, as requests uses: it leaves "~" alone when there is no home (a pod's arbitrary user),
    # where Path.expanduser raises.
    return any(Path(os.path.expanduser(f"~/{name}")).exists() for name in (".netrc", "_netrc"))  # noqa: PTH111


def _credentials(cookies: Path | None) -> options.Credentials:
    """Credentials from the pod: the cookies copy and the username/password env set from Secrets."""
    tokens = tuple((name, value) for name, env in TOKEN_ENVS.items() if (value := os.environ.get(env)))
    return options.Credentials(
        cookies_file=cookies,
        username=os.environ.get(USERNAME_ENV),
        password=os.environ.get(PASSWORD_ENV),
        tokens=tokens,
    )
