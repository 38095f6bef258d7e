"""Failover under load on the local control plane: two operator replicas with leader election, the real worker
against the fixture site, the leader SIGKILLed at random moments during a burst of downloads, then stopped gracefully.

uv run python -m bench.failover [--count 200] [--kills 10] [--graceful 5] [--seed N]

Checks (exit 1 when one fails): every download Succeeded, each has exactly one Job, none is stuck, and the site
served every item exactly once (its per-path request count). Figures: takeover time, from the leader's kill (or
SIGTERM) to the first write of the replica that takes over (the first status write or Job creation seen by a watch
after the kill: the workers write no API objects, the operator does). After every kill a new download (a probe) is
created so there is always something to write. The killed replica is started again at once (as its Deployment
would), so two run at every kill. Worker reports reach the replicas through a round-robin proxy, as through the
Service: a standby answers 503 and the worker posts again.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench.operator import make_namespace
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import wait_until
from gallery_harness.site import Handler, serve
from gallery_harness.tcpproxy import TcpProxy
from gallery_operator import API_GROUP, API_VERSION, PLURAL

NAMESPACE = "failover"
LEASE = "gallery-operator-bench"
ITEM_SECONDS = 2


@dataclass
class Writes:
    """Times (perf_counter) of the operator's writes seen by watches: download status changes and Job creations."""

    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    stopped: threading.Event = field(default_factory=threading.Event)
    holders: list[tuple[float, str]] = field(default_factory=list)
    """(when, holder) of every change to the Lease seen by its watch."""

    def first_after(self, moment: float, old_holder: str) -> float | None:
        """The first write after the Lease passed from `old_holder` to another replica (after `moment`): a write of
        the old leader still under way at its kill does not count."""
        with self.lock:
            taken = next((t for t, h in self.holders if t > moment and h and h != old_holder), None)
            return None if taken is None else next((t for t in self.times if t > taken), None)

    def phases_after(self, moment: float, old_holder: str) -> str:
        """When the Lease was released (if it was) and taken after `moment`, in seconds from it."""
        with self.lock:
            released = next((t for t, h in self.holders if t > moment and not h), None)
            taken = next((t for t, h in self.holders if t > moment and h and h != old_holder), None)
        parts = [
            f"released +{released - moment:.1f} s" if released else "",
            f"taken +{taken - moment:.1f} s" if taken else "",
        ]
        return ", ".join(p for p in parts if p)

    def follow_lease(self, leases: Callable[..., Any]) -> None:
        while not self.stopped.is_set():
            try:
                for event in watch.Watch().stream(leases, NAMESPACE, timeout_seconds=300):
                    holder = event["object"].spec.holder_identity or ""
                    with self.lock:
                        self.holders.append((time.perf_counter(), holder))
            except Exception as error:  # a broken watch is followed again
                if not self.stopped.is_set():
                    print(f"watch: {error!r}", file=sys.stderr)
                self.stopped.wait(1)

    def follow(self, stream: Callable[..., Any], kinds: set[str], *args: Any) -> None:
        while not self.stopped.is_set():
            try:
                for event in watch.Watch().stream(stream, *args, timeout_seconds=300):
                    if event["type"] in kinds:
                        with self.lock:
                            self.times.append(time.perf_counter())
            except Exception as error:  # a broken watch is followed again
                if not self.stopped.is_set():
                    print(f"watch: {error!r}", file=sys.stderr)
                self.stopped.wait(1)


