"""The health endpoints over real HTTP on loopback: alive at once, ready only when the caches are filled."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from pydantic import ValidationError

from gallery_harness.procs import free_port
from gallery_harness.tokens import forged_jwt
from gallery_operator import kube, web
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.plan import PostEvent
from gallery_operator.snapshots import DownloadSnapshot
from gallery_operator.workerconfig import Report


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_readiness_waits_for_the_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "register_phase_collector", lambda phases: None)  # the global registry stays clean
    health = free_port()
    settings = Settings(report_port=free_port(), health_port=health, metrics_port=0)

    async def scenario() -> list[int]:
        controller = Controller(settings, {}, {})
        controller.start()
        servers = await web.start_servers(settings, controller)
        base = f"http://127.0.0.1:{health}"
        try:
            seen = [await asyncio.to_thread(status_of, f"{base}/{path}") for path in ("healthz", "readyz")]
            controller.indexed = True  # what the first watch event does
            seen.append(await asyncio.to_thread(status_of, f"{base}/readyz"))
            await controller.stop()
            seen.append(await asyncio.to_thread(status_of, f"{base}/healthz"))
            return seen
        finally:
            await servers.cleanup()

    assert asyncio.run(scenario()) == [200, 503, 200, 500]


def test_a_failing_event_post_does_not_stop_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection error while posting an Event is logged; the Event task lives on, so /healthz stays 200."""
    posted: list[str] = []

    def post_event(reference: object, kind: str, reason: str, message: str) -> None:
        posted.append(reason)
        if reason == "Queued":
            raise ConnectionResetError("the API server went away")

    monkeypatch.setattr(kube, "post_event", post_event)

    async def scenario() -> bool:
        controller = Controller(Settings(), {}, {})
        controller.start()
        reference = DownloadSnapshot.of({"metadata": {"namespace": "ns", "name": "dl", "uid": "u"}})
        for reason in ("Queued", "Running"):
            controller.outbox.post(reference, PostEvent("Normal", reason, ""))
        for _ in range(100):
            if len(posted) == 2:
                break
            await asyncio.sleep(0.01)
        alive = controller.alive()
        await controller.stop()
        return alive

    assert asyncio.run(scenario()) and posted == ["Queued", "Running"]


def test_reports_with_absurd_counts_are_refused() -> None:
    with pytest.raises(ValidationError):
        Report(run="r", items_done=10**400)


def test_unknown_tokens_are_reviewed_once_and_at_a_bounded_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens that pass the gate's look (here: from many addresses, for many namespaces) cost the API server at most
    REVIEWS_PER_SECOND reviews a second, and a refused token is not reviewed again for a while."""
    reviewed: list[str] = []
    monkeypatch.setattr(kube, "review_token", lambda token, audience: reviewed.append(token))
    controller = Controller(Settings(), {}, {})
    monkeypatch.setattr(controller, "expects_pod", lambda namespace, pod: True)
    reports = web.Reports(Settings(), controller)
    stranger = forged_jwt("gallery-operator.dev", "ns", "p-abcde", "u")

    async def scenario() -> list[web.Identity | str]:
        first = [await reports.identify(stranger, "a"), await reports.identify(stranger, "a")]
        flood = [
            await reports.identify(forged_jwt("gallery-operator.dev", f"ns{n}", "p-abcde", "u"), f"10.0.0.{n}")
            for n in range(web.REVIEWS_PER_SECOND + 10)
        ]
        return first + flood

    answers = asyncio.run(scenario())
    assert answers[:2] == ["not-a-worker", "not-a-worker"] and reviewed.count(stranger) == 1
    assert len(reviewed) == web.REVIEWS_PER_SECOND
    assert answers[-10:] == ["rate-limited"] * 10
