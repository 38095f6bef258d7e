"""yt-dlp as a library behind the engine interface (worker/engines.py)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gallery_operator.api.spec import GalleryDownloadSpec
from gallery_operator.worker import options, programs, transport
from gallery_operator.worker.archives import keep_readable_lines
from gallery_operator.worker.engines import Sink
from gallery_operator.worker.failures import classify, reason_for_error, redirect_loop
from gallery_operator.worker.hosts import Hosts
from gallery_operator.worker.items import ItemBytes, ItemFile, next_item
from gallery_operator.worker.names import url_hash
from gallery_operator.worker.playlist import RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, TRANSIENT, Entries
from gallery_operator.worker.url_lookup import yt_dlp_key
from gallery_operator.workerconfig import YT_DLP_ARCHIVE

NAMING_FIELDS = ("title", "fulltitle", "id", "display_id")
"""Fields of yt-dlp's info dict that file names are made of (the output template in worker/options.py)."""
WEB_SCHEMES = ("http", "https", "data")
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
        self._local = threading.local()
        self.items: dict[str, ItemBytes] = {}
        """Final path -> what was written for it."""

    @property
    def plan(self) -> tuple[str, str] | None:
        """(temp file name, final path) of the media file of the video this thread processes, when it qualifies
        (playlist entries are processed on threads of their own: worker/playlist.py)."""
        plan: tuple[str, str] | None = getattr(self._local, "plan", None)
        return plan

    @plan.setter
    def plan(self, value: tuple[str, str] | None) -> None:
        self._local.plan = value

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

    def discard(self, path: str) -> None:
        """A finished file that is not stored after all (an entry past the end of the listing)."""
        item = self.items.pop(_normal(path), None)
        if item is not None:
            item.discard()


def _web_schemes_only(ydl: Any) -> None:
    """yt-dlp's urllib handler opens ftp: URLs too (a page's video link may be one): only http(s), and data: (bytes
    inline, which extractors use for manifests), are opened; another scheme fails as UnsupportedRequest (Blocked)."""
    for handler in ydl._request_director.handlers.values():
        schemes = handler._SUPPORTED_URL_SCHEMES
        handler._SUPPORTED_URL_SCHEMES = tuple(s for s in (schemes or WEB_SCHEMES) if s in WEB_SCHEMES)


class TlsContexts:
    """The TLS contexts of one run's YoutubeDLs, one per set of parameters. yt-dlp makes one for each YoutubeDL's
    request handler at its first request, loading the whole certificate bundle each time (about 22 ms of CPU): for the
    engine thread's YoutubeDL and every pool thread's. A context is made as yt-dlp makes it, with the arguments
    yt-dlp would pass, and then shared (a context is used read-only by the connections made with it)."""

    def __init__(self) -> None:
        self.made: dict[tuple[Any, ...], Any] = {}
        self.lock = threading.Lock()

    def share(self, ydl: Any) -> None:
        for handler in ydl._request_director.handlers.values():
            handler._make_sslcontext = functools.partial(self._context, handler, handler._make_sslcontext)

    def _context(self, handler: Any, make: Callable[..., Any], legacy_ssl_support: Any = None) -> Any:
        legacy = legacy_ssl_support if legacy_ssl_support is not None else handler.legacy_ssl_support
        client = tuple(sorted(handler._client_cert.items()))
        key = (type(handler), handler.verify, bool(legacy), handler.prefer_system_certs, client)
        with self.lock:
            if key not in self.made:
                self.made[key] = make(legacy_ssl_support=legacy)
            return self.made[key]


