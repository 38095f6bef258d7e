"""kopf posts no Kubernetes Event of its own (handlers.configure): every Event the operator posts passes the
facade's write gate (facade.GATE), so a standby, which may write nothing, posts none. Checked with kopf's own posting
functions and its log handler, with the settings the operator starts with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import kopf
import pytest

# kopf's posting engine: where kopf.event() and its logger handler put the Events they would post.
from kopf._core.engines import posting

from gallery_operator.handlers import configure

BODY = kopf.Body({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "uid": "u"}})


def queued(settings: kopf.OperatorSettings, post: Callable[[], None]) -> int:
    """How many Events kopf queues for posting while `post()` runs, under these settings."""

    async def scenario() -> int:
        queue: asyncio.Queue[posting.K8sEvent] = asyncio.Queue()
        posting.settings_var.set(settings)
        posting.event_queue_var.set(queue)
        posting.event_queue_loop_var.set(asyncio.get_running_loop())
        post()
        await asyncio.sleep(0)
        return queue.qsize()

    return asyncio.run(scenario())


def logged(settings: kopf.OperatorSettings) -> None:
    """A handler's per-object logger, as kopf logs a handler's failure."""
    logger = kopf.ObjectLogger(body=BODY, settings=settings)
    logger.warning("a handler failed")
    logger.error("a handler failed")


WAYS: dict[str, Callable[[kopf.OperatorSettings], None]] = {
    "event": lambda _: kopf.event(BODY, type="Warning", reason="R", message="m"),
    "info": lambda _: kopf.info(BODY, reason="R", message="m"),
    "warn": lambda _: kopf.warn(BODY, reason="R", message="m"),
    "exception": lambda _: kopf.exception(BODY, reason="Failed", message="m", exc=RuntimeError("x")),
    "log": logged,
}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_kopf_posts_no_event_of_its_own(way: str) -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert queued(settings, lambda: WAYS[way](settings)) == 0


def test_the_check_sees_what_kopf_would_post() -> None:
    """The same check counts the Events when kopf's posting is on (kopf's defaults and its loggers), so the test
    above can fail: it did for event, warn and exception with the operator's earlier settings (level WARNING)."""
    settings = kopf.OperatorSettings()
    settings.posting.loggers = True

    def every_way() -> None:
        for way in WAYS.values():
            way(settings)

    assert queued(settings, every_way) == 6
