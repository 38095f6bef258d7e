"""The incremental stop rule (`options.stopAfterKnown`, set by a subscription on its runs) with the real engines:
a second run over a listing that grew at the top stores the new items and stops at the first known one(s), without
walking the rest of the listing (yt-dlp: the later entries of a feed are never requested; gallery-dl: the later
links are never looked at, so the run counts only the new items)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gallery_harness.site import Handler
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, feed, run_worker


def page(numbers: list[int]) -> bytes:
    """A gallery page, newest image first (as the sites a subscription follows list them)."""
    links = "".join(f'<a href="/img/{n}.jpg"><img src="/img/{n}.jpg"></a>' for n in numbers)
    return f"<html><head><title>Newest first</title></head><body>{links}</body></html>".encode()


def two_runs(
    tmp_path: Path, spec: dict[str, Any], publish: Any, stop: int | None, **more: Any
) -> tuple[dict[str, Any], Path]:
    root = tmp_path / "claim"
    storage = PvcStorage(root=str(root), location="pvc://media/sub")
    options = {"retries": 0, **({"stopAfterKnown": stop} if stop else {}), **more}
    publish([3, 2, 1])
    code, first = run_worker(tmp_path, {**spec, "options": options}, storage)
    assert (code, first["outcome"]) == (0, "Succeeded"), first
    publish([5, 4, 3, 2, 1])
    code, second = run_worker(tmp_path, {**spec, "options": options}, storage)
    assert (code, second["outcome"]) == (0, "Succeeded"), second
    return second, root


@pytest.mark.parametrize("stop", [1, None], ids=["stopAfterKnown", "whole-listing"])
def test_yt_dlp_stops_at_the_first_known_entry(tmp_path: Path, site: str, stop: int | None) -> None:
    path = f"/stop-rule/{tmp_path.name}/feed.xml"

    def publish(numbers: list[int]) -> None:
        Handler.files[path] = (feed(site, numbers), "application/rss+xml")

    before = Handler.hits.get("/big/1.mp4", 0)
    # One entry at a time, so the requests are counted exactly (with a pool, entries after the known one that are in
    # flight are looked at too: tests/component/test_worker_playlist_concurrency.py holds the stop rule there).
    second, root = two_runs(tmp_path, {"urls": [f"{site}{path}"], "engine": "yt-dlp"}, publish, stop, concurrency=1)
    assert len(catalogue(root)) == 5  # every episode stored once
    requests = Handler.hits.get("/big/1.mp4", 0) - before
    # A new episode costs two requests (yt-dlp's look at the link, then the download), a known one looked at one
    # (its archive id needs the look). First run: 3 new. Second run: 2 new, then the first known one and stop;
    # without the rule, all 3 known ones.
    assert requests == 3 * 2 + 2 * 2 + (1 if stop else 3), requests
    assert second["itemsDone"] == (2 + 1 if stop else 5), second


@pytest.mark.parametrize("stop", [1, None], ids=["stopAfterKnown", "whole-listing"])
def test_gallery_dl_stops_after_known_items(tmp_path: Path, site: str, stop: int | None) -> None:
    path = f"/stop-rule/{tmp_path.name}/gallery.html"

    def publish(numbers: list[int]) -> None:
        Handler.files[path] = (page(numbers), "text/html")

    second, root = two_runs(tmp_path, {"urls": [f"{site}{path}"], "engine": "gallery-dl"}, publish, stop)
    assert sorted(r["path"] for r in catalogue(root)) == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]
    # Items the second run counted: the 2 new ones (gallery-dl stops at the first known one before reporting it as
    # skipped); without the rule, the 3 known ones too.
    assert second["itemsDone"] == (2 if stop else 5), second
