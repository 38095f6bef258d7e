"""The running reports of the real worker under concurrency (issue 26): posted to a report endpoint on loopback, as the
operator's, every 50 ms; items transferred four at a time from the fixture site with latency and a bandwidth cap."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.site import Handler, serve
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import catalogue, start_worker

MIB = 1024 * 1024


class Reports(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    Reports.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Reports)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/report"
    server.shutdown()


def run_reporting(tmp: Path, spec: dict[str, Any], endpoint: str) -> tuple[int, list[dict[str, Any]]]:
    """The worker with a report endpoint and a token (as the pod's projected one): exit code and the reports."""
    (tmp / "token").mkdir()
    (tmp / "token" / "token").write_text("test-token")
    storage = PvcStorage(root=str(tmp / "claim"), location="pvc://media/dl")
    env = {"GALLERY_WORKER_TOKEN_DIR": str(tmp / "token")}
    process = start_worker(tmp, spec, storage, env=env, report_url=endpoint, report_interval_seconds=0.05)
    process.communicate(timeout=120)
    with Reports.lock:
        return process.returncode, list(Reports.received)


def never_backwards(reports: list[dict[str, Any]], field: str) -> list[tuple[int, int]]:
    values = [r[field] for r in reports if not r["final"]]
    return [(a, b) for a, b in itertools.pairwise(values) if b < a]


def test_running_reports_never_go_backwards_when_an_item_in_flight_fails(tmp_path: Path, endpoint: str) -> None:
    """Four large files at once, each at most 8 MB/s; the first loses its connection half-way (no retries), so its
    bytes, counted while in flight, are dropped while the others go on. Running reports' itemsDone and bytesDone
    still never go backwards (a running bytesDone is the most the run has had stored and in flight); the final
    report says what was stored."""
    links = ["/cut/8.mp4", "/big/10.mp4", "/big/11.mp4", "/big/12.mp4"]
    body = "".join(f'<a href="{link}">v</a>' for link in links)
    Handler.files["/p/progress.html"] = (f"<html><body>{body}</body></html>".encode(), "text/html")
    with serve(bandwidth=8_000_000) as site:
        spec = {"urls": [f"{site}/p/progress.html"], "options": {"retries": 0, "concurrency": 4}}
        _, reports = run_reporting(tmp_path, spec, endpoint)
    running = [r for r in reports if not r["final"]]
    assert len(running) >= 10, f"{len(running)} running reports"
    assert never_backwards(reports, "itemsDone") == []
    assert never_backwards(reports, "bytesDone") == []
    final = json.loads((tmp_path / "termination-log").read_text())
    stored = catalogue(tmp_path / "claim")
    assert [f["url"].removeprefix(site) for f in final["failures"]] == ["/cut/8.mp4"], final["failures"]
    assert sorted(r["path"] for r in stored) == ["10.mp4", "11.mp4", "12.mp4"]
    assert final["bytesDone"] == sum(r["size"] for r in stored) == 33 * MIB
    assert final["itemsDone"] == 3 >= max(r["itemsDone"] for r in running)