@dataclass
class Replicas:
    """The operator's replicas (each with its own ports), started again when one is killed."""

    kubeconfig: Path
    workdir: Path
    report_proxy: TcpProxy | None = None
    live: list[OperatorProcess] = field(default_factory=list)
    started: int = 0
    exited: list[str] = field(default_factory=list)
    """Replicas that exited by themselves (lost the Lease)."""

    def settings(self) -> dict[str, str]:
        assert self.report_proxy is not None
        host, port = self.report_proxy.address
        return {
            "GALLERY_OPERATOR_LEADER_ELECTION": "true",
            "GALLERY_OPERATOR_OPERATOR_NAMESPACE": NAMESPACE,
            "GALLERY_OPERATOR_LEASE_NAME": LEASE,
            "GALLERY_OPERATOR_NAMESPACES": NAMESPACE,
            "GALLERY_OPERATOR_MAX_ACTIVE": "20",
            "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": "20",
            "GALLERY_OPERATOR_JOB_TTL_SECONDS": "7200",
            "GALLERY_OPERATOR_REPORT_URL": f"http://{host}:{port}/report",
        }

    def start_one(self) -> OperatorProcess:
        self.started += 1
        name = f"r{self.started}"
        settings = {**self.settings(), "GALLERY_OPERATOR_LEADER_IDENTITY": name}
        process = OperatorProcess(self.kubeconfig, self.workdir / f"operator-{name}.log", settings)
        try:
            process.start()
        except TimeoutError:  # a loaded machine: the caches take longer than the harness's 30 s to fill
            wait_until(process.healthy, 300, f"{name} to be ready")
        self.live.append(process)
        return process

    def replace_exited(self) -> list[str]:
        """Start a new replica for each that exited by itself (a leader that lost the Lease), as the Deployment
        would; their names."""
        gone = [p for p in self.live if p.process is not None and p.process.poll() is not None]
        for process in gone:
            self.live.remove(process)
            self.exited.append(process.log.name)
            self.start_one()
        return [p.log.name for p in gone]

    def report_target(self) -> tuple[str, int]:
        """Round robin over the live replicas' report ports, as a Service spreads connections."""
        ports = [int(p.report_url.rsplit(":", 1)[1].split("/")[0]) for p in list(self.live) if p.process is not None]
        return ("127.0.0.1", random.choice(ports) if ports else 9)

    def leader(self) -> OperatorProcess | None:
        for process in list(self.live):
            try:
                if "\ngallery_operator_leader 1.0" in "\n" + process.metrics():
                    return process
            except OSError:
                continue
        return None


PROBE_IMAGES = 5000
"""Probes fetch images from here on (the site serves images 1 to 10000), apart from the burst's."""


def create(api: client.ApiClient, name: str, site: str, image: int) -> None:
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GalleryDownload",
        "metadata": {"name": name},
        "spec": {
            "urls": [f"{site}/slow/{image}.jpg?seconds={ITEM_SECONDS}"],
            "target": {"pvc": {"claimName": "media"}},
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, PLURAL, body)


def takeover(replicas: Replicas, writes: Writes, api: client.ApiClient, site: str, probe: int, kill: bool) -> float:
    """Kill (or stop) the leader, create a probe download, start a replacement; seconds to the first write."""
    wait_until(replicas.leader, 60, "a leader")
    leader = replicas.leader()
    assert leader is not None, "no leader"
    holder = leader.settings["GALLERY_OPERATOR_LEADER_IDENTITY"]
    assert leader.process is not None
    moment = time.perf_counter()
    if kill:
        leader.kill()
    else:  # SIGTERM, as the kubelet sends; the probe is created once the Lease is released (nobody leads)
        leader.process.send_signal(signal.SIGTERM)
        wait_until(lambda: writes.phases_after(moment, holder), 60, "the Lease's release", interval=0.01)
    replicas.live.remove(leader)
    create(api, f"probe-{probe:03d}", site, PROBE_IMAGES + probe)
    wait_until(lambda: writes.first_after(moment, holder), 120, "the new leader's first write", interval=0.02)
    first = writes.first_after(moment, holder)
    assert first is not None
    what = "kill" if kill else "stop"
    print(f"  {what}: Lease {writes.phases_after(moment, holder)}, first write +{first - moment:.1f} s", flush=True)
    leader.stop()  # reaped (already gone after a kill)
    replicas.start_one()  # the Deployment's replacement: a standby once its caches are filled
    return first - moment


