"""The API server goes away while the operator reconciles running downloads, etcd kept: restarted at once, or gone
for 20 s. The operator recovers by itself (same process, no restart) and misses no transition: every download ends
Succeeded with its full catalogue, and downloads created during and after the outage run too. How fast it recovers
is measured by bench/reliability_api.py (docs/reliability.md); tests here do not time."""

from __future__ import annotations

import time

import pytest

from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec

RUNNING = 3
ITEMS = 3


@pytest.mark.restarts_api
@pytest.mark.parametrize("down_seconds", [0, 20], ids=["restart", "outage-20s"])
def test_the_operator_misses_no_transition_across_an_api_outage(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str, down_seconds: int
) -> None:
    local = cluster.require_local()
    assert operator.process is not None
    pid = operator.process.pid
    base = 7100 + 20 * down_seconds
    names = [f"before-{n}" for n in range(RUNNING)]
    for n, name in enumerate(names):
        urls = [f"{site}/slow/{base + n * ITEMS + i}.jpg?seconds=2" for i in range(ITEMS)]
        downloads.create(name, pvc_spec(urls, backoffLimit=2))
    wait_until(lambda: all(downloads.jobs(name) for name in names[:2]), 90, "the first Jobs (cap 2 per namespace)")
    local.stop_apiserver()
    time.sleep(down_seconds)  # the outage itself, not a wait for a result
    local.start_apiserver()
    downloads.create("after", pvc_spec([f"{site}/img/{base + 19}.jpg"]))
    for name in [*names, "after"]:
        status = downloads.wait_phase(name, {"Succeeded", "Failed"}, timeout=300)
        assert status["phase"] == "Succeeded", (name, status)
        expected = 1 if name == "after" else ITEMS
        assert (status["catalogue"]["items"], status["progress"]["itemsDone"]) == (expected, expected), status
        assert len(downloads.jobs(name)) == 1
    assert operator.healthy() and operator.process is not None and operator.process.pid == pid
