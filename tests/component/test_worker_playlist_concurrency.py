"""A yt-dlp playlist's entries transferred concurrently (options.concurrency, issue 26), with what the worker promises
still holding: the real worker process, real yt-dlp reading an RSS feed of direct video links from the fixture site on
loopback (with latency where a test needs entries to overlap), the real S3 server."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from gallery_harness.site import Handler, Logged, image_bytes
from tests.component.test_worker_concurrency import slow_site
from tests.component.workers import catalogue, claim, run_worker

CLIP = 20480
__all__ = ["slow_site"]  # the fixture: the site 20 ms away, each response at most 2 MB/s


def playlist(site: str, count: int, concurrency: int = 4, size: int = CLIP, **spec: Any) -> dict[str, Any]:
    """yt-dlp on the site's feed of ``count`` clips of ``size`` bytes."""
    options = {"retries": 0, "concurrency": concurrency, **spec.pop("options", {})}
    query = f"n={count}&size={size}" + "".join(f"&{k}={v}" for k, v in spec.pop("feed", {}).items())
    return {"urls": [f"{site}/feed/?{query}"], "engine": "yt-dlp", "options": options, **spec}


def name(number: int) -> str:
    """The file name yt-dlp gives clip ``number`` of the feed (its title, its id: the guid)."""
    return f"Clip_{number} [clip-{number}].mp4"


def clip_numbers(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["sourceUrl"].rsplit("/", 1)[1].split(".", 1)[0]) for r in records]


def media(root: Path) -> dict[str, bytes]:
    """The finished files of a claim (no partial files, no catalogue)."""
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file() and not p.name.endswith(".part")}


def assert_files_are_the_catalogue(root: Path, count: int, size: int = CLIP) -> list[dict[str, Any]]:
    """Every clip once, in playlist order, each file the catalogue's size and digest and the clip's bytes."""
    records = catalogue(root)
    assert clip_numbers(records) == list(range(1, count + 1))
    assert not [path for path, seen in Counter(r["path"] for r in records).items() if seen > 1]
    files = media(root)
    assert sorted(files) == sorted(r["path"] for r in records)
    for record in records:
        body = files[record["path"]]
        assert (record["size"], record["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert body == image_bytes(clip_numbers([record])[0], size)
    return records


def clip_requests(log: list[Logged]) -> list[Logged]:
    return [entry for entry in log if entry.path.startswith(("/clip/", "/busy/"))]


def most_at_once(log: list[Logged], latency: float) -> int:
    """The most clip answers of the log sent within one latency of each other (answers of overlapping requests)."""
    times = sorted(entry.at for entry in clip_requests(log))
    return max((sum(1 for t in times if start <= t < start + latency) for start in times), default=0)


def test_entries_overlap_and_the_catalogue_keeps_the_playlist_order(tmp_path: Path, slow_site: str) -> None:
    started = len(Handler.log)
    code, report = run_worker(tmp_path, playlist(slow_site, 24), claim(tmp_path))
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 24), report
    records = assert_files_are_the_catalogue(tmp_path / "claim", 24)
    assert [r["path"] for r in records] == [name(n) for n in range(1, 25)]
    # Requests of several entries were answered within one latency of each other: they were in flight at once.
    assert most_at_once(Handler.log[started:], 0.02) >= 3


def test_concurrency_one_takes_the_entries_one_after_another(tmp_path: Path, slow_site: str) -> None:
    started = len(Handler.log)
    code, report = run_worker(tmp_path, playlist(slow_site, 8, concurrency=1), claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, 8), report
    assert_files_are_the_catalogue(tmp_path / "claim", 8)
    # One request at a time: each clip's requests (its probe, its download) come after the previous clip's.
    order = [int(entry.path.rsplit("/", 1)[1].split(".")[0]) for entry in clip_requests(Handler.log[started:])]
    assert order == sorted(order) and set(order) == set(range(1, 9)), order
    assert most_at_once(Handler.log[started:], 0.015) == 1
