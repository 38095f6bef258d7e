"""yt-dlp as a library behind the engine interface (worker/engines.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gallery_operator.api.spec import GalleryDownloadSpec
from gallery_operator.worker import options, programs
from gallery_operator.worker.engines import Sink, pod_credentials
from gallery_operator.worker.failures import classify, redirect_loop
from gallery_operator.worker.items import ItemBytes, ItemFile, next_item
from gallery_operator.worker.names import url_hash

TRANSIENT: frozenset[str] = frozenset({"NetworkError", "Timeout", "RateLimited"})
"""Failures worth another try of a whole extraction."""
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
LIVE_REFUSED = (
    "live streams are not downloaded: they have no end, and yt-dlp would hand them to ffmpeg, which connects past "
    "the egress rules"
)


def _normal(path: str) -> str:
    return str(Path(path).resolve())


class _DirectFiles:
    """yt-dlp's plain HTTP downloads of one file that nothing rewrites afterwards go through an ItemFile: hashed as
    written and, for S3 targets, streamed into the bucket so scratch space keeps only the file's length. What else
    yt-dlp writes (formats it merges, HLS, containers it fixes up with ffmpeg, subtitles) stays an ordinary file
    that is hashed and uploaded when finished: those are read back from disk by yt-dlp or ffmpeg."""

    def __init__(self, sink: Sink, url: str) -> None:
        self.sink = sink
        self.url = url
        self.plan: tuple[str, str] | None = None
        """(temp file name, final path) of the media file of the video being processed, when it qualifies."""
        self.items: dict[str, ItemBytes] = {}
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

            def fresh() -> ItemBytes:
                return ItemBytes(self.sink, self.sink.stream(Path(final)), source_url=self.url, counting=False)

            try:
                item = next_item(self.items.get(final), open_mode, lambda: Path(name).stat().st_size, fresh, name)
            except OSError:
                stream.close()
                raise
            if item is None:
                return stream, name  # hashed from disk when finished
            self.items[final] = item
            return ItemFile(stream, item), name

        return opened

    def sha256(self, path: str) -> str | None:
        """The digest of a finished file written through an ItemFile, else None (to be read from disk)."""
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
        self.base = options.yt_dlp_options(spec, root, state, scratch, pod_credentials(cookies))
        if (ffmpeg := programs.location()) is not None:
            self.base["ffmpeg_location"] = ffmpeg  # the one the program wall admits, not a search of PATH
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
