"""The operator's cached views of downloads, worker Jobs and its NetworkPolicies: small frozen types, built in one
place.

kopf's indexes hold these (see handlers.py); the controller reads them. A snapshot is a plain copy taken when the
watch event arrived: kopf's bodies are live views that change under the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gallery_operator.keys import Key


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
class JobSnapshot:
    """A worker Job as the watch last showed it: where it is, which run it belongs to, and its state."""

    namespace: str
    name: str
    uid: str
    run: str | None
    suspend: bool
    status: Mapping[str, Any]

    @property
    def job(self) -> dict[str, Any]:
        """The parts of the Job that status.job_state reads."""
        return {"spec": {"suspend": self.suspend}, "status": self.status}

    @classmethod
    def of(cls, body: Mapping[str, Any], run_label: str) -> JobSnapshot:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            run=(meta.get("labels") or {}).get(run_label),
            suspend=bool((body.get("spec") or {}).get("suspend")),
            status=plain(body.get("status") or {}),
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
