"""Operator benchmarks on the local control plane, each against a baseline measured in the same run.

uv run python -m bench.operator throughput [--count 500]   # GalleryDownloads -> Jobs vs the same writes by a loop
uv run python -m bench.operator scale [--count 10000]      # every download gets a status vs creates + one write
uv run python -m bench.operator scale --no-floor           # the same without the floor: RSS and CPU figures only
uv run python -m bench.operator drain [--count 1000]       # N downloads run to Succeeded, cap 20, in queue order
uv run python -m bench.operator memory [--count 2000]      # operator RSS with N downloads vs with none
uv run python -m bench.operator latency [--count 20]       # Job Complete -> Ready=True vs pod -> Job Complete
uv run python -m bench.operator apicost [--count 500]      # API server CPU per kind of write the operator causes
BENCH_OPERATOR_TREE=<worktree> ... runs that worktree's operator (another revision) under this benchmark
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ProtocolError

from gallery_harness.controlplane import LocalCluster
from gallery_harness.kube import create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import cpu_seconds, wait_until
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from gallery_operator.api.spec import parse_spec
from gallery_operator.config import Settings
from gallery_operator.download import Download
from gallery_operator.jobs import LABEL_MANAGED_BY, build_job
from gallery_operator.status import Observation, stored_status


def spec_for(n: int, site: str = "http://127.0.0.1:9") -> dict[str, Any]:
    return {"urls": [f"{site}/img/{n}.jpg"], "target": {"pvc": {"claimName": "media"}}}


def make_namespace(api: client.ApiClient, name: str) -> None:
    create_namespace(api, name)
    create_claim(api, name)


def create_downloads(api: client.ApiClient, namespace: str, count: int, site: str = "http://127.0.0.1:9") -> None:
    custom = client.CustomObjectsApi(api)
    for n in range(count):
        custom.create_namespaced_custom_object(
            API_GROUP,
            API_VERSION,
            namespace,
            PLURAL,
            {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": "GalleryDownload",
                "metadata": {"name": f"gd-{n:05d}"},
                "spec": spec_for(n, site),
            },
        )


def count_jobs(api: client.ApiClient, namespace: str) -> int:
    return len(client.BatchV1Api(api).list_namespaced_job(namespace, _preload_content=False).json()["items"])


def operator_for(cluster: LocalCluster, workdir: Path, **settings: str) -> OperatorProcess:
    values = {f"GALLERY_OPERATOR_{k.upper()}": v for k, v in settings.items()}
    launcher: tuple[str, ...] = ()
    if tree := os.environ.get("BENCH_OPERATOR_TREE"):
        # Another revision's operator (a git worktree of it), this environment's libraries: the no-regression runs.
        # Settings it does not know are taken away (an older Settings refuses unknown GALLERY_OPERATOR_* names).
        values["PYTHONPATH"] = str(Path(tree) / "operator")
        unknown = os.environ.get("BENCH_OPERATOR_UNSET", "").split()
        launcher = ("env", *(f"--unset={name}" for name in unknown))
    process = OperatorProcess(cluster.kubeconfig, workdir / "operator.log", values, launcher=launcher)
    process.start()
    return process


def throughput(count: int) -> None:
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "baseline")
        make_namespace(api, "operated")
        # Baseline: a plain client loop creating the Jobs the operator would create.
        settings = Settings()
        jobs = []
        for n in range(count):
            item = Download("baseline", f"gd-{n:05d}", f"uid-{n}", 1, "", parse_spec(spec_for(n)))
            job = build_job(item, settings)
            job["metadata"].pop("ownerReferences")
            # Not the operator's: without its label the operator ignores these (they would count against its caps).
            job["metadata"]["labels"].pop(LABEL_MANAGED_BY)
            jobs.append(job)
        batch = client.BatchV1Api(api)
        pids = {name: process.pid for name, process in cluster.processes.items()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        for job in jobs:
            batch.create_namespaced_job("baseline", job)
        baseline = time.perf_counter() - started
        baseline_used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}

        operator = operator_for(
            cluster, cluster.workdir, max_active=str(count * 2), max_active_per_namespace=str(count * 2)
        )
        try:
            # The burst hits a running operator, as a GitOps sync would: one download first, until its Job exists.
            # (kopf treats objects arriving before its first listings are done as part of its initial indexing.)
            make_namespace(api, "warmup")
            create_downloads(api, "warmup", 1)
            wait_until(lambda: count_jobs(api, "warmup") >= 1, 60, "the warm-up Job", interval=0.1)
            assert operator.process is not None
            pids["operator"] = operator.process.pid
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            started = time.perf_counter()
            create_downloads(api, "operated", count)
            applied = time.perf_counter() - started
            wait_until(lambda: count_jobs(api, "operated") >= count, 600, f"{count} Jobs", interval=0.1)
            operated = time.perf_counter() - started
            used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            settled = settle(pids["operator"]) - before["operator"]
        finally:
            operator.stop()
        # The floor: a plain loop making every write one download needs (the download, its Job, one status, one
        # Event). Measured with the operator stopped: it would take the floor's downloads for its own.
        del pids["operator"]
        make_namespace(api, "floor")
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        writes_per_download(api, "floor", count)
        floor = time.perf_counter() - started
        floor_used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    print(f"plain loop creating {count} Jobs:                       {baseline:7.2f} s")
    print("CPU seconds during that time: " + ", ".join(f"{name} {sec:.2f}" for name, sec in baseline_used.items()))
    print(f"floor: a loop making each download's writes (download, Job, status, Event): {floor:7.2f} s")
    print("CPU seconds during that time: " + ", ".join(f"{name} {sec:.2f}" for name, sec in floor_used.items()))
    print(f"{count} GalleryDownloads applied ({applied:.2f} s) until all Jobs exist: {operated:7.2f} s")
    print("CPU seconds during that time: " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in used.items()))
    print(
        f"operator CPU per download: {settled / count * 1000:.1f} ms until it was idle again (target <= 4; "
        f"{used['operator'] / count * 1000:.1f} ms until the last Job existed)"
    )
    print(f"ratio to the plain Job loop: {operated / baseline:.2f}")
    print(f"ratio to the floor (target <= 1.3): {operated / floor:.2f}")


def first_status() -> dict[str, Any]:
    """The status the operator writes first for a queued download (the floor's one status write)."""
    return stored_status({}, Observation(generation=1, now="2026-11-22T07:00:00Z", queue_position=1))


def writes_per_download(api: client.ApiClient, namespace: str, count: int, job: bool = True) -> None:
    """What the API server must accept for `count` downloads at the least: create each, (its Job,) one status
    write, (one Event)."""
    custom, batch, core = client.CustomObjectsApi(api), client.BatchV1Api(api), client.CoreV1Api(api)
    settings = Settings()
    for n in range(count):
        name = f"gd-{n:05d}"
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload"}
        created = custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, body | {"metadata": {"name": name}, "spec": spec_for(n)}
        )
        if job:
            item = Download(namespace, name, created["metadata"]["uid"], 1, "", parse_spec(spec_for(n)))
            manifest = build_job(item, settings)
            manifest["metadata"]["labels"].pop(LABEL_MANAGED_BY)  # not the operator's to count
            batch.create_namespaced_job(namespace, manifest)
        patch = {"status": first_status()}
        custom.patch_namespaced_custom_object_status(API_GROUP, API_VERSION, namespace, PLURAL, name, patch)
        if job:
            core.create_namespaced_event(namespace, event_for(namespace, name))


