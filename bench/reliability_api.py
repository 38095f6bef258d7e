"""API server restart (etcd kept) and outage during reconciliation: how long after the API server is back (its
/readyz answers) the operator has reconciled a download created at that moment (its first status, its Job), and
whether every download that was running ends Succeeded with its full catalogue.

uv run python -m bench.reliability_api [--outage 20] [--rounds 3] [--running 6]

Target (issue 24): the operator recovers by itself within 30 s of the API's return and misses no transition.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from kubernetes import client, config

from bench.operator import make_namespace
from bench.reliability_common import patient_operator
from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import apply_crd
from gallery_harness.procs import wait_until
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL

ITEMS = 3


def create(api: client.ApiClient, namespace: str, name: str, urls: list[str]) -> None:
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload", "metadata": {"name": name}}
    body["spec"] = {"urls": urls, "target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}}
    client.CustomObjectsApi(api).create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)


def status(api: client.ApiClient, namespace: str, name: str) -> dict[str, object]:
    body = client.CustomObjectsApi(api).get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
    return dict(body.get("status") or {})


def one_round(
    cluster: LocalCluster, api: client.ApiClient, site: str, n: int, outage: float, running: int
) -> tuple[float, float, bool]:
    """One outage; the probe's times after the return, and whether every running download ended right."""
    namespace = f"round-{n}"
    make_namespace(api, namespace)
    names = [f"run-{k}" for k in range(running)]
    for k, name in enumerate(names):
        first = 100 * n + ITEMS * k + 1
        create(api, namespace, name, [f"{site}/slow/{first + i}.jpg?seconds=2" for i in range(ITEMS)])
    batch = client.BatchV1Api(api)
    wait_until(lambda: len(batch.list_namespaced_job(namespace).items) >= running, 120, "the Jobs", interval=0.2)
    cluster.stop_apiserver()
    time.sleep(outage)
    cluster.start_apiserver()
    back = time.perf_counter()
    create(api, namespace, "probe", [f"{site}/img/{100 * n + 99}.jpg"])
    wait_until(lambda: status(api, namespace, "probe").get("phase"), 300, "the probe's status", interval=0.05)
    first_status = time.perf_counter() - back
    wait_until(lambda: batch.list_namespaced_job(namespace, label_selector=f"{API_GROUP}/download=probe").items, 300)
    job = time.perf_counter() - back
    for name in [*names, "probe"]:
        wait_until(lambda name=name: status(api, namespace, name).get("phase") in {"Succeeded", "Failed"}, 600)
    ended = {name: status(api, namespace, name) for name in [*names, "probe"]}
    right = all(
        s.get("phase") == "Succeeded" and dict(s.get("catalogue") or {}).get("items") == (1 if k == "probe" else ITEMS)  # type: ignore[call-overload]
        for k, s in ended.items()
    )
    return first_status, job, right


def run(outage: float, rounds: int, running: int) -> int:
    rows = []
    with LocalCluster.create() as cluster, serve() as site:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apply_crd(api)
        operator = patient_operator(cluster, max_active="20", max_active_per_namespace="20")
        try:
            assert operator.process is not None
            pid = operator.process.pid
            for n in range(1, rounds + 1):
                rows.append(one_round(cluster, api, site, n, outage, running))
                first, job, right = rows[-1]
                print(f"round {n}: probe status {first:.1f} s, Job {job:.1f} s after the return; all right: {right}")
            same = operator.healthy() and operator.process is not None and operator.process.pid == pid
        finally:
            operator.stop()
    statuses, jobs, rights = ([r[k] for r in rows] for k in range(3))
    print(f"API server down {outage:.0f} s ({'restart' if outage == 0 else 'outage'}), {running} downloads running:")
    print(f"return -> probe's first status: median {statistics.median(statuses):.1f} s, max {max(statuses):.1f} s")
    print(f"return -> probe's Job: median {statistics.median(jobs):.1f} s, max {max(jobs):.1f} s (target <= 30 s)")
    print(f"every download Succeeded with its catalogue in every round: {all(rights)}; same operator process: {same}")
    ok = max(jobs) <= 30 and all(rights) and same
    print("verdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the API server stays down (0: restart)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--running", type=int, default=6)
    options = parser.parse_args()
    return run(options.outage, options.rounds, options.running)


if __name__ == "__main__":
    sys.exit(main())
