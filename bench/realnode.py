"""Real-node benchmarks: the image build (cold and warm), the node's start, and a worker's start-up in a container.

sudo uv run python -m bench.realnode                # starts and first bytes, 5 alternating rounds
sudo uv run python -m bench.realnode --cold-image   # also the image builds: cold, after a code change, unchanged
sudo uv run python -m bench.realnode --no-starts    # first bytes only

Baselines, measured in the same run: the process-based node agent (start of a control plane with it; a worker
started by it), in rounds alternating with the real node's. The image-build figures have no baseline to run; they
are absolute times, reported with what each one covers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from kubernetes import client, config, watch

from gallery_harness import REPO_ROOT, image
from gallery_harness.controlplane import LocalCluster, NodeKind
from gallery_harness.kube import create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess, apply_crd, operator_for
from gallery_harness.procs import wait_until
from gallery_harness.site import Handler, serve
from gallery_operator import API_GROUP, API_VERSION, PLURAL


def timed(action: Any) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def image_builds() -> dict[str, float]:
    """Cold (empty image cache: debootstrap, every layer, save), after a code change (Docker's layer cache warm,
    one file of operator/ changed), and unchanged (the tar is found; no Docker)."""
    seconds: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="cold-image-") as cache,
        tempfile.TemporaryDirectory() as copy,
        mock.patch.dict(os.environ, {"GALLERY_IMAGE_CACHE": cache}),
    ):
        seconds["cold"] = timed(image.project_image)
        root = Path(copy) / "repo"
        for name in image.PROJECT_INPUTS:
            source = REPO_ROOT / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                root.mkdir(exist_ok=True)
                shutil.copy2(source, root / name)
        with (root / "operator" / "gallery_operator" / "__init__.py").open("a") as module:
            module.write(f"# benchmark edit {uuid.uuid4().hex}\n")
        seconds["code change"] = timed(lambda: image.project_image(root))
        seconds["unchanged"] = timed(lambda: image.project_image(root))
    return seconds


@dataclass
class Node:
    """One control plane with its node, the CRD, a namespace with a claim and an operator."""

    kind: NodeKind
    cluster: LocalCluster
    api: client.ApiClient
    operator: OperatorProcess
    namespace: str = "bench"


@contextmanager
def running(kind: NodeKind, stack: ExitStack) -> Iterator[Node]:
    cluster = stack.enter_context(LocalCluster.create(node=kind))
    api = config.new_client_from_config(str(cluster.kubeconfig))
    apply_crd(api)
    create_namespace(api, "bench")
    create_claim(api, "bench")
    settings = {"GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true", "GALLERY_OPERATOR_JOB_TTL_SECONDS": "600"}
    operator = operator_for(cluster.kubeconfig, cluster, cluster.workdir / "operator.log", settings)
    operator.start()
    try:
        yield Node(kind, cluster, api, operator)
    finally:
        operator.stop()


def first_byte(node: Node, site: str, number: int) -> dict[str, float]:
    """Seconds from the download's creation, and from its worker pod's creation (seen by a watch), to the first
    request the worker makes to the site."""
    core = client.CoreV1Api(node.api)
    pod_seen: list[float] = []
    stream = watch.Watch()

    name = f"first-byte-{number}"

    def watch_pods() -> None:
        # A watch begins with the pods that exist (earlier rounds'): only this download's Job's pod counts.
        for event in stream.stream(core.list_namespaced_pod, node.namespace, timeout_seconds=120):
            job = (event["object"].metadata.labels or {}).get("job-name", "")
            if event["type"] == "ADDED" and job.startswith(name):
                pod_seen.append(time.perf_counter())
                stream.stop()

    watcher = threading.Thread(target=watch_pods, daemon=True)
    watcher.start()
    time.sleep(0.3)  # the watch is open
    path = f"/img/{number}.jpg"
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GalleryDownload",
        "metadata": {"name": name},
        "spec": {"urls": [site + path], "target": {"pvc": {"claimName": "media"}}},
    }
    created = time.perf_counter()
    client.CustomObjectsApi(node.api).create_namespaced_custom_object(
        API_GROUP, API_VERSION, node.namespace, PLURAL, body
    )
    wait_until(lambda: path in Handler.arrivals, 120, f"the first request for {path}", interval=0.01)
    watcher.join(10)
    arrived = Handler.arrivals[path]
    return {"download -> first byte": arrived - created, "pod -> first byte": arrived - pod_seen[0]}


def starts(rounds: int) -> None:
    """Seconds to a ready API and a Ready node, each node mode in alternating rounds."""
    seconds: dict[str, list[float]] = {"agent": [], "kubelet": []}
    for _ in range(rounds):
        for kind in ("agent", "kubelet"):
            with LocalCluster.create(node=kind) as cluster:
                seconds[kind].append(cluster.startup_seconds)
                if cluster.real_node:
                    seconds.setdefault("kubelet image import", []).append(cluster.real_node.load_seconds)
    for kind, values in seconds.items():
        print(f"start, {kind:<8} median {statistics.median(values):6.2f} s  rounds {[round(v, 2) for v in values]}")
    ratio = statistics.median(seconds["kubelet"]) / statistics.median(seconds["agent"])
    print(f"start ratio kubelet/agent: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-image", action="store_true")
    parser.add_argument("--no-starts", action="store_true", help="skip the start rounds")
    options = parser.parse_args()
    if options.cold_image:
        for name, value in image_builds().items():
            print(f"image build, {name:<12} {value:7.1f} s")

    if not options.no_starts:
        starts(options.rounds)

    results: dict[str, dict[str, list[float]]] = {"agent": {}, "kubelet": {}}
    with ExitStack() as stack:
        real = stack.enter_context(running("kubelet", stack))
        agent = stack.enter_context(running("agent", stack))
        site = stack.enter_context(serve(host=real.cluster.service_host))  # both nodes' pods reach the bridge
        for round_number in range(options.rounds):
            for node in (agent, real):
                number = 9000 + round_number * 2 + (node is real)
                for name, value in first_byte(node, site, number).items():
                    results[node.kind].setdefault(name, []).append(value)
    for name in ("download -> first byte", "pod -> first byte"):
        medians = {kind: statistics.median(results[kind][name]) for kind in results}
        for kind in results:
            rounds = [round(v, 2) for v in results[kind][name]]
            print(f"{name}, {kind:<8} median {medians[kind]:6.2f} s  rounds {rounds}")
        print(f"{name} ratio kubelet/agent: {medians['kubelet'] / medians['agent']:.2f}")
    load = real.cluster.real_node.load_seconds if real.cluster.real_node else 0.0
    print(f"(the real node's start includes importing its images into containerd: {load:.1f} s)")


if __name__ == "__main__":
    main()
