"""The GallerySubscription spec and status: a GalleryDownload template run on a schedule, keeping a library in sync.

The single source of truth for the second CRD's schema and for the operator's parsing of a subscription. Pure: the
schedule is checked with cronsim (parsing only) and the time zone against the IANA database (zoneinfo).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator

from gallery_operator.api.spec import ApiModel, GalleryDownloadSpec, Presence
from gallery_operator.api.status import Condition

# CronJob's macros (robfig/cron's descriptors), as the five fields they stand for.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Five fields of cron's characters (no `TZ=` prefix: the zone is `timeZone`), or one of the macros.
SCHEDULE_PATTERN = (
    r"^\s*(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*/,?#-]+(\s+[0-9A-Za-z*/,?#-]+){4})\s*$"
)
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
DURATION_PATTERN = r"^([0-9]{1,9}(\.[0-9]{1,9})?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9.]+)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
DEFAULT_JITTER_SECONDS = 300
"""The spread when `jitter` is unset: at most five minutes, and at most a tenth of the period (see schedule.py)."""
MAX_RUN_RECORDS = 20
REASON_PATTERN = r"^[A-Za-z][A-Za-z0-9]*$"
STALL_AFTER_FAILURES = 3
"""A subscription whose last this-many runs failed for a permanent reason is Stalled (with that reason)."""
PERMANENT_REASONS: frozenset[str] = frozenset(
    {"AuthRequired", "Forbidden", "NotFound", "UnsupportedUrl", "Blocked", "InvalidSpec"}
)
"""Failure reasons that another run of the same spec does not cure."""
TEMPLATE_OWNED = "set by the subscription"


def duration_seconds(text: str) -> float:
    """A Go/Flux duration (`1h30m`, `90s`, `500ms`) in seconds."""
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))


def cron_fields(schedule: str) -> str:
    """The five cron fields of a schedule, macros expanded, blanks normalised."""
    text = " ".join(schedule.split())
    return MACROS.get(text, text)


def check_schedule(schedule: str) -> str:
    """The schedule as written when cronsim can evaluate it; a ValueError naming what is wrong otherwise."""
    if not re.fullmatch(SCHEDULE_PATTERN, schedule):
        raise ValueError("not a cron schedule: five fields (minute hour day-of-month month day-of-week) or @hourly ...")
    try:
        CronSim(cron_fields(schedule), datetime(2000, 1, 1))  # parsing only: the zone plays no part
    except CronSimError as error:
        raise ValueError(f"not a cron schedule: {error}") from None
    return schedule


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; a ValueError for anything else (the host's `Local` zone included)."""
    if name.lower() in {"local", "localtime"} or not re.fullmatch(TIME_ZONE_PATTERN, name):
        raise ValueError(f"{name!r} is not an IANA time zone name (for example Europe/Berlin or UTC)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin or UTC)") from None


def _duration_bounds(text: str, low: float, high: float, field: str) -> str:
    seconds = duration_seconds(text)
    if not low <= seconds <= high:
        raise ValueError(f"{field} {text!r} must be between {low:g}s and {high / 3600:g}h")
    return text


def _rule(rule: str, message: str) -> dict[str, str]:
    return {"rule": rule, "message": message}


