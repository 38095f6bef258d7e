"""gallery-dl's archive kept in the catalogue, with the real engine and the real S3 server: each record carries its
item's archive key and gallery-dl's own archive file gets no entry per item; a target whose items an older worker
archived in that file (records without keys) is still known whole by a new pod with empty scratch space, which
fetches nothing again (an S3 target: no file on disk tells gallery-dl an item is there, only the archive does)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler
from gallery_operator.workerconfig import GALLERY_DL_ARCHIVE, S3Storage
from tests.component.workers import gallery_page, run_worker

IMAGES = [f"/img/{n}.jpg" for n in (8101, 8102, 8103)]
STATE = "keys/dl/.gallery-operator"


def fetched() -> list[int]:
    return [Handler.hits.get(image, 0) for image in IMAGES]


def as_an_older_worker_left_it(s3: Any, folder: Path) -> None:
    """The keys go from the records into gallery-dl's archive file, where workers before this one kept them."""
    body = s3.get_object(Bucket="keys", Key=f"{STATE}/catalogue.jsonl")["Body"].read().decode()
    records = [json.loads(line) for line in body.splitlines()]
    archive_file = folder / GALLERY_DL_ARCHIVE
    s3.download_file("keys", f"{STATE}/{GALLERY_DL_ARCHIVE}", str(archive_file))
    with sqlite3.connect(archive_file) as connection:
        assert connection.execute("SELECT count(*) FROM archive").fetchone() == (0,)  # no entry per item now
        connection.executemany("INSERT INTO archive (entry) VALUES (?)", [(r.pop("archiveKey"),) for r in records])
    connection.close()
    s3.upload_file(str(archive_file), "keys", f"{STATE}/{GALLERY_DL_ARCHIVE}")
    lines = "".join(json.dumps(record) + "\n" for record in records)
    s3.put_object(Bucket="keys", Key=f"{STATE}/catalogue.jsonl", Body=lines.encode())


def first_run(
    tmp_path: Path, site: str, s3_server: S3Server, bucket: str
) -> tuple[Any, Callable[[], tuple[int, dict[str, Any]]]]:
    """The gallery of IMAGES stored into a new bucket by a first run: the bucket's client, and the same run again."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket=bucket)
    storage = S3Storage(bucket=bucket, prefix="keys/dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    spec = {"urls": [site + gallery_page(bucket, IMAGES)], "engine": "gallery-dl", "options": {"retries": 0}}

    def again() -> tuple[int, dict[str, Any]]:
        return run_worker(tmp_path, spec, storage, env=env)

    code, report = again()
    assert (code, report["itemsDone"]) == (0, 3), report
    return s3, again


def test_records_carry_the_keys_and_an_older_workers_archive_file_still_counts(
    tmp_path: Path, site: str, s3_server: S3Server
) -> None:
    s3, again = first_run(tmp_path, site, s3_server, "keys")
    body = s3.get_object(Bucket="keys", Key=f"{STATE}/catalogue.jsonl")["Body"].read().decode()
    keys = sorted(json.loads(line)["archiveKey"] for line in body.splitlines())
    assert keys == sorted(f"generic{site}{image}" for image in IMAGES), keys
    as_an_older_worker_left_it(s3, tmp_path)
    (tmp_path / "scratch").rename(tmp_path / "old-scratch")
    before = fetched()
    code, report = again()
    assert (code, report["itemsDone"], report["bytesDone"], report["failures"]) == (0, 3, 0, []), report
    assert fetched() == before  # every item known: none fetched again


def test_a_corrupt_archive_file_is_set_aside_and_the_catalogue_still_knows_every_item(
    tmp_path: Path, site: str, s3_server: S3Server
) -> None:
    # gallery-dl runs without any archive when its file fails to open ("file is not a database"): on an S3 target
    # every item was fetched and uploaded again. The file is set aside (kept, not read) and a new one made.
    s3, again = first_run(tmp_path, site, s3_server, "corrupt")
    s3.put_object(Bucket="corrupt", Key=f"{STATE}/{GALLERY_DL_ARCHIVE}", Body=b"not a database, " * 512)
    for second in ("scratch", "scratch-2"):
        (tmp_path / "scratch").rename(tmp_path / f"old-{second}")
        before = fetched()
        code, report = again()
        assert (code, report["itemsDone"], report["bytesDone"], report["failures"]) == (0, 3, 0, []), report
        assert fetched() == before  # every item known: none fetched again
    kept = list((tmp_path / "old-scratch-2").rglob(f"{GALLERY_DL_ARCHIVE}.corrupt*"))
    assert [path.read_bytes()[:16] for path in kept] == [b"not a database, "]
    archive = s3.get_object(Bucket="corrupt", Key=f"{STATE}/{GALLERY_DL_ARCHIVE}")["Body"].read()
    assert archive.startswith(b"SQLite format 3\x00")  # a new file, put back for the next pod