def _place_videos(ydl: Any, sink: Sink) -> None:
    """Per YoutubeDL instance: two items never share a name or an archive entry. yt-dlp's generic extractor names an
    item after the last part of its URL (`/a/cover.jpg` and `/b/cover.jpg` are both `cover`), so its archive entries
    also carry a hash of the URL, and a name another item holds gets one too (as ``Placement.place`` decides)."""
    archive_id = ydl._make_archive_id
    process_info = ydl.process_info

    def source(info: Mapping[str, Any]) -> str:
        return str(info.get("webpage_url") or info.get("original_url") or info.get("url") or "")

    def unique_archive_id(info: dict[str, Any]) -> Any:
        key = archive_id(info)
        generic = (info.get("extractor_key") or info.get("ie_key")) == "Generic"
        return f"{key} {url_hash(source(info))}" if key and generic and source(info) else key

    def placed(info: dict[str, Any]) -> Any:
        for field in NAMING_FIELDS:  # a site may echo a secret into a title: the name is made without it
            if isinstance(info.get(field), str):
                info[field] = sink.clean(info[field])
        info[options.NAME_SUFFIX] = ""
        wanted = Path(ydl.prepare_filename(info))
        chosen = sink.place(wanted, source(info))
        if chosen.stem.startswith(wanted.stem) and chosen.suffix == wanted.suffix:
            info[options.NAME_SUFFIX] = chosen.stem[len(wanted.stem) :]
        return process_info(info)

    ydl._make_archive_id = unique_archive_id
    ydl.process_info = placed


def scoped_login(get_param: Callable[..., Any], login: Mapping[str, str], sites: frozenset[str]) -> Callable[..., Any]:
    """InfoExtractor.get_param for one run: the login parameters (never among YoutubeDL's own parameters, where
    every extractor would find them) answer only to an extractor whose key is one of ``sites`` (lower case). A page
    of that site that leads yt-dlp to another extractor (an embed, a redirect) hands that one nothing."""

    def scoped(extractor: Any, name: str, default: Any = None, *args: Any, **kwargs: Any) -> Any:
        if name in login:
            return login[name] if str(extractor.ie_key()).lower() in sites else default
        return get_param(extractor, name, default, *args, **kwargs)

    return scoped


RECORDED_FIELDS = ("id", "title", "ext", "duration", "upload_date", "uploader", "webpage_url", "width", "height")
"""Fields of yt-dlp's info dict that the catalogue records for an item (the sidecar holds them all)."""


class _Record:
    """The post-processor that reports each finished file to the sink ("after_move": at its final name). yt-dlp
    asks a post-processor only for ``set_downloader`` and ``run``: this is no subclass of yt-dlp's PostProcessor, so
    that importing this module does not import yt-dlp."""

    def __init__(self, sink: Sink, url: str, direct: _DirectFiles) -> None:
        self.sink = sink
        self.url = url
        self.direct = direct
        self.stored = False
        """Whether the current attempt stored anything."""
        self._downloader: Any = None
        self.turn: Callable[[str], contextlib.AbstractContextManager[None]] = lambda path: contextlib.nullcontext()
        """Around each report: a playlist entry's turn when entries are transferred at once (worker/playlist.py)."""
        self.held: Callable[[], int] = lambda: 0
        """The bytes this thread's finished files still hold in the in-flight count (``_ByteCounter.take_held``)."""

    def set_downloader(self, downloader: Any) -> None:
        self._downloader = downloader

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if path := info.get("filepath"):
            self.settle(info, path, report=True)
        return [], info

    def settle(self, info: dict[str, Any], path: str, report: bool) -> None:
        """In the entry's turn (see ``turn``): the file at ``path`` reported when ``report``; a file that is not to be
        stored has its streamed bytes dropped."""
        try:
            with self.turn(path):
                if report:
                    self._report(info, path, self.held())
        except BaseException:
            self.direct.discard(str(info.get("_filename") or path))
            raise
        finally:
            if held := self.held():  # not stored: out of the in-flight count
                self.sink.count(-held)

    def _report(self, info: dict[str, Any], path: str, in_flight: int) -> None:
        self.stored = True
        metadata = {k: v for k in RECORDED_FIELDS if (v := info.get(k)) is not None}
        source = str(info.get("webpage_url") or info.get("url") or self.url)
        media = Path(path)
        full = self._downloader.sanitize_info(info) if self._downloader is not None else {}
        extractor = str(info.get("extractor_key") or "generic")
        sidecar = (media.with_name(media.stem + ".info.json"), full)
        self.sink.stored(media, source, "yt-dlp", extractor, metadata, self.direct.sha256(path), sidecar, in_flight)


