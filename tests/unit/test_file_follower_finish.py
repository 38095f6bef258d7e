"""A finished file's digest does not wait for the follower thread (worker/items.py FileFollower): what the follower,
at nice 19, has not hashed by then is hashed by the thread that finishes the file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gallery_operator.worker.items import FileFollower


class StarvedFollower(FileFollower):
    """A follower thread that never got the CPU (nice 19 on a busy machine): it hashes nothing."""

    def _follow(self) -> None:
        return


def test_a_starved_follower_still_gives_the_whole_files_digest(tmp_path: Path) -> None:
    data = os.urandom(3 * FileFollower.BUFFER_BYTES + 12345)
    path = tmp_path / "item.bin"
    path.write_bytes(data)
    digest = hashlib.sha256()
    follower = StarvedFollower(digest, str(path), 0)
    follower.advance(len(data))
    assert follower.finish()
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_the_finishing_thread_goes_on_where_the_follower_stopped(tmp_path: Path) -> None:
    """The digest started on the first bytes (the item's first MiB hashed as they arrived), the follower from there."""
    data = os.urandom(2 * FileFollower.BUFFER_BYTES + 7)
    path = tmp_path / "item.bin"
    path.write_bytes(data)
    digest = hashlib.sha256(data[:1000])
    follower = FileFollower(digest, str(path), 1000)
    follower.advance(len(data))
    assert follower.finish()
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_cancelled_follower_hashes_no_more(tmp_path: Path) -> None:
    data = os.urandom(FileFollower.BUFFER_BYTES)
    path = tmp_path / "item.bin"
    path.write_bytes(data)
    digest = hashlib.sha256()
    follower = StarvedFollower(digest, str(path), 0)
    follower.advance(len(data))
    assert follower.finish(cancel=True)
    assert digest.hexdigest() == hashlib.sha256().hexdigest()


def test_a_file_cut_short_fails_the_follower(tmp_path: Path) -> None:
    """Someone truncated the file under it: the digest would not be of the item's bytes, so it is refused."""
    path = tmp_path / "item.bin"
    path.write_bytes(b"x" * 100)
    follower = StarvedFollower(hashlib.sha256(), str(path), 0)
    follower.advance(200)
    assert not follower.finish()
