"""GallerySubscription end to end: the local control plane, the operator, and the real worker running each run
against the fixture site, whose gallery grows between runs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gallery_harness import build
from gallery_harness.kube import absent, create_claim
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_harness.site import Handler, image_bytes
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.schedule import parse_time, rfc3339, run_name
from gallery_operator.subscription_plan import SubscriptionSnapshot, build_run
from tests.component.workers import feed
from tests.conftest import Cluster
from tests.e2e.subscription_parts import YEARLY, Subscriptions, annotated, remaining, template

pytestmark = pytest.mark.e2e


@pytest.fixture
def subscriptions(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Subscriptions:
    create_claim(cluster.api, namespace)
    return Subscriptions(cluster.api, namespace)


@pytest.fixture
def growing_gallery() -> Iterator[type[Handler]]:
    """The site's /gallery/ page, whose number of images a test changes (put back afterwards)."""
    before = Handler.images
    yield Handler
    Handler.images = before


def hits(*numbers: int) -> list[int]:
    return [Handler.hits.get(f"/img/{n}.jpg", 0) for n in numbers]


def test_a_growing_gallery_is_stored_once_across_runs_and_kept_after_deletion(
    cluster: Cluster, subscriptions: Subscriptions, site: str, growing_gallery: type[Handler]
) -> None:
    growing_gallery.images = 3
    before = hits(1, 2, 3, 4, 5)
    subscriptions.create("grow", {"interval": "15s", "jitter": "0s", "downloadTemplate": template(site)})
    [first] = subscriptions.ended("grow", 1)
    assert (first["outcome"], first["newItems"], first["trigger"]) == ("Succeeded", 3, "Schedule"), first
    growing_gallery.images = 5
    second = subscriptions.ended("grow", 2)[0]
    assert (second["outcome"], second["newItems"]) == ("Succeeded", 2), second
    status = subscriptions.status("grow")
    assert status["library"]["items"] == 5 and status["newItems"] == 2
    assert status["schedule"] == "every 15s" and status["nextScheduleTime"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    # Each image was requested once over both runs (the engines' archive carried over), and stored once.
    assert [a - b for a, b in zip(hits(1, 2, 3, 4, 5), before, strict=True)] == [1, 1, 1, 1, 1]
    runs = subscriptions.runs("grow")
    assert all(r["spec"]["deletionPolicy"] == "Retain" for r in runs)
    assert {r["spec"]["target"]["pvc"]["subPath"] for r in runs} == {"grow"}
    if cluster.local:
        library = cluster.local.volumes_root / subscriptions.namespace / "media" / "grow"
        catalogue = (library / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
        paths = [json.loads(line)["path"] for line in catalogue]
        assert sorted(paths) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]
        assert (library / "4.jpg").read_bytes() == image_bytes(4)
    events = client.CoreV1Api(cluster.api).list_namespaced_event(
        subscriptions.namespace, field_selector="involvedObject.name=grow"
    )
    assert {"RunCreated", "RunSucceeded"} <= {e.reason for e in events.items}
    # Deleting the subscription (Retain, the default) removes its run objects and keeps every file.
    subscriptions.delete("grow")
    wait_until(lambda: absent(lambda: subscriptions.get("grow")), 60, "the subscription to go")
    names = {r["metadata"]["name"] for r in runs}
    wait_until(lambda: not names & remaining(subscriptions), 60, "the runs to be collected")
    if cluster.local:
        assert (library / "1.jpg").read_bytes() == image_bytes(1)
        assert len((library / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()) == 5


def observed(subscriptions: Subscriptions, name: str, generation: int) -> None:
    wait_until(
        lambda: subscriptions.status(name).get("observedGeneration", 0) >= generation,
        60,
        f"{name} to observe generation {generation}",
        interval=0.2,
    )


def test_requested_runs_and_suspend(cluster: Cluster, subscriptions: Subscriptions, site: str) -> None:
    spec = {**YEARLY, "downloadTemplate": {**template(site), "urls": [f"{site}/img/31.jpg"]}}
    subscriptions.create("asked", spec)
    observed(subscriptions, "asked", 1)
    status = subscriptions.status("asked")
    assert not status.get("runs") and status["nextScheduleTime"].endswith("Z")  # no tick yet, no run
    subscriptions.patch("asked", annotated("first"))
    [run] = subscriptions.ended("asked", 1)
    assert (run["trigger"], run["outcome"], run["newItems"]) == ("Requested", "Succeeded", 1)
    assert subscriptions.status("asked")["lastHandledRequestedAt"] == "first"
    # kubectl get: the printer columns read the status.
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", subscriptions.namespace]
    table = subprocess.run([*kubectl, "get", "gsub", "asked"], capture_output=True, text=True, check=True).stdout
    header, row = table.splitlines()
    assert header.split() == ["NAME", "SCHEDULE", "LAST", "RUN", "NEW", "ITEMS", "SIZE", "NEXT", "AGE"], header
    assert row.startswith("asked") and "0 0 1 1 * Europe/Berlin" in row
    # No tick yet (only a requested run: Last run is empty), 1 new item, 1 in the library, the next tick as a time.
    assert row.split()[7:11] == ["1", "1", "2.0Ki", subscriptions.status("asked")["nextScheduleTime"]], row
    # Suspended in the same change as a new request: the request waits, no run is made.
    subscriptions.patch("asked", {**annotated("second"), "spec": {"suspend": True}})
    observed(subscriptions, "asked", 2)
    status = subscriptions.status("asked")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Suspended" and "nextScheduleTime" not in status
    assert status["lastHandledRequestedAt"] == "first" and len(subscriptions.runs("asked")) == 1
    # Resumed: the waiting request runs.
    subscriptions.patch("asked", {"spec": {"suspend": False}})
    runs = subscriptions.ended("asked", 2)
    assert runs[0]["trigger"] == "Requested" and runs[0]["newItems"] == 0  # stored by the first run already
    assert subscriptions.status("asked")["lastHandledRequestedAt"] == "second"


def test_forbid_skips_ticks_while_a_run_is_active(subscriptions: Subscriptions, site: str) -> None:
    slow = {**template(site), "urls": [f"{site}/slow/{n}.jpg?seconds=12" for n in (41, 42)]}
    subscriptions.create("slow", {"interval": "10s", "jitter": "0s", "downloadTemplate": slow})
    status = subscriptions.recorded("slow", "Skipped")
    active = [r for r in status["runs"] if r["outcome"] == "Active"]
    assert len(active) == 1 and status["active"]["name"] == active[0]["name"]
    assert len([r for r in subscriptions.runs("slow") if r["status"].get("phase") != "Succeeded"]) <= 1


def test_history_limits_prune_run_objects_and_keep_their_files(
    cluster: Cluster, subscriptions: Subscriptions, site: str
) -> None:
    spec = {
        **YEARLY,
        "successfulRunsHistoryLimit": 1,
        "downloadTemplate": {**template(site), "urls": [f"{site}/img/51.jpg"]},
    }
    subscriptions.create("pruned", spec)
    for count, value in enumerate(("a", "b", "c"), start=1):
        subscriptions.patch("pruned", annotated(value))
        subscriptions.ended("pruned", count)
    wait_until(lambda: len(subscriptions.runs("pruned")) == 1, 60, "the older runs pruned", interval=0.5)
    records = subscriptions.status("pruned")["runs"]
    assert [r["outcome"] for r in records] == ["Succeeded"] * 3  # the status keeps what the objects no longer do
    [kept] = subscriptions.runs("pruned")
    assert kept["metadata"]["name"] == records[0]["name"]
    if cluster.local:
        library = cluster.local.volumes_root / subscriptions.namespace / "media" / "pruned"
        assert (library / "51.jpg").read_bytes() == image_bytes(51)


def test_replace_stops_the_active_run_for_the_next_tick(subscriptions: Subscriptions, site: str) -> None:
    slow = {**template(site), "urls": [f"{site}/slow/{n}.jpg?seconds=15" for n in (61, 62)]}
    subscriptions.create(
        "replaced", {"interval": "10s", "jitter": "0s", "concurrencyPolicy": "Replace", "downloadTemplate": slow}
    )
    status = subscriptions.recorded("replaced", "Replaced")
    replaced = next(r for r in status["runs"] if r["outcome"] == "Replaced")
    assert status["active"]["name"] != replaced["name"]
    wait_until(
        lambda: replaced["name"] not in {r["metadata"]["name"] for r in subscriptions.runs("replaced")},
        60,
        "the replaced run's object deleted",
    )


def test_delete_policy_removes_the_library_after_the_runs(
    cluster: Cluster, subscriptions: Subscriptions, site: str
) -> None:
    spec = {
        **YEARLY,
        "deletionPolicy": "Delete",
        "downloadTemplate": {**template(site), "urls": [f"{site}/img/71.jpg", f"{site}/img/72.jpg"]},
    }
    subscriptions.create("removed", spec)
    wait_until(
        lambda: "gallery-operator.dev/library" in subscriptions.get("removed")["metadata"].get("finalizers", []),
        60,
        "the library finalizer",
    )
    subscriptions.patch("removed", annotated("now"))
    [run] = subscriptions.ended("removed", 1)
    assert run["newItems"] == 2
    library = cluster.local.volumes_root / subscriptions.namespace / "media" / "removed" if cluster.local else None
    if library is not None:
        assert (library / "71.jpg").exists()
    subscriptions.delete("removed")
    wait_until(lambda: absent(lambda: subscriptions.get("removed")), 120, "the subscription to go", interval=0.5)
    assert not remaining(subscriptions)  # its runs and the cleanup child are gone too
    if library is not None:
        assert not (library / "71.jpg").exists() and not (library / ".gallery-operator").exists()


def test_a_yt_dlp_feed_subscription_fetches_new_episodes_and_stops_at_known_ones(
    cluster: Cluster, subscriptions: Subscriptions, site: str
) -> None:
    path = f"/subscription/{subscriptions.namespace}/feed.xml"
    Handler.files[path] = (feed(site, [3, 2, 1]), "application/rss+xml")
    spec = {
        "interval": "15s",
        "jitter": "0s",
        "stopAfterKnown": 1,
        "downloadTemplate": {**template(site), "urls": [f"{site}{path}"], "engine": "yt-dlp"},
    }
    subscriptions.create("show", spec)
    [first] = subscriptions.ended("show", 1)
    assert (first["outcome"], first["newItems"]) == ("Succeeded", 3), first
    Handler.files[path] = (feed(site, [5, 4, 3, 2, 1]), "application/rss+xml")
    second = subscriptions.ended("show", 2)[0]
    assert (second["outcome"], second["newItems"]) == ("Succeeded", 2), second
    [run] = [r for r in subscriptions.runs("show") if r["metadata"]["name"] == second["name"]]
    assert run["spec"]["options"]["stopAfterKnown"] == 1 and run["spec"]["engine"] == "yt-dlp"
    assert run["status"]["progress"]["itemsDone"] == 3  # 2 new, then the first known one: stop
    assert subscriptions.status("show")["library"]["items"] == 5


def test_a_run_made_just_before_the_operator_died_is_the_ticks_only_run(
    cluster: Cluster, subscriptions: Subscriptions, operator: OperatorProcess, site: str
) -> None:
    """SIGKILL after the tick's run was created and before the status said so: the restarted operator finds the run
    under the tick's name and adopts it; the tick gets no second run."""
    operator.kill()
    try:
        spec = {
            "interval": "1h",
            "jitter": "0s",
            "downloadTemplate": {**template(site), "urls": [f"{site}/img/81.jpg"]},
        }
        subscriptions.create("restart", spec)
        body = subscriptions.get("restart")
        snapshot = SubscriptionSnapshot.of(body)
        tick = parse_time(snapshot.created)  # an interval's first tick is the creation
        name = run_name("restart", tick)
        run = build_run(snapshot, parse_subscription_spec(snapshot.spec), name, rfc3339(tick), "Schedule")
        subscriptions.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, subscriptions.namespace, PLURAL, run
        )
    finally:
        operator.start()
    [ended] = subscriptions.ended("restart", 1)
    assert ended["name"] == name and ended["newItems"] == 1
    status = subscriptions.status("restart")
    assert [r["scheduledTime"] for r in status["runs"]] == [rfc3339(tick)]
    assert [r["metadata"]["name"] for r in subscriptions.runs("restart")] == [name]
    assert status["lastScheduleTime"] == rfc3339(tick)


def test_an_operator_killed_between_a_tick_and_its_run_makes_the_run_once_on_restart(
    cluster: Cluster, subscriptions: Subscriptions, operator: OperatorProcess, site: str
) -> None:
    """SIGKILL after the tick fell due and before its run exists: the run's creation is refused (a quota of zero
    GalleryDownloads) while the operator retries it, and the operator dies there. Nothing recorded the tick; the
    restarted operator makes its run, once, under the tick's name, and records no missed tick."""
    core = client.CoreV1Api(cluster.api)
    quota = {"metadata": {"name": "no-runs"}, "spec": {"hard": {"count/gallerydownloads.gallery-operator.dev": "0"}}}
    core.create_namespaced_resource_quota(subscriptions.namespace, quota)
    # The API server enforces a quota only once the quota controller has written its status: before that a run
    # created at the first tick got through (seen in a fresh-clone run on a loaded machine).
    wait_until(
        lambda: (core.read_namespaced_resource_quota("no-runs", subscriptions.namespace).status.hard or {}) != {},
        60,
        "the quota in force",
        interval=0.2,
    )
    spec = {"interval": "1h", "jitter": "0s", "downloadTemplate": {**template(site), "urls": [f"{site}/img/82.jpg"]}}
    subscriptions.create("killed", spec)
    tick = parse_time(subscriptions.get("killed")["metadata"]["creationTimestamp"])  # an interval's first tick
    refused = f"namespace='{subscriptions.namespace}', name='killed') failed"
    wait_until(lambda: refused in operator.log.read_text(), 60, "the run's creation refused", interval=0.2)
    operator.kill()
    try:
        assert subscriptions.runs("killed") == [] and not subscriptions.status("killed").get("runs")
        core.delete_namespaced_resource_quota("no-runs", subscriptions.namespace)
    finally:
        operator.start()
    [ended] = subscriptions.ended("killed", 1)
    assert (ended["name"], ended["scheduledTime"], ended["newItems"]) == (run_name("killed", tick), rfc3339(tick), 1)
    status = subscriptions.status("killed")
    assert [(r["scheduledTime"], r["outcome"]) for r in status["runs"]] == [(rfc3339(tick), "Succeeded")]
    assert [r["metadata"]["name"] for r in subscriptions.runs("killed")] == [run_name("killed", tick)]
    assert status["lastScheduleTime"] == rfc3339(tick)


def test_a_stalled_subscription_keeps_its_schedule_and_recovers_when_fixed(
    subscriptions: Subscriptions, site: str
) -> None:
    """Stalled after the last 3 runs failed for a permanent reason, with that reason; its ticks still make runs (the
    cure may be outside the spec: a Secret renewed, a page back online), and the first good run clears it."""
    missing = {**template(site), "urls": [f"{site}/img/99999.jpg"], "backoffLimit": 0}
    subscriptions.create("stuck", {"interval": "10s", "jitter": "0s", "downloadTemplate": missing})
    subscriptions.ended("stuck", 3)

    def stalled() -> dict[str, Any]:
        return next(c for c in subscriptions.status("stuck")["conditions"] if c["type"] == "Stalled")

    wait_until(lambda: stalled()["status"] == "True", 60, "the Stalled condition", interval=0.5)
    assert stalled()["reason"] == "NotFound", stalled()
    ready = next(c for c in subscriptions.status("stuck")["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NotFound"), ready
    # Stalled, and still on schedule: the next tick makes a fourth run.
    subscriptions.ended("stuck", 4)
    subscriptions.patch("stuck", {"spec": {"downloadTemplate": {**missing, "urls": [f"{site}/img/91.jpg"]}}})

    def recovered() -> bool:
        runs = subscriptions.status("stuck").get("runs", [])
        return any(r["outcome"] == "Succeeded" for r in runs) and stalled()["status"] == "False"

    wait_until(recovered, 120, "a good run to clear Stalled", interval=0.5)
    ready = next(c for c in subscriptions.status("stuck")["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
