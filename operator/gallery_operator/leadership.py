"""Leader election on a `coordination.k8s.io/v1` Lease, the pure part: client-go's rules (lease duration, renew
deadline, retry period) as decisions over what a replica last read of the Lease and its own monotonic clock.

A replica that does not hold the Lease takes it only when it is released (no holder) or when its record has not
changed for `leaseDurationSeconds` of the reader's own clock (client-go's rule: no replica compares its clock with
another's). A holder may write until `renew_deadline` after the start of its last successful renewal: since the
renewal reached the API server after that start, every other replica saw it no earlier, and waits `lease_duration`
(longer than the renew deadline) from then before taking over. Every change to the Lease is a replace with the
resourceVersion read (optimistic concurrency): of two replicas taking a free Lease, one gets a conflict.

election.py runs the loop (its reads and writes go through the facade)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REPORT_URL_ANNOTATION = "gallery-operator.dev/report-url"
"""The Lease's annotation by which its holder says where standbys forward worker reports (its peer report URL)."""


@dataclass(frozen=True)
class Timing:
    """client-go's three durations, in seconds (the defaults are client-go's and controller-runtime's)."""

    lease_duration: int = 15
    """How long a standby waits, from the last change it saw to the Lease, before taking it."""
    renew_deadline: float = 10.0
    """How long after the start of its last successful renewal a leader may still write."""
    retry_period: float = 2.0
    """How often every replica reads (and the leader renews) the Lease."""

    def problem(self) -> str | None:
        """Why these durations cannot keep two leaders apart, or None."""
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            return (
                f"needs 0 < retry period ({self.retry_period}) < renew deadline ({self.renew_deadline})"
                f" < lease duration ({self.lease_duration})"
            )
        return None


@dataclass(frozen=True)
class LeaseRecord:
    """What a replica read of the Lease."""

    holder: str
    duration: int
    acquired: str
    renewed: str
    transitions: int
    resource_version: str
    report_url: str = ""
    """Where the holder takes forwarded worker reports (REPORT_URL_ANNOTATION), "" when it said nothing."""

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> LeaseRecord:
        spec = body.get("spec") or {}
        meta = body.get("metadata") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquired=str(spec.get("acquireTime") or ""),
            renewed=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
            report_url=str((meta.get("annotations") or {}).get(REPORT_URL_ANNOTATION) or ""),
        )


class Move(enum.Enum):
    CREATE = "create"
    """There is no Lease yet: create it, holding it."""
    TAKE = "take"
    """The Lease is free or expired: replace it, holding it."""
    RENEW = "renew"
    """This replica holds the Lease: replace it with a new renew time."""
    WAIT = "wait"
    """Another replica holds a Lease that has not expired."""


def observed_at(previous: LeaseRecord | None, previous_at: float, record: LeaseRecord | None, now: float) -> float:
    """When this replica last saw the Lease change (its own clock): a record other than the one before is new now."""
    if record is None or previous is None or record.resource_version != previous.resource_version:
        return now
    return previous_at


def next_move(record: LeaseRecord | None, me: str, seen_at: float, now: float) -> Move:
    """What `me` does after reading `record` at `now`, having seen it change last at `seen_at`."""
    if record is None:
        return Move.CREATE
    if record.holder == me:
        return Move.RENEW
    if not record.holder or now >= seen_at + max(record.duration, 1):
        return Move.TAKE
    return Move.WAIT


def lease_spec(move: Move, record: LeaseRecord | None, me: str, timing: Timing, stamp: str) -> dict[str, Any]:
    """The Lease's spec after `move` by `me` at the wall-clock time `stamp` (RFC 3339 with microseconds)."""
    held = move is Move.RENEW and record is not None
    transitions = record.transitions if record is not None else 0
    if move is Move.TAKE and record is not None and record.holder:
        transitions += 1
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": timing.lease_duration,
        "acquireTime": record.acquired if held and record is not None else stamp,
        "renewTime": stamp,
        "leaseTransitions": transitions,
    }


def lease_body(spec: dict[str, Any], report_url: str) -> dict[str, Any]:
    """What a replica writes to the Lease: the spec, and as its holder where standbys forward worker reports (no
    annotation when it says nowhere, as in a release)."""
    return {"spec": spec, "annotations": {REPORT_URL_ANNOTATION: report_url} if report_url else {}}


def released_spec(record: LeaseRecord, stamp: str) -> dict[str, Any]:
    """The spec a leader stopping gracefully leaves (client-go's release): no holder, so a standby takes the Lease
    at its next read instead of waiting for it to expire."""
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": record.transitions,
    }


def writes_until(renewal_started: float, timing: Timing) -> float:
    """Until when (monotonic) a leader whose successful renewal (or acquisition) started at `renewal_started` may
    write."""
    return renewal_started + timing.renew_deadline


WAKE_MARGIN = 0.01
"""Seconds past a Lease's expiry at which a standby looks: its timer never fires before the expiry it waits for."""


def next_look(record: LeaseRecord | None, me: str, seen_at: float, now: float, timing: Timing) -> float:
    """Seconds until `me` next looks at the Lease: a retry period, or less when a Lease held by another expires
    sooner (its record unchanged for its duration since `seen_at`), so a standby takes it the moment it may rather
    than at its next read."""
    if record is None or not record.holder or record.holder == me:
        return timing.retry_period
    expires = seen_at + max(record.duration, 1)
    return min(timing.retry_period, max(0.0, expires - now) + WAKE_MARGIN)


def report_target(record: LeaseRecord | None, me: str) -> str | None:
    """Where `me`, not leading, forwards a worker's report: the report URL the Lease's holder recorded, or None
    when nobody (else) holds the Lease or its holder recorded none."""
    if record is None or not record.holder or record.holder == me or not record.report_url:
        return None
    return record.report_url