def event_for(namespace: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"generateName": f"{name}."},
        "involvedObject": {"kind": "GalleryDownload", "name": name, "namespace": namespace},
        "type": "Normal",
        "reason": "Pending",
        "message": "New -> Pending: starting",
        "source": {"component": "gallery-operator"},
    }


def settle(pid: int, quiet: float = 0.02, timeout: float = 120) -> float:
    """The process's CPU seconds once it has gone quiet (under `quiet` CPU seconds in two seconds): the work an
    event burst causes includes what follows the last visible result (watch echoes, Job updates)."""
    deadline = time.monotonic() + timeout
    used = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(2)
        now = cpu_seconds(pid)
        if now - used < quiet:
            return now
        used = now
    return used


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status in MB (VmRSS: resident now, VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def memory(count: int) -> None:
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "many")
        operator = operator_for(cluster, cluster.workdir)
        try:
            time.sleep(5)
            assert operator.process is not None
            idle = status_mb(operator.process.pid)
            with Tracker(api, "many") as tracker:
                create_downloads(api, "many", count)
                wait_until(lambda: len(tracker.first_status) >= count, 900, f"{count} statuses", interval=1)
            time.sleep(5)
            loaded = status_mb(operator.process.pid)
            peak = status_mb(operator.process.pid, "VmHWM")
        finally:
            operator.stop()
    print(f"operator RSS idle (0 downloads):       {idle:7.1f} MB")
    print(f"operator RSS with {count} downloads:  {loaded:7.1f} MB (peak {peak:.1f} MB; target <= 250)")
    print(f"ratio to idle: {loaded / idle:.2f}")


