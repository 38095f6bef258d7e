"""A download or subscription nobody has reconciled yet must not read as done to kstatus.

kstatus (what Flux's `wait: true` and health checks use) calls an object without `.status` Current: with no
observedGeneration to compare and no condition to read, it assumes the controller has nothing to say. Flux polls the
objects it applied at once, before the operator's first status write, so without a status the API server serves on
its own, a Kustomization could go Ready before its downloads started. The CRDs default `.status` (observedGeneration
0, behind every generation): kstatus sees InProgress until the operator writes its first status.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from gallery_harness.kube import create_claim
from gallery_operator import API_GROUP, API_VERSION, SUBSCRIPTION_PLURAL
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec

pytestmark = pytest.mark.e2e


def test_a_new_download_reads_as_not_yet_observed(
    cluster: Cluster, crd: None, namespace: str, no_local_operator: None
) -> None:
    create_claim(cluster.api, namespace)
    downloads = Downloads(cluster.api, namespace)
    created = downloads.create("unseen", pvc_spec(["http://127.0.0.1:9/img/1.jpg"]))
    for found in (created, downloads.get("unseen")):
        status = found.get("status") or {}
        assert status.get("observedGeneration") == 0, found
        assert status["observedGeneration"] < found["metadata"]["generation"]
        assert status.get("phase") == "Pending"


def test_a_new_subscription_reads_as_not_yet_observed(
    cluster: Cluster, crd: None, namespace: str, no_local_operator: None
) -> None:
    custom = client.CustomObjectsApi(cluster.api)
    body = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "GallerySubscription",
        "metadata": {"name": "unseen"},
        "spec": {"interval": "12h", "downloadTemplate": pvc_spec(["http://127.0.0.1:9/img/1.jpg"])},
    }
    created = custom.create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, SUBSCRIPTION_PLURAL, body)
    read = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, SUBSCRIPTION_PLURAL, "unseen")
    for found in (created, read):
        status = found.get("status") or {}
        assert status.get("observedGeneration") == 0, found
        assert status["observedGeneration"] < found["metadata"]["generation"]
