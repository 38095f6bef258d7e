"""The GalleryDownload status: kstatus conditions (Argo CD, Flux), progress and the catalogue summary."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar, get_args

from pydantic import BaseModel, Field
from pydantic_core import PydanticUndefined

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

PhaseReason = Literal["Queued", "JobCreated", "Pending", "Running", "Succeeded", "PartiallySucceeded", "Suspended"]
"""The reasons of the phases that are not failures."""
ConditionReason = FailureReason | PhaseReason
"""The reasons of the Ready, Reconciling and Stalled conditions: a phase's own, or the failure's."""
CleanupReason = Literal["DataDeleted", "CleanupFailed", "CleanupTimedOut"]
"""How a deletion's cleanup ended (deletionPolicy Delete)."""
EventReason = ConditionReason | CleanupReason
"""The reasons of the Events the operator posts: a transition's condition reason, or how a cleanup ended."""
EVENT_REASONS: frozenset[str] = frozenset({*get_args(FailureReason), *get_args(PhaseReason), *get_args(CleanupReason)})


def event_reason(reason: str) -> EventReason:
    """A reason as an Event reason; a reason not declared above is an error."""
    if reason not in EVENT_REASONS:
        raise ValueError(f"{reason!r} is not a declared Event reason")
    return reason  # type: ignore[return-value]


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
    job_name: str | None = None
    """The run (its Job) whose worker last read the catalogue: the summary is the catalogue as that worker found
    and left it. When it is not the status's `jobName`, no worker of the current run has read it (not yet, or it
    could not open the target): the summary is the last known one, from that earlier run."""


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

    def stored(self, *only: str) -> dict[str, Any]:
        """The status as the API server stores it: camelCase, only the top-level fields that were set (a field
        never set is absent, not its default), nested parts whole; no nulls (a merge patch removes those keys).
        With field names given, only those of them that were set."""
        fields = self.model_fields_set & set(only) if only else set(self.model_fields_set)
        return self.model_dump(mode="json", by_alias=True, include=fields, exclude_none=True)

    @classmethod
    def of_stored(cls, stored: Mapping[str, Any]) -> GalleryDownloadStatus:
        """A status as stored (the watch's copy), typed; the fields present are the fields set."""
        return cls.model_validate(stored)

    def but(
        self,
        *,
        observed_generation: int | None = None,
        phase: Phase | None = None,
        conditions: list[Condition] | None = None,
        progress: Progress | None = None,
        attempts: int | None = None,
        job_name: str | None = None,
        queued_at: str | None = None,
        queue_position: int | None = None,
        started_at: str | None = None,
        finished_at: str | None = None,
        catalogue: Catalogue | None = None,
        failures: list[Failure] | None = None,
        message: str | None = None,
    ) -> GalleryDownloadStatus:
        """A copy with the given fields set; a field given as None stays as it is (unset stays unset). Not validated
        here: the builder validates the whole status once at the end (`validated`)."""
        changes = {
            "observed_generation": observed_generation,
            "phase": phase,
            "conditions": conditions,
            "progress": progress,
            "attempts": attempts,
            "job_name": job_name,
            "queued_at": queued_at,
            "queue_position": queue_position,
            "started_at": started_at,
            "finished_at": finished_at,
            "catalogue": catalogue,
            "failures": failures,
            "message": message,
        }
        return self.model_copy(update={name: value for name, value in changes.items() if value is not None})

    def validated(self) -> GalleryDownloadStatus:
        """The status validated as a whole: a value the model refuses is an error here, not a field the API server
        drops without a word (the parts built as models were validated when they were built)."""
        return GalleryDownloadStatus.model_validate(self._present())

    def _present(self) -> dict[str, Any]:
        return {name: value for name in self.model_fields_set if (value := getattr(self, name)) is not None}

    def stores_as(self, other: GalleryDownloadStatus) -> bool:
        """Whether both statuses have the same stored form (compared without dumping either)."""
        return self._present() == other._present()

    def _without(self, *names: str) -> GalleryDownloadStatus:
        """A copy with these fields unset (absent from the stored form); their defaults are the models' shared
        frozen instances, not copies (the status is never changed in place)."""
        fields = type(self).model_fields
        copy = self.model_copy(update={name: fields[name].default for name in names})
        object.__setattr__(copy, "__pydantic_fields_set__", self.model_fields_set - set(names))
        return copy

    def for_run(self, job_name: str) -> GalleryDownloadStatus:
        """A new run starts from a clean slate; the catalogue summary stays until the worker reports anew."""
        fresh = self._without("progress", "attempts", "started_at", "finished_at", "failures", "queued_at")
        return fresh.but(job_name=job_name)

    def out_of_queue(self) -> GalleryDownloadStatus:
        """Without the queue position (shown only while Queued)."""
        return self._without("queue_position") if "queue_position" in self.model_fields_set else self

    @property
    def written_phase(self) -> Phase | None:
        """The phase, when one was written (None before the first write)."""
        return self.phase if "phase" in self.model_fields_set else None

    @property
    def ready_reason(self) -> str:
        """The reason of the Ready condition (the phase when there is none)."""
        return next((c.reason for c in self.conditions if c.type == "Ready"), self.phase)


