"""The last word after an eviction, on the real control plane with the real worker, node agent and S3 server: the
first pod stores items and reports them live, its bucket's server goes down and the pod is evicted (the API server
marks it DisruptionTarget, the Job's pod failure policy ignores it, and the pod is deleted once the Job counted it);
its replacement cannot open the bucket and writes only its termination message. The replacement started after the
evicted pod was created (the report endpoint records that time with the report), so its StorageError is the run's
last word, and the status keeps the catalogue the evicted pod reported."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, s3_files, s3_target

ITEMS = 12
NAME = "evicted"


def running_pod(cluster: Cluster, namespace: str) -> str | None:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(
        namespace, label_selector=f"gallery-operator.dev/download={NAME}"
    )
    running = [p.metadata.name for p in pods.items if p.status.phase == "Running"]
    return running[0] if running else None


def catalogued(downloads: Downloads) -> int:
    return int(downloads.status(NAME).get("catalogue", {}).get("items", 0))


def test_an_evicted_pods_replacement_that_cannot_open_its_bucket_has_the_last_word(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, tmp_path: Path
) -> None:
    cluster.require_local()
    first = 8401
    urls = [f"{site}/slow/{n}.jpg?seconds=1.5" for n in range(first, first + ITEMS)]
    with S3Server(root=tmp_path, log=tmp_path / "versitygw.log", host=cluster.service_host) as server:
        target = s3_target(cluster, namespace, server, NAME)
        options = {"retries": 0, "concurrency": 1}
        downloads.create(NAME, {"urls": urls, "target": target, "backoffLimit": 0, "options": options})
        wait_until(lambda: catalogued(downloads) >= 2, 120, "two items reported live by the first pod", interval=0.1)
        pod = running_pod(cluster, namespace)
        assert pod is not None
        server.stop()
        eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=namespace))
        client.CoreV1Api(cluster.api).create_namespaced_pod_eviction(pod, namespace, eviction)
        ended = downloads.wait_phase(NAME, {"Succeeded", "Failed"}, timeout=300)
        server.start()
        files = s3_files(server, NAME, f"{namespace}/{NAME}/")
    stalled = downloads.condition(NAME, "Stalled")
    assert (ended["phase"], stalled.get("reason")) == ("Failed", "StorageError"), (ended, stalled)
    assert [f["reason"] for f in ended["failures"]][-1] == "StorageError"
    stored = {key for key in files if not key.startswith(".gallery-operator/")}
    catalogue = ended["catalogue"]
    assert 2 <= catalogue["items"] <= len(stored)  # the evicted pod's last live report: what it had catalogued
    assert catalogue["jobName"] == ended["jobName"]
