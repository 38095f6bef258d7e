"""A start that cannot fill its caches: past READY_DEADLINE_SECONDS /healthz fails (so a liveness probe restarts the
process) and the log says why; a start that fills them in time stays healthy. Real HTTP on loopback; the start's age is
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
from gallery_operator.controller import Controller


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
            controller.began = time.monotonic() - 61  # the caches still not filled a minute on
            seen += [await asyncio.to_thread(answer, f"{base}/{path}") for path in ("healthz", "readyz")]
            controller.indexed = True  # they were filled after all
            seen += [await asyncio.to_thread(answer, f"{base}/{path}") for path in ("healthz", "readyz")]
            await controller.stop()
            return seen
        finally:
            await servers.cleanup()

    stuck = (500, "caches not filled 60 s after start-up began")
    assert asyncio.run(scenario()) == [(200, "ok"), stuck, stuck, (200, "ok"), (200, "ok")]


def test_the_start_report_says_what_the_caches_hold_when_the_deadline_passes(caplog: pytest.LogCaptureFixture) -> None:
    controller = Controller(Settings(ready_deadline_seconds=60), {}, {})
    controller.began = time.monotonic() - 61
    handlers.INDEXED.clear()
    handlers.INDEXED.update({"gallerydownloads": 1000, "namespaces": 12})
    with caplog.at_level(logging.INFO, logger="gallery_operator.handlers"):
        asyncio.run(handlers.report_start(controller))
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "not ready 60 s after start-up began: the caches are not filled (index events so far: gallerydownloads 1000, "
        "namespaces 12); /healthz answers 500 so that the process is restarted"
    )


def test_the_start_report_says_how_long_a_start_took(caplog: pytest.LogCaptureFixture) -> None:
    controller = Controller(Settings(), {}, {})
    controller.indexed = True
    handlers.INDEXED.clear()
    handlers.INDEXED.update({"jobs": 3})
    with caplog.at_level(logging.INFO, logger="gallery_operator.handlers"):
        asyncio.run(handlers.report_start(controller))
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith("ready ")
    assert record.getMessage().endswith(" s after start-up began: the caches are filled (index events: jobs 3)")