class _InTurn:
    """The post-processor that waits for a playlist entry's turn ("post_process": after yt-dlp's own fix-ups, before
    it moves the file from the scratch folder to its final name), when entries are transferred at once. A file thus
    reaches its final name only just before its report, as one entry at a time: a pod killed while entries wait for
    their turn leaves their files in the scratch folder, not finished files at final names the catalogue lacks (which
    the next pod would have to name anew)."""

    def __init__(self, record: _Record) -> None:
        self.record = record

    def set_downloader(self, downloader: Any) -> None:
        pass

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if path := info.get("filepath"):
            self.record.settle(info, path, report=False)
        return [], info


class _Logger:
    """yt-dlp's logger: an item found in the archive is a skipped item; errors are raised (DownloadError) and
    reported from there, with the HTTP status when there is one."""

    def __init__(self, sink: Sink, url: str) -> None:
        self.sink = sink
        self.url = url
        self.in_order: Callable[[], contextlib.AbstractContextManager[bool]] = lambda: contextlib.nullcontext(True)
        """Whether a skipped entry counts, decided in its turn when entries are transferred at once (an entry after
        the one that ended the listing does not: worker/playlist.py)."""

    def debug(self, message: str) -> None:
        if "has already been recorded in the archive" in message:
            with self.in_order() as counts:
                if counts:
                    self.sink.skipped(None, self.url)

    def info(self, message: str) -> None:
        self.debug(message)

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass


