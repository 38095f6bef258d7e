"""Soak: a steady trickle of downloads (one every few seconds) with random operator SIGKILLs and worker crashes,
the operator's memory sampled throughout; at the end every download must have Succeeded.

uv run python -m bench.reliability_soak [--minutes 120] [--every 4] [--kill-every 90]

Prints the RSS samples' summary per operator process (each kill starts a new one): its RSS after its first minute,
its peak, and the growth of the longest-lived one from its first minute to its end. Bound: no operator process
grows by more than 30 MB after its first minute, and none exceeds 250 MB (half the chart's 512 Mi limit).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from bench.operator import make_namespace, status_mb
from bench.reliability_common import patient_operator
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import kill_pod_processes, wait_until
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL

NAMESPACE = "soak"
GROWTH_BOUND_MB = 30
PEAK_BOUND_MB = 250


@dataclass
class Soak:
    """The trickle's state: created downloads, the faults injected, RSS samples per operator process."""

    api: client.ApiClient
    site: str
    operator: OperatorProcess
    rng: random.Random
    created: int = 0
    faults: dict[str, int] = field(default_factory=lambda: {"operator SIGKILL": 0, "worker SIGKILL": 0})
    samples: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    """Operator pid -> (seconds since it started, RSS MB)."""
    born: dict[int, float] = field(default_factory=dict)

    def create(self) -> None:
        n = self.created
        urls = [f"{self.site}/slow/{(3 * n + i) % 10_000 + 1}.jpg?seconds=1" for i in range(self.rng.randint(1, 3))]
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload", "metadata": {"name": f"s-{n}"}}
        body["spec"] = {"urls": urls, "target": {"pvc": {"claimName": "media"}}, "backoffLimit": 4}
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            API_GROUP, API_VERSION, NAMESPACE, PLURAL, body
        )
        self.created += 1

    def sample(self) -> None:
        assert self.operator.process is not None
        pid = self.operator.process.pid
        self.born.setdefault(pid, time.monotonic())
        self.samples.setdefault(pid, []).append((time.monotonic() - self.born[pid], status_mb(pid)))

    def fault(self) -> None:
        if self.rng.random() < 0.5:
            self.operator.kill()
            self.operator.start()
            self.faults["operator SIGKILL"] += 1
            return
        core = client.CoreV1Api(self.api)
        running = [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items if p.status.phase == "Running"]
        if running and kill_pod_processes(self.rng.choice(running)):
            self.faults["worker SIGKILL"] += 1

    def phases(self) -> dict[str, int]:
        listing = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            API_GROUP, API_VERSION, NAMESPACE, PLURAL, _preload_content=False
        )
        counts: dict[str, int] = {}
        for item in listing.json()["items"]:
            phase = (item.get("status") or {}).get("phase", "none")
            counts[phase] = counts.get(phase, 0) + 1
        return counts


def trickle(soak: Soak, minutes: float, every: float, kill_every: float) -> None:
    ends = time.monotonic() + minutes * 60
    next_create = next_fault = next_sample = time.monotonic()
    next_fault += soak.rng.uniform(0.5, 1.5) * kill_every
    while time.monotonic() < ends:
        now = time.monotonic()
        if now >= next_create:
            soak.create()
            next_create = now + every
        if now >= next_fault:
            soak.fault()
            next_fault = now + soak.rng.uniform(0.5, 1.5) * kill_every
        if now >= next_sample:
            soak.sample()
            next_sample = now + 5
        time.sleep(0.2)


def report(soak: Soak, minutes: float, every: float) -> int:
    phases = soak.phases()
    print(f"soak of {minutes:.0f} min, a download every {every:.0f} s: {soak.created} created; phases {phases}")
    print(f"faults: {soak.faults}")
    worst_growth, peak = 0.0, 0.0
    for pid, samples in soak.samples.items():
        settled = [mb for age, mb in samples if age >= 60]
        peak = max(peak, *(mb for _, mb in samples))
        if len(settled) >= 2:
            growth = max(settled) - settled[0]
            worst_growth = max(worst_growth, growth)
            lived = samples[-1][0]
            print(
                f"operator {pid}: lived {lived / 60:.1f} min, RSS at 1 min {settled[0]:.1f} MB, "
                f"peak {max(settled):.1f} MB, growth after its first minute {growth:.1f} MB"
            )
    print(
        f"worst growth {worst_growth:.1f} MB (bound {GROWTH_BOUND_MB}); peak RSS {peak:.1f} MB (bound {PEAK_BOUND_MB})"
    )
    ok = phases.get("Succeeded", 0) == soak.created and worst_growth <= GROWTH_BOUND_MB and peak <= PEAK_BOUND_MB
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def run(minutes: float, every: float, kill_every: float) -> int:
    with LocalCluster.create() as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, NAMESPACE)
        operator = patient_operator(cluster, max_active="5", max_active_per_namespace="5")
        soak = Soak(api, site, operator, random.Random(7))
        try:
            try:
                trickle(soak, minutes, every, kill_every)
            except Exception:
                # What the soak saw up to the failure, and the operator's log (the cluster's folder goes with it).
                kept = Path(tempfile.gettempdir()) / f"soak-operator-{int(time.time())}.log"
                shutil.copy(cluster.workdir / "operator.log", kept)
                print(f"soak failed after {soak.created} downloads; the operator's log is kept in {kept}")
                report(soak, minutes, every)
                raise
            ended = lambda: sum(soak.phases().get(p, 0) for p in ("Succeeded", "Failed")) >= soak.created  # noqa: E731
            wait_until(ended, 1800, "every download to end", interval=2)
            return report(soak, minutes, every)
        finally:
            operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120)
    parser.add_argument("--every", type=float, default=4, help="seconds between two new downloads")
    parser.add_argument("--kill-every", type=float, default=90, help="mean seconds between two faults")
    options = parser.parse_args()
    return run(options.minutes, options.every, options.kill_every)


if __name__ == "__main__":
    sys.exit(main())