def echoes(stored: Mapping[str, Any], written: GalleryDownloadStatus, generation: Any) -> bool:
    """Whether a stored status (a watch event's) only carries the status this operator wrote, for that generation:
    the same phase and conditions as the written status's stored form (only its conditions are dumped)."""
    if stored.get("observedGeneration") != generation or stored.get("phase") != written.written_phase:
        return False
    return bool(stored.get("conditions") == written.stored("conditions").get("conditions"))


def _refusing(cls: type, changes: tuple[str, ...], what: str) -> None:
    """Make ``cls``'s in-place ``changes`` raise: ``what`` is shared by many held models."""

    def refuse(*_: object, **__: object) -> NoReturn:
        raise TypeError(f"{what} of a held model is shared: change a copy")

    for change in changes:
        setattr(cls, change, refuse)


class _SharedNames(set[str]):
    """The names of a held model's fields set (see `held`): one object for every held model with the same names.
    Changed in place it would change them all, so it refuses; a copy (pydantic's model_copy makes one before it
    adds the updated names) is a plain set."""

    __slots__ = ()

    def __copy__(self) -> set[str]:
        return set(self)


_refusing(
    _SharedNames,
    (
        *("add", "clear", "discard", "pop", "remove", "update", "difference_update", "intersection_update"),
        *("symmetric_difference_update", "__ior__", "__iand__", "__isub__", "__ixor__"),
    ),
    "the field set",
)

_SHARED_NAMES: dict[frozenset[str], _SharedNames] = {}
"""The field sets of held models, by names: a few dozen distinct sets in practice (at most one per subset of a
model's field names), however many models are held."""


class _SharedList(list[Any]):
    """The value of a list field a held model leaves unset: one object for every held model of the class, so it
    refuses changes in place (an append would reach every download's status); a copy is a plain list."""

    __slots__ = ()

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return copy.deepcopy(list(self), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


_refusing(
    _SharedList,
    (
        *("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"),
        *("__setitem__", "__delitem__", "__iadd__", "__imul__"),
    ),
    "the unset default",
)

_SHARED_DEFAULTS: dict[tuple[type[BaseModel], str], Any] = {}
"""The unset values held models share, by class and field: never pydantic's own default objects (those it copies
into every new instance, so a change to one would reach every status built later)."""


def _shared_default(cls: type[BaseModel], name: str, default: Any) -> Any:
    key = (cls, name)
    if key not in _SHARED_DEFAULTS:
        if isinstance(default, list):
            _SHARED_DEFAULTS[key] = _SharedList(default)
        elif isinstance(default, BaseModel):
            _SHARED_DEFAULTS[key] = held(default.model_copy(deep=True))
        else:  # immutable: None, text, numbers, enums (the status models' other defaults)
            _SHARED_DEFAULTS[key] = default
    return _SHARED_DEFAULTS[key]


Model = TypeVar("Model", bound=BaseModel)


def held(model: Model) -> Model:
    """The model made light to hold for long (the operator's last-written memory holds one status per download):
    the same values, with its names of the fields set shared with every held model of the same names (a set is
    0.7 KB), and every field it leaves unset holding one value per class and field that every held model shares
    (pydantic copies a default it cannot hash, a list or a model holding one, into every instance). Nested models
    are made light too. Returns the model itself: these changes in place are invisible (the values, the fields set,
    equality and every dump stay the same). The shared parts cannot be changed: the models are frozen (assignment
    refused, so pydantic never adds to a fields set), a shared list refuses changes, a shared model is held and
    frozen too."""
    if type(model.__pydantic_fields_set__) is _SharedNames:
        return model  # held already, nested parts too (a status reuses its unchanged parts from the one before)
    config = type(model).model_config
    if not config.get("frozen") or config.get("validate_assignment"):
        raise TypeError(f"{type(model).__name__} is not frozen: its held parts could be changed through it")
    names = model.model_fields_set
    for name, info in type(model).model_fields.items():
        if name not in names and info.default is not PydanticUndefined:
            model.__dict__[name] = _shared_default(type(model), name, info.default)
        value = model.__dict__[name]
        for part in value if isinstance(value, list) else (value,):
            if isinstance(part, BaseModel):
                held(part)
    key = frozenset(names)
    shared = _SHARED_NAMES.get(key)
    if shared is None:
        shared = _SHARED_NAMES[key] = _SharedNames(key)
    object.__setattr__(model, "__pydantic_fields_set__", shared)
    return model


def stored_phase(stored: Mapping[str, Any]) -> str:
    """The phase of a status as stored (Pending before the first write)."""
    return str(stored.get("phase", "Pending"))
