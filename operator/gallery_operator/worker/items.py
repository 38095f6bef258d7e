"""The bytes of one item as an engine writes them, shared by both engine adapters: counted against the byte limit,
hashed while they arrive, streamed to the target when it takes them that way, across re-opens of a partial file."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from gallery_dl import exception

from gallery_operator.worker.engines import Sink
from gallery_operator.worker.storage import PartUpload


class StorageFailed(OSError):
    """The target refused bytes of the file being written (an S3 part upload failed)."""


class ItemBytes:
    """Everything written for one item's file, across re-opens of its ``.part`` file by gallery-dl's retries.

    The bytes are hashed as they arrive (past the first few MiB on a second thread: hashlib releases the GIL on
    large buffers, so the digest runs on the other core while the download thread reads the socket), counted
    against the run's byte limit (the run stops within one chunk of it), and handed to the store's upload stream
    when the target has one.
    """

    INLINE_BYTES = 4 * 1024 * 1024
    QUEUED_CHUNKS = 16

    def __init__(
        self,
        sink: Sink,
        upload: PartUpload | None,
        hashing: bool = True,
        source_url: str = "",
        counting: bool = True,
    ) -> None:
        self.sink = sink
        self.upload = upload
        self.source_url = source_url
        self.counting = counting  # False where the engine counts bytes itself (yt-dlp's progress hook)
        self.digest = hashlib.sha256() if hashing else None
        self.size = 0
        self.started = time.monotonic()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def _hash_in_background(self, chunks: queue.Queue[bytes | None]) -> None:
        assert self.digest is not None
        while (chunk := chunks.get()) is not None:
            self.digest.update(chunk)

    def take(self, data: bytes) -> bool:
        """Account for written bytes; True when the upload stream took them and they need not be on disk."""
        if self.digest is not None:
            if self._queue is not None:
                self._queue.put(bytes(data))
            elif self.size + len(data) > self.INLINE_BYTES:
                self._queue = queue.Queue(maxsize=self.QUEUED_CHUNKS)  # bounded: memory stays flat
                self._thread = threading.Thread(
                    target=self._hash_in_background, args=(self._queue,), name="sha256", daemon=True
                )
                self._thread.start()
                self._queue.put(bytes(data))
            else:
                self.digest.update(data)
        self.size += len(data)
        if self.counting and self.sink.count(len(data)):
            raise exception.StopExtraction()  # gallery-dl ends this download and keeps its .part file
        if self.counting and self.sink.overdue(self.started):
            raise exception.StopExtraction()  # as for the byte limit: the run stops, the .part file is not kept
        if self.upload is None:
            return False
        streaming = self.upload.started
        try:
            self.upload.write(data)
        except Exception as error:
            # Ends gallery-dl's extraction as an unexpected error; the message makes it a StorageError of the
            # item's own URL (the first URL in it), not of the bucket's.
            raise StorageFailed(f"storage error for {self.source_url}: {error}") from error
        return streaming

    def discard(self) -> None:
        """Never to be stored (its file starts over, or another one follows): out of the in-flight count, and its
        parts are dropped now rather than at the end of the run."""
        if self.counting:
            self.sink.count(-self.size)
        if self.upload is not None:
            self.upload.abort()

    def drain(self) -> None:
        """Wait for the hashing thread (the file is closed; a re-open starts another)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._queue = self._thread = None

    def sha256(self) -> str | None:
        self.drain()
        return self.digest.hexdigest() if self.digest is not None else None


class ItemFile:
    """The file object gallery-dl writes a download into. Bytes the upload stream took are skipped on disk (a seek,
    so the file keeps its length but not its blocks); the first part always lands on disk, where gallery-dl may
    read a resumed file's header."""

    def __init__(self, handle: Any, item: ItemBytes) -> None:
        self._handle = handle
        self._item = item

    def write(self, data: bytes) -> int:
        if self._item.take(data):
            self._handle.seek(len(data), os.SEEK_CUR)
            return len(data)
        written: int = self._handle.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> ItemFile:
        self._handle.__enter__()
        return self

    def _finish(self) -> None:
        if self._item.upload is not None and self._item.upload.started and not self._handle.closed:
            self._handle.truncate(self._handle.tell())  # the file's length, past the skipped bytes

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._handle.__exit__(*exc)
        self._item.drain()

    def close(self) -> None:  # yt-dlp closes its files instead of using them as context managers
        self._finish()
        self._handle.close()
        self._item.drain()


def next_item(
    earlier: ItemBytes | None,
    mode: str,
    size_on_disk: Callable[[], int],
    fresh: Callable[[], ItemBytes],
    name: str,
) -> ItemBytes | None:
    """The item an engine's (re)opened file belongs to. A fresh download ("wb", "w+b") starts a new one; a resumed
    one ("r+b", "ab", after a cut connection) continues the item it left off. None: a partial file from an earlier
    pod is resumed, nothing of it was seen here."""
    if mode in ("wb", "w+b"):
        if earlier is not None:  # never stored: a download started over, or a new file after a failed one
            earlier.discard()
        return fresh()
    if earlier is not None and earlier.size == size_on_disk():
        return earlier
    if earlier is not None and earlier.upload is not None and earlier.upload.started:
        raise OSError(f"cannot resume {name}: its bytes went to the upload, not to disk")
    if earlier is not None:
        earlier.discard()
    return None
