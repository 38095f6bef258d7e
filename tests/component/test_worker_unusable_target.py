"""The real worker's final report when its target cannot be used: without a catalogue when the pod could not read
one (so the operator keeps the last catalogue it knew instead of taking it for an empty one), and with the
catalogue it read when the target failed only after that. Real S3 server, real claim folder, real gallery-dl."""

from __future__ import annotations

import shutil
from pathlib import Path

from gallery_harness.s3server import S3Server
from gallery_operator.workerconfig import EXIT_RETRYABLE, PvcStorage, S3Storage
from tests.component.workers import catalogue, run_worker


def test_a_bucket_the_pod_cannot_read_gives_a_report_without_a_catalogue(
    tmp_path: Path, site: str, s3_server: S3Server
) -> None:
    s3_server.client().create_bucket(Bucket="unreadable")
    storage = S3Storage(bucket="unreadable", prefix="team/dl", endpoint=s3_server.endpoint, force_path_style=True)
    keys = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/31.jpg"]}, storage, env=keys)
    assert (code, report["catalogueItems"]) == (0, 1), report
    wrong = {**keys, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}  # the bucket refuses this pod: nothing is read
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/31.jpg"]}, storage, env=wrong)
    assert code == EXIT_RETRYABLE and report["outcome"] == "Failed", report
    assert [f["reason"] for f in report["failures"]] == ["StorageError"]
    assert report["message"].startswith("cannot open the target")
    assert not {"catalogueItems", "catalogueBytes", "catalogueLocation"} & set(report), report
    assert report.get("sample", []) == []


def test_a_claim_that_fails_after_its_catalogue_was_read_reports_that_catalogue(tmp_path: Path, site: str) -> None:
    root = tmp_path / "claim"
    storage = PvcStorage(root=str(root), location="pvc://media/dl")
    urls = [f"{site}/img/{n}.jpg" for n in (32, 33, 34)]
    code, first = run_worker(tmp_path, {"urls": urls}, storage)
    assert (code, first["catalogueItems"]) == (0, 3), first
    journal = root / ".gallery-operator" / "placed.jsonl"
    journal.unlink()
    journal.mkdir()  # the state folder cannot be made ready for the next pod, after its catalogue is read
    code, report = run_worker(tmp_path, {"urls": urls}, storage)
    assert code == EXIT_RETRYABLE and [f["reason"] for f in report["failures"]] == ["StorageError"], report
    assert (report["catalogueItems"], report["catalogueBytes"]) == (first["catalogueItems"], first["catalogueBytes"])
    assert report["catalogueLocation"] == "pvc://media/dl/.gallery-operator/catalogue.jsonl"
    assert [item["path"] for item in report["sample"]] == ["32.jpg", "33.jpg", "34.jpg"]
    assert [r["path"] for r in catalogue(root)] == ["32.jpg", "33.jpg", "34.jpg"]  # nothing stored was touched
    shutil.rmtree(journal)
