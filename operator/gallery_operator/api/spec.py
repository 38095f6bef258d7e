"""The GalleryDownload spec: the single source of truth for the CRD schema and the operator's parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

# Kubernetes quantities ("512Mi", "1.5G", "100m"); the schema pattern is the apimachinery grammar, simplified, with
# bounded digits (a 400-digit number is no quantity anyone means). Byte sizes have no milli suffix.
QUANTITY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,6})?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$"
BYTES_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,6})?(k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$"
_QUANTITY_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
}
# A DNS-1123 subdomain (Secret, PVC names) and label (container resources keys are checked by the API server).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
ITEM_RANGE_PATTERN = r"^[0-9]+(-[0-9]*)?(,[0-9]+(-[0-9]*)?)*$"
RATE_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,6})?[kKmMgG]?$"
LARGEST_INTEGER = 2**63 - 1024
"""The largest bound an integer field may have: every integer field without a smaller bound has this one. The API
server holds a schema's maximum as a float64 and compares an integer with it as int64(maximum): int64's own maximum
(2**63 - 1) rounds up to 2**63 as a float64, which overflows to int64's minimum, and then no value at all passes.
2**63 - 1024 is the largest float64 below 2**63, so it converts back exactly."""
RATE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Folders and key prefixes: no segment starts with a dot, so no `.`, `..` or hidden folder (`subPath: "."` would
# mount the whole claim, and deletionPolicy Delete would then wipe every download in it).
RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$"
MAX_URLS_LENGTH = 32_768
"""Characters of all URLs together: the worker's configuration must fit one environment variable (128 KiB)."""


@dataclass(frozen=True)
class Presence:
    """Two optional fields that must be set together, or exactly one of them. One declaration gives both the
    CRD's CEL rule (checked at admission) and the same check when the operator parses a spec."""

    first: str
    second: str
    exactly_one: bool
    message: str

    def rule(self) -> dict[str, str]:
        relation = "!=" if self.exactly_one else "=="
        return {
            "rule": f"has(self.{to_camel(self.first)}) {relation} has(self.{to_camel(self.second)})",
            "message": self.message,
        }

    def holds(self, model: BaseModel) -> bool:
        same = (getattr(model, self.first) is None) == (getattr(model, self.second) is None)
        return not same if self.exactly_one else same


def _presence_rules(schema: dict[str, Any], model: type[BaseModel]) -> None:
    presence = getattr(model, "PRESENCE", None)
    if presence is not None:
        schema["x-kubernetes-validations"] = [presence.rule()]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (the CRD prunes them anyway). A
    field's docstring is its description in the CRD: api/crd.py reads it from the source (pydantic's
    use_attribute_docstrings would parse the source in every process that imports the models, the worker's start
    included)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=_presence_rules,
    )
    PRESENCE: ClassVar[Presence | None] = None

    @model_validator(mode="after")
    def _check_presence(self) -> Self:
        if self.PRESENCE is not None and not self.PRESENCE.holds(self):
            raise ValueError(self.PRESENCE.message)
        return self


class SecretKeyRef(ApiModel):
    """A key of a Secret in the download's namespace."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)]
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253)]
    """Key within the Secret."""


class PvcTemplate(ApiModel):
    """A PersistentVolumeClaim the operator creates for this download, named `<download>-data`."""

    size: Annotated[str, Field(pattern=BYTES_PATTERN, max_length=24)]
    """Requested storage, as a Kubernetes quantity (for example `10Gi`)."""

    @field_validator("size")
    @classmethod
    def _at_least_a_byte(cls, value: str) -> str:
        return _positive_bytes(value)

    storage_class_name: Annotated[str | None, Field(max_length=253)] = None
    """StorageClass of the claim; the cluster default when omitted."""
    access_modes: Annotated[
        list[Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]], Field(min_length=1, max_length=3)
    ] = ["ReadWriteOnce"]
    """Access modes of the claim."""


class PvcTarget(ApiModel):
    """Files go to a PersistentVolumeClaim: an existing one (`claimName`) or one created from `template`."""

    PRESENCE = Presence(
        "claim_name", "template", True, "set exactly one of target.pvc.claimName and target.pvc.template"
    )

    claim_name: Annotated[str | None, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)] = None
    """An existing claim in the download's namespace."""
    template: PvcTemplate | None = None
    """A claim the operator creates; kept or deleted with the download according to `deletionPolicy`."""
    sub_path: Annotated[str | None, Field(max_length=512, pattern=RELATIVE_PATH_PATTERN)] = None
    """Folder inside the claim for this download; defaults to the download's name."""


