"""The controller keeps a namespace's worker NetworkPolicy, in shape, while walled pods outlive the namespace's
downloads (a worker Job orphaned by `kubectl delete --cascade=orphan`, a pod still stopping), and removes it once
they ended. The API calls are recorded (tests/unit/builders.py); the e2e test is
tests/e2e/test_network_policy_orphans.py."""

from __future__ import annotations

from typing import Any

from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.networkpolicy import UNFINISHED_PODS, worker_network_policy
from tests.unit.builders import RecordingKube, reconcile, snapshot, taken, watch_shows, world


def without_downloads(controller: Controller) -> None:
    """What the download watch shows after a `--cascade=orphan` deletion of the namespace's only download."""
    downloads, names = controller.downloads, controller.namespace_downloads
    assert isinstance(downloads, dict) and isinstance(names, dict)
    downloads.clear()
    names.clear()


def orphaned(fake: RecordingKube, pods: int) -> None:
    fake.pods[("ns", UNFINISHED_PODS)] = pods


def test_the_policy_stays_in_shape_while_an_orphaned_worker_runs_and_goes_after() -> None:
    controller, fake = world(snapshot("a"))
    reconcile(controller, "a")
    assert fake.named("keep_network_policy") == ["ns"]
    policy: dict[str, Any] = worker_network_policy("ns", Settings())
    watch_shows(controller, policy)
    without_downloads(controller)
    orphaned(fake, 1)
    reconcile(controller, "a")  # the download is gone: the namespace is looked at
    assert ("ns", "") in taken(controller)
    reconcile(controller, "")
    assert not fake.named("delete_network_policy")  # its worker still runs
    assert controller.rechecks == {"ns"}  # and the namespace is looked at again later

    watch_shows(controller, {**policy, "spec": {**policy["spec"], "egress": [{}]}})  # a tenant widens it meanwhile
    assert taken(controller) == {("ns", "")}
    reconcile(controller, "")
    assert fake.named("keep_network_policy") == ["ns", "ns"]
    watch_shows(controller, None)  # or deletes it
    assert taken(controller) == {("ns", "")}
    reconcile(controller, "")
    assert fake.named("keep_network_policy") == ["ns", "ns", "ns"]
    watch_shows(controller, policy)
    assert not fake.named("delete_network_policy")

    orphaned(fake, 0)  # the orphan ended
    reconcile(controller, "")
    assert fake.named("delete_network_policy") == ["ns"]


def test_a_namespace_with_downloads_costs_no_pod_listing() -> None:
    controller, fake = world(snapshot("a"))
    orphaned(fake, 1)
    reconcile(controller, "a")
    watch_shows(controller, None)
    reconcile(controller, "")
    assert fake.named("keep_network_policy") == ["ns", "ns"] and not controller.rechecks


def test_an_orphaned_job_between_a_failed_pod_and_its_next_keeps_the_policy() -> None:
    """No pod runs at the moment of the look, but the orphaned Job has not finished: it makes another pod."""
    controller, fake = world(snapshot("a"))
    reconcile(controller, "a")
    watch_shows(controller, worker_network_policy("ns", Settings()))
    without_downloads(controller)
    fake.job_list["ns"] = [{"metadata": {"name": "a-1"}, "status": {"failed": 1}}]
    taken(controller)
    reconcile(controller, "")
    assert not fake.named("delete_network_policy")
    fake.job_list["ns"] = [
        {"metadata": {"name": "a-1"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    ]
    reconcile(controller, "")
    assert fake.named("delete_network_policy") == ["ns"]