def outcome(api: client.ApiClient, names: list[str]) -> list[str]:
    """What is wrong at the end: downloads not Succeeded, downloads with other than one Job, items fetched twice."""
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    problems = []
    items = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, PLURAL)["items"]
    by_name = {i["metadata"]["name"]: i for i in items}
    jobs: dict[str, int] = {}
    for job in batch.list_namespaced_job(NAMESPACE).items:
        uid = (job.metadata.labels or {}).get(f"{API_GROUP}/download-uid", "")
        jobs[uid] = jobs.get(uid, 0) + 1
    for name in names:
        item = by_name[name]
        phase = (item.get("status") or {}).get("phase")
        if phase != "Succeeded":
            problems.append(f"{name}: {phase}")
        if (count := jobs.get(item["metadata"]["uid"], 0)) != 1:
            problems.append(f"{name}: {count} Jobs")
    twice = {path: n for path, n in Handler.hits.items() if path.startswith("/slow/") and n != 1}
    problems += [f"{path} fetched {n} times" for path, n in sorted(twice.items())]
    return problems


def summary(label: str, seconds: list[float]) -> str:
    return f"{label}: n={len(seconds)} median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s"


def run(count: int, kills: int, graceful: int, seed: int) -> int:
    assert count < PROBE_IMAGES, f"at most {PROBE_IMAGES - 1} downloads"
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="failover-"))  # kept: the replicas' logs
    print(f"logs in {workdir}", flush=True)
    with LocalCluster.create(workdir) as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, NAMESPACE)
        replicas = Replicas(cluster.kubeconfig, cluster.workdir)
        replicas.report_proxy = TcpProxy(replicas.report_target)
        writes = Writes()
        custom = client.CustomObjectsApi(api)
        gd_args = (API_GROUP, API_VERSION, NAMESPACE, PLURAL)
        follows = [
            (writes.follow, (custom.list_namespaced_custom_object, {"MODIFIED"}, *gd_args)),
            (writes.follow, (client.BatchV1Api(api).list_namespaced_job, {"ADDED"}, NAMESPACE)),
            (writes.follow_lease, (client.CoordinationV1Api(api).list_namespaced_lease,)),
        ]
        for target, args in follows:
            threading.Thread(target=target, args=args, daemon=True).start()
        for _ in range(2):
            replicas.start_one()
        wait_until(lambda: replicas.leader() is not None, 60, "a leader")
        names = [f"gd-{n:04d}" for n in range(count)]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: create(api, names[n], site, n + 1), range(count)))
        hard = []
        for k in range(kills):
            time.sleep(rng.uniform(1, 8))
            replicas.replace_exited()
            hard.append(takeover(replicas, writes, api, site, k, kill=True))
            print(f"kill {k + 1}: takeover {hard[-1]:.1f} s", flush=True)
            wait_until(lambda: replicas.leader() is not None, 60, "a leader")
        probes = [f"probe-{k:03d}" for k in range(kills)]
        done = lambda: all(p == "Succeeded" for p in phases(custom, names + probes))  # noqa: E731
        wait_until(done, 1800, "every download to succeed", interval=2)
        burst = time.perf_counter() - started
        soft = []
        for k in range(graceful):
            time.sleep(rng.uniform(1, 4))
            replicas.replace_exited()
            soft.append(takeover(replicas, writes, api, site, kills + k, kill=False))
            print(f"stop {k + 1}: takeover {soft[-1]:.1f} s", flush=True)
            wait_until(lambda: replicas.leader() is not None, 60, "a leader")
        probes += [f"probe-{kills + k:03d}" for k in range(graceful)]
        wait_until(lambda: all(p == "Succeeded" for p in phases(custom, probes)), 300, "the probes", interval=2)
        problems = outcome(api, names + probes)
        replicas.replace_exited()
        writes.stopped.set()
        for process in replicas.live:
            process.stop()
    print(f"{count} downloads + {kills + graceful} probes in {burst:.0f} s (burst with {kills} kills)")
    print(summary("SIGKILL takeover (kill -> first write)", hard))
    if soft:
        print(summary("SIGTERM takeover (stop -> first write)", soft))
    print("replicas that lost the Lease and exited (a leader that could not renew in time):", replicas.exited or "none")
    print("problems:", problems or "none")
    return 1 if problems else 0


def phases(custom: client.CustomObjectsApi, names: list[str]) -> list[str]:
    items = custom.list_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, PLURAL)["items"]
    by_name = {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}
    return [by_name.get(name, "") for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--graceful", type=int, default=5)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    options = parser.parse_args()
    print(f"seed {options.seed}", flush=True)
    sys.exit(run(options.count, options.kills, options.graceful, options.seed))


if __name__ == "__main__":
    main()
