"""The worker on its own: real gallery-dl and yt-dlp against the fixture site, into a folder or real S3."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler, big_chunk, described_text, hls_segment, image_bytes, named_bytes
from gallery_operator.api.spec import parse_spec
from gallery_operator.workerconfig import YT_DLP_ARCHIVE, Egress, PvcStorage, S3Storage, WorkerConfig
from tests.component.workers import LOCAL_SITE, catalogue, claim, run_worker, start_worker


def test_pvc_download_catalogue_and_resume(tmp_path: Path, site: str) -> None:
    root = tmp_path / "claim"
    storage = PvcStorage(root=str(root), location="pvc://media/dl")
    urls = [f"{site}/img/{n}.jpg" for n in (1, 2, 3)]
    code, report = run_worker(tmp_path, {"urls": urls}, storage)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 3)
    assert (root / "3.jpg").read_bytes() == image_bytes(3)
    records = catalogue(root)
    assert [r["path"] for r in records] == ["1.jpg", "2.jpg", "3.jpg"]
    assert records[0]["sha256"] == hashlib.sha256(image_bytes(1)).hexdigest()
    assert records[0]["sourceUrl"] == urls[0]
    assert (records[0]["engine"], records[0]["extractor"]) == ("gallery-dl", "directlink")
    # A re-run (a retried pod) skips what is stored and adds only the new item, without duplicates.
    code, report = run_worker(tmp_path, {"urls": [*urls, f"{site}/img/4.jpg"]}, storage)
    assert code == 0 and report["itemsDone"] == 4 and report["bytesDone"] == len(image_bytes(4))
    assert [r["path"] for r in catalogue(root)] == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert report["catalogueItems"] == 4


def test_limits_stop_the_run(tmp_path: Path, site: str) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    urls = [f"{site}/img/{n}.jpg" for n in range(1, 6)]
    code, report = run_worker(tmp_path, {"urls": urls, "limits": {"maxItems": 2}}, storage)
    assert code == 0
    assert report["itemsDone"] == 2 and report["outcome"] == "PartiallySucceeded"
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    assert sorted(p.name for p in (tmp_path / "claim").glob("*.jpg")) == ["1.jpg", "2.jpg"]


def test_not_found_is_permanent(tmp_path: Path, site: str) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/none.jpg"]}, storage)
    assert code == 2
    assert report["outcome"] == "Failed"
    assert report["failures"][0]["reason"] == "NotFound"
    assert report["failures"][0]["url"] == f"{site}/img/none.jpg"


def test_s3_upload_catalogue_resume_and_cleanup(tmp_path: Path, site: str, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="worker-test")
    storage = S3Storage(bucket="worker-test", prefix="team/dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    urls = [f"{site}/img/7.jpg", f"{site}/big/20.mp4"]
    code, report = run_worker(tmp_path, {"urls": urls}, storage, env=env)
    assert code == 0, report
    assert report["catalogueLocation"] == "s3://worker-test/team/dl/.gallery-operator/catalogue.jsonl"
    image = s3.get_object(Bucket="worker-test", Key="team/dl/7.jpg")
    assert image["Body"].read() == image_bytes(7)
    assert image["ContentType"] == "image/jpeg"
    video = s3.head_object(Bucket="worker-test", Key="team/dl/20.mp4")
    assert video["ContentLength"] == 20 * len(big_chunk())
    assert "-" in video["ETag"]  # multipart
    staged = [p for p in (tmp_path / "scratch" / "staging").rglob("*") if p.is_file() and p.suffix in (".mp4", ".jpg")]
    assert staged and all(p.stat().st_size == 0 for p in staged)  # scratch keeps names, not bytes
    body = s3.get_object(Bucket="worker-test", Key="team/dl/.gallery-operator/catalogue.jsonl")["Body"].read()
    records = [json.loads(line) for line in body.decode().splitlines()]
    assert {r["path"] for r in records} == {"7.jpg", "20.mp4"}
    big = next(r for r in records if r["path"] == "20.mp4")
    assert big["sha256"] == hashlib.sha256(big_chunk() * 20).hexdigest()
    # A new pod with empty scratch space resumes from the catalogue and archive kept in the bucket.
    (tmp_path / "scratch").rename(tmp_path / "old-scratch")
    code, report = run_worker(tmp_path, {"urls": urls}, storage, env=env)
    assert code == 0 and report["bytesDone"] == 0 and report["catalogueItems"] == 2
    # deletionPolicy Delete
    code, result = run_worker(tmp_path, {"urls": urls}, storage, "--cleanup", env=env)
    assert code == 0 and result["removed"] >= 4
    assert s3.list_objects_v2(Bucket="worker-test", Prefix="team/dl/").get("KeyCount", 0) == 0


def bucket_catalogue(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=f"{prefix}/.gallery-operator/catalogue.jsonl")["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_a_large_file_on_a_claim_survives_a_cut_connection(tmp_path: Path, site: str, engine: str) -> None:
    """The engine appends the rest of the file after a Range request; the digest, read back from the file behind
    the writer, spans both connections."""
    root = tmp_path / "claim"
    spec = {"urls": [f"{site}/cut/40.mp4"], "engine": engine, "options": {"retries": 1}}
    code, report = run_worker(tmp_path, spec, PvcStorage(root=str(root), location="pvc://media/dl"))
    assert code == 0, report
    expected = big_chunk() * 40
    [record] = catalogue(root)
    assert (record["size"], record["sha256"]) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert (root / record["path"]).read_bytes() == expected


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_s3_streams_a_large_file_and_survives_a_cut_connection(
    tmp_path: Path, site: str, s3_server: S3Server, engine: str
) -> None:
    """The first request loses its connection halfway; the engine resumes with a Range request and the same
    multipart upload carries on (one part in flight at a time for one engine, boto3's ten for the other)."""
    s3 = s3_server.client()
    bucket = f"cut-{engine}"
    s3.create_bucket(Bucket=bucket)
    storage = S3Storage(
        bucket=bucket,
        prefix="dl",
        endpoint=s3_server.endpoint,
        force_path_style=True,
        parts_in_flight=1 if engine == "gallery-dl" else 10,
    )
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    spec = {"urls": [f"{site}/cut/40.mp4"], "engine": engine, "options": {"retries": 1}}
    code, report = run_worker(tmp_path, spec, storage, env=env)
    assert code == 0, report
    expected = big_chunk() * 40
    [record] = bucket_catalogue(s3, bucket, "dl")
    assert (record["size"], record["sha256"]) == (len(expected), hashlib.sha256(expected).hexdigest())
    stored = s3.get_object(Bucket=bucket, Key=f"dl/{record['path']}")
    assert stored["ContentType"] == "video/mp4" and "-" in stored["ETag"]
    assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(expected).digest()
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_s3_scratch_space_stays_small_while_a_large_file_downloads(
    tmp_path: Path, site: str, s3_server: S3Server, engine: str
) -> None:
    """Past its first part a large file goes into the bucket while it downloads: the scratch folder holds the first
    part and the file's length, not its bytes (measured by allocated blocks while the worker runs)."""
    s3 = s3_server.client()
    bucket = f"small-{engine}"
    s3.create_bucket(Bucket=bucket)
    storage = S3Storage(bucket=bucket, prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    spec = {"urls": [f"{site}/big/48.mp4"], "engine": engine, "options": {"retries": 0, "rateLimit": "24M"}}
    process = start_worker(tmp_path, spec, storage, env=env)
    peak = 0
    while process.poll() is None:
        files = [p for p in (tmp_path / "scratch").rglob("*") if p.is_file()]
        peak = max(peak, sum(p.stat().st_blocks * 512 for p in files if p.exists()))
        time.sleep(0.05)
    process.communicate()
    report = json.loads((tmp_path / "termination-log").read_text())
    assert process.returncode == 0 and report["outcome"] == "Succeeded", report
    expected = big_chunk() * 48
    [record] = bucket_catalogue(s3, bucket, "dl")
    assert record["sha256"] == hashlib.sha256(expected).hexdigest()
    body = s3.get_object(Bucket=bucket, Key=f"dl/{record['path']}")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
    assert 0 < peak < 20 * 1024 * 1024, peak  # a 48 MiB file; one 8 MiB part (plus a chunk) ever on disk


def test_s3_drops_the_parts_of_a_file_cut_by_a_limit(tmp_path: Path, site: str, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="limit-test")
    storage = S3Storage(bucket="limit-test", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    spec = {"urls": [f"{site}/big/64.mp4"], "limits": {"maxBytes": "20Mi"}}
    code, report = run_worker(tmp_path, spec, storage, env=env)
    assert code == 0 and [f["reason"] for f in report["failures"]] == ["LimitExceeded"], report
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="limit-test").get("Contents", [])]
    assert "dl/64.mp4" not in keys
    assert not s3.list_multipart_uploads(Bucket="limit-test").get("Uploads")  # started, then aborted


def test_an_s3_outage_mid_file_is_a_storage_error_and_keeps_what_was_stored(tmp_path: Path, site: str) -> None:
    with S3Server(root=tmp_path / "s3", log=tmp_path / "s3.log") as server:
        s3 = server.client()
        s3.create_bucket(Bucket="outage")
        storage = S3Storage(bucket="outage", prefix="dl", endpoint=server.endpoint, force_path_style=True)
        env = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
        spec = {"urls": [f"{site}/img/31.jpg", f"{site}/big/64.mp4"], "options": {"retries": 0, "rateLimit": "16M"}}
        process = start_worker(tmp_path, spec, storage, env=env)
        wait_until(lambda: "dl/31.jpg" in keys(s3, "outage"), 120, "the image stored before the outage")
        time.sleep(1.0)  # inside the large file, parts on their way
        server.stop()
        _, stderr = process.communicate(timeout=180)
        report = json.loads((tmp_path / "termination-log").read_text())
        assert process.returncode == 1, stderr[-3000:]  # retryable: a new pod resumes
        assert (report["itemsDone"], report["outcome"]) == (1, "Failed")
        big = f"{site}/big/64.mp4"
        assert {(f["reason"], f["url"]) for f in report["failures"]} >= {("StorageError", big)}, report["failures"]
        server.start()  # back, on another port
        s3 = server.client()
        storage = storage.model_copy(update={"endpoint": server.endpoint})
        assert "dl/31.jpg" in keys(s3, "outage")  # what was stored before the outage is still there
        # The next pod, with the bucket back, resumes: the image is skipped, the large file stored whole.
        (tmp_path / "scratch").rename(tmp_path / "old-scratch")
        code, report = run_worker(tmp_path, {**spec, "options": {"retries": 0}}, storage, env=env)
        assert code == 0 and report["outcome"] == "Succeeded", report
        assert s3.head_object(Bucket="outage", Key="dl/64.mp4")["ContentLength"] == 64 * len(big_chunk())


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_private_destinations_are_refused_by_default(tmp_path: Path, site: str) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/1.jpg"]}, storage, egress=Egress())
    assert code == 2  # Blocked is permanent
    assert [f["reason"] for f in report["failures"]] == ["Blocked"]
    assert "not a public address" in report["failures"][0]["message"]
    assert not list((tmp_path / "claim").glob("*.jpg"))


def test_a_redirect_cannot_leave_the_allowed_domains(tmp_path: Path, site: str) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    rules = Egress(allow_private_networks=True, allowed_domains=["localhost"])
    port = site.rsplit(":", 1)[1]
    allowed = f"http://localhost:{port}/img/5.jpg"
    escaping = f"http://localhost:{port}/redirect/x.jpg?to=http://127.0.0.1:{port}/img/6.jpg"
    _, report = run_worker(tmp_path, {"urls": [allowed, escaping]}, storage, egress=rules)
    assert report["itemsDone"] == 1 and (tmp_path / "claim" / "5.jpg").exists()
    blocked = [f for f in report["failures"] if f["reason"] == "Blocked"]
    assert blocked and "127.0.0.1 is not on the allowed list" in blocked[0]["message"]
    assert not (tmp_path / "claim" / "6.jpg").exists()


def test_yt_dlp_takes_a_direct_video_and_a_video_page(tmp_path: Path, site: str) -> None:
    storage = claim(tmp_path)
    code, report = run_worker(tmp_path, {"urls": [f"{site}/big/3.mp4"], "engine": "yt-dlp"}, storage)
    assert code == 0, report
    code, report = run_worker(tmp_path, {"urls": [f"{site}/video.html"]}, storage)  # auto: gallery-dl declines
    assert code == 0, report
    records = catalogue(tmp_path / "claim")
    assert [(r["engine"], r["size"]) for r in records] == [
        ("yt-dlp", 3 * len(big_chunk())),
        ("yt-dlp", 2 * len(big_chunk())),
    ]
    assert records[1]["sha256"] == hashlib.sha256(big_chunk() * 2).hexdigest()
    assert records[1]["metadata"]["webpage_url"] == f"{site}/video.html"
    assert all((tmp_path / "claim" / r["path"]).is_file() for r in records)


def test_a_flaky_server_is_retried(tmp_path: Path, site: str) -> None:
    code, report = run_worker(tmp_path, {"urls": [f"{site}/flaky/101.jpg"], "options": {"retries": 3}}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"]) == (0, 1, [])
    code, report = run_worker(tmp_path, {"urls": [f"{site}/flaky/102.jpg"], "options": {"retries": 0}}, claim(tmp_path))
    assert code == 1  # a server error may pass: the pod is retried
    assert [f["reason"] for f in report["failures"]] == ["NetworkError"]


def test_yt_dlp_retries_its_first_request(tmp_path: Path, site: str) -> None:
    spec = {"urls": [f"{site}/flaky/big/2.mp4"], "engine": "yt-dlp", "options": {"retries": 2}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 0 and report["outcome"] == "Succeeded", report
    [record] = catalogue(tmp_path / "claim")
    assert record["size"] == 2 * len(big_chunk())
    # Without retries the same failure is the run's outcome, classified and with its URL.
    code, report = run_worker(
        tmp_path, {**spec, "urls": [f"{site}/flaky/big/3.mp4"], "options": {"retries": 0}}, claim(tmp_path)
    )
    assert code == 1 and [f["reason"] for f in report["failures"]] == ["NetworkError"]
    assert report["failures"][0]["url"] == f"{site}/flaky/big/3.mp4"


def test_a_slow_response_times_out(tmp_path: Path, site: str) -> None:
    spec = {"urls": [f"{site}/slow/103.jpg?seconds=6"], "options": {"retries": 0, "timeoutSeconds": 1}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 1
    assert [f["reason"] for f in report["failures"]] == ["Timeout"]


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_hostile_names_stay_inside_the_target(tmp_path: Path, site: str, engine: str) -> None:
    urls = [f"{site}/hostile/%2e%2e%2f%2e%2e%2fescape-{engine}.jpg", f"{site}/hostile/..%2F..%2F..%2Fetc%2Fpasswd.jpg"]
    _, report = run_worker(tmp_path, {"urls": urls, "engine": engine}, claim(tmp_path))
    assert report["itemsDone"] == 2, report
    root = (tmp_path / "claim").resolve()
    expected_elsewhere = {tmp_path / "termination-log"}
    strays = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and p not in expected_elsewhere
        and root not in p.resolve().parents
        and (tmp_path / "scratch") not in p.parents
    ]
    assert strays == []
    for record in catalogue(tmp_path / "claim"):
        assert root in (root / record["path"]).resolve().parents


def test_resume_after_a_kill_mid_download(tmp_path: Path, site: str) -> None:
    storage = claim(tmp_path)
    urls = [f"{site}/img/201.jpg", f"{site}/img/202.jpg", f"{site}/big/48.mp4", f"{site}/img/203.jpg"]
    spec = {"urls": urls, "options": {"retries": 0, "rateLimit": "8M"}}
    process = start_worker(tmp_path, spec, storage)
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (records.exists() and len(records.read_text().splitlines()) >= 2):
        time.sleep(0.1)
    time.sleep(1.0)  # now inside the 48 MiB file, at about 8 MiB/s
    process.kill()
    process.communicate()
    assert [r["path"] for r in catalogue(tmp_path / "claim")] == ["201.jpg", "202.jpg"]
    code, report = run_worker(tmp_path, {**spec, "options": {"retries": 0}}, storage)
    assert code == 0, report
    paths = [r["path"] for r in catalogue(tmp_path / "claim")]
    assert paths == ["201.jpg", "202.jpg", "48.mp4", "203.jpg"]  # complete, each once
    assert report["bytesDone"] == 48 * len(big_chunk()) + len(image_bytes(203))  # stored items were skipped
    assert (tmp_path / "claim" / "48.mp4").stat().st_size == 48 * len(big_chunk())


def test_auto_takes_a_gallery_page_with_the_generic_extractor(tmp_path: Path, site: str) -> None:
    code, report = run_worker(tmp_path, {"urls": [f"{site}/gallery/?n=4"]}, claim(tmp_path))
    assert code == 0, report
    records = catalogue(tmp_path / "claim")
    assert sorted(r["path"] for r in records) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert {(r["engine"], r["extractor"]) for r in records} == {("gallery-dl", "generic")}


def test_a_page_without_media_is_unsupported(tmp_path: Path, site: str) -> None:
    code, report = run_worker(tmp_path, {"urls": [f"{site}/gallery/?n=0"]}, claim(tmp_path))
    assert code == 2
    assert [f["reason"] for f in report["failures"]] == ["UnsupportedUrl"]


def test_yt_dlp_takes_an_hls_stream(tmp_path: Path, site: str) -> None:
    code, report = run_worker(tmp_path, {"urls": [f"{site}/hls/index.m3u8"]}, claim(tmp_path))
    assert code == 0, report
    [record] = catalogue(tmp_path / "claim")
    assert record["engine"] == "yt-dlp"
    # The native HLS downloader joins the segments in order (ffmpeg would remux them when present).
    assert record["size"] == 3 * len(hls_segment(0))
    assert record["sha256"] == hashlib.sha256(b"".join(hls_segment(n) for n in range(3))).hexdigest()


def test_max_bytes_stops_the_run(tmp_path: Path, site: str) -> None:
    urls = [f"{site}/img/{n}.jpg" for n in range(401, 406)]
    code, report = run_worker(tmp_path, {"urls": urls, "limits": {"maxBytes": "5000"}}, claim(tmp_path))
    assert code == 0
    # 2 x 2048 bytes are stored; the third image would cross 5000, so it is cut off and not kept.
    assert (report["itemsDone"], report["bytesDone"]) == (2, 4096)
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    assert [r["path"] for r in catalogue(tmp_path / "claim")] == ["401.jpg", "402.jpg"]


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_max_bytes_stops_within_one_chunk(tmp_path: Path, site: str, engine: str) -> None:
    spec = {"urls": [f"{site}/big/64.mp4"], "engine": engine, "limits": {"maxBytes": "3Mi"}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 0, report
    assert (report["itemsDone"], report["bytesDone"], report["outcome"]) == (0, 0, "PartiallySucceeded")
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    # The download stops within one 1 MiB chunk of the limit, in a partial file (gallery-dl's beside the target,
    # yt-dlp's in scratch space) that is not catalogued.
    written = sum(p.stat().st_size for p in tmp_path.rglob("*.part") if "64" in p.name)
    assert 2 * 1024 * 1024 <= written <= 4 * 1024 * 1024
    assert not (tmp_path / "claim" / "64.mp4").exists()


def test_rate_limit_slows_the_download(tmp_path: Path, site: str) -> None:
    started = time.monotonic()
    code, _ = run_worker(tmp_path, {"urls": [f"{site}/big/3.mp4"], "options": {"rateLimit": "1M"}}, claim(tmp_path))
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed >= 2.0  # 3 MiB at 1 MiB/s; unthrottled it takes a few milliseconds


def test_engine_options_outside_the_allowlist_never_reach_an_engine(tmp_path: Path, site: str) -> None:
    """A configuration that nests an exec post-processor into an engine option (as a spec could before the
    allowlist) is refused by the worker before any engine runs: no command, no download, reason InvalidSpec."""
    marker = tmp_path / "marker"
    hostile = "{postprocessors: [{name: exec, command: [touch, " + str(marker) + "]}]}"
    config = WorkerConfig(
        namespace="ns",
        name="dl",
        uid="u",
        run="run1",
        spec=parse_spec({"urls": [f"{site}/img/1.jpg"], "target": {"pvc": {"claimName": "x"}}}),
        storage=claim(tmp_path),
        egress=LOCAL_SITE,
    ).model_dump(mode="json", by_alias=True)
    config["spec"]["options"]["galleryDl"] = {"directlink": hostile}
    config["spec"]["options"]["ytDlp"] = {"enable_file_urls": "true"}
    process = subprocess.run(
        [sys.executable, "-m", "gallery_operator.worker"],
        env={
            **os.environ,
            "GALLERY_WORKER_CONFIG": json.dumps(config),
            "GALLERY_WORKER_SCRATCH": str(tmp_path / "scratch"),
            "GALLERY_WORKER_TERMINATION_LOG": str(tmp_path / "termination-log"),
            "GALLERY_WORKER_LOG_FORMAT": "text",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2, process.stderr[-2000:]
    assert not marker.exists()
    assert not (tmp_path / "claim" / "1.jpg").exists()
    report = json.loads((tmp_path / "termination-log").read_text())
    assert report["outcome"] == "Failed" and report["run"] == "run1"
    [failure] = report["failures"]
    assert failure["reason"] == "InvalidSpec"
    for refused in ("galleryDl.directlink", "ytDlp.enable_file_urls"):
        assert refused in failure["message"], failure["message"]


def localhost_only(site: str) -> tuple[str, Egress]:
    """The fixture site as `localhost` and rules that allow only that name, so any other loopback name stands for a
    destination the tenant must not reach."""
    port = site.rsplit(":", 1)[1]
    return f"http://localhost:{port}", Egress(allow_private_networks=True, allowed_domains=["localhost"])


def test_a_tenant_s3_endpoint_gets_no_exemption_from_the_egress_rules(
    tmp_path: Path, site: str, s3_server: S3Server
) -> None:
    """An endpoint the operator does not list as private is one more destination under the rules: here it is not on
    the allowed list, so the worker never reaches it (before, its host was exempt from every rule)."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="tenant-endpoint")
    site_url, rules = localhost_only(site)
    storage = S3Storage(bucket="tenant-endpoint", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    code, report = run_worker(tmp_path, {"urls": [f"{site_url}/img/1.jpg"]}, storage, env=env, egress=rules)
    assert code != 0 and report["outcome"] == "Failed", report
    assert "127.0.0.1 is not on the allowed list" in json.dumps(report["failures"]), report["failures"]
    assert keys(s3, "tenant-endpoint") == []


def test_a_private_s3_endpoint_is_trusted_only_for_the_s3_client(
    tmp_path: Path, site: str, s3_server: S3Server
) -> None:
    """An endpoint the operator lists as private takes the uploads; a download from it, or a redirect to it, is
    refused like any other destination off the rules."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="private-endpoint")
    s3.put_object(Bucket="private-endpoint", Key="other-tenant/secret.jpg", Body=image_bytes(9))
    site_url, rules = localhost_only(site)
    endpoint = s3_server.endpoint
    storage = S3Storage(
        bucket="private-endpoint", prefix="dl", endpoint=endpoint, force_path_style=True, private_endpoint=True
    )
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    direct = f"{endpoint}/private-endpoint/other-tenant/secret.jpg"
    redirected = f"{site_url}/redirect/r.jpg?to={direct}"
    urls = [f"{site_url}/img/2.jpg", direct, redirected]
    _, report = run_worker(tmp_path, {"urls": urls}, storage, env=env, egress=rules)
    assert report["itemsDone"] == 1, report
    assert "dl/2.jpg" in keys(s3, "private-endpoint")
    blocked = {f["url"] for f in report["failures"] if f["reason"] == "Blocked"}
    assert direct in blocked, report["failures"]
    assert any(u in blocked for u in (redirected, direct)) and len(report["failures"]) == 2, report["failures"]
    assert not list((tmp_path / "scratch").rglob("secret*"))


def segment_hits() -> int:
    return sum(count for path, count in Handler.hits.items() if path.startswith("/hls/segment"))


@pytest.mark.parametrize(
    ("playlist", "reason", "words"),
    [
        ("live.m3u8", "LiveStream", "live streams are not downloaded"),
        ("sample-aes.m3u8", "Blocked", "ffmpeg may not open 'http://"),
    ],
)
def test_no_network_url_reaches_ffmpeg(tmp_path: Path, site: str, playlist: str, reason: str, words: str) -> None:
    """Streams yt-dlp's own downloaders cannot take (a live playlist, a feature its HLS downloader lacks) would go to
    ffmpeg, which fetches by itself past the egress guard. Neither reaches ffmpeg: no segment is ever requested."""
    assert shutil.which("ffmpeg"), "ffmpeg is part of the worker image; `make test` installs it"
    before = segment_hits()
    started = time.monotonic()
    code, report = run_worker(tmp_path, {"urls": [f"{site}/hls/{playlist}"], "engine": "yt-dlp"}, claim(tmp_path))
    assert time.monotonic() - started < 60
    assert code == 2, report  # permanent: retrying the pod cannot change it
    assert [(f["reason"], f["url"]) for f in report["failures"]] == [(reason, f"{site}/hls/{playlist}")], report
    assert words in report["failures"][0]["message"]
    assert segment_hits() == before
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    assert report["itemsDone"] == 0 and (not records.exists() or not records.read_text())


@pytest.mark.parametrize(
    ("engine", "url", "sidecar"), [("yt-dlp", "big/2.mp4", ".info.json"), ("gallery-dl", "7.jpg", ".json")]
)
def test_metadata_sidecars_and_the_catalogue_hold_no_credentials(
    tmp_path: Path, site: str, engine: str, url: str, sidecar: str
) -> None:
    """With writeMetadata, the sidecar beside each file carries the engine's metadata, never the cookies (yt-dlp's
    info dict holds the ones it sent), the password or a token, wherever they appear."""
    cookies = tmp_path / "secret"
    cookies.mkdir()
    host = site.split("//", 1)[1].split(":", maxsplit=1)[0]
    (cookies / "cookies.txt").write_text(f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\tsession\tletmein\n")
    env = {
        "GALLERY_WORKER_COOKIES_DIR": str(cookies),
        "GALLERY_AUTH_PASSWORD": "hunter2-password",
        "GALLERY_AUTH_REFRESH_TOKEN": "refresh-token-value",
    }
    spec = {"urls": [f"{site}/private/{url}"], "engine": engine, "options": {"retries": 0, "writeMetadata": True}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path), env=env)
    assert code == 0 and report["itemsDone"] == 1, report  # the cookie got it in
    folder = tmp_path / "claim"
    [record] = catalogue(folder)
    [written] = [p for p in folder.iterdir() if p.name.endswith(sidecar)]
    assert written.name.startswith(Path(record["path"]).stem)
    metadata = json.loads(written.read_text())
    assert metadata  # the engine's metadata is there
    stored = written.read_text() + json.dumps(record)
    for secret in ("letmein", "hunter2-password", "refresh-token-value"):
        assert secret not in stored
    assert "http_headers" not in metadata and "cookies" not in metadata


def assert_files_match_the_catalogue(folder: Path, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every catalogued item is a file with the recorded size and sha256, and the counts agree."""
    records = catalogue(folder)
    assert len({r["path"] for r in records}) == len(records)
    for record in records:
        data = (folder / record["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (record["size"], record["sha256"]), record["path"]
    assert report["catalogueItems"] == len(records)
    return records


@pytest.mark.parametrize("target", ["pvc", "s3"])
def test_items_with_the_same_name_are_all_kept(tmp_path: Path, site: str, target: str, s3_server: S3Server) -> None:
    """Albums that each have a cover.jpg: in one gallery, across two galleries and a direct link of one download,
    every item gets its own path (later ones with a short hash of their URL), and a re-run skips exactly those."""
    env: dict[str, str] = {}
    storage: PvcStorage | S3Storage = claim(tmp_path)
    if target == "s3":
        s3 = s3_server.client()
        s3.create_bucket(Bucket="same-names")
        storage = S3Storage(bucket="same-names", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
        env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    urls = [f"{site}/albums/?a=a,b", f"{site}/albums/?a=c", f"{site}/same/d/cover.jpg"]  # two galleries and a link
    code, report = run_worker(tmp_path, {"urls": urls}, storage, env=env)
    assert code == 0 and report["itemsDone"] == 7, report
    if target == "pvc":
        records = assert_files_match_the_catalogue(tmp_path / "claim", report)
    else:
        records = bucket_catalogue(s3, "same-names", "dl")
        for record in records:
            body = s3.get_object(Bucket="same-names", Key=f"dl/{record['path']}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == record["sha256"]
    by_url = {r["sourceUrl"].removeprefix(site): r for r in records}
    assert set(by_url) == {f"/same/{a}/{n}.jpg" for a in "abc" for n in ("cover", "1")} | {"/same/d/cover.jpg"}
    for source, record in by_url.items():
        assert record["sha256"] == hashlib.sha256(named_bytes(source)).hexdigest()
    assert by_url["/same/a/cover.jpg"]["path"] == "cover.jpg"
    assert by_url["/same/b/cover.jpg"]["path"].startswith("cover-") and len({r["path"] for r in records}) == 7
    # A re-run (a new pod with empty scratch space) skips what is stored, adds nothing, loses nothing.
    (tmp_path / "scratch").rename(tmp_path / "old-scratch")
    code, again = run_worker(tmp_path, {"urls": urls}, storage, env=env)
    assert code == 0 and (again["itemsDone"], again["bytesDone"], again["catalogueItems"]) == (7, 0, 7), again


def test_a_counted_item_that_is_not_stored_fails_loudly(tmp_path: Path, site: str) -> None:
    """The status may never count an item that is not at the target: one removed behind the worker's back is named
    in an Internal failure instead of being reported as stored."""
    spec = {"urls": [f"{site}/img/301.jpg", f"{site}/slow/302.jpg?seconds=3"]}
    process = start_worker(tmp_path, spec, claim(tmp_path))
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    wait_until(lambda: records.exists() and "301.jpg" in records.read_text(), 30, "the first item catalogued")
    (tmp_path / "claim" / "301.jpg").unlink()
    process.communicate(timeout=60)
    report = json.loads((tmp_path / "termination-log").read_text())
    internal = [f for f in report["failures"] if f["reason"] == "Internal"]
    assert internal and "counted but not stored as catalogued: 301.jpg" in internal[0]["message"], report
    assert report["outcome"] == "PartiallySucceeded"


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_names_a_filesystem_and_a_person_can_take(tmp_path: Path, site: str, engine: str) -> None:
    """Over-long, multibyte, control-character and bidi names are stored under a clean name within the filesystem's
    limit (extension and a short hash kept); the catalogue records the stored and the original name."""
    names = ["a" * 300 + ".jpg", "\u65e5" * 120 + ".jpg", "ctrl%01%07name.jpg", "invoice%E2%80%AEgpj.exe.jpg"]
    urls = [f"{site}/hostile/{name}" for name in names]
    code, report = run_worker(tmp_path, {"urls": urls, "engine": engine}, claim(tmp_path))
    assert code == 0 and report["itemsDone"] == 4, report
    records = assert_files_match_the_catalogue(tmp_path / "claim", report)
    assert len(records) == 4
    for record in records:
        name = Path(record["path"]).name
        assert len(name.encode()) <= 200 and name.endswith(".jpg"), name
        assert not any(ord(c) < 32 or c in "\u202e\u202d\u2066\u2067\u2068\u2069" for c in name), name
    if engine == "gallery-dl":  # yt-dlp's restricted names are ASCII already, and shortened by yt-dlp itself
        changed = [r for r in records if "originalName" in r]  # gallery-dl drops control characters itself
        assert len(changed) == 3, records
        assert any("\u202e" in r["originalName"] for r in changed)
        assert any(len(r["originalName"].encode()) > 255 for r in changed)


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_a_redirect_loop_is_a_network_error_that_is_not_retried(tmp_path: Path, site: str, engine: str) -> None:
    """Another pod would meet the same loop: the worker says NetworkError and exits permanent (the Job fails at
    once), and follows the loop once even with retries configured (the site's count of requests, not a clock: one
    chain is the first request and the HTTP client's 30 redirects; a retry would follow it again)."""
    path = f"/loop/{engine}.jpg"
    spec = {"urls": [f"{site}{path}"], "engine": engine, "options": {"retries": 3}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 2 and [(f["reason"], f["url"]) for f in report["failures"]] == [("NetworkError", f"{site}{path}")]
    assert Handler.hits[path] <= 31, Handler.hits[path]


def test_yt_dlp_keeps_items_with_the_same_name_apart(tmp_path: Path, site: str) -> None:
    """yt-dlp names a direct link after its URL's last part and keys its archive by it: two covers of two albums are
    two items, stored, archived and skipped on a re-run each on its own."""
    urls = [f"{site}/same/a/cover.jpg", f"{site}/same/b/cover.jpg"]
    spec = {"urls": urls, "engine": "yt-dlp"}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 0 and report["itemsDone"] == 2, report
    records = assert_files_match_the_catalogue(tmp_path / "claim", report)
    assert {r["sha256"] for r in records} == {
        hashlib.sha256(named_bytes(u.removeprefix(site))).hexdigest() for u in urls
    }
    code, again = run_worker(tmp_path, {**spec, "urls": [*urls, f"{site}/same/c/cover.jpg"]}, claim(tmp_path))
    assert code == 0 and (again["itemsDone"], again["catalogueItems"]) == (3, 3), again
    assert again["bytesDone"] == len(named_bytes("/same/c/cover.jpg"))  # only the new cover was downloaded


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_a_trickling_server_is_cut_off_by_the_low_speed_limit(tmp_path: Path, site: str, engine: str) -> None:
    """One byte every half second never reaches timeoutSeconds (3), but is far below lowSpeedLimit: the item fails
    with reason Timeout, cut off by the worker before the site's 60 bytes (30 s) had trickled. Without the limit
    the site sends them all and ends the body itself."""
    options = {"retries": 0, "timeoutSeconds": 3, "lowSpeedLimit": 100, "lowSpeedSeconds": 3}
    path = f"/trickle/{5 if engine == 'gallery-dl' else 6}.jpg"
    spec = {"urls": [f"{site}{path}?every=0.5"], "engine": engine, "options": options}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert [f["reason"] for f in report["failures"]] == ["Timeout"], report
    assert code == 1 and report["itemsDone"] == 0
    assert_cut_by_the_worker(path)


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_an_endless_stream_stops_at_the_item_time_limit(tmp_path: Path, site: str, engine: str) -> None:
    """A body that never ends (fast enough for the low-speed limit) stops at limits.maxItemSeconds with reason
    LimitExceeded, and nothing of it is stored: the worker hung up before the site's own end of the body (30 s; a
    worker without the limit stores it whole)."""
    path = f"/endless/radio-{engine}.mp4"
    spec = {"urls": [f"{site}{path}"], "engine": engine, "limits": {"maxItemSeconds": 2}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    limited = [f for f in report["failures"] if f["reason"] == "LimitExceeded"]
    assert limited and "limits.maxItemSeconds reached" in limited[0]["message"], report
    assert (code, report["itemsDone"], report["outcome"]) == (0, 0, "PartiallySucceeded")  # as for limits.maxBytes
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    assert not records.exists() or not records.read_text()
    assert_cut_by_the_worker(path)


def assert_cut_by_the_worker(path: str) -> None:
    """The site's record, not a clock: after the worker ended, the site saw it hang up on a body of ``path`` and sent
    no body of it to the end (the site writes a body it ends itself before the client can see that end; a cut is
    seen at its next write)."""
    wait_until(lambda: any(b.cut for b in Handler.bodies.get(path, [])), 60, f"the worker hanging up on {path}")
    assert [body for body in Handler.bodies[path] if not body.cut] == [], Handler.bodies[path]


def test_s3_keys_stay_within_1024_bytes(tmp_path: Path, site: str, s3_server: S3Server) -> None:
    """A long prefix and a long name: the stored key keeps within S3's 1024 bytes (the name gives way)."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="long-keys")
    prefix = "/".join(["p" * 99] * 5) + "/" + "q" * 12  # 512 characters, the schema's maximum
    storage = S3Storage(bucket="long-keys", prefix=prefix, endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    url = f"{site}/hostile/" + "\u00e9" * 400 + ".jpg"
    code, report = run_worker(tmp_path, {"urls": [url]}, storage, env=env)
    assert code == 0 and report["itemsDone"] == 1, report
    [record] = bucket_catalogue(s3, "long-keys", prefix)
    key = f"{prefix}/{record['path']}"
    assert len(key.encode()) <= 1024 and record["path"].endswith(".jpg")
    assert s3.head_object(Bucket="long-keys", Key=key)["ContentLength"] == record["size"]


def test_a_sites_lone_surrogates_in_metadata_neither_fail_nor_drop_the_item(tmp_path: Path, site: str) -> None:
    # JSON-LD's "\ud800" escape gives the engine a title UTF-8 cannot encode: the item is still stored and
    # catalogued, with U+FFFD where the site's text had no character, and its report reads as JSON.
    code, report = run_worker(tmp_path, {"urls": [f"{site}/described.html"], "engine": "yt-dlp"}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"]) == (0, 1, []), report
    [record] = catalogue(tmp_path / "claim")
    assert record["metadata"]["title"] == "A \ufffd talk"
    assert (tmp_path / "claim" / record["path"]).read_bytes() == big_chunk() * 2


@pytest.mark.parametrize("body", [b"generic caf\xc3", b"\x00\xff\xfe\x80 binary\n" * 64])
def test_a_yt_dlp_archive_with_lines_that_are_no_utf8_does_not_fail_every_run(
    tmp_path: Path, site: str, body: bytes
) -> None:
    # yt-dlp reads its archive as strict UTF-8: the run failed, and every run after it, until the file was mended.
    state = tmp_path / "claim" / ".gallery-operator"
    state.mkdir(parents=True)
    (state / YT_DLP_ARCHIVE).write_bytes(body)
    code, report = run_worker(tmp_path, {"urls": [f"{site}/video.html"], "engine": "yt-dlp"}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"]) == (0, 1, []), report
    [aside] = state.glob(f"{YT_DLP_ARCHIVE}.corrupt-*")
    assert aside.read_bytes() == body


def test_a_catalogue_cut_inside_a_character_does_not_fail_every_later_run(tmp_path: Path, site: str) -> None:
    # A snapshot taken while a line was written (an S3 target's state) or a killed pod may cut a line inside a
    # character: reading the catalogue failed, and with it every run after, as a target that cannot be opened.
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/41.jpg"]}, claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, 1), report
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    with records.open("ab") as handle:
        handle.write('{"path": "café'.encode()[:-1])
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/42.jpg"]}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"], report["catalogueItems"]) == (0, 1, [], 2), report
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/43.jpg"]}, claim(tmp_path))
    assert report["catalogueItems"] == 3, report  # 42.jpg's record began a line of its own (review)


def test_hand_edited_records_past_any_count_or_nested_past_the_parser_do_not_fail_every_run(
    tmp_path: Path, site: str
) -> None:
    records = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    records.parent.mkdir(parents=True)
    huge = [json.dumps({"path": f"{n}.bin", "size": 2**52, "sha256": "a" * 64}) for n in range(3)]
    records.write_text("\n".join(["[" * 100_000, *huge]) + "\n")
    code, report = run_worker(tmp_path, {"urls": [f"{site}/img/41.jpg"]}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"], report["catalogueItems"]) == (0, 1, [], 4), report
    assert report["catalogueBytes"] == 2**53 - 1  # the most a report carries


def test_a_sites_huge_metadata_is_cut_in_the_catalogue_and_kept_whole_in_the_sidecar(tmp_path: Path, site: str) -> None:
    # A page's 4 MB description is every item's metadata: each record carried it whole (a catalogue of 4 MB a line,
    # read whole by every pod and `kubectl gallery`, uploaded again at every state sync of an S3 target).
    spec = {"urls": [f"{site}/gallery/?n=3&described={4 * 1024 * 1024}"], "options": {"writeMetadata": True}}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"]) == (0, 3, []), report
    lines = (tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(len(line) <= 64 * 1024 for line in lines), [len(line) for line in lines]
    for record in map(json.loads, lines):
        assert record["metadataCut"] is True
        assert record["metadata"]["description"] == described_text(4 * 1024 * 1024)[:1024] + "\u2026"
        sidecar = json.loads((tmp_path / "claim" / (record["path"] + ".json")).read_text())
        assert sidecar["description"] == described_text(4 * 1024 * 1024)


def test_a_page_with_a_large_inline_image_is_searched_in_linear_time(tmp_path: Path, site: str) -> None:
    # gallery-dl's generic extractor searched a run of URL characters in quadratic time: a 48 KB inline image (base64
    # in a script here, as in a `data:` URI) took 6.3 s, this page's 1.5 MB one about an hour (the run's time limit
    # ended it). Its matches are the same (tests/unit/test_page_links.py).
    inline = base64.b64encode(bytes(1536 * 1024)).decode()
    links = "".join(f'<a href="/img/{n}.jpg"><img src="/img/{n}.jpg"></a>' for n in (51, 52))
    page = f'<html><head><script>var inline = "{inline}";</script></head><body>{links}</body></html>'
    Handler.files["/p/inline.html"] = (page.encode(), "text/html")
    code, report = run_worker(tmp_path, {"urls": [f"{site}/p/inline.html"], "engine": "gallery-dl"}, claim(tmp_path))
    assert (code, report["itemsDone"], report["failures"]) == (0, 2, []), report
