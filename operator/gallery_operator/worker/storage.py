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
import os
import shutil
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

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
PART_BUFFERS_PER_PART_IN_FLIGHT = 2
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


class PartBuffers:
    """The part buffers of the whole process, shared by every file streaming into S3: a file takes one when its
    bytes must be held (a part being filled past the first, or on its way up) and waits while all are out, so a
    download that outruns the bucket, or many at once, waits instead of growing. Buffers are made when first needed
    and kept for reuse (no allocator churn: freed 8 MiB blocks stayed resident in the allocator's arenas)."""

    def __init__(self, count: int, size: int = MULTIPART_CHUNK) -> None:
        self.count = count
        self.size = size
        self.free: list[bytearray] = []
        self.made = 0
        self.changed = threading.Condition()

    def take(self) -> bytearray:
        with self.changed:
            self.changed.wait_for(lambda: bool(self.free) or self.made < self.count)
            if self.free:
                return self.free.pop()
            self.made += 1
        return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        if len(buffer) < self.size:  # cut to a final part's length: back to a whole part's (zeros from calloc)
            buffer.extend(bytes(self.size - len(buffer)))
        with self.changed:
            self.free.append(buffer)
            self.changed.notify()


class PartUpload:
    """One file on its way into an S3 multipart upload while the engine writes it.

    The first part's bytes land on disk (the engine may read a file's header back); when the file grows past one
    part they are read back into a buffer and the upload starts. From then on bytes go into part buffers (the
    store's ``buffers``, shared by all files) and each full part goes up on the store's threads. When the engine
    closes the file, the bytes of the part being filled are written to the file at their place and the buffer goes
    back: a finished file waiting for its turn to be stored holds no buffer, whatever the concurrency.
    """

    def __init__(self, store: S3Store, key: str, content_type: str) -> None:
        self.store = store
        self.key = key
        self.content_type = content_type
        self.part: bytearray | None = None
        self.filled = 0
        """Bytes of ``part`` taken so far; bytes past ``sent`` not in ``part`` are in the file."""
        self.sent = 0
        self.upload_id = ""
        self.parts: list[Future[CompletedPartTypeDef]] = []
        self.buffers: dict[int, bytearray] = {}
        """The buffers of parts not yet uploaded, by part number: given back once, by whoever ends the part."""
        self.size = 0

    @property
    def started(self) -> bool:
        return bool(self.upload_id)

    def write(self, data: bytes, on_disk: Any) -> bool:
        """Take the engine's bytes; True when they went to the upload and need not be written to ``on_disk`` (the
        file object the engine writes, holding the item's bytes so far)."""
        if self.part is None:
            if not self.started and self.size + len(data) < MULTIPART_CHUNK:
                self.size += len(data)
                return False
            on_disk.flush()
            self.part = self.store.buffers.take()
            self.filled = read_into(self.part, file_path(on_disk), self.sent, self.size - self.sent)
        view = memoryview(data)
        while view:
            if self.part is None:
                self.part, self.filled = self.store.buffers.take(), 0
            count = min(len(view), MULTIPART_CHUNK - self.filled)
            self.part[self.filled : self.filled + count] = view[:count]
            self.filled += count
            self.size += count
            view = view[count:]
            if self.filled == MULTIPART_CHUNK:
                self._send()
        return True

    def park(self, on_disk: Any) -> None:
        """The engine closes the file: the bytes of the part being filled go into it, the buffer back."""
        if self.part is None:
            return
        part, self.part = self.part, None
        try:
            on_disk.flush()
            write_at(file_path(on_disk), memoryview(part)[: self.filled], self.sent)
        finally:
            self.store.buffers.give(part)

    def _send(self) -> None:
        part, length = self.part, self.filled
        assert part is not None
        self.part, self.filled = None, 0
        self.sent += length
        if length < len(part):
            del part[length:]  # a final part, shorter: its own length
        number = len(self.parts) + 1
        self.buffers[number] = part
        try:
            if not self.upload_id:
                created = self.store.client.create_multipart_upload(
                    Bucket=self.store.storage.bucket, Key=self.key, ContentType=self.content_type
                )
                self.upload_id = created["UploadId"]
            for finished in [f for f in self.parts if f.done()]:
                finished.result()  # a failed part fails the write now, not at the end
            self.parts.append(self.store.pool.submit(self._upload_part, number))
        except BaseException:
            self._give(number)
            raise

    def _give(self, number: int) -> None:
        if (part := self.buffers.pop(number, None)) is not None:
            self.store.buffers.give(part)

    def _upload_part(self, number: int) -> CompletedPartTypeDef:
        # botocore takes a bytearray as a blob (its stubs say bytes only) and sends it without a copy.
        try:
            answer = self.store.client.upload_part(
                Bucket=self.store.storage.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=cast("bytes", self.buffers[number]),
            )
        finally:
            self._give(number)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def complete(self, path: Path) -> None:
        """Send the last part (from the finished file at ``path`` when it was parked there) and finish the upload."""
        if self.part is None and self.size > self.sent:
            self.part = self.store.buffers.take()
            self.filled = read_into(self.part, str(path), self.sent, self.size - self.sent)
        if self.part is not None:
            self._send()
        parts = [future.result() for future in self.parts]
        self.store.client.complete_multipart_upload(
            Bucket=self.store.storage.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        if self.part is not None:
            self.store.buffers.give(self.part)
            self.part = None
        for number, future in enumerate(self.parts, start=1):
            if future.cancel():
                self._give(number)  # never ran
        if self.upload_id:
            for future in self.parts:
                with contextlib.suppress(Exception):
                    future.result()
            with contextlib.suppress(Exception):
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.storage.bucket, Key=self.key, UploadId=self.upload_id
                )


def file_path(handle: Any) -> str:
    """A path that opens the file of ``handle`` again: its name, or for a file object made from a descriptor (yt-dlp's)
    the descriptor's entry in /proc."""
    name = handle.name
    return f"/proc/self/fd/{name}" if isinstance(name, int) else os.fsdecode(name)


def read_into(buffer: bytearray, path: str, offset: int, length: int) -> int:
    """Read ``length`` bytes at ``offset`` of the file at ``path`` into ``buffer`` (the engine's own file object
    may be write-only)."""
    view = memoryview(buffer)
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        done = 0
        while done < length:
            count = os.preadv(descriptor, [view[done:length]], offset + done)
            if count == 0:
                raise OSError(f"the file ended {length - done} bytes short of the part being sent")
            done += count
    finally:
        os.close(descriptor)
    return length


def write_at(path: str, data: memoryview, offset: int) -> None:
    """Write ``data`` at ``offset`` of the file at ``path`` (its own descriptor: the engine's may append only)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        while data:
            written = os.pwrite(descriptor, data, offset)
            data, offset = data[written:], offset + written
    finally:
        os.close(descriptor)


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
        # Parts on their way, each on a thread of its own; the buffers, twice as many (as many being filled as going
        # up), are all the memory streamed files hold, whatever the number of files in flight.
        self.pool = ThreadPoolExecutor(max_workers=storage.parts_in_flight, thread_name_prefix="s3-part")
        self.buffers = PartBuffers(PART_BUFFERS_PER_PART_IN_FLIGHT * storage.parts_in_flight)
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
                upload.complete(path)
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
