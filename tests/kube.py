"""Small helpers for tests that talk to the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster.procs import wait_until


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