class S3Credentials(ApiModel):
    """A Secret holding the S3 access key pair."""

    name: Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)]
    """Name of the Secret."""
    access_key_id_key: Annotated[str, Field(min_length=1)] = "AWS_ACCESS_KEY_ID"
    """Key of the access key id in the Secret."""
    secret_access_key_key: Annotated[str, Field(min_length=1)] = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a key name
    """Key of the secret access key in the Secret."""


class S3Target(ApiModel):
    """Files go to an S3 bucket, uploaded while the download runs."""

    bucket: Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")]
    """Bucket name."""
    prefix: Annotated[str | None, Field(max_length=512, pattern=RELATIVE_PATH_PATTERN)] = None
    """Key prefix for this download, under the download's namespace: objects go to `<namespace>/<prefix>/`;
    without it, to `<namespace>/<name>/`. No download can name keys of another namespace."""
    endpoint: Annotated[str | None, Field(max_length=2048, pattern=URL_PATTERN)] = None
    """Endpoint URL of an S3-compatible service; AWS when omitted."""
    region: Annotated[str | None, Field(max_length=64)] = None
    """Region of the bucket."""
    force_path_style: bool = False
    """Address the bucket in the path (`endpoint/bucket/key`) rather than the host name."""
    credentials_secret: S3Credentials | None = None
    """Access keys; without them the worker uses its ambient identity (for example IRSA)."""


class Target(ApiModel):
    """Where the files land: exactly one of `pvc` or `s3`."""

    PRESENCE = Presence("pvc", "s3", True, "set exactly one of target.pvc and target.s3")

    pvc: PvcTarget | None = None
    """A PersistentVolumeClaim."""
    s3: S3Target | None = None
    """An S3 bucket."""


class SiteTokens(ApiModel):
    """Tokens for sites that take one rather than cookies or a password, each from a Secret key. The worker passes
    each to the engine option of the same meaning; none is ever written to status, logs, sidecars or the catalogue."""

    ENGINE_OPTIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "api_key": ("gallery-dl", "api-key"),
        "api_secret": ("gallery-dl", "api-secret"),
        "access_token": ("gallery-dl", "access-token"),
        "access_token_secret": ("gallery-dl", "access-token-secret"),
        "refresh_token": ("gallery-dl", "refresh-token"),
        "client_id": ("gallery-dl", "client-id"),
        "client_secret": ("gallery-dl", "client-secret"),
        "video_password": ("yt-dlp", "videopassword"),
    }
    """Field -> (engine, option)."""

    api_key: SecretKeyRef | None = None
    """gallery-dl's `api-key` (Danbooru, Flickr, Tumblr and others)."""
    api_secret: SecretKeyRef | None = None
    """gallery-dl's `api-secret`."""
    access_token: SecretKeyRef | None = None
    """gallery-dl's `access-token` (Mastodon, Flickr, Tumblr and others)."""
    access_token_secret: SecretKeyRef | None = None
    """gallery-dl's `access-token-secret`."""
    refresh_token: SecretKeyRef | None = None
    """gallery-dl's `refresh-token` (Pixiv, DeviantArt, Reddit and others)."""
    client_id: SecretKeyRef | None = None
    """gallery-dl's `client-id`."""
    client_secret: SecretKeyRef | None = None
    """gallery-dl's `client-secret`."""
    video_password: SecretKeyRef | None = None
    """yt-dlp's `videopassword`, for password-protected videos (Vimeo and others)."""


SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class Auth(ApiModel):
    """Credentials for one remote site, read by the worker from Secrets; never copied into status or logs. Only the
    extractor of that site gets them: a gallery on it that links to another site's gallery never hands them on."""

    PRESENCE = Presence(
        "username_secret", "password_secret", False, "auth.usernameSecret and auth.passwordSecret go together"
    )

    site: Annotated[str | None, Field(min_length=1, max_length=64, pattern=SITE_PATTERN)] = None
    """The site every credential here is for: a gallery-dl extractor category (`reddit`, `deviantart`, `directlink`,
    `generic`) or a yt-dlp extractor key (`Vimeo`, `Generic`; compared without regard to case). gallery-dl gets
    them as options of that category only, yt-dlp hands the login and video password only to that extractor and
    loads the cookies only for URLs of it (a cookie goes only to the domain the cookies file names). Unset: the
    extractors of the download's own URLs, as matched before anything is fetched; never an extractor that remote
    content leads to."""

    cookies_secret: SecretKeyRef | None = None
    """A Netscape cookies.txt file stored in a Secret key."""
    username_secret: SecretKeyRef | None = None
    """The user name for sites that log in."""
    password_secret: SecretKeyRef | None = None
    """The password for sites that log in."""
    tokens: SiteTokens | None = None
    """Site tokens (API keys, OAuth tokens, video passwords), each from a Secret key: nobody puts a token in a spec."""


# Values an engine option may take from a spec: numbers, booleans, short printable strings, lists of short words.
# Nothing nested, nothing that names a path, a program, a host or a credential (see docs/security.md).
URLS_TOO_LONG = f"the URLs together may be at most {MAX_URLS_LENGTH} characters; split them over several downloads"
PRINTABLE_PATTERN = r"^[ -~]*$"
WORD_PATTERN = r"^[A-Za-z0-9_.:+*~-]+$"
MAX_CONCURRENCY = 16
"""The most item transfers one worker runs at once (options.concurrency)."""
Seconds = Annotated[float, Field(ge=0, le=3600)]
Word = Annotated[str, Field(min_length=1, max_length=64, pattern=WORD_PATTERN)]
Words = Annotated[list[Word], Field(max_length=32)]


class EngineOptions(BaseModel):
    """An allowlist of engine options: each field is an option known to be safe, under the engine's own name, with
    a typed value. Unknown keys are refused (kubectl's strict field validation names them at admission; the API
    server prunes them for other clients) and refused again by the worker before an engine is configured."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    def engine_options(self) -> dict[str, Any]:
        """The options that are set, under the engine's names."""
        return self.model_dump(by_alias=True, exclude_none=True)


class GalleryDlOptions(EngineOptions):
    """gallery-dl extractor options that a spec may set (see gallery-dl's configuration documentation)."""

    sleep_request: Annotated[Seconds | None, Field(alias="sleep-request")] = None
    """Seconds to wait between HTTP requests of an extractor."""
    sleep_extractor: Annotated[Seconds | None, Field(alias="sleep-extractor")] = None
    """Seconds to wait before an extractor starts."""
    sleep_429: Annotated[Seconds | None, Field(alias="sleep-429")] = None
    """Seconds to wait after an HTTP 429 (Too Many Requests) answer."""
    sleep_retries: Annotated[Seconds | None, Field(alias="sleep-retries")] = None
    """Seconds to wait between retries of a failed request."""
    retry_codes: Annotated[
        list[Annotated[int, Field(ge=400, le=599)]] | None, Field(alias="retry-codes", max_length=32)
    ] = None
    """More HTTP status codes (400-599) to retry."""
    include: Words | None = None
    """Which parts of a user profile to take (extractor-specific names such as `gallery`, `scraps`, `posts`)."""
    file_unique: Annotated[bool | None, Field(alias="file-unique")] = None
    """Skip items whose URL was already seen in this run."""
    videos: bool | None = None
    """Take videos where an extractor can also skip them."""
    user_agent: Annotated[
        str | None, Field(alias="user-agent", min_length=1, max_length=256, pattern=PRINTABLE_PATTERN)
    ] = None
    """User-Agent header of requests."""
    referer: bool | None = None
    """Send a Referer header with downloads."""
    fallback: bool | None = None
    """Try an extractor's fallback URLs when a download fails."""
    mtime: bool | None = None
    """Set a file's modification time from the server's Last-Modified header."""
    adjust_extensions: Annotated[bool | None, Field(alias="adjust-extensions")] = None
    """Correct file extensions from the file's content."""
    chapter_reverse: Annotated[bool | None, Field(alias="chapter-reverse")] = None
    """Take the chapters of a manga in reverse order."""
    page_reverse: Annotated[bool | None, Field(alias="page-reverse")] = None
    """Take the pages of a chapter in reverse order."""


