"""Worker crashes mid-download, with the real worker on the node agent: the container's processes SIGKILLed (as the
kernel's OOM killer or a crash ends them), then the next pod deleted outright (as an eviction or a lost node does).
The Job's retries resume: what the first pod stored is not fetched again, and at the end the files are exactly the
catalogue (sizes, sha256), once each, on a PVC and in S3. An S3 retry knows only what the last upload of the
archive held (every 10 s): what the crashed pod stored after it is fetched again (docs/reliability.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from gallery_harness.procs import kill_pod_processes, wait_until
from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, check_catalogue, s3_files, s3_target

ITEMS = range(7001, 7009)
SLOW_SECONDS = 1.5


def slow_images(site: str, first: int) -> list[str]:
    return [f"{site}/slow/{n}.jpg?seconds={SLOW_SECONDS}" for n in range(first, first + len(ITEMS))]


def running_pod(cluster: Cluster, namespace: str, name: str, not_in: set[str]) -> str | None:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(
        namespace, label_selector=f"gallery-operator.dev/download={name}"
    )
    running = [p.metadata.name for p in pods.items if p.status.phase == "Running" and p.metadata.name not in not_in]
    return running[0] if running else None


def items_done(downloads: Downloads, name: str) -> int:
    return int(downloads.status(name).get("progress", {}).get("itemsDone", 0))


def crash_twice(cluster: Cluster, downloads: Downloads, name: str) -> int:
    """SIGKILL the first pod's processes once two items are stored, then delete the next pod once it stored one
    more; how many items were stored before the first crash."""
    namespace = downloads.namespace
    wait_until(lambda: running_pod(cluster, namespace, name, set()), 90, "the first worker pod")
    first = running_pod(cluster, namespace, name, set()) or ""
    wait_until(lambda: items_done(downloads, name) >= 2, 90, "two items stored by the first pod", interval=0.1)
    stored = items_done(downloads, name)
    assert kill_pod_processes(first), f"no process of {first}"
    wait_until(lambda: running_pod(cluster, namespace, name, {first}), 120, "the second worker pod")
    second = running_pod(cluster, namespace, name, {first}) or ""
    wait_until(lambda: items_done(downloads, name) > stored, 120, "an item stored by the second pod", interval=0.1)
    client.CoreV1Api(cluster.api).delete_namespaced_pod(second, namespace, grace_period_seconds=0)
    return stored


def spec(urls: list[str], target: dict[str, Any]) -> dict[str, Any]:
    return {"urls": urls, "target": target, "backoffLimit": 4, "options": {"retries": 0}}


def check_resumed(stored_before: int, first: int) -> None:
    """The first ``stored_before`` items were fetched once: the retries resumed, they did not start over."""
    fetched = {n: Handler.hits.get(f"/slow/{n}.jpg", 0) for n in range(first, first + len(ITEMS))}
    assert list(fetched.values())[:stored_before] == [1] * stored_before, fetched
    assert all(1 <= count <= 3 for count in fetched.values()), fetched  # at most the two crashed attempts again


def test_a_crashed_worker_resumes_into_a_claim(cluster: Cluster, downloads: Downloads, site: str) -> None:
    local = cluster.require_local()
    first = ITEMS[0]
    downloads.create("crashy", spec(slow_images(site, first), {"pvc": {"claimName": "media"}}))
    stored_before = crash_twice(cluster, downloads, "crashy")
    status = downloads.wait_phase("crashy", {"Succeeded", "Failed"}, timeout=240)
    assert status["phase"] == "Succeeded", status
    assert status["catalogue"]["items"] == len(ITEMS)
    folder = local.volumes_root / downloads.namespace / "media" / "crashy"
    lines = (folder / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    check_catalogue([json.loads(line) for line in lines], files, range(first, first + len(ITEMS)))
    check_resumed(stored_before, first)
    [job] = downloads.jobs("crashy")
    assert job.status.failed == 2, job.status


def test_a_crashed_worker_resumes_into_s3(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, s3_server: S3Server
) -> None:
    cluster.require_local()
    target = s3_target(cluster, namespace, s3_server, "crashy")
    first = ITEMS[-1] + 1
    downloads.create("crashy", spec(slow_images(site, first), target))
    stored_before = crash_twice(cluster, downloads, "crashy")
    status = downloads.wait_phase("crashy", {"Succeeded", "Failed"}, timeout=240)
    assert status["phase"] == "Succeeded", status
    prefix = f"{namespace}/crashy/"
    bodies = s3_files(s3_server, "crashy", prefix)
    catalogue = bodies.pop(".gallery-operator/catalogue.jsonl")
    bodies = {key: body for key, body in bodies.items() if not key.startswith(".gallery-operator/")}  # the archive
    check_catalogue(
        [json.loads(line) for line in catalogue.decode().splitlines()], bodies, range(first, first + len(ITEMS))
    )
    # An S3 target's archive goes up every STATE_SYNC_SECONDS (10 s) and the first pod died 3-4 s in: only its
    # first item (synced at once) is known to the retry; the rest are fetched again and stored under the same keys.
    assert stored_before >= 2
    check_resumed(1, first)
    assert s3_server.client().list_multipart_uploads(Bucket="crashy").get("Uploads", []) == []


@pytest.fixture(autouse=True)
def _images_not_yet_fetched() -> None:
    for n in range(ITEMS[0], ITEMS[0] + 2 * len(ITEMS)):
        Handler.hits.pop(f"/slow/{n}.jpg", None)