class GallerySubscriptionSpec(ApiModel):
    """When to run which download: a GalleryDownload template, run on a cron schedule or an interval, each run a child
    GalleryDownload writing to the same folder or prefix (so every run fetches only what is new)."""

    PRESENCE = Presence("schedule", "interval", True, "set exactly one of schedule and interval")

    schedule: Annotated[str | None, Field(max_length=256, pattern=SCHEDULE_PATTERN)] = None
    """When to run, in CronJob's syntax: five fields (minute hour day-of-month month day-of-week, for example
    `0 */6 * * *`) or a macro (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`).
    Evaluated in `timeZone`. Exactly one of schedule and interval."""
    time_zone: Annotated[str | None, Field(min_length=1, max_length=64, pattern=TIME_ZONE_PATTERN)] = None
    """IANA time zone of `schedule` (for example `Europe/Berlin`); UTC when unset. Only with schedule. Across a
    daylight-saving change a time that does not exist runs at the next one that does, and a time that happens twice
    runs once."""
    interval: Annotated[str | None, Field(max_length=32, pattern=DURATION_PATTERN)] = None
    """Run every this long, as a duration (`30m`, `6h`, `1h30m`; Flux's convention), at least 10s; counted from the
    subscription's creation. Exactly one of schedule and interval."""
    jitter: Annotated[str | None, Field(max_length=32, pattern=DURATION_PATTERN)] = None
    """Upper bound of a stable delay added to every tick, the same for one subscription and different between them
    (derived from its uid), so many subscriptions on `0 * * * *` do not reach one site in the same second. Unset:
    five minutes, but at most a tenth of the period. `0s`: none."""
    download_template: GalleryDownloadSpec
    """The spec of each run's GalleryDownload, validated like any download's: URLs, engine, target, auth, options,
    limits, priority, resources. Every run writes to the same place: `target.pvc.subPath` or `target.s3.prefix`
    default to the subscription's name. A claim template is not allowed (every run would get its own claim: create
    the claim once and name it), `deletionPolicy` and `suspend` are the subscription's."""
    concurrency_policy: Literal["Forbid", "Replace"] = "Forbid"
    """A tick while a run is still active: `Forbid` skips the tick (recorded in status.runs), `Replace` stops the
    active run (its files stay) and starts the new one."""
    starting_deadline_seconds: Annotated[int | None, Field(ge=1, le=MAX_INTERVAL_SECONDS)] = None
    """A tick missed (the operator was down) is run late only within this many seconds of its time; older ones are
    recorded as missed, not run. At most one catch-up run is made, whatever the number of missed ticks. Unset: the
    latest missed tick is always caught up."""
    successful_runs_history_limit: Annotated[int, Field(ge=0, le=100)] = 3
    """Finished successful runs whose GalleryDownload objects are kept; older ones are deleted. Their files always
    stay (runs are created with deletionPolicy Retain)."""
    failed_runs_history_limit: Annotated[int, Field(ge=0, le=100)] = 1
    """Failed runs whose GalleryDownload objects are kept; older ones are deleted, their files stay."""
    suspend: bool = False
    """Start no new run (an active one finishes); ticks that pass while suspended are not caught up on resume."""
    deletion_policy: Literal["Retain", "Delete"] = "Retain"
    """The library's fate when the subscription is deleted: `Retain` keeps every file, `Delete` removes the folder
    or prefix once no run is active any more. Pruning old runs never deletes files."""
    stop_after_known: Annotated[int | None, Field(ge=1, le=100_000)] = None
    """Stop a run after this many consecutive items the library already holds (gallery-dl's `skip: abort:N`;
    yt-dlp stops at the first one, its break-on-existing), so checking a large gallery for a few new items costs a
    page or two. Unset: every run walks the whole listing (and skips what it holds)."""

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return check_schedule(value) if value is not None else None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            time_zone(value)
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _duration_bounds(value, MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS, "interval")

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: str | None) -> str | None:
        return _duration_bounds(value, 0, 24 * 3600, "jitter") if value is not None else None

    @field_validator("download_template")
    @classmethod
    def _template(cls, template: GalleryDownloadSpec) -> GalleryDownloadSpec:
        pvc = template.target.pvc
        if pvc is not None and pvc.template is not None:
            raise ValueError(f"target.pvc.template: {CLAIM_TEMPLATE_REFUSED}")
        if template.deletion_policy != "Retain":
            raise ValueError(f"deletionPolicy: {TEMPLATE_POLICY_REFUSED}")
        if template.suspend:
            raise ValueError(f"suspend: {TEMPLATE_SUSPEND_REFUSED}")
        return template

    @property
    def period(self) -> timedelta | None:
        """The interval, when the subscription has one."""
        return timedelta(seconds=duration_seconds(self.interval)) if self.interval else None


CLAIM_TEMPLATE_REFUSED = "not allowed in a subscription (each run would get its own claim): name an existing claim"
TEMPLATE_POLICY_REFUSED = "runs always keep their files: set the subscription's spec.deletionPolicy instead"
TEMPLATE_SUSPEND_REFUSED = "set the subscription's spec.suspend instead"

# CEL rules the CRD carries beyond the schema (checked at admission; the models check the same when parsing).
SPEC_RULES = [
    _rule("!has(self.timeZone) || has(self.schedule)", "timeZone goes with schedule (an interval has no zone)"),
    _rule(
        "!has(self.downloadTemplate.target.pvc) || !has(self.downloadTemplate.target.pvc.template)",
        f"downloadTemplate.target.pvc.template: {CLAIM_TEMPLATE_REFUSED}",
    ),
    _rule(
        "!has(self.downloadTemplate.deletionPolicy) || self.downloadTemplate.deletionPolicy == 'Retain'",
        f"downloadTemplate.deletionPolicy: {TEMPLATE_POLICY_REFUSED}",
    ),
    _rule(
        "!has(self.downloadTemplate.suspend) || !self.downloadTemplate.suspend",
        f"downloadTemplate.suspend: {TEMPLATE_SUSPEND_REFUSED}",
    ),
]


