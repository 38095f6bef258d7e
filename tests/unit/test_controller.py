"""The coordinator with a recording fake of the Kube facade: gather -> plan -> apply, admission across downloads,
and what happens when the API server refuses or fails. (The same paths run against the real control plane in
tests/e2e/test_operator.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from kubernetes.client.rest import ApiException

from gallery_operator import kube
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import Download, run_id
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot, JobView
from gallery_operator.workerconfig import Report


class RecordingKube:
    """Records every call; `refuse` makes Job creation fail with that HTTP status."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.pods: dict[tuple[str, str], int] = {}
        """Pods count_pods finds, by (namespace, field selector)."""
        self.job_list: dict[str, list[dict[str, Any]]] = {}
        """Jobs job_bodies finds, by namespace."""
        self.refuse: int | None = None

    async def create_job(self, job: dict[str, Any]) -> bool:
        self.calls.append(("create_job", job["metadata"]["name"]))
        if self.refuse is not None:
            raise ApiException(status=self.refuse, reason="refused")
        return True

    async def create_pvc(self, pvc: dict[str, Any]) -> None:
        self.calls.append(("create_pvc", pvc["metadata"]["name"]))

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", name))

    async def keep_network_policy(self, policy: dict[str, Any]) -> None:
        self.calls.append(("keep_network_policy", policy["metadata"]["namespace"]))

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_network_policy", namespace))

    async def set_job_suspended(self, namespace: str, name: str, suspended: bool) -> None:
        self.calls.append(("set_job_suspended", (name, suspended)))

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch_status", (name, patch)))

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        self.calls.append(("set_finalizers", (name, finalizers)))

    async def list_jobs(self, namespace: str, selector: str, owner_uid: str) -> list[str]:
        self.calls.append(("list_jobs", owner_uid.removeprefix("uid-")))
        return []

    async def job_bodies(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self.job_list.get(namespace, [])

    async def count_pods(self, namespace: str, selector: str, fields: str = "") -> int:
        return self.pods.get((namespace, fields), 0)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str]]:
        return []

    async def post_event(self, reference: kube.ObjectRef, kind: str, reason: str, message: str) -> None:
        self.calls.append(("post_event", reason))

    def named(self, call: str) -> list[Any]:
        return [argument for name, argument in self.calls if name == call]

    def phases(self, download: str) -> list[str]:
        return [p["phase"] for name, p in self.named("patch_status") if name == download and "phase" in p]


def snapshot(name: str, priority: int = 0, created: str = "2026-11-22T10:00:00Z") -> DownloadSnapshot:
    spec = {"urls": [f"https://example.org/{name}.jpg"], "target": {"pvc": {"claimName": "m"}}, "priority": priority}
    meta = {"namespace": "ns", "name": name, "uid": f"uid-{name}", "generation": 1, "creationTimestamp": created}
    return DownloadSnapshot.of({"metadata": meta, "spec": spec})


def world(*snapshots: DownloadSnapshot, **settings: Any) -> tuple[Controller, RecordingKube]:
    fake = RecordingKube()
    downloads = {s.key: [s] for s in snapshots}
    names: dict[str, list[str]] = {}
    for s in snapshots:
        names.setdefault(s.namespace, []).append(s.name)
    controller = Controller(Settings(**settings), downloads, {}, api=fake, namespace_downloads=names)
    return controller, fake


def reconcile(controller: Controller, *names: str) -> None:
    async def run() -> None:
        for name in names:
            await controller.reconcile(("ns", name))

    asyncio.run(run())


def taken(controller: Controller) -> set[tuple[str, str]]:
    """The keys waiting in the work queue (taken out: the test runs the reconciles itself)."""
    keys = set(controller.work._queued)
    controller.work._queued.clear()
    return keys


def job_appears(controller: Controller, name: str, job: str, active: bool = True) -> None:
    """What the Job watch does: the cache gets the Job, then the handler tells the controller."""
    status = {"active": 1, "ready": 1} if active else {"conditions": [{"type": "Complete", "status": "True"}]}
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    jobs[f"uid-{name}"] = [JobSnapshot("ns", job, f"job-{name}", "run", False, JobView.of({"status": status}))]
    controller.observe_job("ns", job, active, gone=False, uid=f"job-{name}", owner=f"uid-{name}")


def test_slots_go_by_priority_and_a_finished_job_hands_its_slot_on() -> None:
    controller, fake = world(snapshot("low", -1), snapshot("high", 5), snapshot("mid"), max_active_per_namespace=1)
    reconcile(controller, "low")
    assert taken(controller) == {("ns", "high")}  # granted while low was reconciled: high's reconcile creates it
    reconcile(controller, "mid", "high")
    [started] = fake.named("create_job")
    assert started.startswith("high-")  # the queue was seeded from the cache: order holds from the first grant
    assert fake.phases("low") == ["Queued"] and fake.phases("mid") == ["Queued"]
    positions = {name: patch.get("queuePosition") for name, patch in fake.named("patch_status")}
    assert positions == {"low": 2, "mid": 1, "high": None}
    job_appears(controller, "high", started)
    assert not taken(controller)  # the Job holds the slot now: nobody is granted
    job_appears(controller, "high", started, active=False)  # it finished: its slot goes to the next in line
    assert taken(controller) == {("ns", "mid")}
    reconcile(controller, "mid")
    assert fake.named("create_job")[-1].startswith("mid-")


