"""Subscription schedule lag on the local control plane, against CronJobs on the same schedule in the same run.

uv run python -m bench.subscriptions lag [--count 1000]

`count` GallerySubscriptions (jitter 0s, so the lag is what comes beyond the spread) and `count` CronJobs, all on
the same minute. Lag: from the tick to the moment a watch in this process sees the run's GalleryDownload (the
subscriptions) or the CronJob's Job appear. The CronJobs' Jobs are suspended, and the control plane has no node:
no pod runs for either kind. Operator CPU and peak RSS are measured over the period (creation, tick, settling).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config

from bench.operator import _follow, make_namespace, metric, operator_for, settle, status_mb
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import apply_crd
from gallery_harness.procs import cpu_seconds, wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL

LEAD_SECONDS = 200
"""At least this long between the start of creation and the tick (creating 2,000 objects takes a while)."""


def next_minute(lead: float) -> float:
    """The start of the first whole minute at least ``lead`` seconds away (epoch seconds)."""
    return (int((time.time() + lead) // 60) + 1) * 60.0


def subscription(n: int, schedule: str) -> dict[str, Any]:
    template = {"urls": [f"http://127.0.0.1:9/img/{n}.jpg"], "target": {"pvc": {"claimName": "media"}}}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GallerySubscription",
        "metadata": {"name": f"sub-{n:05d}"},
        "spec": {"schedule": schedule, "jitter": "0s", "startingDeadlineSeconds": 600, "downloadTemplate": template},
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


def summary(name: str, lags: list[float]) -> str:
    ordered = sorted(lags)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name}: {len(lags)} runs, lag median {statistics.median(ordered):.2f} s, p99 {p99:.2f} s, "
        f"max {ordered[-1]:.2f} s"
    )


def lag(count: int) -> None:
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "subs")
        make_namespace(api, "cron")
        operator = operator_for(cluster, cluster.workdir)
        assert operator.process is not None
        pid = operator.process.pid
        custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
        seen: dict[str, dict[str, float]] = {"subs": {}, "cron": {}}
        stop = threading.Event()

        def recorder(kind: str) -> Any:
            def each(raw: dict[str, Any]) -> None:
                owners = raw.get("metadata", {}).get("ownerReferences") or []
                if owners and raw["metadata"]["name"] not in seen[kind]:
                    seen[kind][raw["metadata"]["name"]] = time.time()

            return each

        threads = [
            threading.Thread(
                target=_follow,
                args=(
                    custom.list_namespaced_custom_object,
                    (API_GROUP, API_VERSION, "subs", PLURAL),
                    recorder("subs"),
                    stop,
                ),
                daemon=True,
            ),
            threading.Thread(
                target=_follow, args=(batch.list_namespaced_job, ("cron",), recorder("cron"), stop), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            idle = status_mb(pid)
            cpu = cpu_seconds(pid)
            tick = next_minute(LEAD_SECONDS)
            schedule = f"{datetime.fromtimestamp(tick, UTC).minute} * * * *"
            started = time.time()
            for n in range(count):
                custom.create_namespaced_custom_object(
                    API_GROUP, API_VERSION, "subs", SUBSCRIPTION_PLURAL, subscription(n, schedule)
                )
                batch.create_namespaced_cron_job("cron", cronjob(n, schedule))
            created = time.time() - started
            if time.time() >= tick:
                raise SystemExit(f"creating took {created:.0f} s, past the tick: raise LEAD_SECONDS")
            wait_until(
                lambda: len(seen["subs"]) >= count and len(seen["cron"]) >= count,
                tick - time.time() + 600,
                f"{count} runs of each kind",
                interval=0.5,
            )
            # The lags first: a scrape that times out on a loaded machine must not lose the run's figures.
            print(f"{count} subscriptions and {count} CronJobs on '{schedule}' (created in {created:.1f} s)")
            print(summary("GallerySubscription -> GalleryDownload", [t - tick for t in seen["subs"].values()]))
            print(summary("CronJob -> Job (kube-controller-manager)", [t - tick for t in seen["cron"].values()]))
            used = settle(pid) - cpu
            peak = status_mb(pid, "VmHWM")
            print(f"operator CPU over the period: {used:.1f} s; RSS idle {idle:.1f} MB, peak {peak:.1f} MB", flush=True)
            operated = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_sum")
            observed = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_count")
            print(f"operator's own lag histogram: {observed:.0f} runs, mean {operated / max(observed, 1):.2f} s")
        finally:
            stop.set()
            operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["lag"])
    parser.add_argument("--count", type=int, default=1000)
    options = parser.parse_args()
    lag(options.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
