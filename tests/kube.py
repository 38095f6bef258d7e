"""Small helpers for tests that talk to the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes.client.rest import ApiException


def absent(read: Callable[[], object]) -> bool:
    """True when ``read()`` answers 404 Not Found; other API errors propagate."""
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False
