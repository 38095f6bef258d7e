"""The transfer pool pays for threads only while there is latency to hide (issue 26, zero latency): the real worker,
real gallery-dl and the fixture site, which counts the requests it answers at once. Far away, the transfers overlap;
on a site that answers at once, the items move one at a time (on the engine's own thread, as with concurrency 1),
whatever the spec's concurrency. The assertions are on the site's count of overlapping requests, not on time."""

from __future__ import annotations

from pathlib import Path

from gallery_harness.site import Handler, image_bytes, serve
from tests.component.workers import catalogue, claim, run_worker

COUNT = 200


def gallery_run(tmp_path: Path, latency: float, concurrency: int) -> None:
    with serve(latency=latency) as site:
        Handler.overlap.clear()
        spec = {
            "urls": [f"{site}/gallery/?n={COUNT}&size=2048"],
            "engine": "gallery-dl",
            "options": {"retries": 0, "concurrency": concurrency},
        }
        code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", COUNT), report
    records = catalogue(tmp_path / "claim")
    assert [r["path"] for r in records] == [f"{n}.jpg" for n in range(1, COUNT + 1)]
    assert all((tmp_path / "claim" / f"{n}.jpg").read_bytes() == image_bytes(n, 2048) for n in range(1, COUNT + 1))


def test_transfers_overlap_when_the_site_is_far_away(tmp_path: Path) -> None:
    gallery_run(tmp_path / "far", latency=0.02, concurrency=4)
    assert Handler.overlap.most >= 3, vars(Handler.overlap)
    assert Handler.overlap.beside > COUNT // 2, vars(Handler.overlap)
    assert len(Handler.overlap.connections) >= 3, vars(Handler.overlap)


def test_items_move_one_at_a_time_when_the_site_answers_at_once(tmp_path: Path) -> None:
    """The transfers share gallery-dl's session, whose connection pool opens a connection for each request made
    while the others are busy: items moved one at a time come on one connection. The pool of 6 before (and this
    worker without ``adaptive``) used 6. Up to 3 are allowed: a stray slow answer on a loaded machine may widen the
    pool until it is measured again, 64 items later."""
    gallery_run(tmp_path / "near", latency=0.0, concurrency=6)
    assert len(Handler.overlap.connections) <= 3, vars(Handler.overlap)


def test_concurrency_one_never_overlaps(tmp_path: Path) -> None:
    gallery_run(tmp_path / "one", latency=0.02, concurrency=1)
    assert Handler.overlap.most == 1, vars(Handler.overlap)
