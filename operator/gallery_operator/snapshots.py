"""The operator's cached views of downloads, worker Jobs and its NetworkPolicies: small frozen types, built in one
place.

kopf's indexes hold these (see handlers.py); the controller reads them. A snapshot is a plain copy taken when the
watch event arrived: kopf's bodies are live views that change under the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gallery_operator.keys import Key

JobState = Literal["Absent", "Pending", "Running", "Suspended", "Complete", "Failed"]
"""What a download's Job is doing (JobView.state). Typed so that mypy's strict equality refuses a comparison with a
state that does not exist."""
FINISHED_STATES: frozenset[JobState] = frozenset({"Complete", "Failed"})
ACTIVE_STATES: frozenset[JobState] = frozenset({"Pending", "Running"})
"""Job states that hold a slot under the concurrency caps."""


def plain(value: Any) -> Any:
    """A deep plain-dict copy of a kopf body part."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class DownloadSnapshot:
    """A GalleryDownload as the watch last showed it."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    """creationTimestamp: the age that orders the queue among equal priorities."""
    deletion_timestamp: str
    """Empty unless the download is being deleted."""
    finalizers: tuple[str, ...]
    resource_version: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @property
    def key(self) -> Key:
        return Key(self.namespace, self.name)

    @property
    def deleting(self) -> bool:
        return bool(self.deletion_timestamp)

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> DownloadSnapshot:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            created=str(meta.get("creationTimestamp") or ""),
            deletion_timestamp=str(meta.get("deletionTimestamp") or ""),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion") or ""),
            spec=plain(body.get("spec") or {}),
            # kopf's own bookkeeping, if it ever wrote any there, is not ours to read.
            status={k: v for k, v in plain(body.get("status") or {}).items() if k != "kopf"},
        )


@dataclass(frozen=True, slots=True)
class JobView:
    """A Job as the status reads it, observed once: its state, the Job controller's reason and message when it
    ended, the pods it started, and when it started."""

    state: JobState
    reason: str = ""
    message: str = ""
    pods_started: int = 0
    start_time: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def of(cls, body: Mapping[str, Any] | None) -> JobView:
        """The view of a Job body (a watch event's, or an API read's); Absent for None."""
        if body is None:
            return ABSENT
        status = body.get("status") or {}
        state, reason, message = _state(status, bool((body.get("spec") or {}).get("suspend")))
        uncounted = status.get("uncountedTerminatedPods") or {}
        started = sum(int(status.get(k) or 0) for k in ("active", "failed", "succeeded")) + sum(
            len(uncounted.get(k) or []) for k in ("failed", "succeeded")
        )
        return cls(state, reason, message, started, status.get("startTime") or None)

    @classmethod
    def created(cls, now: str) -> JobView:
        """A Job this operator has just created: started now, its first pod under way. The status written from it
        is what the watch will show moments later, so neither the Job's appearance nor the Job controller's first
        update needs another status write (each write costs a watch echo too)."""
        return cls("Pending", pods_started=1, start_time=now)

    @classmethod
    def removed(cls, failed: bool) -> JobView:
        """A run's Job that is gone (removed by hand, or by its TTL before its end was seen) after the run ended
        (its final report says how)."""
        return cls("Failed" if failed else "Complete", "JobRemoved")


ABSENT = JobView("Absent")


def _state(status: Mapping[str, Any], suspend: bool) -> tuple[JobState, str, str]:
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Complete", condition.get("reason", ""), condition.get("message", "")
        if condition.get("type") in ("Failed", "FailureTarget"):
            return "Failed", condition.get("reason", "") or "Failed", condition.get("message", "")
        if condition.get("type") == "Suspended":
            return "Suspended", "", ""
    if suspend:
        return "Suspended", "", ""
    if status.get("ready"):
        return "Running", "", ""
    return "Pending", "", ""  # no pod yet, or one not running yet (scheduling, pulling, mounting)


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """A worker Job as the watch last showed it: where it is, which run it belongs to, and its state."""

    namespace: str
    name: str
    uid: str
    run: str | None
    suspend: bool
    view: JobView

    @classmethod
    def of(cls, body: Mapping[str, Any], run_label: str) -> JobSnapshot:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            run=(meta.get("labels") or {}).get(run_label),
            suspend=bool((body.get("spec") or {}).get("suspend")),
            view=JobView.of(body),
        )


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """The operator's worker NetworkPolicy in one namespace as the watch last showed it."""

    namespace: str
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> PolicySnapshot:
        meta = body.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), plain(meta.get("labels") or {}), plain(body.get("spec") or {}))
