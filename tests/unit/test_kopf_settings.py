"""kopf's settings that keep a start over many objects from stalling (handlers.configure): no cap on its per-object
workers (a cap deadlocks a first listing larger than it, tests/e2e/test_operator_start.py) and first listings asked
for in pages, so that each request is bounded by the request timeout whatever the cluster holds and the caches grow
page by page (the start's progress, which the ready deadline reads)."""

from __future__ import annotations

import kopf

from gallery_operator.handlers import LISTING_PAGE, configure


def test_first_listings_come_in_pages_each_within_the_request_timeout() -> None:
    settings = kopf.OperatorSettings()
    assert settings.watching.chunk_size is None  # kopf's default: one request for the whole listing
    configure(settings)
    assert settings.watching.chunk_size == LISTING_PAGE
    assert settings.networking.request_timeout is not None
    assert settings.networking.request_timeout >= 60  # a page of 500 downloads, not the whole cluster, within it


def test_kopf_runs_a_worker_for_every_object_of_a_first_listing() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.queueing.worker_limit is None
