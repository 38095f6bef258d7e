"""The operator with exactly the chart's RBAC reconciles a GallerySubscription through every call it makes for one:
its finalizer, its status, runs created (owner references with blockOwnerDeletion), a run pruned by the history
limit, Events, and the library's removal under deletionPolicy Delete (the cleanup child created and deleted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gallery_harness.kube import absent, create_claim
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.localoperator import operator_for as local_operator_for
from gallery_harness.procs import wait_until
from tests.conftest import Cluster
from tests.e2e.rbac_parts import operator_account  # noqa: F401 - the fixture
from tests.e2e.subscription_parts import YEARLY, Subscriptions, annotated, remaining, template

pytestmark = pytest.mark.e2e


def test_the_operator_runs_subscriptions_with_exactly_the_charts_rbac(
    cluster: Cluster,
    crd: None,
    namespace: str,
    site: str,
    no_local_operator: None,
    operator_account: Path,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    log = tmp_path / "operator.log"
    operator = local_operator_for(operator_account, cluster.local, log, {})
    operator.start()
    try:
        create_claim(cluster.api, namespace)
        subscriptions = Subscriptions(cluster.api, namespace)
        spec = {
            **YEARLY,
            "deletionPolicy": "Delete",
            "successfulRunsHistoryLimit": 0,
            "downloadTemplate": {**template(site), "urls": [f"{site}/img/1201.jpg"]},
        }
        subscriptions.create("ruled", spec)
        subscriptions.patch("ruled", annotated("one"))
        [run] = subscriptions.ended("ruled", 1)
        assert (run["outcome"], run["newItems"]) == ("Succeeded", 1), run
        wait_until(lambda: not subscriptions.runs("ruled"), 60, "the run pruned (history limit 0)")
        subscriptions.delete("ruled")
        wait_until(lambda: absent(lambda: subscriptions.get("ruled")), 120, "the subscription and its library gone")
        assert not remaining(subscriptions)
    finally:
        operator.stop()
        OperatorProcess.instances.remove(operator)
    refused = re.findall(r'forbidden: User \\?"[^"\\]+\\?" cannot [^."]+', log.read_text())
    assert not refused, refused[:5]
