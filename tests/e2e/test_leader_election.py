"""Two operator replicas with leader election on the local control plane: only the Lease's holder writes, a standby
with warm caches takes over from a killed leader and finishes its downloads, a graceful stop releases the Lease, and
a leader cut off from the API server stops before another starts."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from gallery_harness.procs import wait_until
from gallery_harness.tcpproxy import TcpProxy, proxied_kubeconfig
from tests.e2e.conftest import Downloads, pvc_spec
from tests.e2e.election_support import Pair, leads, metric, pair, slow_images

__all__ = ["pair"]  # a fixture


def test_only_the_leader_writes_and_a_standby_takes_over_from_a_killed_leader(pair: Pair, site: str) -> None:
    a = pair.replica("a")
    wait_until(lambda: leads(a), 30, "replica a to lead")
    b = pair.replica("b")
    assert not leads(b) and pair.holder() == "a"
    downloads = Downloads(pair.cluster.api, pair.namespace)
    names = [f"d{i}" for i in range(3)]
    for i, name in enumerate(names):
        downloads.create(name, pvc_spec(slow_images(site, 10 * i + 1, 4, 2)))
    wait_until(lambda: all(downloads.jobs(n) for n in names), 60, "a Job for every download")
    # The standby wrote nothing; a report without a token stops there (reports are forwarded to the leader:
    # tests/e2e/test_report_forwarding.py).
    assert metric(b, "gallery_operator_status_writes_total") == 0
    request = urllib.request.Request(f"{b.report_url}", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    a.kill()
    wait_until(lambda: leads(b), 60, "replica b to take over")
    assert pair.holder() == "b"
    for name in names:
        status = downloads.wait_phase(name, {"Succeeded", "Failed"}, timeout=180)
        assert status["phase"] == "Succeeded", (name, status)
        assert status["catalogue"]["items"] == 4
        assert len(downloads.jobs(name)) == 1, f"{name}: a second Job after the takeover"
    assert metric(b, "gallery_operator_leadership_transitions_total") == 1


def test_a_graceful_stop_releases_the_lease(pair: Pair) -> None:
    a = pair.replica("a")
    wait_until(lambda: leads(a), 30, "replica a to lead")
    b = pair.replica("b")
    # SIGTERM, as a rollout or a drain, with a pod's default 30 s before SIGKILL (on a loaded machine the stop
    # took longer than the harness's usual 5 s, and a killed leader releases nothing).
    assert a.stop(grace=30) == 0
    # Released, not left to expire: no one holds it (or b took it already at its next read).
    assert pair.holder() in ("", "b")
    wait_until(lambda: leads(b), 30, "replica b to take the released Lease")


def test_a_partitioned_leader_stops_before_the_standby_starts(pair: Pair, site: str) -> None:
    kubeconfig = yaml.safe_load(pair.cluster.kubeconfig.read_text())
    server = urllib.parse.urlsplit(kubeconfig["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None and server.port is not None
    proxy = TcpProxy((server.hostname, server.port), host=server.hostname)
    a = pair.replica("a", proxied_kubeconfig(pair.cluster.kubeconfig, proxy, pair.tmp / "proxied.kubeconfig"))
    wait_until(lambda: leads(a), 30, "replica a to lead")
    pair.replica("b")
    downloads = Downloads(pair.cluster.api, pair.namespace)
    downloads.create("cut", pvc_spec(slow_images(site, 1, 3, 2)))
    wait_until(lambda: downloads.jobs("cut"), 60, "the download's Job")
    proxy.cut()  # a's API access is gone; its process lives on
    assert a.process is not None
    order: list[str] = []

    def watch() -> bool:
        exited = a.process is not None and a.process.poll() is not None
        if exited and "a stopped" not in order:
            order.append("a stopped")
        if pair.holder() == "b" and "b leads" not in order:
            order.append("b leads")
        return len(order) == 2

    wait_until(watch, 60, "a to stop and b to lead", interval=0.1)
    assert order == ["a stopped", "b leads"]
    assert a.process.returncode == 1
    assert "lost the Lease" in a.log.read_text()
    status = downloads.wait_phase("cut", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    assert len(downloads.jobs("cut")) == 1
