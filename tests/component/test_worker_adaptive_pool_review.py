"""Hostile timing against the adaptive gallery-dl transfer pool (``Transfers(adaptive=True)``): a site that answers
at once until the pool has settled on moving items one at a time on the engine's thread, then holds some items. The
promise under concurrency > 1 (docs/open-work.md, "Concurrent item transfers"): one slow item stalls the pool only
after concurrency x (1 + BACKLOG_PER_SLOT) - 1 more items, except the first slow item the engine's thread moves
itself after the site answered at once (nothing watches that thread): that one stalls the run for its own time, and
widens the pool. The real worker, real gallery-dl and the fixture site."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gallery_harness.site import Handler
from gallery_operator.worker.transfers import BACKLOG_PER_SLOT
from tests.component.workers import assert_gallery_stored, gallery_moved_while_pending

CONCURRENCY = 4
SLOW_SECONDS = 8
FAST_FIRST = 24
"""Items the site answers at once before the slow one: enough for the pool to settle on moving items alone."""


def images_after(number: int) -> int:
    """Requests the site has had for the gallery's images after item ``number``."""
    return sum(1 for path in Handler.hits if path.startswith("/img/") and int(path[5:].split(".")[0]) > number)


def pending(number: int) -> Callable[[], bool]:
    """Whether the site has had the request for slow item ``number``."""
    return lambda: f"/slow/{number}.jpg" in Handler.hits


def test_a_site_that_turns_slow_widens_the_pool(tmp_path: Path) -> None:
    """The site answers the first 24 items at once (the pool moves them one at a time, on the engine's thread),
    holds item 25 for 1 s, answers 26-29 at once and holds item 30 for 8 s: while item 30 is pending, the items
    after it go on as they would in a pool of 4 (at least the concurrency's worth; the stated backlog allows 19).
    Before the fix the pool widened only when four items in a row waited: the engine's thread moved items 25 and 30
    itself and nothing else moved while either was pending (0 items moved past item 30)."""
    count = 60
    slow = FAST_FIRST + 6
    held = {FAST_FIRST + 1: 1, slow: SLOW_SECONDS}
    links = [f"/slow/{n}.jpg?seconds={held[n]}" if n in held else f"/img/{n}.jpg" for n in range(1, count + 1)]
    moved = gallery_moved_while_pending(
        tmp_path,
        "switch",
        links,
        lambda: images_after(slow),
        concurrency=CONCURRENCY,
        pending=pending(slow),
        stored=slow,
        enough=CONCURRENCY,
    )
    assert moved >= CONCURRENCY, f"{moved} items moved while item {slow} was pending"
    assert_gallery_stored(tmp_path / "claim", count)


def test_a_slow_item_in_flight_when_the_wide_pool_is_measured_again_is_passed(tmp_path: Path) -> None:
    """Far away (20 ms a request) the pool widens within the first items and is measured again after FIRST_CHECK
    (64) items handed to it, one item alone once all in flight are done. Item 60 is held for 8 s, so it is in
    flight when that check comes: the items after it go on up to the stated backlog while it is pending
    (concurrency x (1 + BACKLOG_PER_SLOT) in the pool, item 60 among them). Before the fix the engine's thread
    waited for item 60 before it handed in another: 5-8 items moved past it, as in a pool without a backlog."""
    count = 100
    slow = 60
    in_pool = CONCURRENCY * (1 + BACKLOG_PER_SLOT)
    links = [f"/slow/{n}.jpg?seconds={SLOW_SECONDS}" if n == slow else f"/img/{n}.jpg" for n in range(1, count + 1)]
    moved = gallery_moved_while_pending(
        tmp_path,
        "check",
        links,
        lambda: images_after(slow),
        concurrency=CONCURRENCY,
        latency=0.02,
        pending=pending(slow),
        stored=slow,
        enough=in_pool - 1,
    )
    assert moved >= in_pool - 1, f"{moved} items moved while item {slow} was pending"
    assert_gallery_stored(tmp_path / "claim", count)