class YtDlpOptions(EngineOptions):
    """yt-dlp options that a spec may set (the YoutubeDL parameters of the same names)."""

    concurrent_fragment_downloads: Annotated[int | None, Field(ge=1, le=16)] = None
    """Fragments of an HLS or DASH stream downloaded at once."""
    format_sort: Words | None = None
    """Format sorting fields, for example `[res:720, ext]`."""
    format_sort_force: bool | None = None
    """Let format_sort override the extractor's own preferences."""
    merge_output_format: Annotated[str | None, Field(max_length=64, pattern=r"^[a-z0-9]+(/[a-z0-9]+)*$")] = None
    """Container of merged formats, for example `mkv` or `mp4/mkv`."""
    prefer_free_formats: bool | None = None
    """Prefer free containers at the same quality."""
    check_formats: bool | None = None
    """Test that formats can be downloaded before choosing one."""
    subtitleslangs: Words | None = None
    """Subtitle languages to take with writeSubtitles, for example `[en, de]` (regular expressions allowed)."""
    writeautomaticsub: bool | None = None
    """Also take automatically generated subtitles."""
    playlistreverse: bool | None = None
    """Take playlist entries in reverse order."""
    playlistrandom: bool | None = None
    """Take playlist entries in random order."""
    lazy_playlist: bool | None = None
    """Process playlist entries as they arrive."""
    noplaylist: bool | None = None
    """Take only the video when a URL names a video and a playlist."""
    min_filesize: Annotated[int | None, Field(ge=0, le=LARGEST_INTEGER)] = None
    """Skip formats smaller than this many bytes."""
    max_filesize: Annotated[int | None, Field(ge=0, le=LARGEST_INTEGER)] = None
    """Skip formats larger than this many bytes."""
    http_chunk_size: Annotated[int | None, Field(ge=1024, le=1024**3)] = None
    """Download in ranges of this many bytes (helps with servers that throttle long transfers)."""
    throttledratelimit: Annotated[int | None, Field(ge=1, le=LARGEST_INTEGER)] = None
    """Bytes per second below which a download is considered throttled and restarted."""
    skip_unavailable_fragments: bool | None = None
    """Skip fragments that cannot be fetched instead of failing the stream."""
    sleep_interval_requests: Seconds | None = None
    """Seconds to wait between requests while extracting."""
    sleep_interval_subtitles: Seconds | None = None
    """Seconds to wait before each subtitle download."""
    max_sleep_interval: Seconds | None = None
    """Upper bound of a random wait between items (with sleepSeconds as the lower bound)."""
    age_limit: Annotated[int | None, Field(ge=0, le=99)] = None
    """Skip videos unsuitable for this age."""


INTERACTIVE_FORMAT = "format '-' (interactive format selection) is not available in a worker"


