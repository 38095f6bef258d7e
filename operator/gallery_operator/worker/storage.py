"""Targets: a mounted claim folder, or an S3 prefix fed from a small local staging folder.

Engines always write into a local folder (``workdir``). For a claim that folder is the target itself. For S3 it is
scratch space: each finished file is uploaded (multipart above 8 MiB, streamed from disk so memory stays flat) and
removed, the catalogue and the engines' archives are fetched at the start and put back as the run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from gallery_operator.workerconfig import CATALOGUE_DIR, CATALOGUE_FILE, PvcStorage, S3Storage

log = logging.getLogger(__name__)
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
STATE_SYNC_SECONDS = 10.0
STATE_FILES = (CATALOGUE_FILE, "gallery-dl-archive.sqlite3", "yt-dlp-archive.txt")


class Store(Protocol):
    workdir: Path
    """Where engines write; relative paths under it are the item's path or key suffix."""

    def location(self) -> str: ...
    def open_state(self) -> None: ...
    def stored(self, path: Path, relative: str, content_type: str) -> None: ...
    def sync_state(self, force: bool = False) -> None: ...
    def delete_all(self) -> int: ...


class ClaimStore:
    """A PersistentVolumeClaim folder mounted into the pod: files are written in place."""

    def __init__(self, storage: PvcStorage) -> None:
        self.storage = storage
        self.workdir = Path(storage.root)

    def location(self) -> str:
        return self.storage.location

    def open_state(self) -> None:
        (self.workdir / CATALOGUE_DIR).mkdir(parents=True, exist_ok=True)

    def stored(self, path: Path, relative: str, content_type: str) -> None:
        pass  # already where it belongs

    def sync_state(self, force: bool = False) -> None:
        pass

    def delete_all(self) -> int:
        removed = 0
        for entry in self.workdir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                removed += sum(1 for item in entry.rglob("*") if item.is_file())
                shutil.rmtree(entry)
            else:
                entry.unlink()
                removed += 1
        return removed


class S3Store:
    """An S3 prefix; the pod keeps at most the file being downloaded plus the catalogue and archives."""

    def __init__(self, storage: S3Storage, scratch: Path) -> None:
        # Imported here: boto3 costs a third of a second at start-up, and claim targets never need it.
        import boto3  # noqa: PLC0415
        from boto3.s3.transfer import TransferConfig  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        self.storage = storage
        self.workdir = scratch / "staging"
        self.workdir.mkdir(parents=True, exist_ok=True)
        addressing: Literal["path", "auto"] = "path" if storage.force_path_style else "auto"
        self.client = boto3.client(
            "s3",
            endpoint_url=storage.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3"),
            region_name=storage.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(s3={"addressing_style": addressing}, retries={"max_attempts": 5, "mode": "standard"}),
        )
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=4,
            use_threads=True,
        )
        self.lock = threading.Lock()
        self.last_sync = 0.0

    def key(self, relative: str) -> str:
        return f"{self.storage.prefix.rstrip('/')}/{relative}"

    def location(self) -> str:
        return f"s3://{self.storage.bucket}/{self.storage.prefix}"

    def open_state(self) -> None:
        """Fetch the catalogue and archives of earlier pods, so a retry skips what is stored."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        state = self.workdir / CATALOGUE_DIR
        state.mkdir(parents=True, exist_ok=True)
        for name in STATE_FILES:
            try:
                self.client.download_file(self.storage.bucket, self.key(f"{CATALOGUE_DIR}/{name}"), str(state / name))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise

    def stored(self, path: Path, relative: str, content_type: str) -> None:
        self.client.upload_file(
            str(path),
            self.storage.bucket,
            self.key(relative),
            ExtraArgs={"ContentType": content_type},
            Config=self.transfer,
        )
        # Keep an empty placeholder so engines that check for existing files still see the name, without the bytes.
        path.unlink()
        path.touch()

    def sync_state(self, force: bool = False) -> None:
        """Upload the catalogue and archives (every few seconds while running, and at the end)."""
        with self.lock:
            if not force and time.monotonic() - self.last_sync < STATE_SYNC_SECONDS:
                return
            self.last_sync = time.monotonic()
            state = self.workdir / CATALOGUE_DIR
            for name in STATE_FILES:
                file = state / name
                if file.exists():
                    self.client.upload_file(str(file), self.storage.bucket, self.key(f"{CATALOGUE_DIR}/{name}"))

    def delete_all(self) -> int:
        removed = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.storage.bucket, Prefix=self.storage.prefix.rstrip("/") + "/"):
            keys: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.storage.bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
        return removed


def open_store(storage: PvcStorage | S3Storage, scratch: Path) -> Store:
    store: Store = ClaimStore(storage) if isinstance(storage, PvcStorage) else S3Store(storage, scratch)
    with contextlib.suppress(FileExistsError):
        store.workdir.mkdir(parents=True, exist_ok=True)
    return store
