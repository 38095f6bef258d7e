"""One slow item under concurrency (issue 26): items finished early wait for their turn in the catalogue without
holding a transfer slot, so the gallery goes on around a slow item, up to a stated backlog. The real worker, real
gallery-dl and the fixture site with a per-request latency."""

from __future__ import annotations

import time
from pathlib import Path

from gallery_harness.site import Handler, image_bytes, serve
from gallery_operator.worker.transfers import BACKLOG_PER_SLOT
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, start_worker

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
    body = "".join(f'<a href="{link}"><img src="{link}"></a>' for link in links)
    Handler.files["/p/stall.html"] = (f"<html><body>{body}</body></html>".encode(), "text/html")
    claim = PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/dl")
    catalogue_file = tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl"
    in_pool = CONCURRENCY * (1 + BACKLOG_PER_SLOT)
    with serve(latency=0.02) as site:
        Handler.hits.clear()
        spec = {"urls": [f"{site}/p/stall.html"], "options": {"retries": 0, "concurrency": CONCURRENCY}}
        process = start_worker(tmp_path, spec, claim)
        moved_while_pending = 0
        while process.poll() is None and not (catalogue_file.exists() and catalogue_file.read_text()):
            moved_while_pending = max(moved_while_pending, image_requests())  # the first item is not stored yet
            if moved_while_pending >= in_pool - 1:
                break
            time.sleep(0.02)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert moved_while_pending >= in_pool - 1, f"{moved_while_pending} items moved while the first was pending"
    records = catalogue(tmp_path / "claim")
    assert [r["path"] for r in records] == [f"{n}.jpg" for n in range(1, count + 1)]
    assert all((tmp_path / "claim" / f"{n}.jpg").read_bytes() == image_bytes(n) for n in range(1, count + 1))
