"""Subscription schedule lag on the local control plane, against CronJobs on the same schedule in the same run.

uv run python -m bench.subscriptions lag [--count 1000] [--jitter 0s|default|<duration>] [--workers 16] [--log PATH]
    [--profile PATH]
uv run python -m bench.subscriptions creates [--count 1000] [--rounds 2]   # runs created alone, no operator

`count` GallerySubscriptions and `count` CronJobs, all on the same minute. A subscription's tick falls due at the
tick plus its own spread (a stable offset below `jitter`, from its uid: schedule.spread); its lag is measured from
that moment, so it is what comes beyond the configured spread (with `--jitter 0s`, the default here, every offset
is 0 and all the runs fall due in the same second, as the CronJobs' Jobs do; `--jitter default` leaves the field out:
for an hourly schedule, offsets up to five minutes). Each lag is measured twice: to the
child's `creationTimestamp` (the API server's clock, whole seconds, rounded down: "created") and to the moment a
watch in this process sees the child ("seen"). Children: the run's GalleryDownload, the CronJob's Job (suspended;
the control plane has no node: no pod runs for either kind). Operator CPU and peak RSS over the period (creation,
tick, settling); the operator's own log line per run splits its lag into steps (timer fired, reconcile taken up,
creation call sent, created). From one second before the tick to the last run seen: each process's CPU (operator,
API server, etcd, controller-manager, this benchmark's watches) and the API server's requests by verb, resource and
answer; `--profile` adds py-spy's profile of the operator over that window (py-spy installed with
`uv tool install py-spy`, in ~/.local/bin).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.config import kube_config

from bench.operator import _follow, make_namespace, metric, operator_for, settle, status_mb
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import CRD_FILE, OperatorProcess, apply_crd
from gallery_harness.procs import cpu_seconds, wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL, kube
from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.schedule import Schedule, parse_time
from gallery_operator.subscription_plan import SubscriptionSnapshot, build_run

LEAD_SECONDS = 200
"""At least this long between the start of creation and the tick (creating 2,000 objects takes a while)."""
STEP = re.compile(r"(timer|reconcile|call|created) \+(-?[0-9.]+)s")
REQUEST = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
LABEL = re.compile(r'(\w+)="([^"]*)"')
PROFILER = Path.home() / ".local" / "bin" / "py-spy"


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


def api_requests(api: client.ApiClient) -> Counter[str]:
    """The API server's request counter (apiserver_request_total) by verb, resource and answer."""
    headers = {**api.default_headers, "Accept": "text/plain"}
    api.update_params_for_auth(headers, None, ["BearerToken"], "/metrics", "GET", None)
    text = api.rest_client.request("GET", api.configuration.host + "/metrics", headers=headers).read().decode()
    counts: Counter[str] = Counter()
    for labels, value in REQUEST.findall(text):
        label = dict(LABEL.findall(labels))
        if label.get("verb") in ("WATCH", "LIST", "GET") and label.get("resource") in ("leases", ""):
            continue
        resource = label.get("resource", "") + (f"/{label['subresource']}" if label.get("subresource") else "")
        counts[f"{label.get('verb')} {resource} {label.get('code')}"] += int(float(value))
    return counts


@dataclass
class Window:
    """What each process spent, and what the API server was asked, from just before the tick until the last run
    is seen: where a zero-spread tick's time goes."""

    pids: dict[str, int]
    api: client.ApiClient
    cpu: dict[str, float] = field(default_factory=dict)
    profile: Path | None = None
    """Where py-spy writes the operator's profile of the window (none: not profiled)."""
    requests: Counter[str] = field(default_factory=Counter)
    opened: float = 0.0

    def open(self) -> None:
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.requests, self.opened = api_requests(self.api), time.time()

    def close(self, runs: int) -> None:
        wall = time.time() - self.opened
        spent = {name: cpu_seconds(pid) - self.cpu[name] for name, pid in self.pids.items()}
        print(f"from 1 s before the tick to the last run seen ({wall:.1f} s), CPU seconds (ms per run):")
        for name, seconds in spent.items():
            print(f"  {name:18} {seconds:6.2f} s ({seconds / runs * 1000:5.1f} ms)")
        asked = api_requests(self.api) - self.requests
        print("API server requests in that time (verb resource answer: count, per run):")
        for key, count in sorted(asked.items(), key=lambda item: -item[1]):
            print(f"  {key:55} {count:6d} ({count / runs:.2f})")