RunTrigger = Literal["Schedule", "CatchUp", "Requested"]
RunOutcome = Literal["Active", "Succeeded", "PartiallySucceeded", "Failed", "Replaced", "Skipped", "Missed"]


class RunRecord(ApiModel):
    """One run, or one tick that made no run (skipped under Forbid, or missed beyond startingDeadlineSeconds)."""

    name: Annotated[str | None, Field(max_length=63)] = None
    """The run's GalleryDownload (none for a skipped or missed tick)."""
    trigger: RunTrigger = "Schedule"
    """What started it: the schedule, a catch-up after missed ticks, or the requested-at annotation."""
    scheduled_time: Annotated[str, Field(max_length=64)]
    """The tick it stands for (RFC 3339; for a requested run, when the request was handled)."""
    outcome: RunOutcome = "Active"
    """Active, Succeeded, PartiallySucceeded, Failed, Replaced (stopped under Replace), Skipped (a run was active
    under Forbid) or Missed (later than startingDeadlineSeconds)."""
    reason: Annotated[str | None, Field(max_length=64, pattern=REASON_PATTERN)] = None
    """Why a failed run failed (the run's Ready reason: a FailureReason such as AuthRequired)."""
    items_before: Annotated[int, Field(ge=0)] = 0
    """Items the library held when the run started."""
    new_items: Annotated[int | None, Field(ge=0)] = None
    """Items this run added to the library (once it ended)."""
    ticks: Annotated[int, Field(ge=0)] = 0
    """For a Skipped or Missed record: how many ticks it stands for (consecutive skipped ticks share one record,
    `scheduledTime` is the latest)."""
    started_at: Annotated[str | None, Field(max_length=64)] = None
    """When the run was created."""
    finished_at: Annotated[str | None, Field(max_length=64)] = None
    """When its end was seen."""


class ActiveRun(ApiModel):
    """The run under way."""

    name: Annotated[str, Field(max_length=63)]
    """Its GalleryDownload."""
    scheduled_time: Annotated[str, Field(max_length=64)]
    """The tick it stands for."""


class Library(ApiModel):
    """What the runs stored together (from the latest finished run's catalogue, which all runs share)."""

    items: Annotated[int, Field(ge=0)] = 0
    """Stored files."""
    bytes: Annotated[int, Field(ge=0)] = 0
    """Their total size."""
    size: str = ""
    """Total size for humans (`1.2Gi`), for `kubectl get`."""
    location: str | None = None
    """Where the catalogue is: `pvc://claim/path` or `s3://bucket/key`."""


class GallerySubscriptionStatus(ApiModel):
    """Observed state, written only by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] = 0
    """The .metadata.generation the status describes."""
    conditions: Annotated[list[Condition], Field(max_length=8)] = []
    """Ready, Reconciling and Stalled (kstatus)."""
    schedule: str = ""
    """The schedule in words, for `kubectl get` (`0 * * * * Europe/Berlin`, `every 6h`)."""
    last_schedule_time: Annotated[str | None, Field(max_length=64)] = None
    """The latest tick handled: run, skipped or recorded as missed."""
    last_successful_time: Annotated[str | None, Field(max_length=64)] = None
    """When the latest successful run ended."""
    next_schedule_time: Annotated[str | None, Field(max_length=64)] = None
    """The next tick, spread included (unset while suspended or invalid)."""
    active: ActiveRun | None = None
    """The run under way, if any."""
    runs: Annotated[list[RunRecord], Field(max_length=MAX_RUN_RECORDS)] = []
    """The latest runs and ticks, newest first (bounded; kept when the run objects are pruned)."""
    new_items: Annotated[int | None, Field(ge=0)] = None
    """Items the latest finished run added, for `kubectl get`."""
    library: Library = Library()
    """What the runs stored together."""
    last_handled_requested_at: Annotated[str | None, Field(max_length=256)] = None
    """The value of the `gallery-operator.dev/requested-at` annotation whose run was made (Flux's convention: set the
    annotation to any new value to run now)."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """One line on the current state."""


def parse_subscription_spec(raw: Mapping[str, Any]) -> GallerySubscriptionSpec:
    """Parse a spec as stored in the API; raises pydantic.ValidationError naming each bad field."""
    return GallerySubscriptionSpec.model_validate(raw)
