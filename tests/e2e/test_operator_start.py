"""An operator started into a cluster that already holds many objects becomes ready and acts on each of them.

kopf runs no handler until every watched object's first event is indexed (its readiness), and each object's event
is handled by one worker task; with the number of such tasks capped, the first listing of more objects than the cap
left the capped workers waiting for the objects behind them, which could never start: the operator never became
ready and never acted (the soak's restart after 113 minutes of downloads). Its own control plane (no node: the
Jobs stay Pending), so the session's operator is not handed a thousand downloads.

And a start that cannot fill its caches (whatever the cause) says so: past its ready deadline /healthz fails, so
the liveness probe restarts the process, and the log says why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from gallery_harness.controlplane import LocalCluster
from gallery_harness.kube import create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import wait_until
from gallery_harness.tcpproxy import TcpProxy, proxied_kubeconfig
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from tests.conftest import Cluster

BACKLOG = 1_500
"""Downloads that exist before the operator starts: more than kopf's worker cap the operator used to set (1,000)."""


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A control plane of its own, without a node."""
    with LocalCluster.create(tmp_path_factory.mktemp("start-cluster"), with_node=False) as local:
        yield local


def create_backlog(api: client.ApiClient, namespace: str, count: int) -> None:
    custom = client.CustomObjectsApi(api)

    def create(n: int) -> None:
        spec = {"urls": [f"http://127.0.0.1:9/img/{n}.jpg"], "target": {"pvc": {"claimName": "media"}}}
        body: dict[str, Any] = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload"}
        body |= {"metadata": {"name": f"gd-{n:05d}"}, "spec": spec}
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def phases(api: client.ApiClient, namespace: str) -> list[str | None]:
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL)
    return [(item.get("status") or {}).get("phase") for item in listed["items"]]


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_an_operator_started_over_a_backlog_of_downloads_becomes_ready_and_acts_on_every_one(
    bare: LocalCluster, tmp_path: Path, mode: str
) -> None:
    api = config.new_client_from_config(str(bare.kubeconfig))
    apply_crd(api)
    namespace = f"backlog-{mode}"
    create_namespace(api, namespace)
    create_claim(api, namespace)
    create_backlog(api, namespace, BACKLOG)
    settings = {"GALLERY_OPERATOR_NAMESPACES": namespace} if mode == "namespaced" else {}
    # Ready means its caches are filled; the old operator never got there, however long it was given.
    operator = OperatorProcess(bare.kubeconfig, tmp_path / "operator.log", settings, ready_seconds=180)
    try:
        operator.start()
        wait_until(lambda: None not in phases(api, namespace), 300, "a status on every download", interval=1)
    finally:
        operator.stop()
    assert len(phases(api, namespace)) == BACKLOG


def answer(operator: OperatorProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}{path}", timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def test_a_start_that_cannot_fill_its_caches_fails_its_liveness_probe_and_says_why(
    cluster: Cluster, crd: None, namespace: str, tmp_path: Path
) -> None:
    """Every connection to the API server stalls (open, nothing moves): no first listing ends or grows. Past its
    ready deadline the process answers /healthz 500, so that its liveness probe restarts it, and its log says why and
    what the caches hold. (Before, /healthz answered 200 for ever.) It never writes: the session's operator may
    run meanwhile."""
    server = urllib.parse.urlsplit(yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None and server.port is not None
    proxy = TcpProxy((server.hostname, server.port), host=server.hostname)
    proxy.pause()
    kubeconfig = proxied_kubeconfig(cluster.kubeconfig, proxy, tmp_path / "stalled.kubeconfig")
    settings = {"GALLERY_OPERATOR_NAMESPACES": namespace, "GALLERY_OPERATOR_READY_DEADLINE_SECONDS": "5"}
    operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", settings, ready_seconds=120)

    def failing() -> bool:
        assert operator.process is not None and operator.process.poll() is None, "the operator exited"
        return answer(operator, "/healthz")[0] == 500

    try:
        operator.start(up=failing)  # (started again on new ports if one was taken meanwhile)
        assert answer(operator, "/healthz") == (500, "caches not filled: no new object for 5 s, or 20 s since start")
        assert answer(operator, "/readyz")[0] == 500
        wait_until(lambda: "no cache has grown for 5 s" in operator.log.read_text(), 30, "the log's why")
    finally:
        operator.stop()
        proxy.cut()
    [line] = [json.loads(x) for x in operator.log.read_text().splitlines() if "no cache has grown for 5 s" in x]
    assert line["level"] == "error"
    assert "the caches are not filled (objects seen so far: none)" in line["message"]
