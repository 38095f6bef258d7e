"""Load: N downloads applied at once to a running operator with a global cap, run by the real worker on the node
agent (one process per worker pod) against the fixture site.

uv run python -m bench.reliability_load [--count 1000] [--cap 20] [--namespaces 1]

Checks, printed with the figures (docs/reliability.md): every download Succeeded; at no sampled moment (every
0.2 s, from watches) more than ``cap`` worker Jobs active; the start order follows priority (a Job started while a
download of higher priority, already created, still waited is a priority inversion; reported with how far the
order strays from the queue order).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config

from bench.operator import _follow, make_namespace, spec_for
from bench.reliability_common import patient_operator
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import apply_crd
from gallery_harness.procs import wait_until
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from gallery_operator.snapshots import JobView

SAMPLE_SECONDS = 0.2


@dataclass
class JobSampler:
    """Every worker Job the watches show, and, every SAMPLE_SECONDS, how many are active: unfinished as the
    operator reads a Job (JobView), and with a pod running (status.active)."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def job(self, raw: dict[str, Any]) -> None:
        labels = raw["metadata"].get("labels") or {}
        name = labels.get(f"{API_GROUP}/download")
        if not name:
            return
        key = f"{raw['metadata']['namespace']}/{name}"
        with self.lock:
            self.started.setdefault(key, time.perf_counter())
            self.jobs[raw["metadata"]["uid"]] = raw

    def sample_forever(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            with self.lock:
                bodies = list(self.jobs.values())
            unfinished = sum(1 for body in bodies if not JobView.of(body).finished)
            running = sum(1 for body in bodies if int((body.get("status") or {}).get("active") or 0) > 0)
            self.samples.append((time.perf_counter(), unfinished, running))


def follow_jobs(api: client.ApiClient, namespaces: list[str], sampler: JobSampler) -> list[threading.Thread]:
    batch = client.BatchV1Api(api)
    threads = [
        threading.Thread(
            target=_follow, args=(batch.list_namespaced_job, (ns,), sampler.job, sampler.stop), daemon=True
        )
        for ns in namespaces
    ]
    threads.append(threading.Thread(target=sampler.sample_forever, daemon=True))
    for thread in threads:
        thread.start()
    return threads


def phases(api: client.ApiClient, namespaces: list[str]) -> dict[str, str]:
    custom = client.CustomObjectsApi(api)
    found = {}
    for ns in namespaces:
        listing = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, ns, PLURAL, _preload_content=False)
        for item in listing.json()["items"]:
            found[f"{ns}/{item['metadata']['name']}"] = (item.get("status") or {}).get("phase", "")
    return found


def apply_all(api: client.ApiClient, plan: list[tuple[str, str, int, int]], site: str) -> dict[str, float]:
    """Create every download of ``plan`` (namespace, name, priority, image) from 8 threads at once; when each was
    created."""
    custom = client.CustomObjectsApi(api)
    created: dict[str, float] = {}

    def create(entry: tuple[str, str, int, int]) -> None:
        namespace, name, priority, image = entry
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload", "metadata": {"name": name}}
        body["spec"] = {**spec_for(image, site), "priority": priority}
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)
        created[f"{namespace}/{name}"] = time.perf_counter()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, plan))
    return created


def inversions(
    priority: dict[str, int], created: dict[str, float], started: dict[str, float], after: float = 0.0
) -> int:
    """Job starts (after ``after``) that came while a download of strictly higher priority, created earlier, had not
    started. While downloads are still being created a slot granted just before a higher one arrived shows its Job
    only after that arrival, so only starts after the last create are a clean test of the order."""
    order = sorted(started, key=started.__getitem__)
    count = 0
    for key in order:
        at = started[key]
        if at < after:
            continue
        if any(
            priority[other] > priority[key] and created[other] < at and started.get(other, float("inf")) > at
            for other in priority
        ):
            count += 1
    return count


def displacement(priority: dict[str, int], created: dict[str, float], started: dict[str, float]) -> list[int]:
    """How far each download's start strays from the queue order (priority, then creation)."""
    queue = sorted(priority, key=lambda k: (-priority[k], created[k]))
    place = {k: i for i, k in enumerate(sorted(started, key=started.__getitem__))}
    return [abs(place[k] - i) for i, k in enumerate(queue) if k in place]


def run(count: int, cap: int, spaces: int) -> int:
    rng = random.Random(count)
    namespaces = [f"load-{n}" for n in range(spaces)]
    plan = [(namespaces[n % spaces], f"gd-{n:05d}", rng.randint(-2, 2), n + 1) for n in range(count)]
    priority = {f"{ns}/{name}": p for ns, name, p, _ in plan}
    with LocalCluster.create() as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        for ns in namespaces:
            make_namespace(api, ns)
        sampler = JobSampler()
        follow_jobs(api, namespaces, sampler)
        operator = patient_operator(
            cluster, max_active=str(cap), max_active_per_namespace=str(cap), job_ttl_seconds="3600"
        )
        try:
            started = time.perf_counter()
            created = apply_all(api, plan, site)
            applied = time.perf_counter() - started
            ended = lambda: sum(p in {"Succeeded", "Failed"} for p in phases(api, namespaces).values())  # noqa: E731
            wait_until(lambda: ended() >= count, 4 * 3600, f"{count} downloads to end", interval=5)
            drained = time.perf_counter() - started
            final = phases(api, namespaces)
        finally:
            sampler.stop.set()
            operator.stop()
    return report(count, cap, applied, drained, final, sampler, priority, created)


def report(
    count: int,
    cap: int,
    applied: float,
    drained: float,
    final: dict[str, str],
    sampler: JobSampler,
    priority: dict[str, int],
    created: dict[str, float],
) -> int:
    succeeded = sum(p == "Succeeded" for p in final.values())
    most_unfinished = max(s[1] for s in sampler.samples)
    most_running = max(s[2] for s in sampler.samples)
    stray = displacement(priority, created, sampler.started)
    inverted = inversions(priority, created, sampler.started)
    inverted_later = inversions(priority, created, sampler.started, after=max(created.values()))
    later = sum(1 for at in sampler.started.values() if at >= max(created.values()))
    print(
        f"{count} downloads applied at once in {applied:.1f} s (8 threads), cap {cap}, until all ended: {drained:.0f} s"
    )
    print(f"Succeeded: {succeeded} of {count} (others: {sorted({p for p in final.values()} - {'Succeeded'})})")
    print(f"samples every {SAMPLE_SECONDS} s: {len(sampler.samples)}; most Jobs unfinished at once: {most_unfinished}")
    print(f"most Jobs with a pod running at once: {most_running} (cap {cap})")
    print(f"Jobs seen: {len(sampler.started)} for {count} downloads")
    print(
        f"start order vs queue order (priority, then creation): median displacement {statistics.median(stray):.0f}, "
        f"max {max(stray)}; priority inversions (a start while an older download of higher priority waited): "
        f"{inverted} of {len(sampler.started)}; of the {later} starts after the last create: {inverted_later}"
    )
    ok = (
        inverted_later == 0
        and succeeded == count
        and most_unfinished <= cap
        and most_running <= cap
        and len(sampler.started) == count
    )
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=20)
    parser.add_argument("--namespaces", type=int, default=1)
    options = parser.parse_args()
    return run(options.count, options.cap, options.namespaces)


if __name__ == "__main__":
    sys.exit(main())
