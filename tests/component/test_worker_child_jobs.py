"""A gallery whose extractor hands part of its work to child jobs (gallery-dl's `Message.Queue`) while its own job
holds the download archive open: gallery-dl's real 8muses album extractor, whose album page lists its pictures and
then its sub-albums, each sub-album a child job of the album's job. Served for its real host name by the fixture
proxy (tests/fixtures/sites.py).

The worker keeps one connection to the archive per process, locked for the whole run (worker/options.py): a child
job opening a second one would wait for a lock the parent never gives up. Here the child's items are stored, and a
second run skips every item of both jobs without fetching it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.site import image_bytes
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, run_worker
from tests.fixtures.sites import Raw, Request, serve_sites

HOST = "comics.8muses.com"
ALBUMS = {"A": ["a1", "a2"], "A/B": ["b1", "b2"]}
"""Album permalink -> its pictures' public URIs; A lists B as its sub-album."""


def obfuscated(data: dict[str, Any]) -> str:
    """The page's JSON as 8muses hides it: each printable character shifted, which gallery-dl's `_unobfuscate`
    (`chr(33 + (ord(c) + 14) % 94)`) undoes."""
    return "".join(chr(33 + (ord(c) - 47 - 33) % 94) if "!" <= c <= "~" else c for c in json.dumps(data))


def album_page(permalink: str) -> bytes:
    album = {
        "id": len(permalink),
        "path": permalink,
        "name": permalink,
        "isPrivate": False,
        "permalink": permalink,
        "parentId": "0",
        "numberViews": "1",
        "numberLikes": "1",
        "updatedAt": "2026-11-01T10:00:00.000Z",
    }
    subalbums = [{"permalink": p, "name": p, "isPrivate": False} for p in ALBUMS if p.rpartition("/")[0] == permalink]
    data = {
        "pictures": [{"publicUri": uri} for uri in ALBUMS[permalink]],
        "album": album,
        "albums": subalbums,
        "page": 1,
        "pages": 1,
    }
    script = f'<script id="ractive-public" type="text/plain">{obfuscated(data)}</script>'
    return f"<html><body>{script}</body></html>".encode()


def answer(request: Request) -> tuple[int, Any]:
    path = request.path.partition("?")[0]
    if path.startswith("/porn/album/") and path.removeprefix("/porn/album/") in ALBUMS:
        return 200, Raw(album_page(path.removeprefix("/porn/album/")), "text/html")
    if path.startswith("/image/fl/"):
        return 200, Raw(image_bytes(len(path) + ord(path[-1])), "image/jpeg")
    return 404, {"error": "not found"}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_child_jobs_store_their_items_and_a_second_run_skips_them_all(tmp_path: Path, concurrency: int) -> None:
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/comics")
    spec = {
        "urls": [f"https://{HOST}/comics/album/A"],
        "engine": "gallery-dl",
        "options": {"retries": 0, "concurrency": concurrency},
    }
    with serve_sites(tmp_path, [HOST], answer) as (proxy, ca, sites):
        env = {"HTTPS_PROXY": proxy, "NO_PROXY": "", "REQUESTS_CA_BUNDLE": str(ca), "HOME": str(tmp_path)}
        first_code, first = run_worker(tmp_path, spec, storage, env=env, timeout=45)
        fetched = [r.path for r in sites.to(HOST) if r.path.startswith("/image/")]
        second_code, second = run_worker(tmp_path, spec, storage, env=env, timeout=45)
        fetched_again = [r.path for r in sites.to(HOST) if r.path.startswith("/image/")][len(fetched) :]
    assert (first_code, first["outcome"], first["itemsDone"]) == (0, "Succeeded", 4), first
    assert sorted(fetched) == [f"/image/fl/{uri}" for uri in ("a1", "a2", "b1", "b2")]
    paths = sorted(entry["path"] for entry in catalogue(tmp_path / "claim"))
    assert paths == ["8muses/A/001.jpg", "8muses/A/002.jpg", "8muses/A/B/001.jpg", "8muses/A/B/002.jpg"], paths
    assert all((tmp_path / "claim" / path).is_file() for path in paths)
    assert (second_code, second["outcome"], second["itemsDone"]) == (0, "Succeeded", 4), second
    assert fetched_again == []  # every item of both jobs known to the archive
    assert len(catalogue(tmp_path / "claim")) == 4
