"""Restart storm: the operator SIGKILLed and started again many times in a row, at random moments (during its
start-up, right after it became ready, while downloads and a subscription are live), on one local control plane.
Every start must answer /readyz 200 and then act (write the status of a download created after it became ready)
within its bound; a start that does not is stuck: its stacks (py-spy, when it is on PATH) and its log are kept, and
the storm stops there.

uv run python -m bench.reliability_restart_storm --keep /tmp/storm [--cycles 40] [--backlog 1500] [--election]
    [--namespaced]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.operator import create_downloads, make_namespace, status_mb
from gallery_harness.controlplane import LocalCluster
from gallery_harness.kube import create_namespace
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL

NAMESPACE = "storm"


def gd(name: str, urls: list[str]) -> dict[str, Any]:
    spec = {"urls": urls, "target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}}
    body: dict[str, Any] = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload"}
    return body | {"metadata": {"name": name}, "spec": spec}


class Feeder(threading.Thread):
    """A download of 1-3 slow images every few seconds, so every kill meets live workers and queued work."""

    def __init__(self, api: client.ApiClient, site: str, every: float) -> None:
        super().__init__(daemon=True)
        self.custom, self.site, self.every = client.CustomObjectsApi(api), site, every
        self.count = 0
        self.stopped = threading.Event()

    def create(self, prefix: str) -> str:
        self.count += 1
        name = f"{prefix}-{self.count:05d}"
        urls = [f"{self.site}/slow/{self.count * 3 + i}.jpg?seconds=1" for i in range(random.randint(1, 3))]
        self.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, PLURAL, gd(name, urls))
        return name

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.create("d")
            except Exception as error:  # the API server under load: the next one goes
                print(f"feeder: {error!r}", flush=True)

    def observed(self, name: str) -> bool:
        """Whether the operator wrote the download's status (the API server's defaults say Pending, generation 0)."""
        body = self.custom.get_namespaced_custom_object(API_GROUP, API_VERSION, NAMESPACE, PLURAL, name)
        return bool((body.get("status") or {}).get("observedGeneration"))


def subscription(api: client.ApiClient, site: str) -> None:
    spec = {
        "interval": "10s",
        "jitter": "0s",
        "downloadTemplate": {"urls": [f"{site}/img/81.jpg"], "target": {"pvc": {"claimName": "media"}}},
    }
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GallerySubscription", "metadata": {"name": "tick"}}
    body["spec"] = spec
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        API_GROUP, API_VERSION, NAMESPACE, SUBSCRIPTION_PLURAL, body
    )


def probe(operator: OperatorProcess, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def wait_for(predicate: Any, seconds: float) -> float | None:
    """Seconds until ``predicate()`` held, or None after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(Exception):  # polled again
            if predicate():
                return time.monotonic() - started
        time.sleep(0.2)
    return None


def dump(operator: OperatorProcess, into: Path) -> None:
    """What a stuck operator is doing: py-spy's stacks of every thread (when py-spy is on PATH)."""
    assert operator.process is not None
    spy = shutil.which("py-spy")
    if spy is None:
        into.write_text("py-spy is not on PATH\n")
        return
    result = subprocess.run(
        [spy, "dump", "--pid", str(operator.process.pid)], capture_output=True, text=True, check=False
    )
    into.write_text(result.stdout + result.stderr)


def cycle(n: int, operator: OperatorProcess, feeder: Feeder, ready_bound: float, act_bound: float) -> str | None:
    """One start and its kill; a description of the stuck start, or None."""
    operator.log = operator.log.with_name(f"operator-{n:03d}.log")
    operator.launch("--verbose")
    if random.random() < 0.4:  # killed during its start-up (imports, listings, the first reconciles)
        time.sleep(random.uniform(0.0, 8.0))
        operator.kill()
        return None
    took = wait_for(lambda: probe(operator, "/readyz") == 200, ready_bound)
    if took is None:
        return f"start {n}: /readyz not 200 after {ready_bound:.0f} s (/healthz {probe(operator, '/healthz')})"
    name = feeder.create("probe")
    acted = wait_for(lambda: feeder.observed(name), act_bound)
    if acted is None:
        return f"start {n}: ready after {took:.1f} s, but download {name} had no status after {act_bound:.0f} s"
    assert operator.process is not None
    peak = status_mb(operator.process.pid, "VmHWM")
    print(f"start {n}: ready after {took:.1f} s, acted {acted:.1f} s later (peak RSS {peak:.0f} MB)", flush=True)
    time.sleep(random.uniform(0.0, 15.0))
    operator.kill()
    return None


def run(options: argparse.Namespace) -> int:
    random.seed(options.seed)
    keep: Path = options.keep
    keep.mkdir(parents=True, exist_ok=True)
    with LocalCluster.create(keep / "cluster") as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        make_namespace(api, NAMESPACE)
        if options.backlog:  # downloads that exist at every start (they fail at once: nothing answers there)
            make_namespace(api, "backlog")
            create_downloads(api, "backlog", options.backlog)
        settings = {"GALLERY_OPERATOR_MAX_ACTIVE": "10", "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": "10"}
        if options.election:
            create_namespace(api, "gallery-operator")
            settings["GALLERY_OPERATOR_LEADER_ELECTION"] = "true"
        if options.namespaced:
            settings["GALLERY_OPERATOR_NAMESPACES"] = NAMESPACE
        operator = OperatorProcess(cluster.kubeconfig, keep / "operator.log", settings)
        feeder = Feeder(api, site, options.every)
        feeder.start()
        subscription(api, site)
        act_bound = options.act_seconds + (30 if options.election else 0)  # a dead leader's Lease expires first
        try:
            for n in range(options.cycles):
                stuck = cycle(n, operator, feeder, options.ready_seconds, act_bound)
                if stuck is not None:
                    print(f"STUCK: {stuck}; log {operator.log}", flush=True)
                    dump(operator, keep / f"stacks-{n:03d}.txt")
                    operator.stop()
                    return 1
            print(f"{options.cycles} starts, none stuck", flush=True)
            return 0
        finally:
            feeder.stopped.set()
            operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--keep", type=Path, required=True, help="the cluster's folder and every operator log")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between the feeder's downloads")
    parser.add_argument("--ready-seconds", type=float, default=120.0)
    parser.add_argument("--act-seconds", type=float, default=60.0)
    parser.add_argument("--backlog", type=int, default=0, help="downloads created before the first start")
    parser.add_argument("--election", action="store_true", help="leader election on (the chart's default)")
    parser.add_argument("--namespaced", action="store_true", help="watch the one namespace (not cluster-wide)")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
