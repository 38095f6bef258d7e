"""Outages of what a download depends on, mid-gallery, with the real worker: the S3 server stopped during uploads
(and started again on the same endpoint), and the site going away. Either the retries resume and the files are the
catalogue, or the download fails with a stable reason; nothing already stored is lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler, image_bytes, serve
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, check_catalogue, s3_files, s3_target

ITEMS = 8


def slow(site: str, first: int) -> list[str]:
    return [f"{site}/slow/{n}.jpg?seconds=1.5" for n in range(first, first + ITEMS)]


def items_done(downloads: Downloads, name: str) -> int:
    return int(downloads.status(name).get("progress", {}).get("itemsDone", 0))


def test_an_s3_outage_mid_upload_resumes_on_retry(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, tmp_path: Path
) -> None:
    cluster.require_local()
    with S3Server(root=tmp_path, log=tmp_path / "versitygw.log", host=cluster.service_host) as server:
        target = s3_target(cluster, namespace, server, "outage")
        first = 7301
        downloads.create("outage", {"urls": slow(site, first), "target": target, "backoffLimit": 6})
        wait_until(lambda: items_done(downloads, "outage") >= 2, 120, "two items stored", interval=0.1)
        before = s3_files(server, "outage", f"{namespace}/outage/")
        server.stop()
        time.sleep(15)  # the outage itself
        server.start()
        status = downloads.wait_phase("outage", {"Succeeded", "Failed"}, timeout=400)
        after = s3_files(server, "outage", f"{namespace}/outage/")
    assert status["phase"] == "Succeeded", status
    stored = {k: v for k, v in before.items() if not k.startswith(".gallery-operator/")}
    assert stored and all(after[key] == body for key, body in stored.items())  # nothing stored was lost
    catalogue = after.pop(".gallery-operator/catalogue.jsonl")
    files = {key: body for key, body in after.items() if not key.startswith(".gallery-operator/")}
    check_catalogue([json.loads(line) for line in catalogue.decode().splitlines()], files, range(first, first + ITEMS))


def test_the_site_vanishing_mid_gallery_fails_stably_then_resumes(cluster: Cluster, downloads: Downloads) -> None:
    local = cluster.require_local()
    first = 7401
    with serve(host=cluster.service_host) as gone:
        spec = {"urls": slow(gone, first), "target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}}
        downloads.create("vanish", {**spec, "backoffLimit": 0})
        wait_until(lambda: items_done(downloads, "vanish") >= 2, 120, "two items stored", interval=0.1)
    port = int(gone.rsplit(":", 1)[1])
    status = downloads.wait_phase("vanish", {"Succeeded", "Failed"}, timeout=300)
    ready = downloads.condition("vanish", "Ready")
    assert (status["phase"], ready["reason"]) in {("Failed", "NetworkError"), ("Succeeded", "PartiallySucceeded")}
    folder = local.volumes_root / downloads.namespace / "media" / "vanish"
    kept = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert len(kept) >= 2 and all(body == image_bytes(int(name.split(".")[0])) for name, body in kept.items())
    fetched = {name: Handler.hits.get(f"/slow/{name.split('.')[0]}.jpg", 0) for name in kept}
    with serve(port=port, host=cluster.service_host):  # the site is back where it was
        downloads.patch("vanish", {"options": {"sleepSeconds": 0.1}})  # a new run, as a user retries
        wait_until(lambda: downloads.status("vanish").get("observedGeneration") == 2, 60, "the new run")
        status = downloads.wait_phase("vanish", {"Succeeded", "Failed"}, timeout=300)
    assert status["phase"] == "Succeeded", status
    lines = (folder / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    check_catalogue([json.loads(line) for line in lines], files, range(first, first + ITEMS))
    assert {name: Handler.hits.get(f"/slow/{name.split('.')[0]}.jpg", 0) for name in kept} == fetched  # not again
