"""Subscription schedule lag on the local control plane, against CronJobs on the same schedule in the same run.

uv run python -m bench.subscriptions lag [--count 1000] [--jitter 0s|default|<duration>] [--workers 16] [--log PATH]

`count` GallerySubscriptions and `count` CronJobs, all on the same minute. A subscription's tick falls due at the
tick plus its own spread (a stable offset below `jitter`, from its uid: schedule.spread); its lag is measured from
that moment, so it is what comes beyond the configured spread (with `--jitter 0s`, the default here, every offset
is 0 and all the runs fall due in the same second, as the CronJobs' Jobs do; `--jitter default` leaves the field out:
for an hourly schedule, offsets up to five minutes). Each lag is measured twice: to the
child's `creationTimestamp` (the API server's clock, whole seconds, rounded down: "created") and to the moment a
watch in this process sees the child ("seen"). Children: the run's GalleryDownload, the CronJob's Job (suspended;
the control plane has no node: no pod runs for either kind). Operator CPU and peak RSS over the period (creation,
tick, settling); the operator's own log line per run splits its lag into steps (timer fired, reconcile taken up,
creation call sent, created).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.operator import _follow, make_namespace, metric, operator_for, settle, status_mb
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import cpu_seconds, wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL
from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.schedule import Schedule, parse_time

LEAD_SECONDS = 200
"""At least this long between the start of creation and the tick (creating 2,000 objects takes a while)."""
STEP = re.compile(r"(timer|reconcile|call|created) \+(-?[0-9.]+)s")


def next_minute(lead: float) -> float:
    """The start of the first whole minute at least ``lead`` seconds away (epoch seconds)."""
    return (int((time.time() + lead) // 60) + 1) * 60.0


def subscription(n: int, schedule: str, jitter: str) -> dict[str, Any]:
    template = {"urls": [f"http://127.0.0.1:9/img/{n}.jpg"], "target": {"pvc": {"claimName": "media"}}}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GallerySubscription",
        "metadata": {"name": f"sub-{n:05d}"},
        "spec": {"schedule": schedule, "startingDeadlineSeconds": 600, "downloadTemplate": template}
        | ({} if jitter == "default" else {"jitter": jitter}),
    }


def cronjob(n: int, schedule: str) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "command": ["true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": f"cron-{n:05d}"},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "startingDeadlineSeconds": 600,
            "jobTemplate": {
                "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}
            },
        },
    }


def percentiles(values: Iterable[float]) -> tuple[float, float, float]:
    """Median, p99 (nearest rank) and maximum."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


def summary(name: str, lags: list[float]) -> str:
    median, p99, most = percentiles(lags)
    return f"{name}: {len(lags)} runs, lag median {median:.2f} s, p99 {p99:.2f} s, max {most:.2f} s"


@dataclass
class Children:
    """The children a watch saw, by name: when it saw them, their creation time and their owner's name."""

    seen: dict[str, float] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)

    def record(self, raw: dict[str, Any]) -> None:
        meta = raw.get("metadata", {})
        owners = meta.get("ownerReferences") or []
        if owners and meta["name"] not in self.seen:
            self.seen[meta["name"]] = time.time()
            self.created[meta["name"]] = parse_time(meta["creationTimestamp"]).timestamp()
            self.owner[meta["name"]] = owners[0]["name"]

    def report(self, name: str, due: dict[str, float], tick: float) -> None:
        """Lags from each owner's due time (the tick plus its spread; the tick for an owner not in ``due``)."""
        start = {child: due.get(owner, tick) for child, owner in self.owner.items()}
        print(summary(f"{name}, created", [self.created[c] - start[c] for c in self.seen]))
        print(summary(f"{name}, seen", [self.seen[c] - start[c] for c in self.seen]), flush=True)


def steps(log: Path) -> None:
    """The operator's own account of each run's lag (its log line per run), step by step: median / p99 / max."""
    found: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        if "created; after its due time" in line:
            for step, seconds in STEP.findall(line):
                found.setdefault(step, []).append(float(seconds))
    for step in ("timer", "reconcile", "call", "created"):
        if step in found:
            median, p99, most = percentiles(found[step])
            print(f"  operator log, {step:9}: median {median:.2f} s, p99 {p99:.2f} s, max {most:.2f} s")