def _follow(
    stream: Callable[..., Any],
    arguments: tuple[str, ...],
    each: Callable[[dict[str, Any]], None],
    stop: threading.Event,
) -> None:
    """Every object a watch shows, until `stop`: state is read from watches, not by listing every object again and
    again (a list of ten thousand objects a second is itself a load on the API server)."""
    version = ""
    while not stop.is_set():
        watcher = watch.Watch()
        try:
            for event in watcher.stream(stream, *arguments, resource_version=version, timeout_seconds=120):
                version = event["raw_object"].get("metadata", {}).get("resourceVersion", version)
                if event["type"] != "ERROR":
                    each(event["raw_object"])
                if stop.is_set():
                    watcher.stop()
        except ApiException as error:
            if error.status != 410:
                raise
            version = ""  # expired: start again from a fresh listing (each() sees those objects again)
        except ProtocolError:
            if not stop.is_set():
                raise  # the API server went away before the benchmark was done; at the end, it is the teardown


def _watch(
    stream: Callable[..., Any],
    arguments: tuple[str, ...],
    seen: Callable[[dict[str, Any]], str | None],
    times: dict[str, float],
    stop: threading.Event,
) -> None:
    """When each object first matched `seen` (which names it)."""

    def each(raw: dict[str, Any]) -> None:
        key = seen(raw)
        if key and key not in times:
            times[key] = time.perf_counter()

    _follow(stream, arguments, each, stop)


