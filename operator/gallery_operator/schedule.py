"""A subscription's schedule, pure: its ticks (cron in a time zone through cronsim, or a fixed interval), the stable
per-object spread, and the deterministic names of its runs. No clock: every function takes the time it reasons about.

A tick is the nominal time (`0 * * * *` -> 10:00:00); it is due at tick + spread, where the spread is a fixed
offset derived from the subscription's uid, below its `jitter` (default: five minutes, at most a tenth of the period).
Run names come from the nominal tick in UTC, so a restarted operator that sees the same tick makes the same name, and
the API server's "already exists" keeps it from running twice.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim

from gallery_operator.api.subscription import (
    DEFAULT_JITTER_SECONDS,
    GallerySubscriptionSpec,
    cron_fields,
    duration_seconds,
    time_zone,
)

MAX_NAME = 63
STAMP = "%Y%m%d%H%M%S"
STAMP_LENGTH = 14
MISSED_COUNT_CAP = 1000
"""Missed ticks are counted up to this many (a `* * * * *` schedule down for a week would otherwise mean 10,000
steps): the status then says "at least 1000"."""
_SECOND = timedelta(seconds=1)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, `Z`: the form every time in the status takes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the API server writes it (`...Z`), aware."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """When a subscription's ticks fall."""

    cron: str | None
    """Five cron fields (macros expanded), or None for an interval."""
    zone: str
    period: timedelta | None
    anchor: datetime
    """Where an interval counts from: its first tick is the subscription's creation (a new subscription runs at once,
    as Flux reconciles a new source at once); a cron schedule waits for its first tick (as a CronJob does)."""
    spread: timedelta

    @classmethod
    def of(cls, spec: GallerySubscriptionSpec, uid: str, created: datetime) -> Schedule:
        cron = cron_fields(spec.schedule) if spec.schedule else None
        schedule = cls(cron, spec.time_zone or "UTC", spec.period, created, timedelta(0))
        return cls(cron, schedule.zone, spec.period, created, spread(uid, jitter_bound(spec, schedule)))

    def describe(self) -> str:
        """The schedule in words, for `kubectl get`."""
        if self.cron is None:
            assert self.period is not None
            return f"every {_words(self.period)}"
        return self.cron if self.zone == "UTC" else f"{self.cron} {self.zone}"

    def next_tick(self, after: datetime) -> datetime:
        """The first nominal tick strictly after ``after``."""
        if self.cron is None:
            assert self.period is not None
            if after < self.anchor:
                return self.anchor
            steps = (after - self.anchor) // self.period + 1
            return self.anchor + steps * self.period
        local = after.astimezone(time_zone(self.zone))
        return next(iter(CronSim(self.cron, local))).astimezone(UTC)

    def last_tick(self, until: datetime) -> datetime | None:
        """The latest nominal tick at or before ``until`` (None before an interval's first)."""
        if self.cron is None:
            assert self.period is not None
            if until < self.anchor:
                return None
            return self.anchor + ((until - self.anchor) // self.period) * self.period
        local = (until + _SECOND).astimezone(time_zone(self.zone))
        return next(iter(CronSim(self.cron, local, reverse=True))).astimezone(UTC)

    def due(self, after: datetime, now: datetime) -> tuple[datetime | None, int]:
        """The latest tick after ``after`` that is due at ``now`` (spread included), and how many earlier ticks in
        between were passed over (counted up to MISSED_COUNT_CAP)."""
        latest = self.last_tick(now - self.spread)
        if latest is None or latest <= after:
            return None, 0
        passed, tick = 0, self.next_tick(after)
        while tick < latest and passed < MISSED_COUNT_CAP:
            passed += 1
            tick = self.next_tick(tick)
        return latest, passed

    def next_due(self, now: datetime) -> datetime:
        """When the next tick after ``now`` (spread included) will be due."""
        return self.next_tick(now - self.spread) + self.spread

    def shortest_gap(self) -> timedelta:
        """The period, or the shortest gap between a cron schedule's next few ticks from a fixed date (stable)."""
        if self.period is not None:
            return self.period
        ticks = [self.next_tick(_EPOCH)]
        for _ in range(8):
            ticks.append(self.next_tick(ticks[-1]))
        return min(b - a for a, b in itertools.pairwise(ticks))


def _words(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def jitter_bound(spec: GallerySubscriptionSpec, schedule: Schedule) -> timedelta:
    """The spread's upper bound: `jitter` as written, or five minutes but at most a tenth of the period."""
    if spec.jitter is not None:
        return timedelta(seconds=duration_seconds(spec.jitter))
    return min(timedelta(seconds=DEFAULT_JITTER_SECONDS), schedule.shortest_gap() / 10)


def spread(uid: str, bound: timedelta) -> timedelta:
    """A whole number of seconds in [0, bound), the same for the same uid every time and spread evenly across uids."""
    seconds = int(bound.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(f"spread/{uid}".encode()).digest()[:8], "big")
    return timedelta(seconds=digest % seconds)


def _base(name: str, suffix_length: int) -> str:
    """The subscription's name, or a prefix of it with a hash of the whole, so ``base-suffix`` fits in 63."""
    room = MAX_NAME - suffix_length - 1
    if len(name) <= room:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: room - 9].rstrip('-.')}-{digest}"


def run_name(subscription: str, tick: datetime) -> str:
    """The run for a nominal tick: `<subscription>-<YYYYMMDDhhmmss UTC>`, 63 characters at most for any name."""
    return f"{_base(subscription, STAMP_LENGTH)}-{tick.astimezone(UTC).strftime(STAMP)}"


def requested_run_name(subscription: str, requested_at: str) -> str:
    """The run for an on-demand request: `<subscription>-r<hash of the annotation's value>` (same length)."""
    digest = hashlib.sha256(requested_at.encode()).hexdigest()[: STAMP_LENGTH - 1]
    return f"{_base(subscription, STAMP_LENGTH)}-r{digest}"


def cleanup_name(subscription: str) -> str:
    """The suspended child whose deletion removes the library under deletionPolicy Delete."""
    return f"{_base(subscription, STAMP_LENGTH)}-cleanup"
