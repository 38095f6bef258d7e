"""A pod killed while finished items wait for their turn in the catalogue (concurrent transfers) leaves files at
their final names that the catalogue does not hold. The next pod must not keep them beside the items it fetches
again: the claim ends with exactly the catalogued files, each under the item's own name (before, each such item
was stored a second time under a name with a hash, and the first file stayed, counted nowhere)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from gallery_harness.site import Handler, image_bytes, serve
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, files_on_claim, run_worker, start_worker

COUNT = 12
SLOW_SECONDS = 4


def test_files_left_by_a_killed_pod_are_not_kept_beside_the_items(tmp_path: Path) -> None:
    links = [f"/slow/1.jpg?seconds={SLOW_SECONDS}", *(f"/img/{n}.jpg" for n in range(2, COUNT + 1))]
    body = "".join(f'<img src="{link}">' for link in links)
    Handler.files["/p/leftovers.html"] = (f"<html><body>{body}</body></html>".encode(), "text/html")
    root = tmp_path / "claim"
    storage = PvcStorage(root=str(root), location="pvc://media/dl")
    spec = {"engine": "gallery-dl", "urls": ["/p/leftovers.html"], "options": {"retries": 0, "concurrency": 4}}
    with serve() as site:
        spec["urls"] = [f"{site}/p/leftovers.html"]
        process = start_worker(tmp_path, spec, storage)
        deadline = time.monotonic() + 60
        # The first item is pending at the site; items after it finish and wait for their turn at their final names.
        while process.poll() is None and time.monotonic() < deadline and not (root / f"{COUNT}.jpg").exists():
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        left = sorted(name for name in files_on_claim(root) if not name.endswith(".part"))
        assert f"{COUNT}.jpg" in left and not catalogue_lines(root), left  # files the catalogue does not hold
        code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", COUNT), report
    records = catalogue(root)
    files = {name: data for name, data in files_on_claim(root).items() if not name.endswith(".part")}
    assert sorted(r["path"] for r in records) == sorted(files) == sorted(f"{n}.jpg" for n in range(1, COUNT + 1))
    assert all(data == image_bytes(int(name.split(".")[0])) for name, data in files.items())


def catalogue_lines(root: Path) -> list[str]:
    file = root / ".gallery-operator" / "catalogue.jsonl"
    return file.read_text().splitlines() if file.exists() else []
