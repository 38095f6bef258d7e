"""gallery-dl and yt-dlp as libraries, behind one small interface."""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import queue
import re
import threading
from pathlib import Path
from typing import Any, Protocol

from gallery_dl import config, exception, extractor, job
from gallery_dl.extractor.generic import GenericExtractor

from gallery_operator.api.spec import GalleryDownloadSpec
from gallery_operator.worker import options
from gallery_operator.worker.failures import classify
from gallery_operator.workerconfig import PASSWORD_ENV, USERNAME_ENV

_URL_IN_MESSAGE = re.compile(r"https?://[^\s'\"]+")


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
    ) -> None: ...
    def skipped(self, path: Path | None, source_url: str) -> None: ...
    def failed(self, url: str, reason: str, message: str) -> None: ...
    def should_stop(self) -> bool: ...


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
        message = record.getMessage()
        if record.levelno < logging.ERROR:
            self.last_warning = message
            return
        self.count += 1
        detail = f"{self.last_warning}; {message}" if self.last_warning else message
        self.last_warning = ""
        match = _URL_IN_MESSAGE.search(detail)
        self.sink.failed(match.group(0).rstrip(".,)'") if match else self.default_url, classify(detail), detail)


class _HashingFile:
    """A file opened by gallery-dl for a download, hashing what is written so no second read is needed.

    Past the first few MiB the hashing moves to a thread: hashlib releases the GIL on large buffers, so the
    digest runs on the other core while the download thread keeps reading the socket.
    """

    INLINE_BYTES = 4 * 1024 * 1024
    QUEUED_CHUNKS = 16

    def __init__(self, handle: Any, pathfmt: Any) -> None:
        self._handle = handle
        self._pathfmt = pathfmt
        self._digest = hashlib.sha256()
        self._written = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def _hash_in_background(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def write(self, data: bytes) -> int:
        if self._queue is not None:
            self._queue.put(bytes(data))
        elif self._written + len(data) > self.INLINE_BYTES:
            self._queue = queue.Queue(maxsize=self.QUEUED_CHUNKS)  # bounded: memory stays flat
            self._thread = threading.Thread(target=self._hash_in_background, name="sha256", daemon=True)
            self._thread.start()
            self._queue.put(bytes(data))
        else:
            self._digest.update(data)
        self._written += len(data)
        written: int = self._handle.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _HashingFile:
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.__exit__(*exc)
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._pathfmt.gallery_sha256 = self._digest.hexdigest()


def _hash_while_writing(pathfmt: Any) -> None:
    """Wrap gallery-dl's PathFormat.open: a fresh download ("w+b") is hashed as it is written. A resumed one
    ("r+b", a partial file from before) is not, and is hashed from disk afterwards."""
    original = pathfmt.open

    def open_and_hash(mode: str = "wb") -> Any:
        handle = original(mode)
        pathfmt.gallery_sha256 = None
        return _HashingFile(handle, pathfmt) if mode in ("wb", "w+b") else handle

    pathfmt.open = open_and_hash


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

    def __init__(self, spec: GalleryDownloadSpec, root: Path, state: Path, scratch: Path, cookies: Path | None) -> None:
        config.clear()
        for path, value in options.gallery_dl_config(spec, root, state, scratch, _credentials(cookies)).items():
            config.set(path[:-1], path[-1], value)

    def supports(self, url: str) -> bool:
        return extractor.find(url) is not None

    def run(self, url: str, sink: Sink) -> None:
        class RecordingJob(job.DownloadJob):  # type: ignore[misc]
            """A DownloadJob that reports each stored, skipped and failed file (child jobs are the same class)."""

            current_url = url

            def initialize(self, kwdict: Any = None) -> None:
                super().initialize(kwdict)
                _hash_while_writing(self.pathfmt)
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
                digest = getattr(pathfmt, "gallery_sha256", None)
                pathfmt.gallery_sha256 = None
                sink.stored(
                    Path(pathfmt.path), self.current_url, "gallery-dl", self.extractor.category, metadata, digest
                )

        # A site-specific extractor when gallery-dl has one, else the generic one (images linked from the page).
        found = extractor.find(url) or PortAwareGeneric.from_url(url)
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
        if code and not capture.count:
            sink.failed(url, "Internal", f"gallery-dl finished with status {code}")


class YtDlp:
    """yt-dlp: video pages, direct video files, playlists and HLS streams."""

    name = "yt-dlp"

    def __init__(self, spec: GalleryDownloadSpec, root: Path, state: Path, scratch: Path, cookies: Path | None) -> None:
        self.base = options.yt_dlp_options(spec, root, state, scratch, _credentials(cookies))

    def supports(self, url: str) -> bool:
        return True  # its generic extractor tries any page

    def run(self, url: str, sink: Sink) -> None:
        # Imported here: yt-dlp takes half a second to import, and many runs never need it.
        import yt_dlp  # noqa: PLC0415
        from yt_dlp.postprocessor.common import PostProcessor  # noqa: PLC0415
        from yt_dlp.utils import DownloadError  # noqa: PLC0415

        class Record(PostProcessor):  # type: ignore[misc]
            def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
                path = info.get("filepath")
                if path:
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
                    sink.stored(
                        Path(path),
                        source,
                        "yt-dlp",
                        str(info.get("extractor_key") or "generic"),
                        {k: v for k, v in metadata.items() if v is not None},
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

        def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
            return "limit reached" if sink.should_stop() else None

        opts = {**self.base, "logger": Logger(), "match_filter": match_filter}
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.add_post_processor(Record(), when="after_move")
            try:
                ydl.extract_info(url, download=True)
            except DownloadError as error:
                cause = error.exc_info[1] if error.exc_info else None
                status = getattr(cause, "status", None) or getattr(cause, "code", None)
                message = str(error).removeprefix("ERROR: ")
                sink.failed(url, classify(message, int(status) if status else None), message)


def _credentials(cookies: Path | None) -> options.Credentials:
    """Credentials from the pod: the cookies copy and the username/password env set from Secrets."""
    return options.Credentials(
        cookies_file=cookies, username=os.environ.get(USERNAME_ENV), password=os.environ.get(PASSWORD_ENV)
    )
