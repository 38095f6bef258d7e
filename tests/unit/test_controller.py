"""The coordinator with the recording fake of the Kube facade (tests/unit/builders.py): gather -> plan -> apply,
admission across downloads, and what happens when the API server refuses or fails. (The same paths run against the
real control plane in tests/e2e/test_operator.py.)"""

from __future__ import annotations

import dataclasses
import datetime

from kubernetes.client.rest import ApiException

from gallery_operator.download import Download
from gallery_operator.jobs import cleanup_job_name, run_id
from gallery_operator.keys import Key
from gallery_operator.plan import FINALIZER
from gallery_operator.workerconfig import Report
from tests.unit.builders import job_appears, parsed, reconcile, snapshot, taken, world


def test_slots_go_by_priority_and_a_finished_job_hands_its_slot_on() -> None:
    controller, fake = world(snapshot("low", -1), snapshot("high", 5), snapshot("mid"), max_active_per_namespace=1)
    reconcile(controller, "low")
    assert taken(controller) == {Key("ns", "high")}  # granted while low was reconciled: high's reconcile creates it
    reconcile(controller, "mid", "high")
    [started] = fake.named("create_job")
    assert started.startswith("high-")  # the queue was seeded from the cache: order holds from the first grant
    assert fake.phases("low") == ["Queued"] and fake.phases("mid") == ["Queued"]
    positions = {name: patch.get("queuePosition") for name, patch in fake.named("patch_status")}
    assert positions == {"low": 2, "mid": 1, "high": None}
    job_appears(controller, "high", started)
    assert not taken(controller)  # the Job holds the slot now: nobody is granted
    job_appears(controller, "high", started, active=False)  # it finished: its slot goes to the next in line
    assert taken(controller) == {Key("ns", "mid")}
    reconcile(controller, "mid")
    assert fake.named("create_job")[-1].startswith("mid-")


def test_a_vanished_job_with_a_final_report_is_not_started_again() -> None:
    """The Job is gone (removed by hand, or by its TTL before its end was seen) but its final report is held: the
    run ends with that report instead of a second Job."""
    running = dataclasses.replace(snapshot("dl"), status={"phase": "Running"})
    controller, fake = world(running)
    current = parsed(running)
    final = Report(run=run_id(current), final=True, outcome="Succeeded", items_done=3, catalogue_items=3)
    assert controller.accept_report(Key("ns", "dl"), run_id(current), "pod", final)
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
    assert not fake.phases("bad") and (controller.terminal(Key("ns", "bad")) or ())[:2] == ("uid-bad", 1)
    assert isinstance(controller.parsed(Key("ns", "bad")), Download)
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
    assert controller.admission.grant(Key("ns", "a")) is None
    fake.refuse = None
    reconcile(controller, "a")  # the retry: a is still first in line
    assert fake.named("create_job")[-1].startswith("a-")


def test_a_deleted_download_gives_back_its_place() -> None:
    controller, _ = world(snapshot("a"), snapshot("b"), snapshot("c"), max_active_per_namespace=1)
    reconcile(controller, "a", "b", "c")
    assert controller.admission.position(Key("ns", "c")) == 2
    downloads = controller.downloads
    assert isinstance(downloads, dict)
    del downloads[Key("ns", "b")]
    reconcile(controller, "b")
    assert controller.admission.position(Key("ns", "c")) == 1


def test_queue_positions_are_refreshed_from_the_head_within_the_budget() -> None:
    """One admission moves everyone behind it, but only the refresh rewrites positions: the first
    `queue_refresh_writes` of the queue whose shown position is stale, per refresh."""
    names = ["a", "b", "c", "d", "e"]
    snapshots = [snapshot(n, created=f"2026-11-22T10:00:0{i}Z") for i, n in enumerate(names)]
    controller, fake = world(*snapshots, max_active_per_namespace=1, queue_refresh_writes=2)

    def shown() -> dict[str, int | None]:
        return {n: fake.statuses[n].get("queuePosition") for n in names}

    reconcile(controller, *names)
    assert shown() == {"a": None, "b": 1, "c": 2, "d": 3, "e": 4}
    taken(controller)
    job_appears(controller, "a", fake.named("create_job")[0], active=False)  # a ended: b starts
    assert taken(controller) == {Key("ns", "b")}
    reconcile(controller, "b")
    assert shown() == {"a": None, "b": None, "c": 2, "d": 3, "e": 4}  # nobody else was rewritten
    controller.refresh_positions()
    assert taken(controller) == {Key("ns", "c"), Key("ns", "d")}  # the head of the queue, within the budget
    reconcile(controller, "c", "d")
    controller.refresh_positions()
    assert taken(controller) == {Key("ns", "e")}  # the next refresh reaches further back
    reconcile(controller, "e")
    assert shown() == {"a": None, "b": None, "c": 1, "d": 2, "e": 3}
    controller.refresh_positions()
    assert not taken(controller)  # every shown position is current: no writes


def test_the_event_that_ends_a_deletion_is_posted_before_the_finalizer_goes() -> None:
    """Under deletionPolicy Delete, the Event saying what became of the data (DataDeleted here) is on the API server
    before the finalizer is released (the download can vanish at once after that); other Events go out through the
    outbox, off the reconcile path."""
    delete = dataclasses.replace(snapshot("c"), spec={**snapshot("c").spec, "deletionPolicy": "Delete"})
    controller, fake = world(delete)
    downloads = controller.downloads
    assert isinstance(downloads, dict)
    just_now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    deleting = dataclasses.replace(delete, deletion_timestamp=just_now, finalizers=(FINALIZER,))
    downloads[Key("ns", "c")] = [deleting]
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    fake.job_reads[cleanup_job_name(parsed(delete))] = complete
    reconcile(controller, "c")
    order = [name for name, _ in fake.calls if name in ("post_event", "set_finalizers")]
    assert order == ["post_event", "set_finalizers"], fake.calls
    assert fake.named("post_event") == ["DataDeleted"]
