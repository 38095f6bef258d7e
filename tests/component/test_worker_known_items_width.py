"""The adaptive gallery-dl pool decides its width from the items that moved, not from items skipped as known: a
resumed gallery whose known items sit between new items that wait on the network widens as a new gallery would.
The real worker, real gallery-dl and the fixture site (its overlap count: how many requests it answered at once)."""

from __future__ import annotations

from pathlib import Path

from gallery_harness.site import Handler, serve
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, gallery_page, run_worker

KNOWN = [f"/img/{n}.jpg" for n in range(8301, 8321)]
FAST = [f"/img/{n}.jpg" for n in range(8401, 8425)]
"""Answered at once: enough for the pool to settle on moving items one at a time on the engine's thread."""
SLOW = [f"/slow/{n}.jpg?seconds=0.15" for n in range(8501, 8521)]


def test_known_items_between_waiting_ones_do_not_keep_the_pool_narrow(tmp_path: Path) -> None:
    """A second run: 24 new items answered at once (the pool settles on moving items one at a time on the engine's
    thread), then known and new items in turn, each new one answered after 0.15 s: the new items end up moving side
    by side (the site answered two or more at once). Items skipped as known wait on nothing and are not taken as
    measurements of the network (`Transfers.move_here`); this run widened on the code before that too, through the
    width's other rules, so the test holds the behaviour, not that one rule."""
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/resumed")
    options = {"retries": 0, "concurrency": 4}
    with serve() as site:
        first = {"urls": [site + gallery_page("known", KNOWN)], "engine": "gallery-dl", "options": options}
        code, report = run_worker(tmp_path, first, storage)
        assert (code, report["itemsDone"]) == (0, len(KNOWN)), report
        turns = [link for pair in zip(KNOWN, SLOW, strict=True) for link in pair]
        second = {"urls": [site + gallery_page("resumed", FAST + turns)], "engine": "gallery-dl", "options": options}
        Handler.overlap.clear()
        code, report = run_worker(tmp_path, second, storage)
        most = Handler.overlap.most
    assert (code, report["itemsDone"], report["failures"]) == (0, len(FAST) + len(turns), []), report
    assert len(catalogue(tmp_path / "claim")) == len(KNOWN) + len(FAST) + len(SLOW)
    assert most >= 2, vars(Handler.overlap)
