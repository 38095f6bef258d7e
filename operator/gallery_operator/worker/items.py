"""The bytes of one item as an engine writes them, shared by both engine adapters: counted against the byte limit,
hashed while they arrive, streamed to the target when it takes them that way, across re-opens of a partial file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from gallery_operator.worker.engines import Sink, Stopped
from gallery_operator.worker.storage import PartUpload


class StorageFailed(OSError):
    """The target refused bytes of the file being written (an S3 part upload failed)."""


class FileFollower:
    """Hashes a file's bytes from the page cache on a thread of its own, behind the thread that writes them.

    sha256 costs about as much CPU per byte as the transfer itself (0.75 s per GiB on the project's machines). Fed
    from a bounded queue of written chunks, a digest that falls behind stops the download until it catches up; read
    back from the file instead, it never holds the download up and needs one buffer, whatever the item's size. The
    digest is then of the bytes as they are on disk. Reading past the file's end (someone truncated it) ends the
    follower as failed: the caller hashes the finished file instead. (An mmap of the file would save the copy into
    the buffer, but a file cut short under the mapping kills the process with SIGBUS.)
    """

    BUFFER_BYTES = 1024 * 1024
    NICE = 19
    """The download thread, and everything else the pod runs, comes first; the digest takes the CPU left over while
    the file is written. SCHED_IDLE measured worse (docs/benchmarks.md). What it has not hashed when the file is
    finished is hashed by the thread that waits for it (``finish``), at that thread's own priority."""

    def __init__(self, digest: Any, path: str, start: int) -> None:
        self._digest = digest
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._hashed = self._limit = start
        self._closing = self._cancelled = False
        self.failed = False
        self._buffer = memoryview(bytearray(self.BUFFER_BYTES))
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._follow, name="sha256-file", daemon=True)
        self._thread.start()

    def advance(self, limit: int) -> None:
        """The file holds the item's bytes up to ``limit`` now."""
        with self._changed:
            self._limit = limit
            self._changed.notify()

    def _follow(self) -> None:
        if sys.platform == "linux":  # a thread's own nice value there (elsewhere the whole process's)
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.NICE)
        while True:
            with self._changed:
                while self._hashed == self._limit and not self._closing:
                    self._changed.wait()
                limit = self._limit
                if self._hashed == limit or self._closing:
                    return
            self._hash_until(limit)
            if self.failed:
                return

    def _hash_until(self, limit: int) -> None:
        """Hash the file from where the digest is up to ``limit``; stops after the read under way once cancelled."""
        while self._hashed < limit and not self._cancelled:
            try:
                count = os.preadv(self._fd, [self._buffer[: limit - self._hashed]], self._hashed)
            except OSError:
                count = 0
            if count == 0:
                self.failed = True
                return
            self._digest.update(self._buffer[:count])
            self._hashed += count

    def finish(self, cancel: bool = False) -> bool:
        """Every byte written so far hashed (with ``cancel``, none more after the read under way); False when the
        follower failed. The follower stops after its read under way and the calling thread hashes the rest: a
        finished file waits for nothing else, and at nice 19 on a busy machine the follower would get next to no
        CPU (a starved follower left a finished 1 GiB file waiting for its whole digest)."""
        with self._changed:
            self._closing = self._cancelled = True
            self._changed.notify()
        self._thread.join()
        if not cancel and not self.failed:
            self._cancelled = False
            self._hash_until(self._limit)
        os.close(self._fd)
        return not self.failed


