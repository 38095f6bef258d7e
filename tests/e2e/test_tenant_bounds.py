"""Bounds between tenants on the real control plane and the real S3 server: S3 prefixes stay in the download's
namespace, a ResourceQuota caps how many GalleryDownloads a namespace holds, and a tenant's own priorities do not
starve other namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness.kube import absent, create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_harness.s3server import S3Server
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec


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


def test_a_tenants_own_priorities_do_not_starve_another_namespace(
    cluster: Cluster, crd: None, namespace: str, site: str, no_local_operator: None, tmp_path: Path
) -> None:
    """One slot in the cluster. A tenant sets priority 1000 on all its downloads: between namespaces that counts as
    the default ceiling (0), so when its first download ends the other namespace's download goes next. Once the
    platform team annotates the tenant's namespace with a ceiling of 1000, its priority counts."""
    greedy, modest = namespace, f"{namespace}-modest"
    create_namespace(cluster.api, modest)
    operator = operator_for(
        cluster,
        tmp_path / "operator.log",
        {
            # Its two namespaces only: another test's downloads still running elsewhere would hold the one slot.
            "GALLERY_OPERATOR_NAMESPACES": f"{greedy},{modest}",
            "GALLERY_OPERATOR_MAX_ACTIVE": "1",
            "GALLERY_OPERATOR_MAX_ACTIVE_PER_NAMESPACE": "1",
        },
    )
    operator.start()
    try:
        for each in (greedy, modest):
            create_claim(cluster.api, each)
        tenant, other = Downloads(cluster.api, greedy), Downloads(cluster.api, modest)
        tenant.create("first", pvc_spec([f"{site}/slow/1201.jpg?seconds=4"], priority=1000))
        wait_until(lambda: tenant.status("first").get("phase") == "Running", 60, "the first download to run")
        for name in ("second", "third"):
            tenant.create(name, pvc_spec([f"{site}/img/1202.jpg"], priority=1000))
        other.create("fair", pvc_spec([f"{site}/slow/1203.jpg?seconds=4"]))
        wait_until(lambda: other.status("fair").get("phase") in {"Running", "Succeeded"}, 90, "the other's turn")
        assert {tenant.status(n).get("phase") for n in ("second", "third")} == {"Queued"}
        assert other.wait_phase("fair", {"Succeeded", "Failed"})["phase"] == "Succeeded"
        for name in ("second", "third"):
            assert tenant.wait_phase(name, {"Succeeded", "Failed"})["phase"] == "Succeeded"

        annotations = {"gallery-operator.dev/max-priority": "1000"}
        client.CoreV1Api(cluster.api).patch_namespace(greedy, {"metadata": {"annotations": annotations}})
        # The tenant's namespace was served last, so without its ceiling the other namespace would go next.
        tenant.create("blocker", pvc_spec([f"{site}/slow/1204.jpg?seconds=4"]))
        wait_until(lambda: tenant.status("blocker").get("phase") == "Running", 60, "the blocker to run")
        other.create("later", pvc_spec([f"{site}/img/1205.jpg"]))
        tenant.create("granted", pvc_spec([f"{site}/slow/1206.jpg?seconds=4"], priority=1000))
        wait_until(lambda: tenant.status("granted").get("phase") in {"Running", "Succeeded"}, 90, "the granted one")
        assert other.status("later").get("phase") == "Queued"
    finally:
        operator.stop()
        OperatorProcess.instances.remove(operator)
        client.CoreV1Api(cluster.api).delete_namespace(modest)
