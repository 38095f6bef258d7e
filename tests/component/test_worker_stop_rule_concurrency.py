"""The incremental stop rule (`options.stopAfterKnown`) with concurrent transfers: known items are counted in gallery
order, as gallery-dl counts them one item at a time, whatever the transfers of the new items between them are doing.

A new item that is still in flight when the known items after it are looked at must break their run all the same:
counted by the time its transfer ends, it would not, and the rule would stop the run early and lose the new items
further down the listing (a subscription would never fetch them: the next run stops at the same place)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery_harness.site import Handler
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, run_worker

NEW_ITEM_SECONDS = 0.6
"""How long each new image takes at the site: long against the look at a known item (no request at all)."""


def page(sources: list[str]) -> bytes:
    images = "".join(f'<img src="{source}">' for source in sources)
    return f"<html><head><title>Newest first</title></head><body>{images}</body></html>".encode()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_new_items_in_flight_break_a_run_of_known_items(tmp_path: Path, site: str, concurrency: int) -> None:
    path = f"/stop-rule-pool/{tmp_path.name}/gallery.html"
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/sub")
    spec = {"urls": [f"{site}{path}"], "engine": "gallery-dl"}
    options = {"retries": 0, "stopAfterKnown": 3, "concurrency": concurrency}
    known = [f"/img/{n}.jpg" for n in range(1, 8)]
    Handler.files[path] = (page(known), "text/html")
    code, first = run_worker(tmp_path, {**spec, "options": options}, storage)
    assert (code, first["outcome"], first["itemsDone"]) == (0, "Succeeded", 7), first

    new = [f"/slow/{n}.jpg?seconds={NEW_ITEM_SECONDS}" for n in (101, 102, 103)]
    # Never three known items in a row before the last three: the rule stops at the 7th known item only.
    grown = [new[0], known[0], known[1], new[1], known[2], known[3], new[2], *known[4:]]
    Handler.files[path] = (page(grown), "text/html")
    before = {n: Handler.hits.get(f"/slow/{n}.jpg", 0) for n in (101, 102, 103)}
    code, second = run_worker(tmp_path, {**spec, "options": options}, storage)
    assert (code, second["outcome"]) == (0, "Succeeded"), second

    fetched = {n: Handler.hits.get(f"/slow/{n}.jpg", 0) - before[n] for n in (101, 102, 103)}
    assert fetched == {101: 1, 102: 1, 103: 1}, fetched  # every new item, once
    assert sorted(r["path"] for r in catalogue(tmp_path / "claim")) == sorted(
        [f"{n}.jpg" for n in range(1, 8)] + ["101.jpg", "102.jpg", "103.jpg"]
    )
    # Counted: the 3 new items and the known ones before the third known item in a row (6 of them), as gallery-dl
    # counts them one at a time.
    assert second["itemsDone"] == 3 + 6, second
