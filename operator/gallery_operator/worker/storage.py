"""Targets: a mounted claim folder, or an S3 prefix fed from a small local staging folder.

Engines always write into a local folder (``workdir``). For a claim that folder is the target itself. For S3 it is
scratch space: a file the engine writes through a stream (gallery-dl's downloads) goes up in multipart parts while it
is being written, past its first part only the file's length stays on disk (a sparse file); any other finished file is
uploaded from disk and removed. The catalogue and the engines' archives are fetched at the start and put back as the
run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gallery_operator.worker.egress import Guard, Trust
from gallery_operator.workerconfig import (
    CATALOGUE_DIR,
    CATALOGUE_FILE,
    GALLERY_DL_ARCHIVE,
    YT_DLP_ARCHIVE,
    PvcStorage,
    S3Storage,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
STATE_SYNC_SECONDS = 10.0
STATE_FILES = (CATALOGUE_FILE, GALLERY_DL_ARCHIVE, YT_DLP_ARCHIVE)


class Store(Protocol):
    workdir: Path
    """Where engines write; relative paths under it are the item's path or key suffix."""
    takes_streams: bool
    """Whether files may be handed over while they are written (see ``stream``)."""

    def location(self) -> str: ...
    def open_state(self) -> None: ...
    def stored(self, path: Path, relative: str, content_type: str) -> None: ...
    def stream(self, path: Path, relative: str, content_type: str) -> PartUpload | None:
        """A stream for the bytes of ``path`` while the engine writes them, or None to upload the file when done."""
        ...

    def sync_state(self, force: bool = False) -> None: ...
    def finish(self) -> None:
        """The run is over: drop what was started and never stored (parts of an unfinished file)."""
        ...

    def delete_all(self) -> int: ...


class PartUpload:
    """One file on its way into an S3 multipart upload while the engine writes it.

    Bytes are buffered until a part is full; the upload starts with the first full part (smaller files never start
    one and are uploaded from disk when finished). Parts go up on the store's threads; a semaphore bounds the parts
    held in memory, so a fast download waits for a slow bucket instead of growing.
    """

    def __init__(self, store: S3Store, key: str, content_type: str) -> None:
        self.store = store
        self.key = key
        self.content_type = content_type
        self.buffer: list[bytes] = []  # the chunks of the part being filled, joined once when it is full
        self.buffered = 0
        self.upload_id = ""
        self.parts: list[Future[CompletedPartTypeDef]] = []
        self.size = 0

    @property
    def started(self) -> bool:
        return bool(self.upload_id)

    def write(self, data: bytes) -> None:
        self.buffer.append(bytes(data))  # no copy for bytes; a reused buffer must not change under us
        self.buffered += len(data)
        self.size += len(data)
        if self.buffered >= MULTIPART_CHUNK:  # parts may run over by one chunk: S3 needs a minimum, not a size
            part = b"".join(self.buffer)
            self.buffer, self.buffered = [], 0
            self._send(part)

    def _send(self, part: bytes) -> None:
        if not self.upload_id:
            created = self.store.client.create_multipart_upload(
                Bucket=self.store.storage.bucket, Key=self.key, ContentType=self.content_type
            )
            self.upload_id = created["UploadId"]
        for finished in [f for f in self.parts if f.done()]:
            finished.result()  # a failed part fails the write now, not at the end
        self.store.slots.acquire()
        try:
            future = self.store.pool.submit(self._upload_part, len(self.parts) + 1, part)
        except BaseException:
            self.store.slots.release()
            raise
        self.parts.append(future)

    def _upload_part(self, number: int, body: bytes) -> CompletedPartTypeDef:
        try:
            answer = self.store.client.upload_part(
                Bucket=self.store.storage.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}
        finally:
            self.store.slots.release()

    def complete(self) -> None:
        if self.buffer or not self.parts:
            self._send(b"".join(self.buffer))
            self.buffer, self.buffered = [], 0
        parts = [future.result() for future in self.parts]
        self.store.client.complete_multipart_upload(
            Bucket=self.store.storage.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        self.buffer, self.buffered = [], 0
        for future in self.parts:
            if future.cancel():
                self.store.slots.release()  # never ran, so never released its slot
        if self.upload_id:
            for future in self.parts:
                with contextlib.suppress(Exception):
                    future.result()
            with contextlib.suppress(Exception):
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.storage.bucket, Key=self.key, UploadId=self.upload_id
                )


