"""Bounds between tenants on the real control plane and the real S3 server: S3 prefixes stay in the download's
namespace, and a ResourceQuota caps how many GalleryDownloads a namespace holds."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.cluster.procs import wait_until
from tests.cluster.s3server import S3Server
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads
from tests.kube import absent, create_namespace

pytestmark = pytest.mark.e2e


def test_an_s3_prefix_cannot_reach_into_another_namespaces_files(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, s3_server: S3Server
) -> None:
    """A tenant names another namespace's default prefix (`<namespace>/<name>`) and deletes its download under
    deletionPolicy Delete: the other namespace's files stay, because every prefix is rooted in its own namespace."""
    victim = f"{namespace}-victim"
    create_namespace(cluster.api, victim)
    s3 = s3_server.client()
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key=f"{victim}/library/kept.jpg", Body=b"the victim's file")
    keys = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    client.CoreV1Api(cluster.api).create_namespaced_secret(namespace, {"metadata": {"name": "s3"}, "stringData": keys})
    target = {
        "bucket": "shared",
        "prefix": f"{victim}/library",
        "endpoint": s3_server.endpoint,
        "forcePathStyle": True,
        "credentialsSecret": {"name": "s3"},
    }
    spec = {"urls": [f"{site}/img/801.jpg"], "target": {"s3": target}, "deletionPolicy": "Delete"}
    downloads.create("thief", spec)
    status = downloads.wait_phase("thief", {"Succeeded", "Failed"})
    assert status["phase"] == "Succeeded", status
    downloads.delete("thief")
    wait_until(lambda: absent(lambda: downloads.get("thief")), 90, "the download and its files to be deleted")
    kept = s3.list_objects_v2(Bucket="shared", Prefix=f"{victim}/library/").get("Contents", [])
    assert [o["Key"] for o in kept] == [f"{victim}/library/kept.jpg"]
    own = f"{namespace}/{victim}/library"
    assert status["catalogue"]["location"] == f"s3://shared/{own}/.gallery-operator/catalogue.jsonl"
    assert s3.list_objects_v2(Bucket="shared", Prefix=f"{own}/").get("KeyCount", 0) == 0
    client.CoreV1Api(cluster.api).delete_namespace(victim)


def test_a_resource_quota_caps_the_gallerydownloads_of_a_namespace(cluster: Cluster, crd: None, namespace: str) -> None:
    """The documented per-namespace quota, `count/gallerydownloads.gallery-operator.dev`, is enforced by the real
    API server (quota admission) with the real quota controller filling the quota's status."""
    quota = {
        "metadata": {"name": "gallerydownloads"},
        "spec": {"hard": {"count/gallerydownloads.gallery-operator.dev": "2"}},
    }
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_resource_quota(namespace, quota)
    wait_until(
        lambda: core.read_namespaced_resource_quota("gallerydownloads", namespace).status.hard or {},
        60,
        "the quota controller to fill the quota's status",
    )
    downloads = Downloads(cluster.api, namespace)
    spec = {"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "media"}}, "suspend": True}
    downloads.create("one", spec)
    downloads.create("two", spec)
    with pytest.raises(ApiException) as refused:
        downloads.create("three", spec)
    assert refused.value.status == 403
    assert "exceeded quota: gallerydownloads" in refused.value.body
    downloads.delete("one")
    wait_until(lambda: absent(lambda: downloads.get("one")), 30, "the first download to be gone")
    wait_until(lambda: _created(downloads, "three", spec), 60, "room under the quota again")


def _created(downloads: Downloads, name: str, spec: dict[str, object]) -> bool:
    try:
        downloads.create(name, spec)
    except ApiException as error:
        if error.status == 403:
            return False
        raise
    return True
