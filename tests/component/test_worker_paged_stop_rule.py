"""The incremental stop rule over a PAGED listing, with gallery-dl's real paging extractor: a Danbooru tag search
(gallery-dl's own `danbooru` extractor, 200 posts a page, the next page asked for by the last id seen), served for
its real host name by the fixture proxy (tests/fixtures/sites.py), the posts' files by the fixture site. A second
run over the grown listing, and a third over the unchanged one, request the first page only with `stopAfterKnown`,
every page without it; neither fetches a file the library holds.

gallery-dl pages only in its site extractors, and those match their sites' host names: a plain loopback URL gets the
generic extractor, which reads one page. Hence the proxy, and this tier (the worker started directly with the
proxy in its environment): a worker pod on the local control plane has no way to be given one."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.site import Handler
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, run_worker
from tests.fixtures.sites import Request, Sites, serve_sites

HOST = "danbooru.donmai.us"
SEARCH = f"https://{HOST}/posts?tags=landscape"
PER_PAGE = 200
"""gallery-dl's page size for Danbooru; a page of fewer than 180 posts is the last one."""


class Listing:
    """A tag search whose posts are numbered 1..newest, newest first, paged as Danbooru's API pages them."""

    def __init__(self, site: str, newest: int) -> None:
        self.site = site
        self.newest = newest

    def post(self, number: int) -> dict[str, Any]:
        return {
            "id": number,
            "file_url": f"{self.site}/img/{number}.jpg",
            "created_at": "2026-11-22T10:00:00.000+00:00",
            "md5": f"{number:032x}",
            **{f"tag_string{kind}": "" for kind in ("", "_artist", "_character", "_copyright", "_general", "_meta")},
        }

    def answer(self, request: Request) -> tuple[int, Any]:
        path, _, query = request.path.partition("?")
        if path != "/posts.json":
            return 404, {"success": False}
        params = urllib.parse.parse_qs(query)
        below = self.newest + 1
        page = params.get("page", [""])[0]
        if page.startswith("b"):
            below = int(page[1:])  # the posts older than the last one of the previous page
        limit = int(params.get("limit", [str(PER_PAGE)])[0])
        numbers = range(below - 1, max(0, below - 1 - limit), -1)
        return 200, [self.post(n) for n in numbers]


def pages(sites: Sites, since: int) -> list[str]:
    """The `page` parameter of each listing request after the first ``since`` requests ("" for the first page)."""
    asked = [urllib.parse.parse_qs(r.path.partition("?")[2]) for r in sites.to(HOST)[since:]]
    return [query.get("page", [""])[0] for query in asked]


def run(tmp_path: Path, storage: PvcStorage, proxy: str, ca: Path, stop: int | None) -> dict[str, Any]:
    env = {"HTTPS_PROXY": proxy, "NO_PROXY": "", "REQUESTS_CA_BUNDLE": str(ca), "HOME": str(tmp_path)}
    options = {"retries": 0, **({"stopAfterKnown": stop} if stop else {})}
    spec = {"urls": [SEARCH], "engine": "gallery-dl", "options": options}
    code, report = run_worker(tmp_path, spec, storage, env=env)
    assert (code, report["outcome"]) == (0, "Succeeded"), report
    return report


def images(newest: int) -> list[int]:
    """How often the fixture site served each post's file so far."""
    return [Handler.hits.get(f"/img/{n}.jpg", 0) for n in range(1, newest + 1)]


@pytest.mark.parametrize("stop", [3, None], ids=["stopAfterKnown", "whole-listing"])
def test_gallery_dl_stops_on_the_first_page_of_a_paged_listing(tmp_path: Path, site: str, stop: int | None) -> None:
    listing = Listing(site, newest=410)  # pages of 200, 200 and 10 posts
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/sub")
    with serve_sites(tmp_path, [HOST], listing.answer) as (proxy, ca, sites):
        first = run(tmp_path, storage, proxy, ca, stop)
        assert first["itemsDone"] == 410, first
        assert pages(sites, 0) == ["", "b211", "b11"]  # the whole listing, page by page
        asked, before = len(sites.to(HOST)), images(412)
        listing.newest = 412  # two new posts at the top
        second = run(tmp_path, storage, proxy, ca, stop)
        grown = pages(sites, asked)
        asked, fetched = len(sites.to(HOST)), [a - b for a, b in zip(images(412), before, strict=True)]
        third = run(tmp_path, storage, proxy, ca, stop)  # the listing unchanged
        unchanged = pages(sites, asked)
    assert len(catalogue(tmp_path / "claim")) == 412  # every post stored once
    assert fetched == [0] * 410 + [1, 1]  # the second run fetched the two new files, no known one
    assert images(412) == [b + f for b, f in zip(before, fetched, strict=True)]  # the third fetched none
    if stop:
        # 2 new, then 3 known in a row: the run ends inside the first page; the later pages are never asked for.
        # It counts the new ones and the known ones before the last (gallery-dl stops before reporting that one).
        assert grown == unchanged == [""], (grown, unchanged)
        assert (second["itemsDone"], third["itemsDone"]) == (2 + stop - 1, stop - 1), (second, third)
    else:
        assert (grown, unchanged) == (["", "b213", "b13"], ["", "b213", "b13"])
        assert (second["itemsDone"], third["itemsDone"]) == (412, 412), (second, third)