class Options(ApiModel):
    """Common engine options as typed fields, and an allowlist of each engine's own options."""

    format: Annotated[
        str | None,
        Field(
            max_length=256,
            json_schema_extra={"x-kubernetes-validations": [{"rule": "self != '-'", "message": INTERACTIVE_FORMAT}]},
        ),
    ] = None
    """yt-dlp format selector, for example `bestvideo[height<=720]+bestaudio/best`."""
    item_range: Annotated[str | None, Field(max_length=256, pattern=ITEM_RANGE_PATTERN)] = None
    """Which items to take, 1-based and inclusive: `1-10`, `3`, `1-5,8,20-`."""
    rate_limit: Annotated[
        str | None,
        Field(
            pattern=RATE_PATTERN,
            max_length=23,
            json_schema_extra={
                "x-kubernetes-validations": [
                    {"rule": "self.matches('[1-9]')", "message": "rateLimit must be more than 0 (omit it for no limit)"}
                ]
            },
        ),
    ] = None
    """Maximum download rate in bytes per second, at least 1, with an optional k/M/G suffix: `500k`, `2M`."""
    retries: Annotated[int, Field(ge=0, le=20)] = 4
    """Retries per request after the first attempt, with backoff."""
    timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    """Timeout of each network request."""
    low_speed_limit: Annotated[int, Field(ge=0, le=1024**3)] = 1024
    """Bytes per second below which a transfer counts as stalled (0: no limit); see lowSpeedSeconds."""
    low_speed_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    """A transfer slower than lowSpeedLimit for this many seconds is aborted: the item fails with reason Timeout
    (timeoutSeconds only bounds the gap between two bytes, which a trickling server never reaches)."""
    sleep_seconds: Annotated[float, Field(ge=0, le=60)] = 0
    """Pause between items, to be polite to the remote site (between the starts of two items from one host, whatever
    the concurrency)."""
    concurrency: Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)] = 6
    """Items of a gallery-dl gallery, and entries of a yt-dlp playlist, transferred at once by the worker (1 to 16; 1:
    one after another, as the engines do). The default, 6, is as many connections to one host as a web browser
    opens. Extraction stays one engine run; sleepSeconds, rateLimit and a 429 or 503 with Retry-After apply to each
    host as a whole, shared by all transfers."""
    stop_after_known: Annotated[int | None, Field(ge=1, le=100_000)] = None
    """Stop after this many consecutive items that earlier runs stored (gallery-dl's `skip: abort:N` with its
    archive; yt-dlp stops at the first one, its break-on-existing with its download archive): an incremental run
    over a large gallery fetches only the first page or two. Subscriptions set it from their `stopAfterKnown`."""
    write_metadata: bool = False
    """Write a `.json` metadata sidecar next to each file."""
    write_thumbnail: bool = False
    """Also save thumbnails (yt-dlp)."""
    write_subtitles: bool = False
    """Also save subtitles (yt-dlp)."""
    gallery_dl: GalleryDlOptions = GalleryDlOptions()
    """More gallery-dl options, from an allowlist of options known to be safe, each with a typed value,
    for example `sleep-request: 2`. Options that run commands, read or write files, change where connections go or
    carry credentials do not exist here."""
    yt_dlp: YtDlpOptions = YtDlpOptions()
    """More yt-dlp options, from an allowlist of options known to be safe, each with a typed value,
    for example `concurrent_fragment_downloads: 4`. Options that run commands, read or write files, change where
    connections go or carry credentials do not exist here."""

    @field_validator("format")
    @classmethod
    def _not_interactive(cls, value: str | None) -> str | None:
        if value == "-":  # yt-dlp would read a format from the worker's standard input for every video
            raise ValueError(INTERACTIVE_FORMAT)
        return value

    @field_validator("rate_limit")
    @classmethod
    def _at_least_a_byte_per_second(cls, value: str | None) -> str | None:
        if value is not None and rate_bytes(value) < 1:
            raise ValueError(f"{value!r} is less than one byte per second (omit it for no limit)")
        return value


class Limits(ApiModel):
    """Hard limits; the worker stops cleanly when one is reached and reports LimitExceeded."""

    max_items: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    """Stop after this many items."""
    max_bytes: Annotated[str | None, Field(pattern=BYTES_PATTERN, max_length=24)] = None
    """Stop once this many bytes are stored (a quantity of at least one byte: `5Gi`, `500M`)."""
    active_deadline_seconds: Annotated[int | None, Field(ge=1, le=7 * 24 * 3600)] = None
    """Wall-clock limit for each run (the Job's activeDeadlineSeconds); the operator's limit (one day unless its
    platform team set another) applies when this is unset, and caps it."""
    max_item_seconds: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 6 * 3600
    """Longest one item may take to download: a stream that never ends (a live radio, an endless body) stops the run
    here, like the other limits (reason LimitExceeded), and is not stored. Default 6 hours."""

    @field_validator("max_bytes")
    @classmethod
    def _at_least_a_byte(cls, value: str | None) -> str | None:
        return _positive_bytes(value) if value is not None else None


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=24)]


