"""The operator with exactly the chart's RBAC: it authenticates as a ServiceAccount bound to the rules the chart
ships (read from manifests/base, which `make manifests` renders from the chart), and reconciles downloads through
every call it makes: Jobs created, suspended and deleted, a claim from a template, live worker reports
(TokenReview and the worker pod read), cleanup under deletionPolicy Delete, Events."""

from __future__ import annotations

import re
from pathlib import Path

from kubernetes import client

from gallery_harness.kube import absent, create_claim
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.localoperator import operator_for as local_operator_for
from gallery_harness.procs import wait_until
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec
from tests.e2e.rbac_parts import (
    operator_account,  # noqa: F401 - the fixture
)


def test_the_operator_reconciles_with_exactly_the_charts_rbac(
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
        downloads = Downloads(cluster.api, namespace)
        template = {"pvc": {"template": {"size": "1Gi"}}}
        downloads.create(
            "templated", {"urls": [f"{site}/img/1101.jpg"], "target": template, "deletionPolicy": "Delete"}
        )
        downloads.create("wiped", pvc_spec([f"{site}/img/1102.jpg"], deletionPolicy="Delete"))
        downloads.create("paused", pvc_spec([f"{site}/slow/1103.jpg?seconds=20"]))
        downloads.create("live", pvc_spec([f"{site}/img/1104.jpg", f"{site}/slow/1105.jpg?seconds=20"]))
        wait_until(
            lambda: downloads.reports_live("live"),
            90,
            "live progress (a report accepted after a TokenReview and a read of the worker pod)",
        )
        for name in ("templated", "wiped"):
            assert downloads.wait_phase(name, {"Succeeded", "Failed"})["phase"] == "Succeeded", downloads.status(name)
        wait_until(lambda: downloads.jobs("paused"), 60, "the Job of the download to suspend")
        downloads.patch("paused", {"suspend": True})
        assert downloads.wait_phase("paused", {"Suspended"})["phase"] == "Suspended"
        downloads.delete("templated")
        downloads.delete("wiped")
        wait_until(
            lambda: absent(lambda: downloads.get("templated")) and absent(lambda: downloads.get("wiped")),
            90,
            "the deleted downloads and their data to be gone",
        )
        events = client.CoreV1Api(cluster.api).list_namespaced_event(namespace).items
        assert {"DataDeleted", "Succeeded"} <= {e.reason for e in events}
        assert downloads.wait_phase("live", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    finally:
        operator.stop()
        OperatorProcess.instances.remove(operator)
    text = log.read_text()
    # An RBAC refusal reads `... is forbidden: User "system:serviceaccount:..." cannot <verb> ...`; other 403s (a
    # namespace of another test being deleted refuses new objects) are not this test's concern.
    refused = re.findall(r'forbidden: User \\?"[^"\\]+\\?" cannot [^."]+', text)
    assert not refused, refused[:5]
