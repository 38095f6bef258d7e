"""Small helpers for tests that talk to the Kubernetes API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from gallery_harness.procs import wait_until


class Watching:
    """Watches of a namespace started now, in threads: each hands every event's type and object to its callback.
    etcd's revisions (the objects' resourceVersions) order what they see across watches."""

    def __init__(self, namespace: str, follows: list[tuple[Callable[..., Any], Callable[[str, Any], None]]]) -> None:
        self.ended: Exception | None = None
        self._watches = [watch.Watch() for _ in follows]
        self._threads = [
            threading.Thread(target=self._follow, args=(w, listing, namespace, record), daemon=True)
            for w, (listing, record) in zip(self._watches, follows, strict=True)
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, w: watch.Watch, listing: Any, namespace: str, record: Callable[[str, Any], None]) -> None:
        try:
            for event in w.stream(listing, namespace, timeout_seconds=300):
                record(event["type"], event["object"])
        except Exception as error:  # the watch ends with the cluster; a test that still needed it fails waiting
            self.ended = error

    def stop(self) -> None:
        for w in self._watches:
            w.stop()


def absent(read: Callable[[], object]) -> bool:
    """True when ``read()`` answers 404 Not Found; other API errors propagate."""
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def create_namespace(api: client.ApiClient, name: str) -> None:
    """A namespace, ready for pods: its default ServiceAccount (made by a controller) exists."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_until(lambda: core.list_namespaced_service_account(name).items, 30, f"the default ServiceAccount in {name}")


def create_claim(api: client.ApiClient, namespace: str, name: str = "media", size: str = "1Gi") -> None:
    client.CoreV1Api(api).create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        },
    )
