"""A standby's pre-planning (Controller.preplan) and the rule that lets a settled download be looked at without an
API call (plan.unrecorded_end): a takeover's first reconciles are the ones that write. With the recording fake of
the facade (tests/unit/builders.py); the takeover itself runs on the real control plane in
tests/e2e/test_leader_election.py and bench/failover.py."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from gallery_operator.api.status import GalleryDownloadStatus
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import job_name, run_id
from gallery_operator.keys import Key
from gallery_operator.networkpolicy import worker_network_policy
from gallery_operator.plan import Situation, unrecorded_end
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot, JobView, PolicySnapshot
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Report
from tests.unit.builders import RecordingKube, parsed, reconcile, snapshot

T0 = "2026-11-22T10:00:00Z"
COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}], "startTime": T0}
ACTIVE = {"active": 1, "ready": 1, "startTime": T0}


class ReadingKube(RecordingKube):
    """The recording fake, counting the termination-message reads too."""

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]:
        self.calls.append(("termination_messages", job_name))
        return []


def job_of(snap: DownloadSnapshot, status: dict[str, Any]) -> JobSnapshot:
    return JobSnapshot("ns", job_name(parsed(snap)), f"job-{snap.name}", "run", False, JobView.of({"status": status}))


def status_of(snap: DownloadSnapshot, *views: dict[str, Any]) -> dict[str, Any]:
    """The status as the leader wrote it after seeing the run's Job in each of these states."""
    status: dict[str, Any] = {}
    for view in views:
        observation = Observation(1, T0, job_name=job_name(parsed(snap)), job=JobView.of({"status": view}))
        status = stored_status(status, observation)
    return status


def with_run(snap: DownloadSnapshot, *views: dict[str, Any]) -> DownloadSnapshot:
    return dataclasses.replace(snap, status=status_of(snap, *views))


def situation_of(snap: DownloadSnapshot, job: dict[str, Any], report: Report | None = None) -> Situation:
    previous = GalleryDownloadStatus.of_stored(snap.status)
    return Situation(snap, parsed(snap), previous, T0, (job_of(snap, job),), report)


def test_an_ended_run_is_read_from_its_termination_message_only_until_its_end_is_recorded() -> None:
    running, settled = with_run(snapshot("a"), ACTIVE), with_run(snapshot("a"), ACTIVE, COMPLETE)
    name = job_name(parsed(running))
    assert settled.status["phase"] == "Succeeded" and running.status["phase"] == "Running"
    ended = unrecorded_end(situation_of(running, COMPLETE), name)
    assert ended is not None and ended.name == name  # ended, not recorded: its final report is read
    assert unrecorded_end(situation_of(settled, COMPLETE), name) is None  # recorded: nothing to read
    assert unrecorded_end(situation_of(running, ACTIVE), name) is None  # still running
    final = Report(run=run_id(parsed(running)), final=True, outcome="Succeeded", items_done=1, catalogue_items=1)
    held = unrecorded_end(situation_of(running, COMPLETE, final), name)
    assert held is not None and held.name == name  # with the final report held too: a pod the Job did not count
    assert unrecorded_end(situation_of(running, COMPLETE), "another-run") is None  # not the current run's Job


class TracedController(Controller):
    """The controller, noting the keys its work queue hands to reconcile, in order."""

    handled: list[Key]

    async def reconcile(self, key: Key) -> None:
        self.handled.append(key)
        await super().reconcile(key)