def test_a_vanished_job_with_a_final_report_is_not_started_again() -> None:
    """The Job is gone (removed by hand, or by its TTL before its end was seen) but its final report is held: the
    run ends with that report instead of a second Job."""
    running = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    controller, fake = world(running)
    parsed = controller._parse(running)
    assert isinstance(parsed, Download)
    final = Report(run=run_id(parsed), final=True, outcome="Succeeded", items_done=3, catalogue_items=3)
    assert controller.accept_report(("ns", "dl"), run_id(parsed), "pod", final)
    reconcile(controller, "dl")
    assert not fake.named("create_job")
    [(_, patch)] = fake.named("patch_status")
    assert patch["phase"] == "Succeeded" and patch["progress"]["itemsDone"] == 3


def test_a_job_the_api_server_refuses_fails_the_spec_and_frees_the_slot() -> None:
    controller, fake = world(snapshot("bad", 1), snapshot("good"), max_active_per_namespace=1)
    fake.refuse = 422
    reconcile(controller, "bad")
    # A terminal outcome, remembered for this generation (not written into the parsed spec), and the download is
    # queued again instead of reconciled recursively: the next reconcile writes it.
    assert not fake.phases("bad") and controller._terminal[("ns", "bad")][:2] == ("uid-bad", 1)
    assert isinstance(controller._parsed[("ns", "bad")][2], Download)
    assert taken(controller) == {("ns", "good"), ("ns", "bad")}  # the slot went on
    reconcile(controller, "bad")
    assert fake.phases("bad") == ["Failed"]
    assert "refused the worker's Job" in fake.named("patch_status")[-1][1]["message"]
    assert len(fake.named("create_job")) == 1 and not taken(controller)  # not asked again
    fake.refuse = None
    reconcile(controller, "good")
    assert fake.named("create_job")[-1].startswith("good-")


def test_a_failed_create_gives_the_slot_back_and_retries() -> None:
    controller, fake = world(snapshot("a", 1), snapshot("b"), max_active_per_namespace=1)
    fake.refuse = 500
    try:
        reconcile(controller, "a")
    except ApiException:
        pass
    else:
        raise AssertionError("the error must reach the work queue, which retries with backoff")
    assert controller.admission.grant(("ns", "a")) is None
    fake.refuse = None
    reconcile(controller, "a")  # the retry: a is still first in line
    assert fake.named("create_job")[-1].startswith("a-")


def test_a_deleted_download_gives_back_its_place() -> None:
    controller, _ = world(snapshot("a"), snapshot("b"), snapshot("c"), max_active_per_namespace=1)
    reconcile(controller, "a", "b", "c")
    assert controller.admission.position(("ns", "c")) == 2
    downloads = controller.downloads
    assert isinstance(downloads, dict)
    del downloads[("ns", "b")]
    reconcile(controller, "b")
    assert controller.admission.position(("ns", "c")) == 1


def test_queue_positions_are_refreshed_from_the_head_within_the_budget() -> None:
    """One admission moves everyone behind it, but only the refresh rewrites positions: the first
    `queue_refresh_writes` of the queue whose shown position is stale, per refresh."""
    names = ["a", "b", "c", "d", "e"]
    snapshots = [snapshot(n, created=f"2026-11-22T10:00:0{i}Z") for i, n in enumerate(names)]
    controller, fake = world(*snapshots, max_active_per_namespace=1, queue_refresh_writes=2)

    def shown() -> dict[str, int | None]:
        return {n: controller._written[("ns", n)][1].get("queuePosition") for n in names}

    reconcile(controller, *names)
    assert shown() == {"a": None, "b": 1, "c": 2, "d": 3, "e": 4}
    taken(controller)
    job_appears(controller, "a", fake.named("create_job")[0], active=False)  # a ended: b starts
    assert taken(controller) == {("ns", "b")}
    reconcile(controller, "b")
    assert shown() == {"a": None, "b": None, "c": 2, "d": 3, "e": 4}  # nobody else was rewritten
    controller.refresh_positions()
    assert taken(controller) == {("ns", "c"), ("ns", "d")}  # the head of the queue, within the budget
    reconcile(controller, "c", "d")
    controller.refresh_positions()
    assert taken(controller) == {("ns", "e")}  # the next refresh reaches further back
    reconcile(controller, "e")
    assert shown() == {"a": None, "b": None, "c": 1, "d": 2, "e": 3}
    controller.refresh_positions()
    assert not taken(controller)  # every shown position is current: no writes
