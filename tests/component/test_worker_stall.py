"""One slow item under concurrency (issue 26): items finished early wait for their turn in the catalogue without
holding a transfer slot, so the gallery goes on around a slow item, up to a stated backlog. The real worker, real
gallery-dl and the fixture site with a per-request latency."""

from __future__ import annotations

from pathlib import Path

from gallery_harness.site import Handler
from gallery_operator.worker.transfers import BACKLOG_PER_SLOT
from tests.component.workers import assert_gallery_stored, gallery_moved_while_pending

CONCURRENCY = 4
SLOW_SECONDS = 8


def image_requests() -> int:
    return sum(count for path, count in Handler.hits.items() if path.startswith("/img/"))


def test_a_slow_item_does_not_stall_the_items_after_it(tmp_path: Path) -> None:
    """The first of 40 items answers after 8 s; while it is pending, the pool goes on with the items after it (each
    finished one waits for its turn without its slot), as many as the backlog allows: concurrency x (1 +
    BACKLOG_PER_SLOT) items in the pool, the slow one among them. (Before, the pool stalled after `concurrency`
    items.) The catalogue keeps the gallery's order and every file is whole."""
    count = 40
    links = [f"/slow/1.jpg?seconds={SLOW_SECONDS}", *(f"/img/{n}.jpg" for n in range(2, count + 1))]
    in_pool = CONCURRENCY * (1 + BACKLOG_PER_SLOT)
    # The first item is not stored until its turn, so every image request counts until then.
    moved = gallery_moved_while_pending(
        tmp_path, "stall", links, image_requests, concurrency=CONCURRENCY, latency=0.02, enough=in_pool - 1
    )
    assert moved >= in_pool - 1, f"{moved} items moved while the first was pending"
    assert_gallery_stored(tmp_path / "claim", count)
