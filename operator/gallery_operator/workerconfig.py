"""The contract between the operator and a worker pod: what the worker is told, and what it reports back."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field

from gallery_operator.api.spec import ApiModel, GalleryDownloadSpec, SiteTokens
from gallery_operator.api.status import MAX_FAILURES, MAX_SAMPLE, CatalogueItem, Failure

CONFIG_ENV = "GALLERY_WORKER_CONFIG"
DATA_MOUNT = "/data"
SCRATCH_MOUNT = "/tmp"  # noqa: S108 - an emptyDir mounted there; the root filesystem is read-only
COOKIES_MOUNT = "/var/run/gallery-operator/cookies"
COOKIES_FILE = "cookies.txt"
TOKEN_MOUNT = "/var/run/gallery-operator/report"  # noqa: S105 - a folder
TOKEN_FILE = "token"  # noqa: S105 - a file name
USERNAME_ENV = "GALLERY_AUTH_USERNAME"
PASSWORD_ENV = "GALLERY_AUTH_PASSWORD"  # noqa: S105 - the name of an environment variable
TOKEN_ENVS = {name: f"GALLERY_AUTH_{name.upper()}" for name in SiteTokens.model_fields}
"""spec.auth.tokens field -> the environment variable the worker reads it from (set from the Secret)."""
CATALOGUE_DIR = ".gallery-operator"
CATALOGUE_FILE = "catalogue.jsonl"
GALLERY_DL_ARCHIVE = "gallery-dl-archive.sqlite3"  # beside the catalogue: what each engine has fetched already
YT_DLP_ARCHIVE = "yt-dlp-archive.txt"

MAX_COUNT = 2**53 - 1
"""The largest count a report may carry: exact in JSON everywhere, and far inside the status schema's int64."""
MAX_SHOWN_URL = 2048
"""Characters of a URL a report shows (a failure's, a sample item's): a site's URLs may be as long as it likes."""
_SHA256 = re.compile("[0-9a-f]{64}")


def catalogue_record(line: str | bytes) -> dict[str, Any] | None:
    """One catalogue line's record as the workers write it, or None for a line that holds none: cut short (by a
    killed pod, inside a character too), edited by hand, nested past the parser, or with fields of other types or out
    of range. The worker and `kubectl gallery` read a catalogue alike: such a line is skipped (reading it failed
    every later run). Lines end at "\\n" only (a record's text may hold U+2028, which `str.splitlines` breaks at)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSON's errors and UTF-8's; a line nested past the parser
        return None
    if not isinstance(record, dict):
        return None
    path, size, digest = record.get("path"), record.get("size"), record.get("sha256")
    usable = (
        isinstance(path, str)
        and bool(path)
        and type(size) is int
        and 0 <= size <= MAX_COUNT
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest) is not None
        and all(isinstance(record.get(field), str | None) for field in ("contentType", "sourceUrl", "archiveKey"))
    )
    return record if usable else None


# Exit codes of the worker. The Job's podFailurePolicy fails the Job at once on PERMANENT: retries won't help.
EXIT_OK = 0
EXIT_RETRYABLE = 1
EXIT_PERMANENT = 2


class PvcStorage(ApiModel):
    kind: Literal["pvc"] = "pvc"
    root: str = DATA_MOUNT
    """Where the download's folder is mounted in the pod."""
    location: str
    """pvc://claim/sub-path, for humans and the status."""


class S3Storage(ApiModel):
    kind: Literal["s3"] = "s3"
    bucket: str
    prefix: str
    endpoint: str | None = None
    private_endpoint: bool = False
    """The operator lists this endpoint as one that may be private (an object store inside the cluster): only the S3
    client's own connections to it skip the address rules, never a download or a redirect."""
    region: str | None = None
    force_path_style: bool = False
    parts_in_flight: Annotated[int, Field(ge=1, le=32)] = 4
    """Parts of one file uploading at once (the operator's GALLERY_OPERATOR_S3_PARTS_IN_FLIGHT)."""


class Egress(ApiModel):
    """URL rules the worker enforces on every request and redirect."""

    allow_private_networks: bool = False
    allowed_domains: list[str] = []
    denied_domains: list[str] = []


class WorkerConfig(ApiModel):
    """Everything a worker needs, passed as JSON in one environment variable. Holds no secret values."""

    namespace: str
    name: str
    uid: str
    run: str
    spec: GalleryDownloadSpec
    storage: Annotated[PvcStorage | S3Storage, Field(discriminator="kind")]
    egress: Egress = Egress()
    report_url: str | None = None
    report_interval_seconds: float = 2.0


class Report(ApiModel):
    """What a worker posts while it runs and writes as its termination message at the end."""

    run: str
    """The run (spec hash) this report belongs to; reports of other runs are ignored."""
    final: bool = False
    """The last report of a pod."""
    items_done: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    items_total: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    items_failed: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    bytes_done: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0
    catalogue_items: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    """Records in the full catalogue (all runs' pods, without duplicates), as this pod read and added to it; None
    when the pod read no catalogue (it could not open its target, or ended before it read it): then this report
    says nothing of what is stored, or of how far the run got. 0 is an empty catalogue."""
    catalogue_bytes: Annotated[int | None, Field(ge=0, le=MAX_COUNT)] = None
    catalogue_location: str | None = None
    sample: Annotated[list[CatalogueItem], Field(max_length=MAX_SAMPLE)] = []
    failures: Annotated[list[Failure], Field(max_length=MAX_FAILURES)] = []
    outcome: Literal["Running", "Succeeded", "PartiallySucceeded", "Failed"] = "Running"
    message: Annotated[str, Field(max_length=1024)] = ""
