"""An item's bytes on real files: the digest follows the file behind the writer without ever holding it up, and
anything that makes the file differ from the bytes written leaves the digest to the finished file."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, cast

from gallery_operator.worker.engines import Sink
from gallery_operator.worker.items import ItemBytes, ItemFile
from gallery_operator.worker.storage import PartUpload

MIB = 1024 * 1024
CHUNKS = [bytes([n]) * MIB for n in range(64)]  # 64 MiB: far more than the bounded queue holds


class GatedDigest:
    """sha256 that waits at every update until the gate opens: a digest as slow as we like."""

    def __init__(self) -> None:
        self.inner = hashlib.sha256()
        self.gate = threading.Event()
        self.updates = 0

    def update(self, data: Any) -> None:
        self.gate.wait()
        self.updates += 1
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


class RecordingUpload:
    """The upload stream of an S3 target, as far as an item sees it: it takes every chunk, streaming from the
    second on."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.started = False

    def write(self, data: bytes, on_disk: object) -> bool:
        streaming, self.started = self.started, True
        self.received += data
        return streaming

    def park(self, on_disk: object) -> None:
        pass

    def abort(self) -> None:
        self.received.clear()


def item_file(path: Path, upload: RecordingUpload | None = None) -> tuple[ItemBytes, ItemFile, GatedDigest]:
    item = ItemBytes(cast(Sink, None), cast(PartUpload | None, upload), counting=False)
    digest = GatedDigest()
    digest.gate.set()  # open until a test closes it
    item.digest = cast(Any, digest)
    return item, ItemFile(path.open("w+b"), item), digest


def write(target: ItemFile, chunks: list[bytes]) -> None:
    for chunk in chunks:
        target.write(chunk)


def write_all(target: ItemFile, chunks: list[bytes]) -> threading.Thread:
    """write() on a thread of its own."""
    writer = threading.Thread(target=write, args=(target, chunks), daemon=True)
    writer.start()
    return writer


def test_a_digest_that_falls_behind_never_holds_the_download_up(tmp_path: Path) -> None:
    item, target, digest = item_file(tmp_path / "big.mp4.part")
    write(target, CHUNKS[:4])
    digest.gate.clear()
    writer = write_all(target, CHUNKS[4:])
    writer.join(timeout=30)
    assert not writer.is_alive(), "the download waited for its digest"
    digest.gate.set()
    target.close()
    assert item.sha256() == hashlib.sha256(b"".join(CHUNKS)).hexdigest()
    assert (tmp_path / "big.mp4.part").stat().st_size == 64 * MIB


def test_a_file_written_out_of_order_leaves_the_digest_to_the_finished_file(tmp_path: Path) -> None:
    item, target, _ = item_file(tmp_path / "big.mp4.part")
    write(target, CHUNKS[:8])
    target.seek(0)  # an engine that rewrites the start: the bytes on disk are no longer the bytes in order
    target.write(CHUNKS[9])
    target.close()
    assert item.sha256() is None


def test_a_file_cut_short_under_the_digest_leaves_it_to_the_finished_file(tmp_path: Path) -> None:
    path = tmp_path / "big.mp4.part"
    item, target, digest = item_file(path)
    write(target, CHUNKS[:4])
    digest.gate.clear()
    write(target, CHUNKS[4:12])
    with path.open("r+b") as other:
        other.truncate(5 * MIB)  # someone else cuts the file before the digest read it
    digest.gate.set()
    target.close()
    assert item.sha256() is None


def test_a_discarded_item_stops_hashing(tmp_path: Path) -> None:
    item, target, digest = item_file(tmp_path / "big.mp4.part")
    write(target, CHUNKS[:4])
    digest.gate.clear()
    write(target, CHUNKS[4:32])
    discarding = threading.Thread(target=item.discard, daemon=True)
    discarding.start()
    digest.gate.set()
    discarding.join(timeout=60)
    assert not discarding.is_alive()
    assert digest.updates < 8, "a discarded item was hashed to its end"
    assert not [t for t in threading.enumerate() if t.name.startswith("sha256")]
    target.close()


def test_bytes_that_only_go_to_the_upload_are_hashed_as_they_pass(tmp_path: Path) -> None:
    upload = RecordingUpload()
    item, target, _ = item_file(tmp_path / "big.mp4.part", upload)
    write(target, CHUNKS[:16])
    target.close()
    assert item.sha256() == hashlib.sha256(b"".join(CHUNKS[:16])).hexdigest()
    assert bytes(upload.received) == b"".join(CHUNKS[:16])
    assert (tmp_path / "big.mp4.part").stat().st_size == 16 * MIB  # its length, only the first part's blocks


def test_a_reopened_file_carries_on_with_the_same_digest(tmp_path: Path) -> None:
    """A cut connection: the engine closes the .part file and opens it again to append the rest."""
    path = tmp_path / "big.mp4.part"
    item, target, _ = item_file(path)
    write(target, CHUNKS[:10])
    target.close()
    again = ItemFile(path.open("ab"), item)
    write(again, CHUNKS[10:20])
    again.close()
    assert item.sha256() == hashlib.sha256(b"".join(CHUNKS[:20])).hexdigest()
