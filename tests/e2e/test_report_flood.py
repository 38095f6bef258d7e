"""The report endpoint under a flood of made-up tokens, with real TokenReviews by the real API server: every real
worker's report still lands."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import urllib.parse
from collections import Counter
from typing import Any

from kubernetes import client

from gallery_harness.kube import create_claim
from gallery_harness.procs import wait_until
from gallery_harness.tokens import forged_jwt
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec

WORKERS = 8
FLOODERS = 6
FLOOD_ADDRESS = "127.0.0.2"
"""The flood comes from another loopback address than the workers' (pods here share the host's loopback), as a
hostile pod has its own address."""


class Flood:
    """Threads posting reports with made-up tokens as fast as they can, from FLOOD_ADDRESS: random strings, JWTs
    for another audience, and unsigned JWTs naming the real worker pods (added as they appear)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path
        self.pods: list[tuple[str, str, str]] = []
        self.answers: Counter[int] = Counter()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(FLOODERS)]

    def _token(self, n: int) -> str:
        kind = n % 3
        if kind == 0 or not self.pods:
            return secrets.token_urlsafe(600)
        namespace, pod, uid = self.pods[n % len(self.pods)]
        return forged_jwt(
            "gallery-operator.dev" if kind == 2 else "https://kubernetes.default.svc", namespace, pod, uid
        )

    def _run(self, offset: int) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10, source_address=(FLOOD_ADDRESS, 0))
        body = json.dumps({"run": "x", "itemsDone": 999}).encode()
        n = offset
        while not self.stopped.is_set():
            n += FLOODERS
            headers = {"Authorization": f"Bearer {self._token(n)}", "Content-Type": "application/json"}
            try:
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                self.answers[response.status] += 1
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=10, source_address=(FLOOD_ADDRESS, 0)
                )

    def __enter__(self) -> Flood:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=30)


def test_a_flood_of_made_up_tokens_locks_no_worker_out(
    cluster: Cluster, crd: None, namespace: str, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    """Every real worker's live report lands (its download shows progress while Running) while a flood of made-up
    tokens, some naming those very workers' pods, hits the report endpoint from another address."""
    operator = operator_for(
        cluster,
        tmp_path / "operator.log",
        {"GALLERY_OPERATOR_MAX_ACTIVE": str(WORKERS), "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": str(WORKERS)},
    )
    operator.start()
    create_claim(cluster.api, namespace)
    downloads = Downloads(cluster.api, namespace)
    core = client.CoreV1Api(cluster.api)
    names = [f"worker-{n}" for n in range(WORKERS)]
    live: set[str] = set()
    ended_without_live: set[str] = set()

    def look() -> bool:
        for pod in core.list_namespaced_pod(namespace, label_selector="gallery-operator.dev/run").items:
            entry = (namespace, pod.metadata.name, pod.metadata.uid)
            if entry not in flood.pods:
                flood.pods.append(entry)
        for name in set(names) - live - ended_without_live:
            if downloads.reports_live(name):
                live.add(name)
            elif downloads.status(name).get("phase") in {"Succeeded", "Failed"}:
                ended_without_live.add(name)
        return live | ended_without_live == set(names)

    try:
        with Flood(operator.report_url) as flood:
            wait_until(lambda: sum(flood.answers.values()) > 200, 60, "the flood to be under way")
            for n, name in enumerate(names):
                urls = [f"{site}/img/{900 + n}.jpg", f"{site}/slow/{950 + n}.jpg?seconds=10"]
                downloads.create(name, pvc_spec(urls))
            wait_until(look, 240, "every download to report live progress or end", interval=0.5)
        refused = operator.metrics()
    finally:
        operator.stop()
    assert sorted(ended_without_live) == [], f"no live report landed from {sorted(ended_without_live)}: {flood.answers}"
    assert live == set(names)
    assert flood.answers[200] == 0, flood.answers
    for reason in ("malformed-token", "wrong-audience"):
        assert f'gallery_operator_reports_refused_total{{reason="{reason}"}}' in refused