def standby_world() -> tuple[TracedController, ReadingKube, dict[str, Key]]:
    """A standby's caches: a settled download (its end recorded), one running, one whose Job ended while nobody led
    (its end not recorded), a new one (no Job yet), and a key of a download deleted meanwhile. One reconciler."""
    settled, running = with_run(snapshot("settled"), ACTIVE, COMPLETE), with_run(snapshot("running"), ACTIVE)
    ended, new = with_run(snapshot("ended"), ACTIVE), snapshot("new")
    downloads = {s.key: [s] for s in (settled, running, ended, new)}
    jobs = {
        snap.uid: [job_of(snap, view)] for snap, view in ((settled, COMPLETE), (running, ACTIVE), (ended, COMPLETE))
    }
    names = {"ns": [key.name for key in downloads]}
    fake = ReadingKube()
    settings = Settings(max_active_per_namespace=10, concurrency=1)
    walls = {"ns": [PolicySnapshot.of(worker_network_policy("ns", settings))]}  # the namespace's wall is up
    controller = TracedController(settings, downloads, jobs, api=fake, namespace_downloads=names, policies=walls)
    controller.handled = []
    keys = {name: Key("ns", name) for name in ("settled", "running", "ended", "new", "deleted")}
    return controller, fake, keys


def test_a_standby_keeps_for_its_takeover_only_the_keys_whose_reconcile_writes() -> None:
    controller, fake, keys = standby_world()
    for key in keys.values():
        controller.enqueue(key)  # what the watches queue on a standby
    controller.preplan()
    assert fake.calls == [], "a standby judges from its caches and memories: no API call, no write"
    assert controller.pending() == [keys["ended"], keys["new"]]
    assert not controller.work.drain(), "judged keys leave the queue"
    # The judgement is the reconcile's: each key dropped writes nothing when the leader reconciles it, each kept one
    # writes (or reads the ended run's final report first).
    for name, key in keys.items():
        before = len(fake.calls)
        reconcile(controller, key.name)
        calls = [call for call, _ in fake.calls[before:]]
        if key in controller.pending():
            assert calls, f"{name}: judged to write, wrote nothing"
        else:
            assert not calls, f"{name}: judged settled, but its reconcile made {calls}"
    assert [c for c, _ in fake.calls].count("termination_messages") == 1  # the ended run's only


def test_a_key_judged_again_follows_its_latest_state() -> None:
    """A download judged to write and then seen settled (the old leader's write arrived late) leaves the takeover's
    list; a settled one whose Job then ends joins it."""
    controller, _, keys = standby_world()
    controller.enqueue(keys["ended"])
    controller.preplan()
    assert controller.pending() == [keys["ended"]]
    downloads = controller.downloads
    assert isinstance(downloads, dict)
    [ended] = downloads[keys["ended"]]
    downloads[keys["ended"]] = [with_run(ended, ACTIVE, COMPLETE)]  # its end recorded after all
    controller.enqueue(keys["ended"])
    controller.preplan()
    assert controller.pending() == []
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    [running] = downloads[keys["running"]]
    jobs[running.uid] = [job_of(running, COMPLETE)]  # its Job ends: the watch queues it
    controller.enqueue(keys["running"])
    controller.preplan()
    assert controller.pending() == [keys["running"]]


def test_a_takeover_reconciles_the_kept_keys_first_and_every_other_download_once_behind_them() -> None:
    controller, fake, keys = standby_world()
    for key in keys.values():
        controller.enqueue(key)
    controller.preplan()

    async def takeover() -> None:
        controller.start()
        while len(controller.handled) < 4 or len(controller.work):
            await asyncio.sleep(0.01)
        await controller.stop()

    asyncio.run(asyncio.wait_for(takeover(), 30))  # a bound for a broken queue, not a timing claim
    assert controller.handled[:2] == [keys["ended"], keys["new"]]
    assert sorted(controller.handled[2:]) == sorted([keys["settled"], keys["running"]])
    assert [c for c, _ in fake.calls].count("termination_messages") == 1


def test_a_long_queue_is_judged_in_batches_and_the_keys_not_judged_yet_stay_queued() -> None:
    controller, fake, keys = standby_world()
    for key in keys.values():
        controller.enqueue(key)
    assert controller.preplan(2)  # settled and running judged (dropped); the rest wait
    assert controller.pending() == [] and len(controller.work) == 3
    assert controller.preplan(2)
    assert controller.pending() == [keys["ended"], keys["new"]] and len(controller.work) == 1
    assert not controller.preplan(2)  # the deleted download's key: dropped
    assert controller.pending() == [keys["ended"], keys["new"]] and len(controller.work) == 0
    assert fake.calls == []