def create_all(api: client.ApiClient, count: int, schedule: str, jitter: str) -> dict[str, float]:
    """The subscriptions and CronJobs, interleaved; each subscription's spread offset (seconds) by name."""
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    offsets = {}
    for n in range(count):
        body = subscription(n, schedule, jitter)
        made = custom.create_namespaced_custom_object(API_GROUP, API_VERSION, "subs", SUBSCRIPTION_PLURAL, body)
        meta = made["metadata"]
        # The operator's own arithmetic: the spread this subscription's uid gets under its jitter (or the default).
        due = Schedule.of(parse_subscription_spec(body["spec"]), meta["uid"], parse_time(meta["creationTimestamp"]))
        offsets[meta["name"]] = due.spread.total_seconds()
        batch.create_namespaced_cron_job("cron", cronjob(n, schedule))
    return offsets


def follow(api: client.ApiClient, subs: Children, jobs: Children, stop: threading.Event) -> None:
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    watches = [
        (custom.list_namespaced_custom_object, (API_GROUP, API_VERSION, "subs", PLURAL), subs.record),
        (batch.list_namespaced_job, ("cron",), jobs.record),
    ]
    for stream, arguments, each in watches:
        threading.Thread(target=_follow, args=(stream, arguments, each, stop), daemon=True).start()


def measure(api: client.ApiClient, operator: OperatorProcess, count: int, jitter: str, lead: float) -> None:
    assert operator.process is not None
    pid = operator.process.pid
    subs, jobs, stop = Children(), Children(), threading.Event()
    follow(api, subs, jobs, stop)
    try:
        idle, cpu = status_mb(pid), cpu_seconds(pid)
        tick = next_minute(lead)
        schedule = f"{datetime.fromtimestamp(tick, UTC).minute} * * * *"
        started = time.time()
        offsets = create_all(api, count, schedule, jitter)
        created = time.time() - started
        if time.time() >= tick:
            raise SystemExit(f"creating took {created:.0f} s, past the tick: raise --lead")
        last = tick + max(offsets.values())
        done = lambda: len(subs.seen) >= count and len(jobs.seen) >= count  # noqa: E731
        wait_until(done, last - time.time() + 600, f"{count} runs of each kind", interval=0.5)
        # The lags first: a scrape that times out on a loaded machine must not lose the run's figures.
        print(f"{count} subscriptions and {count} CronJobs on '{schedule}' (created in {created:.1f} s)")
        print(f"spread: jitter {jitter}, offsets {min(offsets.values()):.0f} to {max(offsets.values()):.0f} s")
        subs.report("GallerySubscription -> GalleryDownload", {k: tick + v for k, v in offsets.items()}, tick)
        jobs.report("CronJob -> Job (kube-controller-manager)", {}, tick)
        steps(operator.log)
        used = settle(pid) - cpu
        peak = status_mb(pid, "VmHWM")
        print(f"operator CPU over the period: {used:.1f} s; RSS idle {idle:.1f} MB, peak {peak:.1f} MB", flush=True)
        operated = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_sum")
        observed = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_count")
        print(f"operator's own lag histogram: {observed:.0f} runs, mean {operated / max(observed, 1):.2f} s")
    finally:
        stop.set()


def lag(count: int, jitter: str, keep_log: Path | None, lead: float, workers: int) -> None:
    print(f"load at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; subscription workers {workers}", flush=True)
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "subs")
        make_namespace(api, "cron")
        operator = operator_for(cluster, cluster.workdir, subscription_concurrency=str(workers))
        try:
            measure(api, operator, count, jitter, lead)
        finally:
            operator.stop()
            if keep_log is not None:
                shutil.copyfile(operator.log, keep_log)
    print(f"load at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["lag"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--jitter",
        default="0s",
        help="every subscription's `jitter` (its spread's bound); `default`: the field left out",
    )
    parser.add_argument("--lead", type=float, default=LEAD_SECONDS, help="seconds from creation to the tick (at least)")
    parser.add_argument("--workers", type=int, default=16, help="the operator's SUBSCRIPTION_CONCURRENCY")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    options = parser.parse_args()
    lag(options.count, options.jitter, options.log, options.lead, options.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
