"""A failure names the item that failed: gallery-dl's downloader logs a missing item's line formatted before logging
(`'404 Not Found' for '<item URL>'`), and the rule that skips the URLs of a line's own wording (gallery-dl's issue
tracker after an unexpected error) took the item's URL for wording and named the gallery instead (review)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import gallery_page, run_worker

pytestmark = pytest.mark.component


@pytest.mark.parametrize("concurrency", [1, 6])
@pytest.mark.parametrize("missing", ["/img/none.jpg", "/p/gone.html"])
def test_a_missing_item_of_a_gallery_is_the_failure_url(
    tmp_path: Path, site: str, concurrency: int, missing: str
) -> None:
    page = gallery_page(f"failure-url-{concurrency}-{missing.count('p')}", ["/img/1.jpg", missing])
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    spec = {"urls": [f"{site}{page}"], "options": {"retries": 0, "concurrency": concurrency}}
    _, report = run_worker(tmp_path, spec, storage)
    failures = [(f["reason"], f["url"].removeprefix(site)) for f in report["failures"]]
    assert failures == [("NotFound", missing)], report["failures"]
