"""Two replicas with leader election on the local control plane, every worker report sent to the standby (as a
Service may route it): the standby relays each report, token and body as they came, to the leader's report URL
recorded on the Lease; the leader authenticates and applies it (its TokenReview, its answer relayed). A report
without a token stops at the standby; one with a made-up token is refused by the leader, never applied; a report
forwarded once is never forwarded again."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from kubernetes import client

from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_harness.tcpproxy import TcpProxy
from gallery_operator.leadership import REPORT_URL_ANNOTATION
from gallery_operator.web import FORWARDED_HEADER
from tests.e2e.conftest import Downloads, pvc_spec
from tests.e2e.election_support import Pair, leads, metric, pair, slow_images

__all__ = ["pair"]  # a fixture


def counted(process: OperatorProcess, name: str, label: str) -> float:
    """A labelled counter's value (0 when it has not counted yet)."""
    found = re.search(rf"^{name}\{{{label}\}} (\S+)$", process.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def port_of(process: OperatorProcess) -> int:
    return int(process.report_url.rsplit(":", 1)[1].split("/")[0])


def test_a_standby_forwards_worker_reports_to_the_leader_which_authenticates_them(pair: Pair, site: str) -> None:
    standby: list[OperatorProcess] = []
    # Every worker report goes to the standby (b), whichever replica made the worker's Job.
    proxy = TcpProxy(lambda: ("127.0.0.1", port_of(standby[0]) if standby else 9))
    via_standby = {"GALLERY_OPERATOR_REPORT_URL": f"http://127.0.0.1:{proxy.address[1]}/report"}
    a = pair.replica("a", settings=via_standby)
    wait_until(lambda: leads(a), 30, "replica a to lead")
    b = pair.replica("b", settings=via_standby)
    standby.append(b)
    assert not leads(b)
    lease = pair.lease()
    assert lease.metadata.annotations[REPORT_URL_ANNOTATION] == f"http://127.0.0.1:{port_of(a)}/report"

    # Hostile callers through the standby: no token stops there (once b has read the Lease: before, 503), a made-up
    # token is the leader's to refuse.
    wait_until(lambda: post(b.report_url, b"{}", {})[0] == 401, 30, "the standby to know where the leader is")
    assert counted(b, "gallery_operator_reports_refused_total", 'reason="unauthenticated"') == 1
    made_up = {"Authorization": "Bearer not.a.token", "Content-Type": "application/json"}
    refused_before = counted(a, "gallery_operator_reports_refused_total", 'reason="malformed-token"')
    status, answer = post(b.report_url, json.dumps({"run": "x", "itemsDone": 9}).encode(), made_up)
    assert status == 403 and "does not belong to a worker pod" in answer  # the leader's own answer
    assert counted(a, "gallery_operator_reports_refused_total", 'reason="malformed-token"') == refused_before + 1
    assert counted(b, "gallery_operator_reports_forwarded_total", 'answer="403"') == 1
    # A report that says it was forwarded already is not forwarded again (no loop between replicas).
    status, _ = post(b.report_url, b"{}", {**made_up, FORWARDED_HEADER: "1"})
    assert status == 503
    assert counted(b, "gallery_operator_reports_forwarded_total", 'answer="403"') == 1
    refused_by_standby = counted(b, "gallery_operator_reports_refused_total", 'reason="standby"')

    downloads = Downloads(pair.cluster.api, pair.namespace)
    downloads.create("relayed", pvc_spec(slow_images(site, 1, 4, 1)))
    status_seen = downloads.wait_phase("relayed", {"Succeeded", "Failed"}, timeout=180)
    assert status_seen["phase"] == "Succeeded", status_seen
    assert status_seen["catalogue"]["items"] == 4
    # The worker's reports all reached the leader through the standby and were accepted there.
    assert counted(b, "gallery_operator_reports_forwarded_total", 'answer="200"') >= 1
    assert counted(b, "gallery_operator_reports_refused_total", 'reason="standby"') == refused_by_standby
    assert metric(b, "gallery_operator_status_writes_total") == 0  # the standby wrote nothing itself
    # kopf posted no Event of its own, on either replica (every Event is the operator's own, past the write gate).
    events = client.CoreV1Api(pair.cluster.api).list_namespaced_event(pair.namespace).items
    assert events and not [e for e in events if (e.reporting_component or e.source.component or "") == "kopf"]
    proxy.cut()