class _Admission:
    """yt-dlp's match filter: nothing more once the run stops, and no live stream (each refused once, as
    LiveStream)."""

    def __init__(self, sink: Sink, url: str) -> None:
        self.sink = sink
        self.url = url
        self.refused_live: set[str] = set()

    def __call__(self, info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        if self.sink.should_stop():
            return "limit reached"
        if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
            source = str(info.get("webpage_url") or info.get("original_url") or self.url)
            if source not in self.refused_live:
                self.refused_live.add(source)
                self.sink.failed(source, "LiveStream", LIVE_REFUSED)
            return "a live stream"
        return None


class _ByteCounter:
    """yt-dlp's progress hook: bytes in flight count against the run's byte limit, and its item time limit holds;
    crossing either cancels the download at once (``cancelled``: yt-dlp's DownloadCancelled, handed in by the
    adapter once yt-dlp is imported)."""

    def __init__(self, sink: Sink, cancelled: type[Exception]) -> None:
        self.sink = sink
        self.cancelled = cancelled
        self.counted: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.held: dict[int, int] = {}
        """Per thread: bytes of finished files not yet stored, still in the in-flight count."""
        self.lock = threading.Lock()

    def __call__(self, progress: dict[str, Any]) -> None:
        name = str(progress.get("tmpfilename") or progress.get("filename"))
        if progress.get("status") == "downloading":
            now = int(progress.get("downloaded_bytes") or 0)
            delta, self.counted[name] = now - self.counted.get(name, 0), now
            if delta and self.sink.count(delta):
                raise self.cancelled("limits.maxBytes reached")
            if why := self.sink.overdue(self.started.setdefault(name, time.monotonic())):
                raise self.cancelled(why)
        elif progress.get("status") == "finished":
            # Still counted in flight until the entry is stored (or settled without storing) on this thread: a
            # finished file waiting for post-processing or for its turn must not drop out of the count, or other
            # entries' downloads pass maxBytes in that window.
            held = self.counted.pop(name, 0)
            with self.lock:
                self.held[threading.get_ident()] = self.held.get(threading.get_ident(), 0) + held
            self.started.pop(name, None)
        else:  # error
            self.sink.count(-self.counted.pop(name, 0))
            self.started.pop(name, None)

    def take_held(self) -> int:
        """The bytes of this thread's finished files still counted in flight; they leave this counter."""
        with self.lock:
            return self.held.pop(threading.get_ident(), 0)


@contextlib.contextmanager
def _patched(direct: _DirectFiles, login: Mapping[str, str], sites: frozenset[str]) -> Iterator[None]:
    """yt-dlp's class-level hooks for one run: direct files through an ItemFile, the login scoped to its site
    (this process runs one engine at a time)."""
    from yt_dlp.downloader.http import HttpFD  # noqa: PLC0415 - yt-dlp is imported by the run only
    from yt_dlp.extractor.common import InfoExtractor  # noqa: PLC0415

    plain_open, plain_get_param = HttpFD.sanitize_open, InfoExtractor.get_param
    HttpFD.sanitize_open = direct.sanitize_open(plain_open)
    InfoExtractor.get_param = scoped_login(plain_get_param, login, sites)
    try:
        with unseen_progress_lines():
            yield
    finally:
        HttpFD.sanitize_open = plain_open
        InfoExtractor.get_param = plain_get_param


@contextlib.contextmanager
def unseen_progress_lines() -> Iterator[None]:
    """yt-dlp's progress line of a download: two output templates evaluated (about 1 ms an entry of a small
    playlist) for a line printed at the downloader's status printer and in the console's title. Without progress
    (`noprogress`, as every worker run: a printer that prints nothing) and without `consoletitle`, neither shows
    anything: inside this block the line is not made. (The worker's progress hooks read none of the fields it adds.)"""
    from yt_dlp.downloader.common import FileDownloader  # noqa: PLC0415 - yt-dlp is imported by the run only
    from yt_dlp.minicurses import QuietMultilinePrinter  # noqa: PLC0415

    report = FileDownloader._report_progress_status

    def reported(downloader: Any, status: dict[str, Any], default_template: str) -> None:
        quiet = type(downloader._multiline) is QuietMultilinePrinter and not downloader.ydl.params.get("consoletitle")
        if not quiet:
            report(downloader, status, default_template)

    FileDownloader._report_progress_status = reported
    try:
        yield
    finally:
        FileDownloader._report_progress_status = report


class YtDlp:
    """yt-dlp: video pages, direct video files, playlists and HLS streams."""

    name = "yt-dlp"

    def __init__(
        self,
        spec: GalleryDownloadSpec,
        root: Path,
        state: Path,
        scratch: Path,
        credentials: options.Credentials,
        hosts: Hosts | None = None,
    ) -> None:
        keep_readable_lines(state / YT_DLP_ARCHIVE)
        self.spec = spec
        self.credentials = credentials
        self.hosts = hosts
        """The pod's politeness per host (options.concurrency > 1), for a playlist's entries in the pool."""
        self.base = options.yt_dlp_options(spec, root, state, scratch, self.credentials)
        if (ffmpeg := programs.location()) is not None:
            self.base["ffmpeg_location"] = ffmpeg  # the one the program wall admits, not a search of PATH
        self.retries = spec.options.retries
        self._sites: frozenset[str] | None = None
        self._keys: dict[str, str] = {}

    def _key(self, url: str) -> str:
        """The key of the extractor yt-dlp picks for ``url``, matched without fetching anything."""
        if url not in self._keys:
            from yt_dlp.extractor import gen_extractor_classes  # noqa: PLC0415 - imported late, as in run()

            found = yt_dlp_key(((str(ie.ie_key()), ie) for ie in gen_extractor_classes()), url)
            if found is None:
                raise LookupError(f"no yt-dlp extractor for {url}")  # its generic extractor takes any URL
            self._keys[url] = found
        return self._keys[url]

    def knows(self, site: str) -> bool:
        from yt_dlp.extractor import gen_extractor_classes  # noqa: PLC0415 - imported late, as in run()

        return any(str(ie.ie_key()).lower() == site.lower() for ie in gen_extractor_classes())

    def sites(self) -> frozenset[str]:
        """The extractor keys (lower case) that get the credentials."""
        if self._sites is None:
            self._sites = frozenset(site.lower() for site in options.credential_sites(self.spec, self._key))
        return self._sites

    def credentials_for(self, url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """(YoutubeDL parameters, login) of a run on ``url``. The login (user, password, video password) is handed
        only to the extractor of the credentials' site, whichever URL yt-dlp reaches (see ``scoped_login``). The
        cookies file is loaded only when ``url`` itself is of that site: yt-dlp keeps one cookie jar for all the
        extractors of a run, which sends each cookie to the domain the cookies file names, whoever asks."""
        login = options.yt_dlp_login(self.credentials)
        cookies = self.credentials.cookies_file
        if not (login or cookies):
            return {}, {}
        own_site = self._key(url).lower() in self.sites()
        return ({"cookiefile": str(cookies)} if cookies and own_site else {}), login

    def supports(self, url: str) -> bool:
        return True  # its generic extractor tries any page

    def run(self, url: str, sink: Sink) -> None:
        # Imported here: yt-dlp takes half a second to import, and many runs never need it.
        from yt_dlp.utils import DownloadCancelled  # noqa: PLC0415

        direct = _DirectFiles(sink, url)
        record = _Record(sink, url, direct)
        cookies, login = self.credentials_for(url)
        logger = _Logger(sink, url)
        opts = {**self.base, **cookies, "logger": logger, "match_filter": _Admission(sink, url)}
        counter = _ByteCounter(sink, DownloadCancelled)
        opts["progress_hooks"], record.held = [counter], counter.take_held
        # yt-dlp retries fragments and downloads, but not the first request for a page (its extractors' probe): a
        # transient failure before anything was stored is retried here, the whole extraction, with backoff. (After
        # something was stored, yt-dlp's own retries have been spent on the download that failed.)
        with _patched(direct, login, self.sites() if login else frozenset()):
            for attempt in range(self.retries + 1):
                record.stored = False
                prepare = functools.partial(_prepare, record=record, sink=sink, tls=TlsContexts())
                failure = _extract(url, opts, prepare, self._pool(opts, prepare, record, logger, sink))
                if failure is None:
                    return
                reason, message = failure
                if redirect_loop(message) or not self._again(reason, attempt, record.stored, sink):
                    sink.failed(url, reason, message)
                    return
                time.sleep(min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))

    def _pool(
        self, opts: dict[str, Any], prepare: Callable[[Any], None], record: _Record, logger: _Logger, sink: Sink
    ) -> Callable[[Any], Entries | None]:
        """What makes the pool of a playlist's entries for the engine thread's YoutubeDL (None: concurrency 1, the
        entries one after another as yt-dlp takes them)."""
        concurrency = self.spec.options.concurrency

        def pool(ydl: Any) -> Entries | None:
            if concurrency == 1:
                return None
            entries = Entries(
                ydl,
                opts,
                sink,
                prepare,
                lambda error: _failure(error)[0],
                size=concurrency,
                hosts=self.hosts,
                pause=float(self.spec.options.sleep_seconds),
                retries=self.retries,
            )
            record.turn, logger.in_order = entries.turn, entries.in_order
            return entries

        return pool

    def _again(self, reason: str, attempt: int, stored: bool, sink: Sink) -> bool:
        """Whether a failed extraction is tried again: transient, retries left, nothing stored, no limit hit."""
        return reason in TRANSIENT and attempt < self.retries and not stored and not sink.should_stop()


def _quiet_prints(ydl: Any) -> None:
    """yt-dlp renders an info dict's format, thumbnail and subtitle tables at every stage of every video for its
    print templates (``forceprint``, ``print_to_file``), and then prints nothing when there are none, as in every
    worker run: a sixth of its CPU per video of a small playlist. The tables are rendered only for a template."""
    forceprint = ydl._forceprint

    def printed(key: str, info: Any) -> Any:
        params = ydl.params
        forced = key == "video" and any(value for name, value in params.items() if name.startswith("force"))
        if forced or params.get("forceprint", {}).get(key) or params.get("print_to_file", {}).get(key):
            return forceprint(key, info)
        return info  # what the caller reads of it only when a force option is on (above)

    ydl._forceprint = printed


KEYED_LOOKUPS = 8
"""URLs longer than ALWAYS_KEYED_LENGTH per YoutubeDL given their extractor key from the index; later ones go
through yt-dlp's own search. The index saves compiling the whole table (about 0.3 s of CPU) for the first URLs, but
a URL a site crafted against the substring search costs the index more than a table already compiled (about 12
against 6 ms at 2 KiB), and the entries of a site's playlist are as many and as long as the site makes them."""
ALWAYS_KEYED_LENGTH = 512
"""URLs up to this long are always keyed from the index: a lookup in it costs less than one in yt-dlp's compiled
table whatever the URL holds (0.8 ms for a playlist entry's URL, at most 2-4.5 ms for crafted ones, against yt-dlp's
4-7 ms; docs/benchmarks.md, "Session 13: playlist")."""


def key_from_index(ydl: Any) -> None:
    """The URLs yt-dlp is given without an extractor key get the key of the extractor yt-dlp would pick for them,
    found with the index of the patterns (worker/url_lookup.py) in the YoutubeDL's own table: yt-dlp then checks
    only that extractor's pattern instead of compiling and trying its whole table. Every URL up to
    ALWAYS_KEYED_LENGTH, the first KEYED_LOOKUPS longer ones."""
    extract_info = ydl.extract_info
    budget = itertools.count()

    def keyed(
        url: Any,
        download: bool = True,
        ie_key: str | None = None,
        extra_info: Any = None,
        process: bool = True,
        force_generic_extractor: bool = False,
    ) -> Any:
        if not ie_key and not force_generic_extractor and isinstance(url, str) and _keyed(url, budget):
            ie_key = yt_dlp_key(ydl._ies.items(), url)
        return extract_info(url, download, ie_key, extra_info, process, force_generic_extractor)

    ydl.extract_info = keyed


def one_selector_per_spec(ydl: Any) -> None:
    """yt-dlp builds the format selector of its default format spec anew for every video when no `format` is given
    (parsing the spec: about 1 ms an entry of a small playlist), and builds a given `format`'s once and uses it for
    every video. The YoutubeDL here builds each spec's selector once, as it does a given format's."""
    build = ydl.build_format_selector
    built: dict[str, Any] = {}

    def selector(format_spec: str) -> Any:
        if format_spec not in built:
            built[format_spec] = build(format_spec)
        return built[format_spec]

    ydl.build_format_selector = selector


def _keyed(url: str, budget: Iterator[int]) -> bool:
    return len(url) <= ALWAYS_KEYED_LENGTH or next(budget) < KEYED_LOOKUPS


def _prepare(ydl: Any, record: _Record, sink: Sink, tls: TlsContexts) -> None:
    """A YoutubeDL of the run: web schemes only, names placed, direct files through an ItemFile, files reported, the
    run's TLS contexts shared."""
    key_from_index(ydl)
    _web_schemes_only(ydl)
    tls.share(ydl)
    one_selector_per_spec(ydl)
    _quiet_prints(ydl)
    ydl.process_info = record.direct.process_info(ydl, ydl.process_info)
    _place_videos(ydl, sink)  # outermost: names are settled before the direct-file plan is made
    ydl.add_post_processor(_InTurn(record), when="post_process")
    ydl.add_post_processor(record, when="after_move")


def _failure(error: Any) -> tuple[str, str]:
    """(reason, message) of a DownloadError. yt-dlp's retry loop reports a failed download as text only: its
    transport error is the one worker/transport.py kept on the thread that failed (kept on the error, for the
    engine thread to classify a pool thread's failure alike)."""
    cause = getattr(error, "gallery_cause", None) or (error.exc_info[1] if error.exc_info else None)
    error.gallery_cause = cause = cause or transport.last_error()
    message = str(error).removeprefix("ERROR: ").strip()
    return classify(message, error=cause), message


def _extract(
    url: str,
    opts: dict[str, Any],
    prepare: Callable[[Any], None],
    pool: Callable[[Any], Entries | None],
) -> tuple[str, str] | None:
    """One extraction of ``url`` (downloads included): None when it ended (or the run's limit cancelled it,
    recorded by the run), else the failure's (reason, message). A playlist's entries go to ``pool``'s pool when it
    makes one; an entry's failure there is the extraction's, as it would be one entry after another."""
    import yt_dlp  # noqa: PLC0415 - imported by the run only
    from yt_dlp.utils import DownloadCancelled, DownloadError  # noqa: PLC0415

    with yt_dlp.YoutubeDL(opts) as ydl:
        prepare(ydl)
        entries = pool(ydl)
        try:
            try:
                ydl.extract_info(url, download=True)
            finally:
                if entries is not None:
                    entries.close()
            if entries is not None:
                entries.raise_pending()
        except DownloadCancelled:
            return None
        except DownloadError as error:
            return _failure(error)
        except Exception as error:  # a transport error yt-dlp lets through (not a DownloadError)
            if (reason := reason_for_error(error)) is None:
                raise
            return reason, f"{type(error).__name__}: {error}"
    return None
