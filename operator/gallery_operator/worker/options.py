"""Pure builders of engine options from a GalleryDownload spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gallery_operator.api.spec import GalleryDownloadSpec, SiteTokens, rate_bytes
from gallery_operator.workerconfig import GALLERY_DL_ARCHIVE, YT_DLP_ARCHIVE

NAME_SUFFIX = "gallery_operator_suffix"
"""A field of yt-dlp's info dict that the output template ends the name with: empty, or `-<hash>` when another item
holds the name already (set by worker/ytdlp.py)."""


@dataclass(frozen=True)
class Credentials:
    cookies_file: Path | None = None
    username: str | None = None
    password: str | None = None
    tokens: tuple[tuple[str, str], ...] = ()
    """(spec.auth.tokens field, value) of the tokens the pod was given."""

    def engine_tokens(self, engine: str) -> dict[str, str]:
        """The tokens for one engine, under its option names."""
        options = SiteTokens.ENGINE_OPTIONS
        return {options[name][1]: value for name, value in self.tokens if options[name][0] == engine}

    def any(self) -> bool:
        return bool(self.cookies_file or self.password or self.tokens)


def credential_sites(spec: GalleryDownloadSpec, extractor_of: Callable[[str], str]) -> frozenset[str]:
    """The extractors (gallery-dl categories or yt-dlp keys) that get the credentials: `spec.auth.site`, or else the
    extractors of the download's own URLs as ``extractor_of`` matches them, before anything is fetched."""
    if spec.auth is not None and spec.auth.site:
        return frozenset({spec.auth.site})
    return frozenset(extractor_of(url) for url in spec.urls)


def yt_dlp_login(credentials: Credentials) -> dict[str, str]:
    """The YoutubeDL parameters of a login (username, password, videopassword). They are never YoutubeDL parameters
    (every extractor could read those): worker/ytdlp.py hands them to the extractor of the credentials' site only."""
    login: dict[str, str] = {}
    if credentials.username and credentials.password:
        login = {"username": credentials.username, "password": credentials.password}
    return login | credentials.engine_tokens("yt-dlp")


def yt_dlp_items(item_range: str) -> str:
    """yt-dlp's `playlist_items` uses `a-b` / `a:` with inclusive ends; `20-` becomes `20:`."""
    return ",".join(part[:-1] + ":" if part.endswith("-") else part for part in item_range.split(","))


def _gallery_dl_credentials(credentials: Credentials) -> dict[str, Any]:
    """The options gallery-dl reads a site's credentials from, for the extractor categories they are scoped to."""
    scoped: dict[str, Any] = credentials.engine_tokens("gallery-dl")
    if credentials.cookies_file:
        scoped["cookies"] = str(credentials.cookies_file)
    if credentials.username and credentials.password:
        scoped["username"] = credentials.username
        scoped["password"] = credentials.password
    return scoped


ARCHIVE_SETTINGS: dict[str, Any] = {
    "archive-pragma": ["locking_mode=EXCLUSIVE", "synchronous=OFF", "journal_mode=PERSIST"],
    "archive-reuse": True,
}
"""How gallery-dl keeps its download archive (SQLite). No fsync per archived item (it cost a fifth of the time on
small files): a killed pod loses nothing, and after a crash of the whole node the worst case is downloading some
items again. A persistent rollback journal instead of one created and deleted per item: on a disk with slow metadata
operations that cost over a millisecond per item. (WAL would be cheaper still, but needs shared memory, which
network filesystems behind PVCs lack, and keeps recent items out of the file that S3 targets upload.) The file is
locked once for the whole run: otherwise each check and each entry took and gave back its locks and read the
journal's header again to see whether a crash left it, about 40 system calls an item (70 us of 1.5 ms on small
files). Hence one connection per process, shared by every job of the run (`archive-reuse`): a child job (an album's
sub-album) opening a second one would wait for its parent's lock until it gave up."""


