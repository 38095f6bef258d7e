"""The GalleryDownload spec: the single source of truth for the CRD schema and the operator's parsing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

# Kubernetes quantities ("512Mi", "1.5G", "100m"); the schema pattern is the apimachinery grammar, simplified.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# A DNS-1123 subdomain (Secret, PVC names) and label (container resources keys are checked by the API server).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
ITEM_RANGE_PATTERN = r"^[0-9]+(-[0-9]*)?(,[0-9]+(-[0-9]*)?)*$"
RATE_PATTERN = r"^[0-9]+(\.[0-9]+)?[kKmMgG]?$"
RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"

# Engine options a passthrough may not set: they run commands, read or write arbitrary paths, or undo the
# worker's safety (where files land, which hosts are reached, which credentials are used).
FORBIDDEN_PASSTHROUGH_KEYS = (
    "exec",
    "postprocessors",
    "postprocessor_args",
    "exec_cmd",
    "external_downloader",
    "external_downloader_args",
    "outtmpl",
    "paths",
    "base-directory",
    "directory",
    "filename",
    "download_archive",
    "archive",
    "cookiefile",
    "cookies",
    "cookiesfrombrowser",
    "usenetrc",
    "netrc_location",
    "netrc_cmd",
    "username",
    "password",
    "proxy",
    "source_address",
    "batchfile",
    "load_info_filename",
    "config",
    "plugin_dirs",
    "extractor.module-sources",
    "output",
)


_GUARD: dict[str, Any] = {
    "x-kubernetes-validations": [
        {
            "rule": "self.all(k, !(k in " + repr(list(FORBIDDEN_PASSTHROUGH_KEYS)).replace("'", '"') + "))",
            "message": "options that run commands, move files or carry credentials are not allowed here",
        }
    ]
}


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
    """camelCase on the wire, snake_case in Python; unknown fields are errors (the CRD prunes them anyway)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
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

    size: Annotated[str, Field(pattern=QUANTITY_PATTERN)]
    """Requested storage, as a Kubernetes quantity (for example `10Gi`)."""
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
    """Key prefix for this download; defaults to `<namespace>/<name>`."""
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


class Auth(ApiModel):
    """Credentials for the remote site, read by the worker from Secrets; never copied into status or logs."""

    PRESENCE = Presence(
        "username_secret", "password_secret", False, "auth.usernameSecret and auth.passwordSecret go together"
    )

    cookies_secret: SecretKeyRef | None = None
    """A Netscape cookies.txt file stored in a Secret key."""
    username_secret: SecretKeyRef | None = None
    """The user name for sites that log in."""
    password_secret: SecretKeyRef | None = None
    """The password for sites that log in."""


# Passthrough values are strings read as YAML ("4", "true", "[en, de]"): typed values let the API server
# check the keys with CEL, which cannot see into untyped ones.
PassthroughValue = Annotated[str, Field(max_length=4096)]


class Options(ApiModel):
    """Common engine options as typed fields; anything else through the guarded passthrough maps."""

    format: Annotated[str | None, Field(max_length=256)] = None
    """yt-dlp format selector, for example `bestvideo[height<=720]+bestaudio/best`."""
    item_range: Annotated[str | None, Field(max_length=256, pattern=ITEM_RANGE_PATTERN)] = None
    """Which items to take, 1-based and inclusive: `1-10`, `3`, `1-5,8,20-`."""
    rate_limit: Annotated[str | None, Field(pattern=RATE_PATTERN)] = None
    """Maximum download rate in bytes per second, with an optional k/M/G suffix: `500k`, `2M`."""
    retries: Annotated[int, Field(ge=0, le=20)] = 4
    """Retries per request after the first attempt, with backoff."""
    timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    """Timeout of each network request."""
    sleep_seconds: Annotated[float, Field(ge=0, le=60)] = 0
    """Pause between items, to be polite to the remote site."""
    write_metadata: bool = False
    """Write a `.json` metadata sidecar next to each file."""
    write_thumbnail: bool = False
    """Also save thumbnails (yt-dlp)."""
    write_subtitles: bool = False
    """Also save subtitles (yt-dlp)."""
    gallery_dl: Annotated[dict[str, PassthroughValue], Field(max_length=50, json_schema_extra=_GUARD)] = {}
    """More gallery-dl options, values as YAML strings (`sleep-request: "2"`); options that run commands,
    move files or carry credentials are refused."""
    yt_dlp: Annotated[dict[str, PassthroughValue], Field(max_length=50, json_schema_extra=_GUARD)] = {}
    """More yt-dlp options, values as YAML strings (`concurrent_fragment_downloads: "4"`); options that run
    commands, move files or carry credentials are refused."""

    @field_validator("gallery_dl", "yt_dlp")
    @classmethod
    def _guard_passthrough(cls, value: dict[str, PassthroughValue]) -> dict[str, PassthroughValue]:
        refused = sorted(k for k in value if k in FORBIDDEN_PASSTHROUGH_KEYS)
        if refused:
            raise ValueError(f"option(s) not allowed in the passthrough: {', '.join(refused)}")
        return value


class Limits(ApiModel):
    """Hard limits; the worker stops cleanly when one is reached and reports LimitExceeded."""

    max_items: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    """Stop after this many items."""
    max_bytes: Annotated[str | None, Field(pattern=QUANTITY_PATTERN)] = None
    """Stop once this many bytes are stored (a quantity: `5Gi`)."""
    active_deadline_seconds: Annotated[int | None, Field(ge=1, le=7 * 24 * 3600)] = None
    """Wall-clock limit for each run (the Job's activeDeadlineSeconds)."""


class ResourceRequirements(ApiModel):
    """Compute resources of the worker container."""

    requests: Annotated[dict[str, Annotated[str, Field(pattern=QUANTITY_PATTERN)]], Field(max_length=8)] = {}
    """Minimum resources, for example `cpu: 100m`, `memory: 128Mi`."""
    limits: Annotated[dict[str, Annotated[str, Field(pattern=QUANTITY_PATTERN)]], Field(max_length=8)] = {}
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
                    }
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
        return urls


def parse_spec(raw: dict[str, Any]) -> GalleryDownloadSpec:
    """Parse a spec as stored in the API; raises pydantic.ValidationError naming each bad field."""
    return GalleryDownloadSpec.model_validate(raw)
