"""The reconcile decision for one GallerySubscription, pure: from its snapshot, its runs (child GalleryDownloads) and
the time to its new status and the actions that bring the cluster there. No I/O and no clock.

    gather (subscriptions.py: caches)  ->  plan_subscription (here)  ->  apply (subscriptions.py, through the facade)

Runs are ordinary GalleryDownloads controlled by the subscription, named from their tick (schedule.py), created with
deletionPolicy Retain and writing to the subscription's folder or prefix: deleting a run object (Replace, pruning by
the history limits) never deletes files. Only the subscription's own deletionPolicy Delete removes the library, when
the subscription is deleted and no run is left: through one suspended child with deletionPolicy Delete, whose deletion
runs the download's cleanup Job on the library's folder or prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from gallery_operator import API_GROUP, API_VERSION, KIND, SUBSCRIPTION_KIND
from gallery_operator.api.status import Condition
from gallery_operator.api.subscription import (
    MAX_RUN_RECORDS,
    PERMANENT_REASONS,
    STALL_AFTER_FAILURES,
    ActiveRun,
    GallerySubscriptionSpec,
    GallerySubscriptionStatus,
    Library,
    RunOutcome,
    RunRecord,
    RunTrigger,
)
from gallery_operator.jobs import MANAGED_BY, label_value
from gallery_operator.plan import SetFinalizers
from gallery_operator.schedule import (
    Schedule,
    cleanup_name,
    parse_time,
    requested_run_name,
    rfc3339,
    run_name,
)
from gallery_operator.snapshots import DownloadSnapshot
from gallery_operator.status import human_size

FINALIZER = f"{API_GROUP}/library"
"""Held only under deletionPolicy Delete: the library is removed before the subscription goes."""
DOWNLOAD_FINALIZER = f"{API_GROUP}/cleanup"
"""The download's own (plan.py): a cleanup child holding it will run its cleanup Job when deleted."""
REQUESTED_AT = f"{API_GROUP}/requested-at"
LABEL_SUBSCRIPTION = f"{API_GROUP}/subscription"
ANNOTATION_TICK = f"{API_GROUP}/scheduled-time"
ANNOTATION_TRIGGER = f"{API_GROUP}/trigger"
CREATION_GRACE = timedelta(seconds=120)
"""A run this operator created but its cache does not show yet counts as active for this long (then as gone)."""
CATCH_UP_AFTER = timedelta(seconds=60)
"""A tick acted on later than this after it fell due is a catch-up (the operator was down or far behind)."""
SUCCESSFUL: frozenset[str] = frozenset({"Succeeded", "PartiallySucceeded"})

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
# Condition and Event reasons, defined once.
Reason = Literal[
    "Scheduled",
    "RunActive",
    "Suspended",
    "InvalidSpec",
    "RunCreated",
    "RunSucceeded",
    "RunFailed",
    "RunSkipped",
    "RunMissed",
    "RunReplaced",
    "RunDeleted",
    "WaitingForRun",
    "RemovingLibrary",
]


# -- what is gathered ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriptionSnapshot(DownloadSnapshot):
    """A GallerySubscription as the watch last showed it: the same cached view as a download's, and its request."""

    requested_at: str = ""
    """The `gallery-operator.dev/requested-at` annotation ("" when unset)."""

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> SubscriptionSnapshot:
        view = DownloadSnapshot.of(body)
        requested = ((body.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
        return cls(**{f.name: getattr(view, f.name) for f in fields(view)}, requested_at=str(requested or ""))


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run (a GalleryDownload controlled by the subscription) as the watch last showed it."""

    name: str
    phase: str
    """Its status.phase ("" before the operator first wrote one)."""
    namespace: str = ""
    """Where it is: a run is in its subscription's namespace (an owner reference is only ever read there)."""
    scheduled_time: str = ""
    """The tick it stands for (its scheduled-time annotation)."""
    reason: str = ""
    """Its Ready condition's reason (the FailureReason of a failed run)."""
    items: int = 0
    """Records in its catalogue: the library's, since every run shares it."""
    bytes: int = 0
    location: str | None = None
    finished_at: str | None = None
    deletion_policy: str = "Retain"
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in {"Succeeded", "Failed"}

    @property
    def outcome(self) -> RunOutcome:
        if self.phase == "Failed":
            return "Failed"
        return "PartiallySucceeded" if self.reason == "PartiallySucceeded" else "Succeeded"

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> RunSnapshot:
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        catalogue = status.get("catalogue") or {}
        ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == READY), {})
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            phase=str(status.get("phase") or ""),
            scheduled_time=str((meta.get("annotations") or {}).get(ANNOTATION_TICK) or ""),
            reason=str(ready.get("reason") or ""),
            items=int(catalogue.get("items") or 0),
            bytes=int(catalogue.get("bytes") or 0),
            location=catalogue.get("location"),
            finished_at=status.get("finishedAt"),
            deletion_policy=str((body.get("spec") or {}).get("deletionPolicy") or "Retain"),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
        )


