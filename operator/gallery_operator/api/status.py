"""The GalleryDownload status: kstatus conditions (Argo CD, Flux), progress and the catalogue summary."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gallery_operator.api.spec import ApiModel

Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended"]

# Stable failure reasons: alerts, dashboards and users may match on them.
FailureReason = Literal[
    "NotFound",
    "AuthRequired",
    "Forbidden",
    "RateLimited",
    "UnsupportedUrl",
    "NetworkError",
    "Timeout",
    "LimitExceeded",
    "LiveStream",
    "Blocked",
    "StorageError",
    "InvalidSpec",
    "UnexpectedContent",
    "DeadlineExceeded",
    "BackoffLimitExceeded",
    "Internal",
]

MAX_FAILURES = 20
MAX_SAMPLE = 10


class Condition(ApiModel):
    """A Kubernetes condition (metav1.Condition)."""

    type: Annotated[str, Field(max_length=316)]
    """Ready, Reconciling or Stalled."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: Annotated[str, Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """CamelCase reason for the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable detail."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] = 0
    """The .metadata.generation this condition was computed from."""


class Progress(ApiModel):
    """How far the current run is."""

    items_done: Annotated[int, Field(ge=0)] = 0
    """Items stored (including items skipped because an earlier run stored them)."""
    items_total: Annotated[int | None, Field(ge=0)] = None
    """Items expected, when the engine knows."""
    bytes_done: Annotated[int, Field(ge=0)] = 0
    """Bytes stored."""
    items_failed: Annotated[int, Field(ge=0)] = 0
    """Items that could not be downloaded."""
    summary: str = ""
    """Items done, and of how many when known (`12/40`), for `kubectl get`."""


class CatalogueItem(ApiModel):
    """One stored file (a sample of the catalogue; the full catalogue lives at `catalogue.location`)."""

    path: str
    """Path relative to the download's folder, or the S3 key."""
    size: Annotated[int, Field(ge=0)]
    """Size in bytes."""
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """SHA-256 of the content."""
    content_type: str | None = None
    """MIME type."""
    source_url: str | None = None
    """Where the file came from."""


class Catalogue(ApiModel):
    """Summary of everything stored for this download."""

    items: Annotated[int, Field(ge=0)] = 0
    """Number of stored files."""
    bytes: Annotated[int, Field(ge=0)] = 0
    """Total size of stored files."""
    size: str = ""
    """Total size for humans (`1.2Gi`), for `kubectl get`."""
    location: str | None = None
    """Where the full catalogue (JSON lines) is: `pvc://claim/path` or `s3://bucket/key`."""
    sample: Annotated[list[CatalogueItem], Field(max_length=MAX_SAMPLE)] = []
    """The first few items."""


class Failure(ApiModel):
    """Why an item, a URL or the run failed."""

    reason: FailureReason
    """Stable machine-readable reason."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """Detail for humans."""
    url: str | None = None
    """The offending URL, when there is one."""


class GalleryDownloadStatus(ApiModel):
    """Observed state, written only by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] = 0
    """The .metadata.generation the status describes."""
    phase: Phase = "Pending"
    """Summary for printer columns; automation should read the conditions."""
    conditions: Annotated[list[Condition], Field(max_length=8)] = []
    """Ready, Reconciling and Stalled (kstatus)."""
    progress: Progress = Progress()
    """Progress of the current run."""
    attempts: Annotated[int, Field(ge=0)] = 0
    """Worker pods started for the current run (1 + retries)."""
    job_name: str | None = None
    """The Job of the current run."""
    queued_at: str | None = None
    """When the download started waiting for a free slot."""
    queue_position: Annotated[int | None, Field(ge=1)] = None
    """While Queued: the download's place in the admission queue when the status was last written (the message says
    when). Written on entering the queue and refreshed on a slow cadence from the head of the queue, not on every
    admission ahead of it."""
    started_at: str | None = None
    """When the current run's Job was created."""
    finished_at: str | None = None
    """When the current run ended."""
    catalogue: Catalogue = Catalogue()
    """What is stored."""
    failures: Annotated[list[Failure], Field(max_length=MAX_FAILURES)] = []
    """The most recent failures (bounded)."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """One line on the current state."""