def profile(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the operator's thread holding the GIL (its Python CPU; without pausing it), collapsed stacks
    written to `output` on SIGINT."""
    argv = [
        str(PROFILER),
        "record",
        "--nonblocking",
        "--gil",
        "-r",
        "50",
        "-f",
        "raw",
        "-o",
        str(output),
        "-p",
        str(pid),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hottest(collapsed: Path, top: int = 30) -> None:
    """The functions in most of the profile's samples (inclusive), from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        total += int(samples)
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    for name, counts in (("inclusive", inclusive), ("own", own)):
        print(f"operator profile: {total} samples holding the GIL; hottest functions ({name}):")
        for frame, count in counts.most_common(top):
            print(f"  {count / max(total, 1):6.1%} {frame[:150]}")


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


def measure(
    api: client.ApiClient, operator: OperatorProcess, count: int, jitter: str, lead: float, window: Window
) -> None:
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
        time.sleep(max(0.0, tick - 1 - time.time()))
        window.open()
        profiler = profile(pid, window.profile) if window.profile else None
        wait_until(lambda: len(subs.seen) >= count, last - time.time() + 600, f"{count} runs", interval=0.2)
        window.close(count)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        done = lambda: len(subs.seen) >= count and len(jobs.seen) >= count  # noqa: E731
        wait_until(done, last - time.time() + 600, f"{count} runs of each kind", interval=0.5)
        # The lags first: a scrape that times out on a loaded machine must not lose the run's figures.
        print(f"{count} subscriptions and {count} CronJobs on '{schedule}' (created in {created:.1f} s)")
        print(f"spread: jitter {jitter}, offsets {min(offsets.values()):.0f} to {max(offsets.values()):.0f} s")
        subs.report("GallerySubscription -> GalleryDownload", {k: tick + v for k, v in offsets.items()}, tick)
        jobs.report("CronJob -> Job (kube-controller-manager)", {}, tick)
        steps(operator.log)
        if window.profile:
            hottest(window.profile)
        used = settle(pid) - cpu
        peak = status_mb(pid, "VmHWM")
        print(f"operator CPU over the period: {used:.1f} s; RSS idle {idle:.1f} MB, peak {peak:.1f} MB", flush=True)
        operated = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_sum")
        observed = metric(operator, "gallery_operator_subscription_schedule_lag_seconds_count")
        print(f"operator's own lag histogram: {observed:.0f} runs, mean {operated / max(observed, 1):.2f} s")
    finally:
        stop.set()


def without_rules(value: Any) -> Any:
    """A CRD's schema with every CEL rule (x-kubernetes-validations) left out."""
    if isinstance(value, dict):
        return {k: without_rules(v) for k, v in value.items() if k != "x-kubernetes-validations"}
    if isinstance(value, list):
        return [without_rules(v) for v in value]
    return value


def serve_crd(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    """Replace the GalleryDownload CRD with `manifest` and wait until the API server serves it."""
    crds = client.ApiextensionsV1Api(api)
    name = manifest["metadata"]["name"]
    manifest["metadata"]["resourceVersion"] = crds.read_custom_resource_definition(name).metadata.resource_version
    crds.replace_custom_resource_definition(name, manifest)
    time.sleep(5)  # the API server rebuilds the resource's handler (its schema and rules) on the change


def create_runs(
    api: client.ApiClient, pids: dict[str, int], owner: dict[str, Any], label: str, count: int, in_flight: int
) -> None:
    """`count` runs of `owner` created through the operator's own call (kube.create_download), `in_flight` at once:
    wall time, rate and each process's CPU per creation."""
    snapshot = SubscriptionSnapshot.of(owner)
    spec = parse_subscription_spec(owner["spec"])
    bodies = []
    for n in range(count):
        body = build_run(snapshot, spec, f"{label}-{in_flight}-{n:05d}", "2026-12-06T20:00:00Z", "Schedule")
        bodies.append(body)
    cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client_cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(in_flight) as threads:
        assert all(threads.map(kube.create_download, bodies))
    wall = time.perf_counter() - started
    spent = {name: (cpu_seconds(pid) - cpu[name]) / count * 1000 for name, pid in pids.items()}
    spent["client (this process)"] = (time.process_time() - client_cpu) / count * 1000
    costs = ", ".join(f"{name} {ms:.1f}" for name, ms in spent.items())
    print(f"{label:14} {in_flight:3} in flight: {count / wall:6.1f} a second ({wall:.2f} s); ms CPU each: {costs}")


def creates(count: int, rounds: int) -> None:
    """Runs created alone, with no operator: the API server's own rate at 1, 16 and 64 in flight, with the CRD as
    shipped and without its CEL rules, alternating round by round."""
    print(f"load at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "subs")
        # kube.py's client, as the operator outside a pod (the package read $KUBECONFIG when it was imported)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cluster.kubeconfig)
        custom = client.CustomObjectsApi(api)
        owner = custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, "subs", SUBSCRIPTION_PLURAL, subscription(0, "0 * * * *", "0s")
        )
        shipped = yaml.safe_load((CRD_FILE.parent / f"{PLURAL}.{API_GROUP}.yaml").read_text())
        pids = {name: cluster.processes[name].pid for name in ("apiserver", "etcd", "controller-manager")}
        create_runs(api, pids, owner, "warm-up", 100, 16)
        for round_ in range(rounds):
            for label, manifest in (("shipped CRD", shipped), ("no CEL rules", without_rules(shipped))):
                serve_crd(api, json.loads(json.dumps(manifest)))
                for in_flight in (1, 16, 64):
                    create_runs(api, pids, owner, f"{label[:2]}{round_}", count, in_flight)
    print(f"load at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def lag(count: int, jitter: str, keep_log: Path | None, lead: float, workers: int, profiled: Path | None) -> None:
    print(f"load at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; subscription workers {workers}", flush=True)
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "subs")
        make_namespace(api, "cron")
        operator = operator_for(cluster, cluster.workdir, subscription_concurrency=str(workers))
        try:
            assert operator.process is not None
            pids = {name: cluster.processes[name].pid for name in ("apiserver", "etcd", "controller-manager")}
            window = Window({"operator": operator.process.pid, **pids, "benchmark (watches)": os.getpid()}, api)
            window.profile = profiled
            measure(api, operator, count, jitter, lead, window)
        finally:
            operator.stop()
            if keep_log is not None:
                shutil.copyfile(operator.log, keep_log)
    print(f"load at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["lag", "creates"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--jitter",
        default="0s",
        help="every subscription's `jitter` (its spread's bound); `default`: the field left out",
    )
    parser.add_argument("--lead", type=float, default=LEAD_SECONDS, help="seconds from creation to the tick (at least)")
    parser.add_argument("--workers", type=int, default=16, help="the operator's SUBSCRIPTION_CONCURRENCY")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    parser.add_argument("--profile", type=Path, help="py-spy's collapsed stacks of the operator over the tick here")
    parser.add_argument("--rounds", type=int, default=2, help="creates: rounds of each CRD variant")
    options = parser.parse_args()
    if options.benchmark == "creates":
        creates(options.count, options.rounds)
        return 0
    lag(options.count, options.jitter, options.log, options.lead, options.workers, options.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