class Budget:
    """Bytes held at once by all transfers of the process (the digest's queued chunks): ``take`` waits while the
    budget is spent, so a digest that falls behind stops the downloads that feed it rather than growing. One
    chunk larger than the whole budget passes when nothing else is held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.changed = threading.Condition()

    def take(self, size: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.held == 0 or self.held + size <= self.limit)
            self.held += size

    def give(self, size: int) -> None:
        with self.changed:
            self.held -= size
            self.changed.notify_all()


DIGEST_QUEUE_BYTES = 16 * 1024 * 1024
DIGEST_QUEUE = Budget(DIGEST_QUEUE_BYTES)
"""The chunks waiting for their digest, all items together (items in flight share it)."""


class ItemBytes:
    """Everything written for one item's file, across re-opens of its ``.part`` file by gallery-dl's retries.

    The bytes are counted against the run's byte limit (the run stops within one chunk of it), handed to the
    store's upload stream when the target has one, and hashed: the first few MiB as they arrive, the rest on a
    second thread (hashlib releases the GIL on large buffers, so the digest runs on the other core while the
    download thread reads the socket). Bytes that stay on disk are hashed from the file behind the writer
    (FileFollower); bytes that go only to the upload are hashed from a bounded queue of chunks.
    """

    INLINE_BYTES = 4 * 1024 * 1024

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
        self.hashed = 0
        self.started = time.monotonic()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._follower: FileFollower | None = None
        self._follow_failed = False

    def _hash_in_background(self, chunks: queue.Queue[bytes | None]) -> None:
        assert self.digest is not None
        while (chunk := chunks.get()) is not None:
            self.digest.update(chunk)
            DIGEST_QUEUE.give(len(chunk))

    def take(self, data: bytes, on_disk: Any = None) -> bool:
        """Count written bytes and hand them to the upload stream; True when it took them and they need not be on
        disk (``on_disk``, the file they are written to otherwise). The caller hashes them (``hash``) once they are
        where they stay."""
        self.size += len(data)
        if self.counting and self.sink.count(len(data)):
            raise Stopped  # the engine's adapter ends this download (gallery-dl keeps its .part file)
        if self.counting and self.sink.overdue(self.started):
            raise Stopped  # as for the byte limit: the run stops, the .part file is not kept
        if self.upload is None:
            return False
        try:
            return self.upload.write(data, on_disk)
        except Exception as error:
            # Ends gallery-dl's extraction as an unexpected error; the message makes it a StorageError of the
            # item's own URL (the first URL in it), not of the bucket's.
            raise StorageFailed(f"storage error for {self.source_url}: {error}") from error

    def hash(self, data: bytes, on_disk: Any = None) -> None:
        """Hash the bytes just taken: ``on_disk`` is the file object they were written to, when the item's bytes
        stay on disk (the item has no upload), so that past the first few MiB they are read back from the file."""
        if self.digest is None or self._follow_failed:
            return
        end = self.hashed + len(data)
        if self._follower is None and self._queue is None and end <= self.INLINE_BYTES:
            self.digest.update(data)
        elif on_disk is None or self.upload is not None or self._queue is not None:
            self._enqueue(data)
        else:
            self._follow(on_disk, data, end)
        self.hashed = end

    def _follow(self, handle: Any, data: bytes, end: int) -> None:
        """The follower hashes the file up to ``end``. It starts at the first call when the file holds exactly the
        item's bytes so far (else the bytes go to the queue); an engine that writes elsewhere later leaves the
        digest to the finished file."""
        try:
            handle.flush()
            at = handle.tell()
        except (OSError, ValueError):
            at = None
        if self._follower is None:
            with contextlib.suppress(OSError, TypeError, AttributeError):
                if at == end:
                    self._follower = FileFollower(self.digest, os.fsdecode(handle.name), self.hashed)
            if self._follower is None:
                self._enqueue(data)
                return
        elif at != end:
            self._follower.finish(cancel=True)
            self._follower = None
            self._follow_failed = True
            return
        self._follower.advance(end)

    def _enqueue(self, data: bytes) -> None:
        if self._queue is None:
            self._queue = queue.Queue()  # bounded by DIGEST_QUEUE, shared by all items: memory stays flat
            self._thread = threading.Thread(
                target=self._hash_in_background, args=(self._queue,), name="sha256", daemon=True
            )
            self._thread.start()
        chunk = bytes(data)
        DIGEST_QUEUE.take(len(chunk))
        self._queue.put(chunk)

    def discard(self) -> None:
        """Never to be stored (its file starts over, or another one follows): out of the in-flight count, and its
        parts are dropped now rather than at the end of the run."""
        if self.counting:
            self.sink.count(-self.size)
        if self.upload is not None:
            self.upload.abort()
        self.drain(cancel=True)

    def drain(self, cancel: bool = False) -> None:
        """Wait for the hashing threads (the file is closed; a re-open starts another), or only stop them."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._queue = self._thread = None
        if self._follower is not None and not self._follower.finish(cancel):
            self._follow_failed = True
        self._follower = None

    def sha256(self) -> str | None:
        """The item's digest, or None when it must be read from the finished file."""
        self.drain()
        if self.digest is None or self._follow_failed:
            return None
        return self.digest.hexdigest()


class ItemFile:
    """The file object gallery-dl writes a download into. Bytes the upload stream took are skipped on disk (a seek,
    so the file keeps its length but not its blocks); the first part always lands on disk, where gallery-dl may
    read a resumed file's header."""

    WRITE_BYTES = 256 * 1024
    """The most bytes one write(2) hands the page cache. The engines read 1 MiB blocks; written whole, the kernel
    puts them in large page-cache folios, which on the project's virtual machines cost 2.3 s of kernel time per GiB
    against 0.27 s in 256 KiB writes (`bench.worker pagecache`; docs/benchmarks.md)."""

    def __init__(self, handle: Any, item: ItemBytes) -> None:
        self._handle = handle
        self._item = item

    def write(self, data: bytes) -> int:
        if self._item.take(data, self._handle):
            self._handle.seek(len(data), os.SEEK_CUR)
            self._item.hash(data)
            return len(data)
        write_in_pieces(self._handle.write, data, self.WRITE_BYTES)
        self._item.hash(data, self._handle)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> ItemFile:
        self._handle.__enter__()
        return self

    def _finish(self) -> None:
        upload = self._item.upload
        if upload is not None and upload.started and not self._handle.closed:
            end = self._handle.tell()
            try:
                upload.park(self._handle)  # the part being filled into the file, its buffer back
            except OSError as error:
                raise StorageFailed(f"storage error for {self._item.source_url}: {error}") from error
            self._handle.truncate(end)  # the file's length, past the skipped bytes

    def __exit__(self, *exc: object) -> None:
        self._finish()
        self._handle.__exit__(*exc)
        self._item.drain()

    def close(self) -> None:  # yt-dlp closes its files instead of using them as context managers
        self._finish()
        self._handle.close()
        self._item.drain()


def write_in_pieces(write: Callable[[Any], object], data: bytes, piece: int) -> None:
    """``data`` through ``write`` at most ``piece`` bytes at a time (ItemFile.WRITE_BYTES says why)."""
    if len(data) <= piece:
        write(data)
        return
    view = memoryview(data)
    for start in range(0, len(view), piece):
        write(view[start : start + piece])


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
