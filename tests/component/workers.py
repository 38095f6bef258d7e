"""The worker as a process, for the component tests: started with a configuration as the operator would give it,
waited for, and what it wrote (the catalogue) read back; and the fixture feeds the tests hand it."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gallery_harness.site import Handler, image_bytes, serve
from gallery_operator.api.spec import parse_spec
from gallery_operator.workerconfig import Egress, PvcStorage, S3Storage, WorkerConfig

LOCAL_SITE = Egress(allow_private_networks=True)  # the fixture site is on loopback


def start_worker(
    tmp: Path,
    spec: dict[str, Any],
    storage: PvcStorage | S3Storage,
    *args: str,
    env: dict[str, str] | None = None,
    egress: Egress = LOCAL_SITE,
    launcher: tuple[str, ...] = (),
    pass_fds: tuple[int, ...] = (),
    **config_fields: Any,
) -> subprocess.Popen[str]:
    """``config_fields``: more of WorkerConfig's fields (a report endpoint, for one); ``launcher``: a command the
    worker's command line is handed to (see start_worker_alone)."""
    full = {"target": {"pvc": {"claimName": "x"}}, "options": {"retries": 0}, **spec}
    names: dict[str, Any] = {"namespace": "ns", "name": "dl", "uid": "u", "run": "run1"}
    config = WorkerConfig(**names, spec=parse_spec(full), storage=storage, egress=egress, **config_fields)
    (tmp / "termination-log").unlink(missing_ok=True)
    return subprocess.Popen(
        [*launcher, sys.executable, "-m", "gallery_operator.worker", *args],
        pass_fds=pass_fds,
        env={
            **os.environ,
            **(env or {}),
            "GALLERY_WORKER_CONFIG": config.model_dump_json(by_alias=True),
            "GALLERY_WORKER_SCRATCH": str(tmp / "scratch"),
            "GALLERY_WORKER_TERMINATION_LOG": str(tmp / "termination-log"),
            "GALLERY_WORKER_LOG_FORMAT": "text",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


PR_SET_CHILD_SUBREAPER = 36


def start_worker_alone(
    tmp: Path, spec: dict[str, Any], storage: PvcStorage | S3Storage, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """start_worker, for a test that measures the worker's peak memory with ``os.wait4``: the worker is forked by a
    small shell (bash: dash takes no descriptor past 9) that then leaves it to this process, so the ``ru_maxrss`` of
    its rusage is its own peak.

    A process this one starts itself runs from a vfork of it until its exec, and Linux then counts the peak resident
    size of the memory it leaves (this test process's, hundreds of MB after other tests in the same pytest worker)
    into the child's ``ru_maxrss``: the figure was this process's peak, not the worker's. The shell's fork costs a
    few MB at most (bash's own pages), counted against the worker. The returned Popen stands for the worker itself
    (its pid, its output); the worker ignores SIGINT (a shell's background job)."""
    libc = ctypes.CDLL(None, use_errno=True)
    read_end, write_end = os.pipe()
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        shell = ("/bin/bash", "-c", f'"$@" {write_end}>&- & echo $! >&{write_end}', "bash")
        process = start_worker(tmp, spec, storage, env=env, launcher=shell, pass_fds=(write_end,))
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            worker = int(answer.read())
        os.waitpid(process.pid, 0)  # the shell is gone: the worker is this process's child now
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    process.pid, process.returncode = worker, None
    return process


def run_worker(
    tmp: Path,
    spec: dict[str, Any],
    storage: PvcStorage | S3Storage,
    *args: str,
    timeout: float = 120,
    **options: Any,
) -> tuple[int, dict[str, Any]]:
    """start_worker, waited for (at most ``timeout`` seconds): the exit code and the termination message."""
    process = start_worker(tmp, spec, storage, *args, **options)
    _, stderr = process.communicate(timeout=timeout)
    termination = tmp / "termination-log"
    assert termination.exists(), stderr[-3000:]
    return process.returncode, json.loads(termination.read_text())


def catalogue(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def gallery_page(name: str, links: list[str]) -> str:
    """Serves a fixture page at ``/p/<name>.html`` that links each of ``links`` as an anchor around an image; returns
    the page's path."""
    body = "".join(f'<a href="{link}"><img src="{link}"></a>' for link in links)
    Handler.files[f"/p/{name}.html"] = (f"<html><body>{body}</body></html>".encode(), "text/html")
    return f"/p/{name}.html"


def most_moved_while_pending(
    process: subprocess.Popen[str],
    root: Path,
    moved: Callable[[], int],
    *,
    pending: Callable[[], bool] = lambda: True,
    stored: int = 1,
    enough: int,
) -> int:
    """Watches a running worker every 20 ms: the most items ``moved()`` counted while ``pending()`` held, until the
    catalogue under ``root`` has ``stored`` lines (the pending item's turn has come), ``enough`` moved, or the worker
    exits. The held items of the latest site started are then answered at once (``Handler.release``: run it on a
    site of the test's own), and the worker is waited for and must have succeeded."""
    catalogue_file = root / ".gallery-operator" / "catalogue.jsonl"
    most = 0
    while process.poll() is None and most < enough:
        if catalogue_file.exists() and catalogue_file.read_text().count("\n") >= stored:
            break
        if pending():
            most = max(most, moved())
        time.sleep(0.02)
    Handler.release.set()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    return most


def gallery_moved_while_pending(
    tmp: Path,
    name: str,
    links: list[str],
    moved: Callable[[], int],
    *,
    concurrency: int,
    latency: float = 0.0,
    pending: Callable[[], bool] = lambda: True,
    stored: int = 1,
    enough: int,
) -> int:
    """The real worker (gallery-dl at ``concurrency``) on a page of ``links`` served by a site of its own with
    ``latency``, watched by ``most_moved_while_pending``: the most items moved while an item was pending."""
    page = gallery_page(name, links)
    with serve(latency=latency) as site:
        Handler.hits.clear()
        options = {"retries": 0, "concurrency": concurrency}
        spec = {"engine": "gallery-dl", "urls": [f"{site}{page}"], "options": options}
        process = start_worker(tmp, spec, claim(tmp))
        return most_moved_while_pending(process, tmp / "claim", moved, pending=pending, stored=stored, enough=enough)


def assert_gallery_stored(root: Path, count: int) -> None:
    """The catalogue holds images 1 to ``count`` in the gallery's order, and every file is whole."""
    assert [r["path"] for r in catalogue(root)] == [f"{n}.jpg" for n in range(1, count + 1)]
    assert all((root / f"{n}.jpg").read_bytes() == image_bytes(n) for n in range(1, count + 1))


def claim(tmp_path: Path) -> PvcStorage:
    return PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/dl")


def feed(site: str, numbers: list[int]) -> bytes:
    """An RSS feed, newest entry first, each a direct video link (yt-dlp's generic extractor reads it as a playlist)."""
    items = "".join(
        f"<item><title>Episode {n}</title><link>{site}/big/1.mp4?episode={n}</link><guid>episode-{n}</guid></item>"
        for n in numbers
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Show</title>{items}</channel></rss>'.encode()


def files_on_claim(root: Path) -> dict[str, bytes]:
    """The files at the top of a claim's folder (the state folder and sub-folders left out), by name."""
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}


def assert_all_fetchers_paused(tmp: Path, spec: dict[str, Any], storage: PvcStorage | S3Storage) -> None:
    """Run 30 items of which one is refused once with `429, Retry-After: 2`: from that answer on, the site's request
    log shows no request from any transfer for two seconds (a margin for requests already on the wire), then the
    rest of the items come, and all 30 are stored."""
    started = len(Handler.log)
    code, report = run_worker(tmp, spec, storage)
    assert (code, report["itemsDone"]) == (0, 30), report["failures"]
    log = Handler.log[started:]
    refused = next(entry.at for entry in log if entry.status == 429)
    during = [entry for entry in log if refused + 0.2 < entry.at < refused + 1.9]
    after = [entry for entry in log if entry.at >= refused + 1.9]
    assert during == [], during
    assert len(after) >= 10  # the rest of the items came after the pause