@dataclass(frozen=True)
class SubscriptionSituation:
    """Everything one reconcile of a subscription decides from."""

    snapshot: SubscriptionSnapshot
    spec: GallerySubscriptionSpec | str
    """The parsed spec, or why it cannot run (naming the field)."""
    previous: Mapping[str, Any]
    """The status as this operator last wrote it (the cache may lag behind its own writes)."""
    now: datetime
    runs: Sequence[RunSnapshot] = ()
    """The GalleryDownloads controlled by the subscription's uid, in its namespace."""


# -- what the plan asks for ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRun:
    """Create a child GalleryDownload ("already exists" counts as created: the name is the tick's)."""

    body: dict[str, Any] = field(hash=False)
    due: datetime | None = None
    """When its tick fell due (tick plus spread), for a scheduled run: the schedule lag is measured from here."""


@dataclass(frozen=True)
class DeleteRun:
    """Delete a child GalleryDownload object (its files stay: runs are Retain). ``foreground``: it is gone only
    once its Job and pods are."""

    name: str
    foreground: bool = False


@dataclass(frozen=True)
class WriteStatus:
    status: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class PostEvent:
    kind: Literal["Normal", "Warning"]
    reason: Reason
    message: str


SubscriptionAction = SetFinalizers | CreateRun | DeleteRun | WriteStatus | PostEvent


@dataclass(frozen=True)
class SubscriptionPlan:
    actions: list[SubscriptionAction]
    requeue_after: float | None
    """Seconds until the subscription must be looked at again without any watch event (its next tick)."""
    run_outcomes: tuple[tuple[str, int | None], ...] = ()
    """(outcome, new items) of each run or tick this plan recorded as ended, skipped or missed (for the metrics)."""


# -- the plan -----------------------------------------------------------------------------------------------------


def parse_status(raw: Mapping[str, Any]) -> GallerySubscriptionStatus:
    """The stored status, or an empty one when it does not parse (an older operator's, or edited by hand)."""
    try:
        return GallerySubscriptionStatus.model_validate(raw)
    except ValidationError:
        return GallerySubscriptionStatus()


