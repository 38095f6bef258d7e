"""Prometheus metrics of the operator (served on /metrics)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import get_args

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gallery_operator.api.status import GalleryDownloadStatus, Phase
from gallery_operator.status import TERMINAL_PHASES, seconds_between

PHASES: tuple[Phase, ...] = get_args(Phase)

QUEUE_WAIT = Histogram(
    "gallery_operator_queue_wait_seconds",
    "Time a download waited in phase Queued before its Job was created.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400),
)
RUN_DURATION = Histogram(
    "gallery_operator_run_duration_seconds",
    "Duration of finished runs, from Job creation to the end.",
    ["result"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 14400, 86400),
)
ITEMS = Counter("gallery_operator_items_total", "Items stored by finished runs.")
BYTES = Counter("gallery_operator_bytes_total", "Bytes stored by finished runs.")
RETRIES = Counter("gallery_operator_retries_total", "Worker pods started after the first one, by finished runs.")
ERRORS = Counter("gallery_operator_errors_total", "Failures reported, by stable reason.", ["reason"])
RECONCILE = Histogram(
    "gallery_operator_reconcile_duration_seconds",
    "Time of one reconcile of one download.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REPORTS_FORWARDED = Counter(
    "gallery_operator_reports_forwarded_total",
    "Worker reports a standby relayed to the leader, by the leader's HTTP answer.",
    ["answer"],
)
REPORTS_REFUSED = Counter(
    "gallery_operator_reports_refused_total",
    "Reports refused at the report endpoint, by why: unauthenticated, and before any TokenReview malformed-token,"
    " wrong-audience, expired, no-pod-claim, unexpected-pod (no current worker Job would have a pod of that name"
    " there), source-rate-limited (the client address or the claimed namespace spent its budget), rate-limited (the"
    " global budget); not-a-worker (the TokenReview or the pod's controller says no), too-large, invalid, other-run.",
    ["reason"],
)
RECONCILE_ERRORS = Counter("gallery_operator_reconcile_errors_total", "Reconciles that raised and were retried.")
STATUS_WRITES = Counter("gallery_operator_status_writes_total", "Status patches the operator sent.")
LEADER = Gauge("gallery_operator_leader", "1 while this replica holds the leader Lease (and so reconciles), else 0.")
LEADERSHIP_TRANSITIONS = Counter(
    "gallery_operator_leadership_transitions_total",
    "Times this replica became or stopped being the leader; summed over replicas, the leadership changes.",
)


def record_transition(status: GalleryDownloadStatus) -> None:
    """A download's phase changed to status.phase: count what a finished run did."""
    phase = status.phase
    if phase not in TERMINAL_PHASES:
        return
    duration = seconds_between(status.started_at, status.finished_at)
    if duration is not None:
        RUN_DURATION.labels(result=phase).observe(duration)
    ITEMS.inc(status.progress.items_done)
    RETRIES.inc(max(0, status.attempts - 1))
    BYTES.inc(status.progress.bytes_done)
    for failure in status.failures:
        ERRORS.labels(reason=failure.reason).inc()
    if phase == "Failed" and not status.failures:
        ERRORS.labels(reason=status.ready_reason).inc()


class PhaseCollector(Collector):
    """Downloads by phase, counted at scrape time from the operator's cache (no bookkeeping to drift)."""

    def __init__(self, phases: Callable[[], Iterable[str]]) -> None:
        self._phases = phases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = Tally(self._phases())
        family = GaugeMetricFamily(
            "gallery_operator_downloads",
            "GalleryDownloads known to the operator, by phase.",
            labels=["phase"],
        )
        for phase in PHASES:
            family.add_metric([phase], counts.get(phase, 0))
        yield family


def register_phase_collector(phases: Callable[[], Iterable[str]]) -> PhaseCollector:
    collector = PhaseCollector(phases)
    REGISTRY.register(collector)
    return collector


# -- GallerySubscription (subscriptions.py) ---------------------------------------------------------------------

SUBSCRIPTION_RUNS = Counter(
    "gallery_operator_subscription_runs_total",
    "Subscription runs and ticks by outcome: Succeeded, PartiallySucceeded, Failed, Replaced, Skipped (a run was"
    " active under Forbid), Missed (later than startingDeadlineSeconds).",
    ["outcome"],
)
SUBSCRIPTION_NEW_ITEMS = Histogram(
    "gallery_operator_subscription_new_items",
    "Items a finished subscription run added to its library.",
    buckets=(0, 1, 2, 5, 10, 25, 50, 100, 500, 1000, 10000),
)
SUBSCRIPTION_LAG = Histogram(
    "gallery_operator_subscription_schedule_lag_seconds",
    "From the moment a tick fell due (its time plus the subscription's spread) to its run being created.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
