"""Restart to ready: the single operator replica SIGKILLed while 20 workers run, started again at once: how long
until its /readyz answers (its caches filled), against the same restart with nothing running and against the floor
of importing the operator's modules, round by round, alternating.

uv run python -m bench.reliability_restart [--rounds 3] [--workers 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client, config

from bench.operator import make_namespace
from bench.reliability_common import patient_operator
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import OperatorProcess, apply_crd
from gallery_harness.procs import wait_until
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL


def imports() -> float:
    """Seconds for a fresh interpreter to import the operator's handlers (what any start pays first)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gallery_operator.handlers"], check=True)
    return time.perf_counter() - started


def restart(operator: OperatorProcess) -> float:
    operator.kill()
    started = time.perf_counter()
    operator.start()  # returns once /readyz answers 200
    return time.perf_counter() - started


def busy(api: client.ApiClient, site: str, namespace: str, workers: int) -> None:
    """``workers`` downloads of 20 slow images each, until that many worker Jobs run."""
    make_namespace(api, namespace)
    custom = client.CustomObjectsApi(api)
    for n in range(workers):
        urls = [f"{site}/slow/{1000 + 20 * n + i}.jpg?seconds=3" for i in range(20)]
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload", "metadata": {"name": f"w-{n}"}}
        body["spec"] = {"urls": urls, "target": {"pvc": {"claimName": "media"}}}
        custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)
    core = client.CoreV1Api(api)

    def running() -> bool:
        return sum(p.status.phase == "Running" for p in core.list_namespaced_pod(namespace).items) >= workers  # type: ignore[no-any-return]

    wait_until(running, 600, f"{workers} worker pods running", interval=0.5)


def clear(api: client.ApiClient, namespace: str) -> None:
    """Delete the namespace's downloads and wait until their workers are gone (the namespace itself stays: the
    local control plane runs no claim-protection controller, so a namespace with a claim never finishes deleting)."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    custom.delete_collection_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL)
    wait_until(lambda: not core.list_namespaced_pod(namespace).items, 600, "the workers gone", interval=1)


def run(rounds: int, workers: int, keep: Path | None) -> None:
    idle, loaded, floor = [], [], []
    with LocalCluster.create(keep) as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        operator = patient_operator(cluster, max_active=str(workers), max_active_per_namespace=str(workers))
        try:
            for n in range(rounds):
                floor.append(imports())
                idle.append(restart(operator))
                busy(api, site, f"busy-{n}", workers)
                loaded.append(restart(operator))
                print(
                    f"round {n + 1}: imports {floor[-1]:.1f} s, idle restart {idle[-1]:.1f} s, with {workers} "
                    f"workers running {loaded[-1]:.1f} s",
                    flush=True,
                )
                clear(api, f"busy-{n}")
        finally:
            operator.stop()
    print(
        f"kill -> /readyz with {workers} workers running: median {statistics.median(loaded):.1f} s, "
        f"max {max(loaded):.1f} s"
    )
    print(f"kill -> /readyz with nothing running:  median {statistics.median(idle):.1f} s, max {max(idle):.1f} s")
    print(f"a fresh interpreter importing the handlers: median {statistics.median(floor):.1f} s")
    ratios = [b / a for a, b in zip(idle, loaded, strict=True)]
    print(f"per-round ratio loaded / idle: median {statistics.median(ratios):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="keep the cluster's folder (logs) here")
    options = parser.parse_args()
    run(options.rounds, options.workers, options.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