class Tracker:
    """One namespace's downloads and worker Jobs, followed by watches in threads."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.first_status: dict[str, float] = {}
        self.phase: dict[str, str] = {}
        self.job_seen: dict[str, float] = {}
        """Download name -> when the watch first showed its Job."""
        self.stop = threading.Event()
        custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
        downloads = (API_GROUP, API_VERSION, namespace, PLURAL)
        self.threads = [
            threading.Thread(
                target=_follow,
                args=(custom.list_namespaced_custom_object, downloads, self._download, self.stop),
                daemon=True,
            ),
            threading.Thread(
                target=_follow, args=(batch.list_namespaced_job, (namespace,), self._job, self.stop), daemon=True
            ),
        ]

    def __enter__(self) -> Tracker:
        for thread in self.threads:
            thread.start()
        time.sleep(1)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()

    def _download(self, raw: dict[str, Any]) -> None:
        name, phase = raw["metadata"]["name"], (raw.get("status") or {}).get("phase")
        if phase:
            self.first_status.setdefault(name, time.perf_counter())
            self.phase[name] = phase

    def _job(self, raw: dict[str, Any]) -> None:
        name = (raw["metadata"].get("labels") or {}).get(f"{API_GROUP}/download")
        if name:
            self.job_seen.setdefault(name, time.perf_counter())

    def count(self, phase: str) -> int:
        return sum(1 for p in list(self.phase.values()) if p == phase)


def metric(operator: OperatorProcess, name: str) -> float:
    """A counter's value from the operator's /metrics."""
    for line in operator.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise LookupError(name)


def scale(count: int, floor: bool = True) -> None:
    """Time until every one of `count` downloads has a status, with the default caps (20, 5 per namespace) and no
    node (the first Jobs stay Pending, everyone else waits), against the floor measured in the same run: the API
    server accepting the same creates and one status write each from a plain loop. Without `floor` (about half the
    run's time at 10,000) only the operator's figures are printed: its RSS and CPU do not depend on the floor."""
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "many")
        operator = operator_for(cluster, cluster.workdir)
        assert operator.process is not None
        pid = operator.process.pid
        try:
            idle = status_mb(pid)
            with Tracker(api, "many") as tracker:
                cpu, writes = cpu_seconds(pid), metric(operator, "gallery_operator_status_writes_total")
                started = time.perf_counter()
                create_downloads(api, "many", count)
                applied = time.perf_counter() - started
                wait_until(lambda: len(tracker.first_status) >= count, 3600, f"{count} statuses", interval=0.5)
                operated = time.perf_counter() - started
                used = settle(pid) - cpu
                written = metric(operator, "gallery_operator_status_writes_total") - writes
                queued = tracker.count("Queued")
            time.sleep(5)
            loaded, peak = status_mb(pid), status_mb(pid, "VmHWM")
        finally:
            operator.stop()
        floor_time = _scale_floor(api, count) if floor else None
    if floor_time is not None:
        print(f"floor: {count} creates + one status write each, plain loop: {floor_time:7.2f} s")
    print(f"{count} downloads created ({applied:.2f} s) until every one has a status: {operated:7.2f} s")
    if floor_time is not None:
        print(f"ratio (target <= 1.5): {operated / floor_time:.2f}")
    print(f"operator CPU: {used:.1f} s, {used / count * 1000:.2f} ms per download")
    print(f"status writes: {written:.0f} ({written / count:.2f} per download); Queued at the end: {queued}")
    print(f"operator RSS idle {idle:.1f} MB, with {count} downloads {loaded:.1f} MB (peak {peak:.1f}; target <= 300)")


def _scale_floor(api: client.ApiClient, count: int) -> float:
    """The floor of `scale`: `count` creates and one status write each from a plain loop, in a namespace of its own
    (made with the operator stopped: it would take these downloads for its own)."""
    make_namespace(api, "floor")
    started = time.perf_counter()
    writes_per_download(api, "floor", count, job=False)
    return time.perf_counter() - started


def drain(count: int) -> None:
    """`count` downloads of random priorities, created before the operator starts (a backlog), run to Succeeded on
    the node agent with cap 20: how long, how many status writes each, and how far the start order strays from the
    queue order (priority, then age, then name)."""
    rng = random.Random(count)
    priorities = [rng.randint(-2, 2) for _ in range(count)]
    with LocalCluster.create() as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "drain")
        custom = client.CustomObjectsApi(api)
        for n, priority in enumerate(priorities):
            body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload"}
            # (the site's images are numbered from 1)
            body |= {"metadata": {"name": f"gd-{n:05d}"}, "spec": {**spec_for(n + 1, site), "priority": priority}}
            custom.create_namespaced_custom_object(API_GROUP, API_VERSION, "drain", PLURAL, body)
        with Tracker(api, "drain") as tracker:
            operator = operator_for(cluster, cluster.workdir, max_active="20", max_active_per_namespace="20")
            try:
                started = time.perf_counter()
                ended = lambda: tracker.count("Succeeded") + tracker.count("Failed")  # noqa: E731
                wait_until(lambda: ended() >= count, 7200, f"{count} downloads to end", interval=1)
                drained = time.perf_counter() - started
                written = metric(operator, "gallery_operator_status_writes_total")
                failed = tracker.count("Failed")
            finally:
                operator.stop()
    # Queue order: priority first, then age (all created within seconds: the name breaks ties as age would).
    queue = sorted(range(count), key=lambda n: (-priorities[n], n))
    started_order = sorted(range(count), key=lambda n: tracker.job_seen[f"gd-{n:05d}"])
    place = {n: i for i, n in enumerate(started_order)}
    stray = [abs(place[n] - i) for i, n in enumerate(queue)]
    print(f"{count} downloads, cap 20, until all Succeeded: {drained:.1f} s (Failed: {failed})")
    print(f"status writes: {written:.0f}, {written / count:.2f} per download")
    print(
        f"start order vs queue order: median displacement {statistics.median(stray):.0f}, max {max(stray)} "
        f"(Jobs started by 16 reconcilers at once: within a cap's width is in order)"
    )


def latency(count: int) -> None:
    with LocalCluster.create() as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "lat")
        operator = operator_for(cluster, cluster.workdir, allow_private_networks="true")
        pod_done: dict[str, float] = {}
        job_done: dict[str, float] = {}
        ready: dict[str, float] = {}
        stop = threading.Event()

        def pod_finished(pod: dict[str, Any]) -> str | None:
            if pod.get("status", {}).get("phase") == "Succeeded":
                return str(pod["metadata"]["labels"].get(f"{API_GROUP}/download"))
            return None

        def job_complete(job: dict[str, Any]) -> str | None:
            for c in job.get("status", {}).get("conditions") or []:
                if c["type"] in ("SuccessCriteriaMet", "Complete") and c["status"] == "True":
                    return str(job["metadata"]["labels"].get(f"{API_GROUP}/download"))
            return None

        def gd_ready(gd: dict[str, Any]) -> str | None:
            for c in (gd.get("status") or {}).get("conditions") or []:
                if c["type"] == "Ready" and c["status"] == "True":
                    return str(gd["metadata"]["name"])
            return None

        core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
        threads = [
            threading.Thread(
                target=_watch, args=(core.list_namespaced_pod, ("lat",), pod_finished, pod_done, stop), daemon=True
            ),
            threading.Thread(
                target=_watch, args=(batch.list_namespaced_job, ("lat",), job_complete, job_done, stop), daemon=True
            ),
            threading.Thread(
                target=_watch,
                args=(
                    custom.list_namespaced_custom_object,
                    (API_GROUP, API_VERSION, "lat", PLURAL),
                    gd_ready,
                    ready,
                    stop,
                ),
                daemon=True,
            ),
        ]
        try:
            for thread in threads:
                thread.start()
            time.sleep(1)
            for n in range(count):
                create_downloads_one(custom, n, site)
                wait_until(lambda n=n: f"gd-{n:05d}" in ready, 120, f"gd-{n:05d} Ready")  # type: ignore[misc]
        finally:
            stop.set()
            operator.stop()
    names = [f"gd-{n:05d}" for n in range(count)]
    to_ready = [ready[n] - job_done[n] for n in names if n in job_done]
    pod_to_ready = [ready[n] - pod_done[n] for n in names if n in pod_done]
    job_lag = [job_done[n] - pod_done[n] for n in names if n in pod_done and n in job_done]
    print(
        f"Job finished (first of SuccessCriteriaMet/Complete) -> Ready=True: median "
        f"{statistics.median(to_ready) * 1000:.0f} ms, max {max(to_ready) * 1000:.0f} ms over {len(to_ready)} "
        f"(target: median < 1 s)"
    )
    print(f"pod Succeeded -> Ready=True: median {statistics.median(pod_to_ready) * 1000:.0f} ms")
    print(
        f"baseline, pod Succeeded -> Job finished (the Job controller): median "
        f"{statistics.median(job_lag) * 1000:.0f} ms"
    )
    print(f"ratio pod->Ready / pod->Job finished: {statistics.median(pod_to_ready) / statistics.median(job_lag):.2f}")


def apicost(count: int) -> None:
    """What each kind of write costs the API server (its CPU time), with no operator running: the writes a
    download causes beyond the baseline's one Job."""
    with LocalCluster.create(with_node=False) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, "cost")
        apiserver = cluster.processes["apiserver"].pid
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        settings = Settings()

        def measure(what: str, write: Callable[[int], Any]) -> None:
            cpu, started = cpu_seconds(apiserver), time.perf_counter()
            for n in range(count):
                write(n)
            wall, used = time.perf_counter() - started, cpu_seconds(apiserver) - cpu
            print(f"{count} {what}: {wall:.2f} s, API server CPU {used:.2f} s ({used / count * 1000:.1f} ms each)")

        def job(n: int) -> None:
            item = Download("cost", f"gd-{n:05d}", f"uid-{n}", 1, "", parse_spec(spec_for(n)))
            body = build_job(item, settings)
            body["metadata"].pop("ownerReferences")
            client.BatchV1Api(api).create_namespaced_job("cost", body)

        def download(n: int) -> None:
            body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload"}
            body |= {"metadata": {"name": f"gd-{n:05d}"}, "spec": spec_for(n)}
            custom.create_namespaced_custom_object(API_GROUP, API_VERSION, "cost", PLURAL, body)

        def status(n: int) -> None:
            observation = Observation(generation=1, now="2026-11-21T07:00:00Z", job_name=f"gd-{n:05d}-x")
            patch = {"status": stored_status({}, observation)}
            custom.patch_namespaced_custom_object_status(API_GROUP, API_VERSION, "cost", PLURAL, f"gd-{n:05d}", patch)

        def event(n: int) -> None:
            core.create_namespaced_event("cost", event_for("cost", f"gd-{n:05d}"))

        measure("Job creates (the baseline's write; the Job controller adds a pod each)", job)
        measure("GalleryDownload creates", download)
        measure("status patches (the first status of a download)", status)
        measure("Events", event)


def create_downloads_one(custom: client.CustomObjectsApi, n: int, site: str) -> None:
    custom.create_namespaced_custom_object(
        API_GROUP,
        API_VERSION,
        "lat",
        PLURAL,
        {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "GalleryDownload",
            "metadata": {"name": f"gd-{n:05d}"},
            "spec": {**spec_for(n + 1, site), "options": {"retries": 0}},
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs = {
        "throughput": (throughput, 500),
        "memory": (memory, 2000),
        "latency": (latency, 20),
        "apicost": (apicost, 500),
        "scale": (scale, 10000),
        "drain": (drain, 1000),
    }
    parser.add_argument("benchmark", choices=list(runs))
    parser.add_argument("--count", type=int)
    parser.add_argument("--no-floor", action="store_true", help="scale: skip the floor (RSS and CPU figures only)")
    options = parser.parse_args()
    run, default = runs[options.benchmark]
    if options.no_floor and run is not scale:
        parser.error("--no-floor is an option of scale only")
    if options.no_floor:
        scale(options.count or default, floor=False)
    else:
        run(options.count or default)
    return 0


if __name__ == "__main__":
    sys.exit(main())