class ClaimStore:
    """A PersistentVolumeClaim folder mounted into the pod: files are written in place."""

    takes_streams = False

    def __init__(self, storage: PvcStorage) -> None:
        self.storage = storage
        self.workdir = Path(storage.root)

    def location(self) -> str:
        return self.storage.location

    def open_state(self) -> None:
        (self.workdir / CATALOGUE_DIR).mkdir(parents=True, exist_ok=True)

    def stored(self, path: Path, relative: str, content_type: str) -> None:
        pass  # already where it belongs

    def stream(self, path: Path, relative: str, content_type: str) -> PartUpload | None:
        return None  # written in place

    def sync_state(self, force: bool = False) -> None:
        pass

    def finish(self) -> None:
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

    takes_streams = True

    def __init__(
        self, storage: S3Storage, scratch: Path, guard: Guard | None = None, defaults: S3Defaults | None = None
    ) -> None:
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
            endpoint_url=storage.endpoint or (defaults.endpoint if defaults else None),
            region_name=storage.region or (defaults.region if defaults else None) or "us-east-1",
            config=Config(
                s3={"addressing_style": addressing},
                retries={"max_attempts": 5, "mode": "standard"},
                # botocore's 10, or a connection for every part in flight and two for the rest (the catalogue and
                # archives while parts go up), whichever is more.
                max_pool_connections=max(10, storage.parts_in_flight + 2),
            ),
        )
        trust = s3_trust(storage)
        if guard is not None and trust is None and storage.endpoint:
            guard.check_url(storage.endpoint)  # a tenant's endpoint: the rules of any URL, with a clear reason
        if guard is not None and trust is not None:
            # The trust covers exactly the connections of this client's HTTP session, from whichever thread (ours,
            # or boto3's transfer threads) sends: botocore has no public hook around its connections.
            session = self.client._endpoint.http_session  # type: ignore[attr-defined]
            session.send = guard.trusted(trust, session.send)
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=storage.parts_in_flight,
            use_threads=True,
        )
        self.lock = threading.Lock()
        self.last_sync = 0.0
        # Parts on their way, each on a thread of its own: memory stays near parts_in_flight x 8 MiB plus what the
        # client copies, and a fast download waits for a slow bucket.
        self.pool = ThreadPoolExecutor(max_workers=storage.parts_in_flight, thread_name_prefix="s3-part")
        self.slots = threading.BoundedSemaphore(storage.parts_in_flight)
        self.streams: dict[str, PartUpload] = {}
        """Uploads in progress, by key."""

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

    def stream(self, path: Path, relative: str, content_type: str) -> PartUpload:
        upload = PartUpload(self, self.key(relative), content_type)
        if (earlier := self.streams.pop(upload.key, None)) is not None:
            earlier.abort()  # the engine starts the file over
        self.streams[upload.key] = upload
        return upload

    def stored(self, path: Path, relative: str, content_type: str) -> None:
        upload = self.streams.pop(self.key(relative), None)
        if upload is not None and upload.started:
            if upload.size != path.stat().st_size:
                upload.abort()
                raise RuntimeError(f"the streamed upload of {relative} does not match the finished file")
            try:
                upload.complete()
            except BaseException:
                upload.abort()
                raise
            path.unlink()
            path.touch()
            return
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

    def finish(self) -> None:
        for upload in self.streams.values():
            upload.abort()
        self.streams.clear()
        self.pool.shutdown(wait=True)

    def delete_all(self) -> int:
        removed = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.storage.bucket, Prefix=self.storage.prefix.rstrip("/") + "/"):
            keys: list[Any] = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.storage.bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
        return removed


def s3_trust(storage: S3Storage) -> Trust | None:
    """What the S3 client may reach beyond the egress rules: an endpoint the operator lists as private, or AWS's
    own hosts when no endpoint is given (their addresses must still be public). A tenant's endpoint gets nothing:
    it passes the same rules as a download URL."""
    if storage.endpoint is None:
        return Trust("amazonaws.com", private=False)
    if storage.private_endpoint:
        return Trust(urllib.parse.urlsplit(storage.endpoint).hostname or "", private=True)
    return None


@dataclass(frozen=True)
class S3Defaults:
    """The pod's own S3 settings (AWS_ENDPOINT_URL_S3, AWS_DEFAULT_REGION), for what the target leaves open."""

    endpoint: str | None = None
    region: str | None = None


def open_store(
    storage: PvcStorage | S3Storage, scratch: Path, guard: Guard | None = None, defaults: S3Defaults | None = None
) -> Store:
    if isinstance(storage, PvcStorage):
        store: Store = ClaimStore(storage)
    else:
        store = S3Store(storage, scratch, guard, defaults)
    with contextlib.suppress(FileExistsError):
        store.workdir.mkdir(parents=True, exist_ok=True)
    return store
