"""A start that cannot fill its caches: once no first listing has grown for READY_DEADLINE_SECONDS /healthz fails (so a
liveness probe restarts the process) and the log says why; a start that fills them in time, or whose listings still
grow, stays healthy. Real HTTP on loopback; the start's age is
set, not waited for."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.error
import urllib.request

import pytest

from gallery_harness.procs import free_port
from gallery_operator import handlers, web
from gallery_operator.config import Settings
from gallery_operator.controller import Controller, StartProgress


def answer(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_fails_once_a_start_is_past_its_ready_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "register_phase_collector", lambda phases: None)  # the global registry stays clean
    health = free_port()
    settings = Settings(report_port=free_port(), health_port=health, metrics_port=0, ready_deadline_seconds=60)

    async def scenario() -> list[tuple[int, str]]:
        controller = Controller(settings, {}, {})
        controller.start()
        servers = await web.start_servers(settings, controller)
        base = f"http://127.0.0.1:{health}"
        try:
            seen = [await asyncio.to_thread(answer, f"{base}/healthz")]  # 59 s to go: alive, not ready
            controller.progress.seen("gallerydownloads", "uid-1")  # a listing that grows 59 s on: slow, not stuck
            controller.began = time.monotonic() - 119
            seen += [await asyncio.to_thread(answer, f"{base}/healthz")]
            controller.began = controller.progress.last = time.monotonic() - 61  # nothing new for a minute
            seen += [await asyncio.to_thread(answer, f"{base}/{path}") for path in ("healthz", "readyz")]
            controller.indexed = True  # they were filled after all
            seen += [await asyncio.to_thread(answer, f"{base}/{path}") for path in ("healthz", "readyz")]
            await controller.stop()
            return seen
        finally:
            await servers.cleanup()

    stuck = (500, "caches not filled: no new object for 60 s, or 240 s since start")
    assert asyncio.run(scenario()) == [(200, "ok"), (200, "ok"), stuck, stuck, (200, "ok"), (200, "ok")]


def test_the_start_report_says_what_the_caches_hold_when_the_deadline_passes(caplog: pytest.LogCaptureFixture) -> None:
    progress = StartProgress()
    progress.counts.update({"gallerydownloads": 1000, "namespaces": 12})
    controller = Controller(Settings(ready_deadline_seconds=60), {}, {}, progress=progress)
    controller.began = progress.last = time.monotonic() - 61
    with caplog.at_level(logging.INFO, logger="gallery_operator.handlers"):
        asyncio.run(handlers.report_start(controller))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "not ready 61 s after start-up began, and no cache has grown for 60 s: the caches are not filled (objects "
        "seen so far: gallerydownloads 1000, namespaces 12); /healthz answers 500 so that the process is restarted"
    )


def test_the_start_report_says_how_long_a_start_took(caplog: pytest.LogCaptureFixture) -> None:
    progress = StartProgress()
    for uid in ("a", "b", "c", "a"):  # an object seen again (a change) is not counted twice
        progress.seen("jobs", uid)
    controller = Controller(Settings(), {}, {}, progress=progress)
    controller.indexed = True
    with caplog.at_level(logging.INFO, logger="gallery_operator.handlers"):
        asyncio.run(handlers.report_start(controller))
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("ready ")
    assert record.getMessage().endswith(" s after start-up began: the caches are filled (objects seen: jobs 3)")


def test_changes_to_objects_already_seen_do_not_keep_a_stuck_start_alive() -> None:
    """One kind's listing never ends; a tenant edits its own downloads every few seconds: each edit is an index event
    of an object already seen, so the start still counts as quiet and is stuck at its deadline."""
    controller = Controller(Settings(ready_deadline_seconds=60), {}, {})
    controller.progress.seen("gallerydownloads", "mine")
    controller.began = controller.progress.last = time.monotonic() - 61
    controller.progress.seen("gallerydownloads", "mine")  # the tenant's edit
    assert controller.stuck_starting()
    controller.progress.seen("gallerydownloads", "new")  # a new object: the listing moves
    assert not controller.stuck_starting()


def test_a_start_that_keeps_seeing_new_objects_is_stuck_at_the_ceiling() -> None:
    """New objects without end (created as fast as they are listed) do not hold off the restart for ever."""
    controller = Controller(Settings(ready_deadline_seconds=60), {}, {})
    controller.began = time.monotonic() - 239
    controller.progress.seen("gallerydownloads", "one")
    assert not controller.stuck_starting()
    controller.began = time.monotonic() - 241
    controller.progress.seen("gallerydownloads", "two")
    assert controller.stuck_starting()
    controller.indexed = True
    assert not controller.stuck_starting()
