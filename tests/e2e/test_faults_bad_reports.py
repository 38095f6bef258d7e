"""Bad worker reports, generated: hypothesis posts malformed report bodies (raw bytes, wrong types, numbers past
their bounds, unknown fields, nested junk) to the real report endpoint with a real worker pod's own bound token (a
TokenRequest bound to the running pod, as the kubelet gets it), while that worker runs. Each is refused with 422
(or 413 when too large), never a server error; the operator keeps running and the download still ends Succeeded
with the real worker's catalogue."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kubernetes import client
from pydantic import ValidationError

from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator.workerconfig import Report
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec

EXAMPLES = int(os.environ.get("GALLERY_FAULTS_EXAMPLES", "40"))
ITEMS = 8
FIELDS = [
    "run",
    "final",
    "itemsDone",
    "itemsTotal",
    "itemsFailed",
    "bytesDone",
    "catalogueItems",
    "catalogueBytes",
    "catalogueLocation",
    "sample",
    "failures",
    "outcome",
    "message",
    "bogus",
]
JUNK: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.sampled_from(["Succeeded", "Failed", "x" * 5000, "\x00", "\ud7ff"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(FIELDS), JUNK, max_size=8).map(lambda d: json.dumps(d).encode()),
    JUNK.map(lambda v: json.dumps(v).encode()),
)


def post(url: str, token: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def worker_token(cluster: Cluster, namespace: str, name: str) -> str:
    """A token bound to the download's running worker pod, for the operator's audience (as the pod's own)."""
    core = client.CoreV1Api(cluster.api)
    selector = f"gallery-operator.dev/download={name}"
    wait_until(
        lambda: [
            p for p in core.list_namespaced_pod(namespace, label_selector=selector).items if p.status.phase == "Running"
        ],
        120,
        "the worker pod running",
    )
    pod = next(
        p for p in core.list_namespaced_pod(namespace, label_selector=selector).items if p.status.phase == "Running"
    )
    bound = {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}
    spec = {"boundObjectRef": bound, "audiences": ["gallery-operator.dev"], "expirationSeconds": 600}
    account = pod.spec.service_account_name or "default"
    result = core.create_namespaced_service_account_token(account, namespace, {"spec": spec})
    return str(result.status.token)


def test_malformed_reports_from_a_real_worker_are_refused_and_harm_nothing(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str
) -> None:
    urls = [f"{site}/slow/{n}.jpg?seconds=2" for n in range(7501, 7501 + ITEMS)]
    spec = pvc_spec(urls)
    spec["options"]["concurrency"] = 1  # one item after another: the worker runs 16 s, while every body lands
    downloads.create("reported", spec)
    token = worker_token(cluster, downloads.namespace, "reported")
    answers: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(body=BODIES)
    def each(body: bytes) -> None:
        try:
            Report.model_validate_json(body)
        except ValidationError:
            pass
        else:
            assume(False)  # a well-formed report is the worker's word about its own download: not bad input
        answers.append(post(operator.report_url, token, body))
        assert answers[-1] in (413, 422), (answers[-1], body[:300])

    each()
    # The worker pod was Running before the first body (worker_token); the download must not have ended meanwhile
    # (its phase may still say Pending: the Job's active count reaches the operator after the pod starts).
    phase = downloads.status("reported").get("phase")
    assert phase in {"Pending", "Running"}, f"the worker must still run while the bodies land, not {phase}"
    status = downloads.wait_phase("reported", {"Succeeded", "Failed"}, timeout=300)
    assert status["phase"] == "Succeeded", status
    assert (status["catalogue"]["items"], status["progress"]["itemsDone"]) == (ITEMS, ITEMS), status
    assert operator.healthy() and len(answers) >= EXAMPLES // 2