def gallery_dl_config(
    spec: GalleryDownloadSpec,
    root: Path,
    state: Path,
    scratch: Path,
    credentials: Credentials,
    sites: frozenset[str] = frozenset(),
) -> dict[tuple[str, ...], Any]:
    """gallery-dl configuration as (path..., key) -> value. Credentials are options of the extractor categories in
    ``sites`` only (`extractor.<category>.cookies` ...), never of every extractor (`extractor.cookies`): an extractor
    that a gallery links to reads none of them."""
    opts = spec.options
    extractor: dict[str, Any] = {
        "base-directory": str(root),
        "archive": str(state / GALLERY_DL_ARCHIVE),
        **ARCHIVE_SETTINGS,
        "retries": opts.retries,
        "timeout": float(opts.timeout_seconds),
        "path-restrict": "auto",
        "path-remove": "\\u0000-\\u001f\\u007f",
        "skip": True,
        "user-agent": "gallery-operator (+https://gallery-operator.dev)",
    }
    if opts.sleep_seconds:
        extractor["sleep"] = opts.sleep_seconds
    if opts.item_range:
        extractor["image-range"] = opts.item_range  # gallery-dl reads the same inclusive `1-3,8,20-` syntax
    if opts.stop_after_known:
        extractor["skip"] = f"abort:{opts.stop_after_known}"  # N consecutive archived items end the extractor
    scoped = _gallery_dl_credentials(credentials)
    chosen = opts.gallery_dl.engine_options()
    if "user-agent" in chosen:
        # A plain header, set as written: gallery-dl's own `user-agent` option reads `@...` and `browser` as a
        # browser to start (a command line run through `webbrowser`) and `+...` as a preset.
        extractor["headers"] = {"User-Agent": chosen.pop("user-agent")}
    extractor |= chosen
    config: dict[tuple[str, ...], Any] = {("extractor", k): v for k, v in extractor.items()}
    for site in sorted(sites) if scoped else ():
        config |= {("extractor", site, k): v for k, v in scoped.items()}
    # Direct links and generic pages would land under "<host:port>/<path>": keep them flat, named as served.
    for flat in ("directlink", "generic"):
        config[("extractor", flat, "directory")] = []
        config[("extractor", flat, "filename")] = "{filename}.{extension}"
    config[("downloader", "retries")] = opts.retries
    config[("downloader", "timeout")] = float(opts.timeout_seconds)
    config[("downloader", "http", "chunk-size")] = 1024 * 1024
    # No progress lines (the output is null): the plain receive loop, without two clock reads a chunk for them.
    config[("downloader", "progress")] = None
    if opts.rate_limit and opts.concurrency == 1:  # else the host's rate, shared by the transfers (worker/hosts.py)
        config[("downloader", "rate")] = rate_bytes(opts.rate_limit)
    config[("output", "mode")] = "null"
    config[("output", "progress")] = False
    config[("output", "log")] = {"level": "info", "format": "{name}: {message}"}
    return config


def yt_dlp_options(
    spec: GalleryDownloadSpec, root: Path, state: Path, scratch: Path, credentials: Credentials
) -> dict[str, Any]:
    """YoutubeDL parameters."""
    opts = spec.options
    params: dict[str, Any] = {
        "paths": {"home": str(root), "temp": str(scratch / "yt-dlp")},
        # The suffix is empty unless another item holds the name (see worker/ytdlp.py: _place_videos).
        "outtmpl": {"default": f"%(title).80B [%(id)s]%({NAME_SUFFIX}|)s.%(ext)s"},
        "restrictfilenames": True,
        "trim_file_name": 160,  # ASCII names (restrictfilenames) within the worker's MAX_NAME_BYTES, with room
        "windowsfilenames": True,
        "download_archive": str(state / YT_DLP_ARCHIVE),
        "retries": opts.retries,
        "fragment_retries": opts.retries,
        "skip_unavailable_fragments": False,  # a stream with a hole is a failed download, not a stored item
        "extractor_retries": opts.retries,
        "socket_timeout": opts.timeout_seconds,
        "noprogress": True,
        "buffersize": 1024 * 1024,  # read in 1 MiB blocks, as gallery-dl does: the byte limit acts per block
        "noresizebuffer": True,
        "quiet": True,
        "no_warnings": True,
        "noplaylist": False,
        "cachedir": str(scratch / "yt-dlp-cache"),
        "writeinfojson": False,  # the worker writes the sidecar itself, without credentials (worker/redact.py)
        "writethumbnail": opts.write_thumbnail,
        "writesubtitles": opts.write_subtitles,
        "http_headers": {"User-Agent": "gallery-operator (+https://gallery-operator.dev)"},
        # yt-dlp's own downloaders only: they connect through this process, where the egress guard sits. (A stream
        # they cannot take would go to ffmpeg, which the worker refuses to start on a URL: see worker/programs.py.)
        "external_downloader": {"default": "native"},
        "hls_prefer_native": True,
    }
    if opts.format:
        params["format"] = opts.format
    if opts.item_range:
        params["playlist_items"] = yt_dlp_items(opts.item_range)
    if opts.rate_limit:
        params["ratelimit"] = rate_bytes(opts.rate_limit)
    if opts.sleep_seconds:
        params["sleep_interval"] = opts.sleep_seconds
    if spec.limits.max_items:
        params["max_downloads"] = spec.limits.max_items
    if opts.stop_after_known:
        params["break_on_existing"] = True  # yt-dlp has no count: the first archived entry ends the URL's listing
    params |= opts.yt_dlp.engine_options()  # credentials: none here, see yt_dlp_login
    return params