class Resources(ApiModel):
    """Amounts of the resources a worker container may ask for."""

    cpu: Quantity | None = None
    """CPU, for example `250m` or `1`."""
    memory: Quantity | None = None
    """Memory, for example `256Mi`."""
    ephemeral_storage: Annotated[Quantity | None, Field(alias="ephemeral-storage")] = None
    """Local scratch space, for example `1Gi`."""

    def amounts(self) -> dict[str, str]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ResourceRequirements(ApiModel):
    """Compute resources of the worker container."""

    requests: Resources = Resources()
    """Minimum resources, for example `cpu: 100m`, `memory: 128Mi`."""
    limits: Resources = Resources()
    """Maximum resources."""


class GalleryDownloadSpec(ApiModel):
    """What to download, with which engine, to where, and within which limits."""

    urls: Annotated[
        list[Annotated[str, Field(max_length=2048, pattern=URL_PATTERN)]],
        Field(
            min_length=1,
            max_length=100,
            json_schema_extra={
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(u, u.startsWith('http://') || u.startsWith('https://'))",
                        "message": "every URL must start with http:// or https://",
                    },
                    {"rule": f"self.map(u, size(u)).sum() <= {MAX_URLS_LENGTH}", "message": URLS_TOO_LONG},
                ]
            },
        ),
    ]
    """Pages, galleries, playlists or direct media links (http or https)."""
    engine: Literal["auto", "gallery-dl", "yt-dlp"] = "auto"
    """Downloader: `auto` picks the engine that supports each URL."""
    target: Target
    """Where the files land."""
    auth: Auth | None = None
    """Credentials for the remote site."""
    options: Options = Options()
    """Engine options."""
    limits: Limits = Limits()
    """Hard limits of a run."""
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 2
    """Retries of a failed worker pod (the Job's backoffLimit); retried pods skip what is already stored."""
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    """Higher starts first when downloads wait for a free slot."""
    suspend: bool = False
    """Pause: a running worker is stopped, nothing new starts; set back to false to resume."""
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    """On deletion of the download: `Retain` keeps the downloaded files, `Delete` removes them."""
    resources: ResourceRequirements = ResourceRequirements()
    """Resources of the worker container; the operator's defaults apply when empty."""

    @field_validator("urls")
    @classmethod
    def _distinct(cls, urls: list[str]) -> list[str]:
        if len(set(urls)) != len(urls):
            raise ValueError("urls must not repeat")
        if sum(len(u) for u in urls) > MAX_URLS_LENGTH:
            raise ValueError(URLS_TOO_LONG)
        return urls


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity of bytes (`5Gi`, `1.5G`, `100M`), exactly (no float rounding)."""
    for suffix in sorted(_QUANTITY_UNITS, key=len, reverse=True):
        if suffix and quantity.endswith(suffix):
            return int(Decimal(quantity[: -len(suffix)]) * _QUANTITY_UNITS[suffix])
    return int(Decimal(quantity))


def quantity_value(quantity: str) -> Decimal:
    """Any quantity this schema admits as a number (`250m` is 0.25), for comparing requests with limits."""
    if quantity.endswith("m"):
        return Decimal(quantity[:-1]) / 1000
    return Decimal(quantity_bytes(quantity)) if quantity[-1:].isalpha() else Decimal(quantity)


def rate_bytes(rate: str) -> int:
    """A rateLimit in bytes per second, exactly (no float, so no overflow): `500k` -> 512000."""
    unit = rate[-1].lower() if rate[-1:].isalpha() else ""
    return int(Decimal(rate.removesuffix(rate[-1]) if unit else rate) * RATE_UNITS[unit])


def _positive_bytes(value: str) -> str:
    if quantity_bytes(value) < 1:
        raise ValueError(f"{value!r} is less than one byte")
    return value


def parse_spec(raw: Mapping[str, Any]) -> GalleryDownloadSpec:
    """Parse a spec as stored in the API; raises pydantic.ValidationError naming each bad field."""
    return GalleryDownloadSpec.model_validate(raw)


def describe_validation(error: ValidationError, prefix: str = "spec.") -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"])
        parts.append(f"{prefix}{where}: {problem['msg']}" if where else problem["msg"])
    return "; ".join(parts)