def stored(status: GallerySubscriptionStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def plan_subscription(situation: SubscriptionSituation) -> SubscriptionPlan:
    """The actions for one subscription, in the order they must run. Applying a plan twice is safe: run names are
    the ticks', deletions of what is gone and finalizers already set are no-ops."""
    snapshot, spec = situation.snapshot, situation.spec
    if snapshot.deleting:
        return _deletion(situation)
    actions: list[SubscriptionAction] = []
    wanted = isinstance(spec, GallerySubscriptionSpec) and spec.deletion_policy == "Delete"
    change = SetFinalizers.toward(snapshot.finalizers, FINALIZER, wanted, snapshot.resource_version)
    if change is not None:
        actions.append(change)
    previous = parse_status(situation.previous)
    if isinstance(spec, str):
        status = _conditions(previous, situation, stalled=("InvalidSpec", spec), active=None, suspended=False)
        update = {"message": spec[:1024], "next_schedule_time": None, "observed_generation": snapshot.generation}
        status = status.model_copy(update=update)
        return SubscriptionPlan(actions + _write(situation.previous, status), None)
    return _Planner(situation, spec, previous, actions).plan()


@dataclass
class _Planner:
    """One reconcile's working state: records as they change, actions as they are decided."""

    situation: SubscriptionSituation
    spec: GallerySubscriptionSpec
    previous: GallerySubscriptionStatus
    actions: list[SubscriptionAction]
    records: list[RunRecord] = field(default_factory=list)
    events: list[PostEvent] = field(default_factory=list)
    ended: list[tuple[str, int | None]] = field(default_factory=list)

    def plan(self) -> SubscriptionPlan:
        situation, spec, now = self.situation, self.spec, self.situation.now
        snapshot = situation.snapshot
        schedule = Schedule.of(spec, snapshot.uid, parse_time(snapshot.created))
        runs = {r.name: r for r in situation.runs if r.name != cleanup_name(snapshot.name)}
        self.records = [self._observe(record, runs.get(record.name or "")) for record in self.previous.runs]
        known = {r.name for r in self.records}
        # Runs the status does not name (the status write after their creation was lost): adopt them.
        self.records += [_adopted(run) for name, run in sorted(runs.items()) if name not in known]
        status = self.previous
        handled, waiting = self._requested(runs)
        last = parse_time(status.last_schedule_time) if status.last_schedule_time else None
        after = last or parse_time(snapshot.created) - timedelta(seconds=1)
        tick, passed = schedule.due(after, now)
        if tick is not None:
            last = tick
            if not spec.suspend:
                self._tick(schedule, tick, passed, runs)
        self._prune(runs)
        self.records = _bounded(self.records)
        active = self._active_record()
        finished = [r for r in self.records if r.outcome in SUCCESSFUL | {"Failed"}]
        library = self._library(runs)
        successes = [r.finished_at for r in finished if r.outcome in SUCCESSFUL and r.finished_at]
        next_due = None if spec.suspend else schedule.next_due(now)
        status = status.model_copy(
            update={
                "observed_generation": snapshot.generation,
                "schedule": schedule.describe(),
                "last_schedule_time": rfc3339(last) if last else None,
                "last_successful_time": max([*successes, status.last_successful_time or ""]) or None,
                "next_schedule_time": rfc3339(next_due) if next_due else None,
                "active": active,
                "runs": self.records,
                "new_items": finished[0].new_items if finished else status.new_items,
                "library": library,
                "last_handled_requested_at": handled,
                "message": waiting or _message(spec, active, next_due),
            }
        )
        stalled = _stalled(self.records)
        status = _conditions(status, self.situation, stalled, active=active, suspended=spec.suspend)
        actions = self.actions + _write(situation.previous, status) + self.events
        requeue = (next_due - now).total_seconds() if next_due else None
        if any(r.outcome == "Active" and r.name not in runs for r in self.records):
            requeue = min(requeue or 30.0, 30.0)  # a run just created and not seen yet: look again soon
        return SubscriptionPlan(actions, requeue, tuple(self.ended))

    def _requested(self, runs: dict[str, RunSnapshot]) -> tuple[str | None, str]:
        """A run on demand (a new `requested-at` value): started now, or waiting for the active run under Forbid.
        Returns the value handled and the waiting message."""
        snapshot, spec = self.situation.snapshot, self.spec
        handled, requested = self.previous.last_handled_requested_at, snapshot.requested_at
        if not requested or requested == handled or spec.suspend:
            return handled, ""
        if self._active() is not None and spec.concurrency_policy == "Forbid":
            return handled, f"run requested at {requested!r} waits for {self._active()} to end (Forbid)"
        self._start(requested_run_name(snapshot.name, requested), rfc3339(self.situation.now), "Requested", runs)
        return requested, ""

    def _library(self, runs: dict[str, RunSnapshot]) -> Library:
        """The library's totals from the newest ended run that reported the shared catalogue (one that failed early
        did not)."""
        latest = max(
            (r for r in self.records if r.name in runs and runs[r.name].finished and runs[r.name].location),
            key=lambda r: r.scheduled_time,
            default=None,
        )
        if latest is None:
            return self.previous.library
        run = runs[latest.name or ""]
        return Library(items=run.items, bytes=run.bytes, size=human_size(run.bytes), location=run.location)

    # -- runs ---------------------------------------------------------------------------------------------------

    def _observe(self, record: RunRecord, run: RunSnapshot | None) -> RunRecord:
        """A record brought up to date with its run: ended when the run ended, gone when it vanished."""
        if record.outcome != "Active":
            return record
        now = self.situation.now
        if run is None:
            started = parse_time(record.started_at or record.scheduled_time)
            if now - started < CREATION_GRACE:
                return record  # created by this operator moments ago; the cache does not show it yet
            self._event("Warning", "RunDeleted", f"run {record.name} was deleted before it ended")
            self.ended.append(("Failed", None))
            return record.model_copy(update={"outcome": "Failed", "reason": "RunDeleted", "finished_at": rfc3339(now)})
        if not run.finished:
            return record
        new_items = max(0, run.items - record.items_before)
        outcome = run.outcome
        reason = run.reason if outcome == "Failed" and run.reason else None
        self.ended.append((outcome, new_items))
        kind: Literal["Normal", "Warning"] = "Warning" if outcome == "Failed" else "Normal"
        why = f" ({reason})" if reason else ""
        self._event(
            kind,
            "RunFailed" if outcome == "Failed" else "RunSucceeded",
            f"run {run.name} {outcome.lower()}{why}: {new_items} new items, {run.items} in the library",
        )
        return record.model_copy(
            update={
                "outcome": outcome,
                "reason": reason,
                "new_items": new_items,
                "finished_at": run.finished_at or rfc3339(now),
            }
        )

    def _active_record(self) -> ActiveRun | None:
        record = next((r for r in self.records if r.outcome == "Active" and r.name), None)
        return ActiveRun(name=record.name, scheduled_time=record.scheduled_time) if record and record.name else None

    def _active(self) -> str | None:
        active = self._active_record()
        return active.name if active else None

    def _tick(self, schedule: Schedule, tick: datetime, passed: int, runs: Mapping[str, RunSnapshot]) -> None:
        now, deadline = self.situation.now, self.spec.starting_deadline_seconds
        stamp = rfc3339(tick)
        late = now - (tick + schedule.spread)
        if deadline is not None and late > timedelta(seconds=deadline):
            self._record(RunRecord(scheduled_time=stamp, outcome="Missed", ticks=passed + 1))
            self._event("Warning", "RunMissed", f"tick {stamp} missed by {int(late.total_seconds())}s (deadline)")
            return
        if passed:
            self._record(RunRecord(scheduled_time=stamp, outcome="Missed", ticks=passed))
            self._event("Warning", "RunMissed", f"{passed} ticks before {stamp} missed; one catch-up run")
        name = run_name(self.situation.snapshot.name, tick)
        if name in runs or any(r.name == name for r in self.records):
            return  # made before a restart, or already recorded: never a second run for one tick
        active = self._active()
        if active is not None and self.spec.concurrency_policy == "Forbid":
            self._skipped(stamp)
            self._event("Normal", "RunSkipped", f"tick {stamp} skipped: {active} is still active (Forbid)")
            return
        trigger: RunTrigger = "CatchUp" if passed or late > CATCH_UP_AFTER else "Schedule"
        self._start(name, stamp, trigger, runs, due=tick + schedule.spread)

    def _start(
        self, name: str, stamp: str, trigger: RunTrigger, runs: Mapping[str, RunSnapshot], due: datetime | None = None
    ) -> None:
        if name in runs or any(r.name == name for r in self.records):
            return
        active = self._active()
        if active is not None:  # Replace (Forbid never gets here with an active run)
            self.actions.append(DeleteRun(active))
            self.records = [
                r.model_copy(update={"outcome": "Replaced", "finished_at": rfc3339(self.situation.now)})
                if r.name == active
                else r
                for r in self.records
            ]
            self.ended.append(("Replaced", None))
            self._event("Normal", "RunReplaced", f"run {active} stopped for {name} (Replace); its files stay")
        snapshot = self.situation.snapshot
        items = self.previous.library.items
        self.actions.append(CreateRun(build_run(snapshot, self.spec, name, stamp, trigger), due))
        self._record(
            RunRecord(
                name=name,
                trigger=trigger,
                scheduled_time=stamp,
                items_before=items,
                started_at=rfc3339(self.situation.now),
            )
        )
        self._event("Normal", "RunCreated", f"run {name} created ({trigger.lower()}, tick {stamp})")

    def _prune(self, runs: Mapping[str, RunSnapshot]) -> None:
        """Delete the run objects beyond the history limits (newest kept); their files stay."""
        finished = sorted((r for r in runs.values() if r.finished and not r.deleting), key=_tick_order, reverse=True)
        kept = {"ok": self.spec.successful_runs_history_limit, "failed": self.spec.failed_runs_history_limit}
        for run in finished:
            bucket = "failed" if run.phase == "Failed" else "ok"
            if kept[bucket] > 0:
                kept[bucket] -= 1
                continue
            if run.deletion_policy != "Retain" or DOWNLOAD_FINALIZER in run.finalizers:
                continue  # changed by hand to delete its files: pruning never deletes data
            self.actions.append(DeleteRun(run.name))

    def _skipped(self, stamp: str) -> None:
        """A tick skipped under Forbid: one more on the newest record when that is a skipped one already (a long run
        under a short interval would otherwise fill the bounded record with them)."""
        newest = max(self.records, key=lambda r: r.scheduled_time, default=None)
        if newest is None or newest.outcome != "Skipped":
            self._record(RunRecord(scheduled_time=stamp, outcome="Skipped", ticks=1))
            return
        folded = newest.model_copy(update={"scheduled_time": stamp, "ticks": newest.ticks + 1})
        self.records = [folded if r is newest else r for r in self.records]
        self.ended.append(("Skipped", None))

    def _record(self, record: RunRecord) -> None:
        self.records.insert(0, record)
        if record.outcome in {"Skipped", "Missed"}:
            self.ended.append((record.outcome, None))

    def _event(self, kind: Literal["Normal", "Warning"], reason: Reason, message: str) -> None:
        self.events.append(PostEvent(kind, reason, message))


def _tick_order(run: RunSnapshot) -> tuple[str, str]:
    return (run.scheduled_time, run.name)


def _sorted(records: list[RunRecord]) -> list[RunRecord]:
    """Newest first: by tick, an active run before ended ones of the same tick."""
    return sorted(records, key=lambda r: (r.scheduled_time, r.outcome == "Active"), reverse=True)


def _bounded(records: list[RunRecord]) -> list[RunRecord]:
    """The newest MAX_RUN_RECORDS records, an active run's always among them (skipped ticks never push it out)."""
    ordered = _sorted(records)
    active = [r for r in ordered if r.outcome == "Active"]
    others = [r for r in ordered if r.outcome != "Active"][: max(0, MAX_RUN_RECORDS - len(active))]
    return _sorted(active + others)


def _adopted(run: RunSnapshot) -> RunRecord:
    """A record for a run the status does not name: its creation's status write was lost (it is followed from
    here), or its record fell off the bounded list (it ended and was counted then: recorded as ended, no Event)."""
    if not run.finished:
        return RunRecord(name=run.name, scheduled_time=run.scheduled_time, outcome="Active")
    reason = run.reason if run.outcome == "Failed" and run.reason else None
    return RunRecord(
        name=run.name,
        scheduled_time=run.scheduled_time,
        outcome=run.outcome,
        reason=reason,
        finished_at=run.finished_at,
    )


def _stalled(records: Sequence[RunRecord]) -> tuple[str, str] | None:
    """(reason, message) when the latest runs all failed for the same kind of permanent reason."""
    ended = [r for r in records if r.outcome in SUCCESSFUL | {"Failed"}][:STALL_AFTER_FAILURES]
    if len(ended) < STALL_AFTER_FAILURES or not all(r.reason in PERMANENT_REASONS for r in ended):
        return None
    reason = ended[0].reason or "Internal"
    return reason, f"the last {STALL_AFTER_FAILURES} runs failed ({reason}); fix the template or its credentials"


def _message(spec: GallerySubscriptionSpec, active: ActiveRun | None, next_due: datetime | None) -> str:
    if active is not None:
        return f"run {active.name} is active"
    if spec.suspend:
        return "suspended: no new runs"
    return f"next run at {rfc3339(next_due)}" if next_due else ""


def _conditions(
    status: GallerySubscriptionStatus,
    situation: SubscriptionSituation,
    stalled: tuple[str, str] | None,
    active: ActiveRun | None,
    suspended: bool,
) -> GallerySubscriptionStatus:
    ready: tuple[bool, str, str]
    if stalled is not None:
        ready = (False, stalled[0], stalled[1])
    elif suspended:
        ready = (True, "Suspended", "spec.suspend is true: no new runs")
    elif active is not None:
        ready = (True, "RunActive", f"run {active.name} is active")
    else:
        ready = (True, "Scheduled", status.message)
    generation, now = situation.snapshot.generation, rfc3339(situation.now)
    reconciling = (active is not None, "RunActive" if active else "Idle", f"run {active.name}" if active else "")
    stall = (stalled is not None, stalled[0] if stalled else "Healthy", stalled[1] if stalled else "")
    before = {c.type: c for c in status.conditions}
    conditions = []
    for kind, (value, reason, message) in ((READY, ready), (RECONCILING, reconciling), (STALLED, stall)):
        text = "True" if value else "False"
        old = before.get(kind)
        changed = old is None or old.status != text or old.reason != reason
        conditions.append(
            {
                "type": kind,
                "status": text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now if changed or old is None else old.last_transition_time,
                "observedGeneration": generation,
            }
        )
    return status.model_copy(update={"conditions": [Condition.model_validate(c) for c in conditions]})


def _write(before: Mapping[str, Any], status: GallerySubscriptionStatus) -> list[SubscriptionAction]:
    after = stored(status)
    return [WriteStatus(after)] if after != dict(before) else []


def run_target(spec: GallerySubscriptionSpec, subscription: str) -> dict[str, Any]:
    """The template's target with the library's folder or prefix filled in: every run writes to the same place."""
    target = spec.download_template.target.model_dump(mode="json", by_alias=True, exclude_none=True)
    if "pvc" in target:
        target["pvc"].setdefault("subPath", subscription)
    else:
        target["s3"].setdefault("prefix", subscription)
    return target


def build_run(
    snapshot: SubscriptionSnapshot,
    spec: GallerySubscriptionSpec,
    name: str,
    stamp: str,
    trigger: RunTrigger | Literal["Cleanup"],
) -> dict[str, Any]:
    """A run's GalleryDownload: the template, writing to the library, deletionPolicy Retain (deleting the object
    never deletes files), controlled by the subscription. The cleanup child is the one exception: suspended (it never
    runs a worker) and deletionPolicy Delete (its deletion removes the library)."""
    body = spec.download_template.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["target"] = run_target(spec, snapshot.name)
    cleanup = trigger == "Cleanup"
    body["deletionPolicy"] = "Delete" if cleanup else "Retain"
    body["suspend"] = cleanup
    if spec.stop_after_known is not None:
        body["options"] = {**body.get("options", {}), "stopAfterKnown": spec.stop_after_known}
    made: dict[str, Any] = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": snapshot.namespace,
            "labels": {LABEL_SUBSCRIPTION: label_value(snapshot.name), "app.kubernetes.io/managed-by": MANAGED_BY},
            "annotations": {ANNOTATION_TICK: stamp, ANNOTATION_TRIGGER: trigger},
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": SUBSCRIPTION_KIND,
                    "name": snapshot.name,
                    "uid": snapshot.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": body,
    }
    if cleanup:
        # Protected from its first moment: however it is deleted (by this plan, or by the garbage collector under
        # a foreground deletion of the subscription), the download's cleanup Job removes the library first.
        made["metadata"]["finalizers"] = [DOWNLOAD_FINALIZER]
    return made


