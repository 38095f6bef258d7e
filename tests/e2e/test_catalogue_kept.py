"""The status keeps what was stored when a worker cannot open its target, on the real control plane with the real
worker and S3 server: a download stores items in a bucket, then the bucket's server is down when a pod starts (a
retried pod of the same run, or every pod of a new run), so the pod reports the failure without a catalogue. The
run fails with StorageError, and the status still shows the catalogue the earlier pod or run read (its items,
bytes and location, and which run read it); the objects stay in the bucket."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from gallery_harness.site import image_bytes
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, s3_files, s3_target

ITEMS = 7


def stalled_reason(downloads: Downloads, name: str) -> str:
    return str(downloads.condition(name, "Stalled").get("reason", ""))


def images(files: dict[str, bytes]) -> dict[str, bytes]:
    return {key: body for key, body in files.items() if not key.startswith(".gallery-operator/")}


def catalogue_records(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in files.get(".gallery-operator/catalogue.jsonl", b"").decode().splitlines()]


@contextlib.contextmanager
def bucket_download(
    cluster: Cluster, downloads: Downloads, tmp_path: Path, name: str, urls: list[str], **options: Any
) -> Iterator[S3Server]:
    """The test's own S3 server (to stop and start), and a download `name` of ``urls`` into its bucket `name`, with
    one retry of its pod."""
    cluster.require_local()
    with S3Server(root=tmp_path, log=tmp_path / "versitygw.log", host=cluster.service_host) as server:
        target = s3_target(cluster, downloads.namespace, server, name)
        spec = {"urls": urls, "target": target, "backoffLimit": 1, "options": {"retries": 0, **options}}
        downloads.create(name, spec)
        yield server


def summary(catalogue: dict[str, Any]) -> dict[str, Any]:
    """What the catalogue summary says is stored (without the run that read it)."""
    return {key: value for key, value in catalogue.items() if key != "jobName"}


def test_a_new_run_that_cannot_open_its_bucket_keeps_the_stored_catalogue_in_the_status(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, tmp_path: Path
) -> None:
    first = 8101
    urls = [f"{site}/img/{n}.jpg" for n in range(first, first + ITEMS)]
    with bucket_download(cluster, downloads, tmp_path, "kept", urls) as server:
        done = downloads.wait_phase("kept", {"Succeeded", "Failed"}, timeout=180)
        assert done["phase"] == "Succeeded", done
        stored = done["catalogue"]
        assert (stored["items"], stored["bytes"]) == (
            ITEMS,
            sum(len(image_bytes(n)) for n in range(first, first + ITEMS)),
        )
        server.stop()  # the bucket is unavailable for the next run
        downloads.patch("kept", {"options": {"retries": 0, "sleepSeconds": 0.1}})  # a new run, as a user retries
        wait_until(lambda: downloads.status("kept").get("observedGeneration") == 2, 60, "the new run")
        ended = downloads.wait_phase("kept", {"Succeeded", "Failed"}, timeout=300)
        assert (ended["phase"], stalled_reason(downloads, "kept")) == ("Failed", "StorageError"), ended
        assert summary(ended["catalogue"]) == summary(stored)  # 7 items, as the first run read them
        assert ended["attempts"] == 2  # both pods of the new run tried and could not open the bucket
        # ... and it says that run read them: the status's catalogue is the last known one, from an earlier run.
        assert ended["jobName"] != done["jobName"] == stored["jobName"] == ended["catalogue"]["jobName"]
        server.start()
        files = s3_files(server, "kept", f"{namespace}/kept/")
    assert images(files) == {f"{n}.jpg": image_bytes(n) for n in range(first, first + ITEMS)}  # nothing was lost
    assert len(catalogue_records(files)) == ITEMS


def test_a_retried_pod_that_cannot_open_its_bucket_keeps_the_runs_catalogue_in_the_status(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, tmp_path: Path
) -> None:
    first = 8201
    urls = [f"{site}/slow/{n}.jpg?seconds=1.5" for n in range(first, first + ITEMS)]
    # One item at a time: the bucket goes down while items are left to store (six at once could all be stored).
    with bucket_download(cluster, downloads, tmp_path, "kept-retry", urls, concurrency=1) as server:
        wait_until(
            lambda: downloads.status("kept-retry").get("catalogue", {}).get("items", 0) >= 2,
            120,
            "two items stored and catalogued by the first pod",
            interval=0.1,
        )
        server.stop()  # the first pod's next upload fails (StorageError, retried); its retry cannot open the bucket
        ended = downloads.wait_phase("kept-retry", {"Succeeded", "Failed"}, timeout=300)
        server.start()
        files = s3_files(server, "kept-retry", f"{namespace}/kept-retry/")
    assert (ended["phase"], stalled_reason(downloads, "kept-retry")) == ("Failed", "StorageError"), ended
    assert ended["attempts"] == 2
    stored = images(files)
    assert len(stored) >= 2 and all(body == image_bytes(int(key.split(".")[0])) for key, body in stored.items())
    # What the first pod stored and catalogued, as its last report said: the objects in the bucket, by count and size.
    catalogue = ended["catalogue"]
    assert (catalogue["items"], catalogue["bytes"]) == (len(stored), sum(len(body) for body in stored.values()))
    assert catalogue["location"] == f"s3://kept-retry/{namespace}/kept-retry/.gallery-operator/catalogue.jsonl"
    assert catalogue["jobName"] == ended["jobName"]
    assert ended["progress"]["itemsDone"] == len(stored)  # the run's progress, not the retried pod's nothing