def _deletion(situation: SubscriptionSituation) -> SubscriptionPlan:
    """A subscription being deleted. Retain: nothing to do (its runs go with it, their files stay). Delete: stop and
    remove every run, then create the cleanup child, then delete it once the download's finalizer protects it (its
    cleanup Job removes the library), then release the subscription when it is gone."""
    snapshot, spec = situation.snapshot, situation.spec
    if FINALIZER not in snapshot.finalizers:
        return SubscriptionPlan([], None)
    others = tuple(f for f in snapshot.finalizers if f != FINALIZER)
    release = SubscriptionPlan([SetFinalizers(others, snapshot.resource_version)], None)
    if not isinstance(spec, GallerySubscriptionSpec) or spec.deletion_policy != "Delete":
        return release
    cleanup = cleanup_name(snapshot.name)
    previous = parse_status(situation.previous)
    removing = previous.message == REMOVING
    runs = [r for r in situation.runs if r.name != cleanup]
    child = next((r for r in situation.runs if r.name == cleanup), None)
    if runs:
        # Their Jobs and pods first (foreground): no worker may still write while the library is removed.
        actions: list[SubscriptionAction] = [DeleteRun(r.name, foreground=True) for r in runs if not r.deleting]
        return SubscriptionPlan(actions, 5.0)
    if child is None:
        if removing:
            return release  # the cleanup child is gone: its cleanup Job has removed the library
        body = build_run(snapshot, spec, cleanup, rfc3339(situation.now), "Cleanup")
        return SubscriptionPlan([CreateRun(body)], 5.0)
    if DOWNLOAD_FINALIZER not in child.finalizers:
        return SubscriptionPlan([], 2.0)  # the download controller has not protected it yet
    status = previous.model_copy(update={"message": REMOVING})
    actions = [*_write(situation.previous, status)]
    if not child.deleting:
        actions += [DeleteRun(cleanup), PostEvent("Normal", "RemovingLibrary", f"removing the library ({cleanup})")]
    return SubscriptionPlan(actions, 5.0)


REMOVING = "deletionPolicy Delete: removing the library"
