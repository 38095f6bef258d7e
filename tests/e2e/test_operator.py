"""The operator end to end: GalleryDownloads become Jobs whose real worker fills status and the catalogue."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.parse
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness import build
from gallery_harness.kube import absent, create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_harness.site import image_bytes
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec


def images(site: str, *numbers: int, slow: float = 0) -> list[str]:
    if slow:
        return [f"{site}/slow/{n}.jpg?seconds={slow}" for n in numbers]
    return [f"{site}/img/{n}.jpg" for n in numbers]


def test_download_succeeds_with_catalogue_in_status(cluster: Cluster, downloads: Downloads, site: str) -> None:
    downloads.create("three", pvc_spec(images(site, 1, 2, 3)))
    status = downloads.wait_phase("three", {"Succeeded", "Failed"})
    assert status["phase"] == "Succeeded", status
    assert status["observedGeneration"] == 1
    ready, reconciling, stalled = (downloads.condition("three", k) for k in ("Ready", "Reconciling", "Stalled"))
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    assert reconciling["status"] == "False" and stalled["status"] == "False"
    catalogue = status["catalogue"]
    assert catalogue["items"] == 3
    assert catalogue["bytes"] == 3 * len(image_bytes(1))
    assert catalogue["location"] == "pvc://media/three/.gallery-operator/catalogue.jsonl"
    by_path = {item["path"]: item for item in catalogue["sample"]}
    assert set(by_path) == {"1.jpg", "2.jpg", "3.jpg"}
    assert by_path["2.jpg"]["sha256"] == hashlib.sha256(image_bytes(2)).hexdigest()
    assert by_path["2.jpg"]["contentType"] == "image/jpeg"
    assert status["progress"]["itemsDone"] == 3
    assert status["attempts"] == 1
    assert "kopf" not in status
    [job] = downloads.jobs("three")
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("GalleryDownload", "three", True)
    assert job.spec.template.spec.containers[0].security_context.read_only_root_filesystem is True
    if cluster.local:
        folder = cluster.local.volumes_root / downloads.namespace / "media" / "three"
        assert (folder / "2.jpg").read_bytes() == image_bytes(2)
        records = [
            json.loads(line) for line in (folder / ".gallery-operator" / "catalogue.jsonl").read_text().splitlines()
        ]
        assert sorted(r["path"] for r in records) == ["1.jpg", "2.jpg", "3.jpg"]
    events = (
        client.CoreV1Api(cluster.api)
        .list_namespaced_event(downloads.namespace, field_selector="involvedObject.name=three")
        .items
    )
    assert {"Queued", "JobCreated", "Succeeded"} & {e.reason for e in events}, [e.reason for e in events]
    assert "Succeeded" in {e.reason for e in events}


def test_kubectl_wait_and_printer_columns(cluster: Cluster, downloads: Downloads, site: str) -> None:
    downloads.create("columns", pvc_spec(images(site, 4, 5)))
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", downloads.namespace]
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", "gd/columns", "--timeout=90s"], check=True, capture_output=True
    )
    table = subprocess.run([*kubectl, "get", "gd"], check=True, capture_output=True, text=True).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "ITEMS", "SIZE", "AGE"]
    assert row.split()[:5] == ["columns", "Succeeded", "2", "2", "4.0Ki"]
    # The category `gallery` names both kinds (GalleryDownload and GallerySubscription): kubectl prefixes the kind.
    both = subprocess.run([*kubectl, "get", "gallery"], check=True, capture_output=True, text=True).stdout
    assert "gallerydownload.gallery-operator.dev/columns" in both.split()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"urls": [], "target": {"pvc": {"claimName": "media"}}}, "spec.urls"),
        ({"urls": ["ftp://example.org/a.jpg"], "target": {"pvc": {"claimName": "media"}}}, "http:// or https://"),
        ({"urls": ["https://example.org/a.jpg"], "target": {}}, "exactly one of target.pvc and target.s3"),
        (
            {"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "m"}, "s3": {"bucket": "abc"}}},
            "exactly one of target.pvc and target.s3",
        ),
        (
            {"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"template": {"size": "lots"}}}},
            "spec.target.pvc.template.size",
        ),
        (
            {
                "urls": ["https://example.org/a.jpg"],
                "target": {"pvc": {"claimName": "m"}},
                "options": {"galleryDl": {"sleep-request": "{postprocessors: [{name: exec}]}"}},
            },
            "spec.options.galleryDl.sleep-request",
        ),
        (
            {"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "m"}}, "engine": "wget"},
            "spec.engine",
        ),
    ],
)
def test_bad_specs_are_rejected_at_admission(
    cluster: Cluster, namespace: str, crd: None, spec: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiException) as raised:
        Downloads(cluster.api, namespace).create("bad", spec)
    assert raised.value.status == 422
    assert words in json.loads(raised.value.body)["message"]


def test_engine_options_outside_the_allowlist_are_refused_at_admission(
    cluster: Cluster, namespace: str, crd: None, tmp_path: Any
) -> None:
    """kubectl apply names the refused option; a client that asks for no field validation gets it pruned, so it
    is never stored and never reaches a worker."""
    hostile = {
        "urls": ["https://example.org/a.jpg"],
        "target": {"pvc": {"claimName": "m"}},
        "options": {"galleryDl": {"directlink": "{postprocessors: [{name: exec, command: [sh, -c, id]}]}"}},
    }
    manifest = tmp_path / "hostile.yaml"
    body = {"apiVersion": "gallery-operator.dev/v1alpha1", "kind": "GalleryDownload", "metadata": {"name": "hostile"}}
    manifest.write_text(json.dumps({**body, "spec": hostile}))
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace]
    applied = subprocess.run([*kubectl, "apply", "-f", str(manifest)], capture_output=True, text=True)
    assert applied.returncode != 0
    assert 'unknown field "spec.options.galleryDl.directlink"' in applied.stderr, applied.stderr
    custom = client.CustomObjectsApi(cluster.api)
    args = ("gallery-operator.dev", "v1alpha1", namespace, "gallerydownloads")
    with pytest.raises(ApiException) as raised:
        custom.create_namespaced_custom_object(*args, {**body, "spec": hostile}, field_validation="Strict")
    assert raised.value.status == 400 and "spec.options.galleryDl.directlink" in raised.value.body
    stored = custom.create_namespaced_custom_object(*args, {**body, "spec": hostile})
    assert stored["spec"]["options"].get("galleryDl", {}) == {}
    custom.delete_namespaced_custom_object(*args[:3], args[3], "hostile")


def test_queue_honours_cap_and_priority(downloads: Downloads, site: str) -> None:
    """Cap 2 per namespace: two run, the rest wait in Queued and start by priority, then age."""
    downloads.create("first", pvc_spec(images(site, 11, slow=4)))
    downloads.create("second", pvc_spec(images(site, 12, slow=4)))
    wait_until(
        lambda: all(downloads.status(n).get("phase") == "Running" or downloads.jobs(n) for n in ("first", "second")),
        30,
        "the first two to start",
    )
    downloads.create("low", pvc_spec(images(site, 13, slow=1), priority=-5))
    downloads.create("high", pvc_spec(images(site, 14, slow=1), priority=10))
    for name in ("low", "high"):
        queued = downloads.wait_phase(name, {"Queued"}, timeout=30)
        assert downloads.condition(name, "Reconciling")["reason"] == "Queued"
        assert not downloads.jobs(name)
        assert "position" in queued["message"]
    for name in ("first", "second", "low", "high"):
        assert downloads.wait_phase(name, {"Succeeded", "Failed"}, timeout=120)["phase"] == "Succeeded"
    started = {n: downloads.status(n)["startedAt"] for n in ("high", "low")}
    assert started["high"] <= started["low"], started


def test_spec_change_starts_a_new_run(downloads: Downloads, site: str) -> None:
    downloads.create("changing", pvc_spec(images(site, 21)))
    first = downloads.wait_phase("changing", {"Succeeded"})
    downloads.patch("changing", {"urls": images(site, 21, 22)})
    wait_until(lambda: downloads.status("changing").get("jobName") != first["jobName"], 30, "a new run")
    second = downloads.wait_phase("changing", {"Succeeded"})
    assert second["observedGeneration"] == 2
    assert second["catalogue"]["items"] == 2  # the first run's file is kept and counted once
    wait_until(
        lambda: [j.metadata.name for j in downloads.jobs("changing")] == [second["jobName"]],
        30,
        "the earlier run's Job to be deleted",
    )
    # A field that does not change what is downloaded does not start a run.
    downloads.patch("changing", {"priority": 3})
    wait_until(lambda: downloads.status("changing").get("observedGeneration") == 3, 30, "generation 3 observed")
    assert downloads.status("changing")["jobName"] == second["jobName"]


def test_suspend_and_resume(downloads: Downloads, site: str) -> None:
    downloads.create("paused", pvc_spec(images(site, 31), suspend=True))
    status = downloads.wait_phase("paused", {"Suspended"}, timeout=30)
    assert not downloads.jobs("paused")
    assert status["conditions"][0]["reason"] == "Suspended"
    downloads.patch("paused", {"suspend": False})
    assert downloads.wait_phase("paused", {"Succeeded", "Failed"})["phase"] == "Succeeded"


def test_suspend_stops_a_running_download(downloads: Downloads, site: str) -> None:
    downloads.create("longrun", pvc_spec(images(site, 41, 42, 43, slow=3)))
    wait_until(lambda: downloads.jobs("longrun"), 30, "the Job")
    downloads.patch("longrun", {"suspend": True})
    downloads.wait_phase("longrun", {"Suspended"}, timeout=30)
    wait_until(lambda: downloads.jobs("longrun")[0].spec.suspend is True, 30, "the Job to be suspended")
    downloads.patch("longrun", {"suspend": False})
    assert downloads.wait_phase("longrun", {"Succeeded", "Failed"}, timeout=120)["phase"] == "Succeeded"


def test_a_failing_download_ends_failed_with_its_reason(downloads: Downloads, site: str) -> None:
    downloads.create("missing", pvc_spec([f"{site}/img/does-not-exist.jpg"], backoffLimit=3))
    status = downloads.wait_phase("missing", {"Failed", "Succeeded"})
    assert status["phase"] == "Failed"
    stalled = downloads.condition("missing", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "NotFound")
    assert downloads.condition("missing", "Ready")["status"] == "False"
    assert status["failures"][0]["url"] == f"{site}/img/does-not-exist.jpg"
    assert status["failures"][0]["reason"] == "NotFound"
    # NotFound is permanent: the pod failure policy fails the Job without using the 3 retries.
    assert status["attempts"] == 1


def test_deletion_retains_data_and_collects_the_job(cluster: Cluster, downloads: Downloads, site: str) -> None:
    downloads.create("keepme", pvc_spec(images(site, 51)))
    downloads.wait_phase("keepme", {"Succeeded"})
    batch = client.BatchV1Api(cluster.api)
    job_name = downloads.status("keepme")["jobName"]
    downloads.delete("keepme")

    wait_until(lambda: absent(lambda: downloads.get("keepme")), 30, "the download to be deleted (finalizer released)")
    wait_until(
        lambda: not batch.list_namespaced_job(downloads.namespace, field_selector=f"metadata.name={job_name}").items,
        60,
        "the Job to be garbage-collected",
    )
    if cluster.local:
        assert (cluster.local.volumes_root / downloads.namespace / "media" / "keepme" / "51.jpg").exists()


def test_deletion_policy_delete_removes_the_template_claim(cluster: Cluster, downloads: Downloads, site: str) -> None:
    spec = {"urls": images(site, 61), "target": {"pvc": {"template": {"size": "1Gi"}}}, "deletionPolicy": "Delete"}
    downloads.create("scratchy", spec)
    downloads.wait_phase("scratchy", {"Succeeded"})
    core = client.CoreV1Api(cluster.api)
    assert core.read_namespaced_persistent_volume_claim("scratchy-data", downloads.namespace)
    downloads.delete("scratchy")

    def claim_gone() -> bool:
        claims = core.list_namespaced_persistent_volume_claim(downloads.namespace).items
        return all(c.metadata.name != "scratchy-data" or c.metadata.deletion_timestamp for c in claims)

    wait_until(claim_gone, 60, "the template claim to be deleted")


def test_deletion_policy_delete_removes_files_from_an_existing_claim(
    cluster: Cluster, downloads: Downloads, site: str
) -> None:
    downloads.create("wipe", pvc_spec(images(site, 65, 66), deletionPolicy="Delete"))
    downloads.wait_phase("wipe", {"Succeeded"})
    downloads.create("neighbour", pvc_spec(images(site, 67)))
    downloads.wait_phase("neighbour", {"Succeeded"})
    downloads.delete("wipe")
    wait_until(lambda: absent(lambda: downloads.get("wipe")), 90, "the download and its data to be deleted")
    events = (
        client.CoreV1Api(cluster.api)
        .list_namespaced_event(downloads.namespace, field_selector="involvedObject.name=wipe")
        .items
    )
    assert "DataDeleted" in {e.reason for e in events}
    if cluster.local:
        claim = cluster.local.volumes_root / downloads.namespace / "media"
        assert list((claim / "wipe").iterdir()) == []
        assert (claim / "neighbour" / "67.jpg").exists()  # only this download's folder is touched


def test_operator_restart_mid_flight(downloads: Downloads, operator: OperatorProcess, site: str) -> None:
    downloads.create("survivor", pvc_spec(images(site, 71, 72, slow=3)))
    wait_until(lambda: downloads.jobs("survivor"), 30, "the Job")
    operator.kill()
    operator.start()
    status = downloads.wait_phase("survivor", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded"
    assert status["catalogue"]["items"] == 2
    assert len(downloads.jobs("survivor")) == 1


def test_metrics_count_downloads_by_phase(downloads: Downloads, operator: OperatorProcess, site: str) -> None:
    downloads.create("counted", pvc_spec(images(site, 81)))
    downloads.wait_phase("counted", {"Succeeded"})
    text = operator.metrics()
    assert 'gallery_operator_downloads{phase="Succeeded"}' in text
    assert "gallery_operator_reconcile_duration_seconds_count" in text


def test_samples_pass_admission(cluster: Cluster, namespace: str, crd: None) -> None:
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace]
    result = subprocess.run(
        [*kubectl, "apply", "--dry-run=server", "-f", "manifests/samples/"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("gallerydownload.gallery-operator.dev/") == 4


def test_cookies_from_a_secret_open_a_members_only_page(cluster: Cluster, downloads: Downloads, site: str) -> None:
    host = urllib.parse.urlsplit(site).hostname
    cookies = f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\tsession\tletmein\n"
    client.CoreV1Api(cluster.api).create_namespaced_secret(
        downloads.namespace, {"metadata": {"name": "site-login"}, "stringData": {"cookies.txt": cookies}}
    )
    downloads.create(
        "members",
        pvc_spec([f"{site}/private/301.jpg"], auth={"cookiesSecret": {"name": "site-login", "key": "cookies.txt"}}),
    )
    downloads.create("strangers", pvc_spec([f"{site}/private/302.jpg"]))
    assert downloads.wait_phase("members", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    refused = downloads.wait_phase("strangers", {"Succeeded", "Failed"})
    assert refused["phase"] == "Failed"
    assert downloads.condition("strangers", "Stalled")["reason"] == "Forbidden"
    # The cookie value appears nowhere the operator writes: not in status, not in the Job.
    assert "letmein" not in json.dumps(downloads.get("members"))
    assert "letmein" not in json.dumps(client.ApiClient().sanitize_for_serialization(downloads.jobs("members")))


def test_progress_arrives_while_the_worker_runs(downloads: Downloads, site: str) -> None:
    """The live report channel (not only the final termination message) fills the status."""
    downloads.create("live", pvc_spec(images(site, 501, 502, 503, slow=2)))
    wait_until(lambda: downloads.reports_live("live"), 60, "progress while Running")
    assert downloads.wait_phase("live", {"Succeeded", "Failed"})["phase"] == "Succeeded"


def test_report_endpoint_refuses_strangers(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    import urllib.error
    import urllib.request

    url = operator.report_url
    body = json.dumps({"run": "x"}).encode()
    with pytest.raises(urllib.error.HTTPError) as unauthenticated:
        urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=5)
    assert unauthenticated.value.code == 401
    # A valid token for the operator's audience, but bound to no worker pod of any download.
    token = (
        client.CoreV1Api(cluster.api)
        .create_namespaced_service_account_token(
            "default", namespace, {"spec": {"audiences": ["gallery-operator.dev"]}}
        )
        .status.token
    )
    request = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as stranger:
        urllib.request.urlopen(request, timeout=5)
    assert stranger.value.code == 403


def test_labels_copied_from_a_worker_identify_nothing(
    cluster: Cluster, downloads: Downloads, namespace: str, operator: OperatorProcess, site: str
) -> None:
    """A tenant copies a worker's labels onto a Job and a pod of its own: the Job is neither counted nor deleted, and
    a token bound to the pod cannot report for the download (only a pod controlled by the operator's Job can)."""
    import urllib.error
    import urllib.request

    downloads.create("victim", pvc_spec(images(site, 701, slow=5)))
    wait_until(lambda: downloads.jobs("victim"), 30, "the victim's Job")
    [real] = downloads.jobs("victim")
    labels = dict(real.spec.template.metadata.labels)  # the worker pod's, incl. the Job controller's job-name
    ours = {k: v for k, v in labels.items() if "job-name" not in k and "controller-uid" not in k}
    batch, core = client.BatchV1Api(cluster.api), client.CoreV1Api(cluster.api)
    pod_spec = {"containers": [{"name": "c", "image": "none"}], "nodeName": "nowhere", "restartPolicy": "Never"}
    fake = batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "tenant-job", "labels": ours},
            "spec": {"suspend": True, "template": {"metadata": {"labels": ours}, "spec": pod_spec}},
        },
    )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "tenant-job",
        "uid": fake.metadata.uid,
        "controller": True,
    }
    # Named like a pod of the real Job, so it passes the report gate's look at the token and reaches the TokenReview.
    forged_name = f"{real.metadata.name}-forge"
    pod = core.create_namespaced_pod(
        namespace, {"metadata": {"name": forged_name, "labels": labels, "ownerReferences": [owner]}, "spec": pod_spec}
    )
    bound = {"kind": "Pod", "apiVersion": "v1", "name": forged_name, "uid": pod.metadata.uid}
    token = core.create_namespaced_service_account_token(
        "default", namespace, {"spec": {"audiences": ["gallery-operator.dev"], "boundObjectRef": bound}}
    ).status.token
    run = labels["gallery-operator.dev/run"]
    forged = {"run": run, "final": True, "outcome": "Succeeded", "itemsDone": 999, "message": "forged"}
    request = urllib.request.Request(
        operator.report_url,
        data=json.dumps(forged).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert 'gallery_operator_reports_refused_total{reason="not-a-worker"}' in operator.metrics()
    status = downloads.wait_phase("victim", {"Succeeded", "Failed"})
    assert status["phase"] == "Succeeded" and status["progress"]["itemsDone"] == 1, status
    assert batch.read_namespaced_job("tenant-job", namespace).metadata.deletion_timestamp is None


def test_a_namespaced_operator_leaves_other_namespaces_alone(
    cluster: Cluster, crd: None, namespace: str, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    other = f"{namespace}-other"
    create_namespace(cluster.api, other)
    scoped = operator_for(
        cluster,
        tmp_path / "operator.log",
        {"GALLERY_OPERATOR_NAMESPACES": namespace, "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true"},
    )
    try:
        scoped.start()
        for name in (namespace, other):
            create_claim(cluster.api, name)
            Downloads(cluster.api, name).create("scoped", pvc_spec(images(site, 601)))
        watched, ignored = Downloads(cluster.api, namespace), Downloads(cluster.api, other)
        assert watched.wait_phase("scoped", {"Succeeded", "Failed"})["phase"] == "Succeeded"
        time.sleep(2)  # time enough for an operator that did watch it to write a status
        untouched = ignored.status("scoped")  # only the CRD's defaults: never observed, no conditions
        assert untouched.get("observedGeneration") == 0 and not untouched.get("conditions"), untouched
        assert ignored.jobs("scoped") == []
    finally:
        scoped.stop()
        OperatorProcess.instances.remove(scoped)
        client.CoreV1Api(cluster.api).delete_namespace(other)


def test_egress_rules_refuse_a_download_before_any_job(
    cluster: Cluster, crd: None, namespace: str, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    guarded = operator_for(
        cluster,
        tmp_path / "operator.log",
        {
            "GALLERY_OPERATOR_NAMESPACES": namespace,
            "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true",
            "GALLERY_OPERATOR_DENIED_DOMAINS": "blocked.test",
        },
    )
    try:
        guarded.start()
        create_claim(cluster.api, namespace)
        downloads = Downloads(cluster.api, namespace)
        downloads.create("refused", pvc_spec([*images(site, 611), "https://cdn.blocked.test/a.jpg"]))
        downloads.create("allowed", pvc_spec(images(site, 612)))
        status = downloads.wait_phase("refused", {"Succeeded", "Failed"})
        assert status["phase"] == "Failed"
        assert status["failures"] == [
            {
                "reason": "Blocked",
                "url": "https://cdn.blocked.test/a.jpg",
                "message": "blocked by egress rules: cdn.blocked.test is on the denied list",
            }
        ]
        assert downloads.condition("refused", "Stalled")["status"] == "True"
        assert downloads.condition("refused", "Ready")["reason"] == "Blocked"
        assert downloads.jobs("refused") == []
        assert downloads.wait_phase("allowed", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    finally:
        guarded.stop()
        OperatorProcess.instances.remove(guarded)


def test_the_s3_endpoint_and_numeric_addresses_are_refused_before_any_job(
    cluster: Cluster, crd: None, namespace: str, no_local_operator: None, tmp_path: Any
) -> None:
    """The S3 endpoint passes the egress rules like a URL (unless the operator lists it as private), and an address
    written in any numeric form is the address it spells."""
    guarded = operator_for(
        cluster,
        tmp_path / "operator.log",
        {
            "GALLERY_OPERATOR_NAMESPACES": namespace,
            "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "false",
            "GALLERY_OPERATOR_S3_PRIVATE_ENDPOINTS": "http://10.0.0.7:9000",
        },
    )

    def s3_spec(endpoint: str, **extra: Any) -> dict[str, Any]:
        target = {"s3": {"bucket": "media", "endpoint": endpoint, "forcePathStyle": True}}
        return {"urls": ["https://example.org/a.jpg"], "target": target, **extra}

    try:
        guarded.start()
        downloads = Downloads(cluster.api, namespace)
        downloads.create("metadata", s3_spec("http://169.254.169.254"))
        downloads.create("loopback", s3_spec("http://2130706433:9000"))
        downloads.create("numeric", pvc_spec(["http://0x7f.1/a.jpg"]))
        downloads.create("listed", s3_spec("http://10.0.0.7:9000", suspend=True))
        expected = {
            "metadata": ("http://169.254.169.254", "spec.target.s3.endpoint: blocked by egress rules: 169.254.169.254"),
            "loopback": ("http://2130706433:9000", "127.0.0.1 is not a public address"),
            "numeric": ("http://0x7f.1/a.jpg", "127.0.0.1 is not a public address"),
        }
        for name, (url, words) in expected.items():
            status = downloads.wait_phase(name, {"Succeeded", "Failed"})
            [failure] = status["failures"]
            assert (failure["reason"], failure["url"]) == ("Blocked", url) and words in failure["message"], failure
            assert downloads.jobs(name) == []
        assert downloads.wait_phase("listed", {"Suspended", "Failed"})["phase"] == "Suspended"
    finally:
        guarded.stop()
        OperatorProcess.instances.remove(guarded)


def test_namespace_annotations_tighten_the_egress_rules(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str
) -> None:
    parts = urllib.parse.urlsplit(site)
    annotations = {"gallery-operator.dev/allowed-domains": parts.hostname}
    client.CoreV1Api(cluster.api).patch_namespace(namespace, {"metadata": {"annotations": annotations}})
    time.sleep(2)  # time for the operator's namespace watch (milliseconds, normally)
    downloads.create("outside", pvc_spec([f"http://127.0.0.2:{parts.port}/img/621.jpg"]))
    downloads.create("inside", pvc_spec(images(site, 622)))
    outside = downloads.wait_phase("outside", {"Succeeded", "Failed"})
    assert outside["phase"] == "Failed" and downloads.jobs("outside") == []
    assert outside["failures"][0]["reason"] == "Blocked"
    assert "127.0.0.2 is not on the allowed list" in outside["failures"][0]["message"]
    assert downloads.wait_phase("inside", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    [job] = downloads.jobs("inside")
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert json.loads(env["GALLERY_WORKER_CONFIG"])["egress"]["allowedDomains"] == [parts.hostname]


def test_termination_messages_come_only_from_pods_the_job_controls(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback for a final report reads pods by the Job's uid, not by the `job-name` label anyone can copy; a
    container that ended without a message (killed) is listed too, with its pod's uid, so a later pod's silence is
    not taken for an earlier pod's last word."""
    from gallery_operator import kube

    monkeypatch.setattr(kube, "api", lambda: cluster.api)
    kube.forget_clients()
    batch, core = client.BatchV1Api(cluster.api), client.CoreV1Api(cluster.api)
    pod_spec = {"containers": [{"name": "worker", "image": "none"}], "nodeName": "nowhere", "restartPolicy": "Never"}
    job = batch.create_namespaced_job(
        namespace, {"metadata": {"name": "ended"}, "spec": {"suspend": True, "template": {"spec": pod_spec}}}
    )
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "ended", "uid": job.metadata.uid, "controller": True}
    uids = {}
    for name, owners, started in (
        ("real", [owner], "2026-01-01T00:00:00Z"),
        ("copied-label", [], "2026-01-01T00:00:00Z"),
        ("killed", [owner], "2026-01-01T00:01:00Z"),
    ):
        meta = {"name": name, "labels": {"job-name": "ended"}, "ownerReferences": owners}
        uids[name] = core.create_namespaced_pod(namespace, {"metadata": meta, "spec": pod_spec}).metadata.uid
        terminated: dict[str, Any] = {"exitCode": 0, "startedAt": started}
        if name != "killed":
            terminated["message"] = json.dumps({"run": name})
        status = {
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": "none",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ]
        }
        core.patch_namespaced_pod_status(name, namespace, {"status": status})
    try:
        messages = kube.termination_messages(namespace, "ended", job.metadata.uid)
    finally:
        kube.forget_clients()
    assert [(pod, json.loads(message)["run"] if message else "") for _, pod, message in messages] == [
        (uids["real"], "real"),
        (uids["killed"], ""),
    ]


def test_specs_at_the_schema_limits_run_or_fail_naming_the_field(
    cluster: Cluster, downloads: Downloads, site: str
) -> None:
    """Every spec the API server admits starts a worker or ends Failed (InvalidSpec) with the field named: at the
    maxima of the schema, with values a Job or claim cannot take, and never retried forever."""
    longest = [f"{site}/img/{n}.jpg?pad=" + "a" * (32768 // 100 - len(site) - 20) for n in range(801, 901)]
    assert sum(len(u) for u in longest) <= 32768
    downloads.create("maxima", pvc_spec(longest, limits={"maxItems": 1}))
    with pytest.raises(ApiException) as too_long:
        downloads.create("too-long", pvc_spec([*longest[:-1], longest[-1] + "a" * 400]))
    assert too_long.value.status == 422 and "at most 32768 characters" in too_long.value.body
    downloads.create("request-above-limit", pvc_spec(images(site, 902), resources={"requests": {"memory": "1Gi"}}))
    bad_class = {"pvc": {"template": {"size": "1Gi", "storageClassName": "Not_A_Name"}}}
    downloads.create("refused-claim", {**pvc_spec(images(site, 903)), "target": bad_class})
    assert downloads.wait_phase("maxima", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    for name, words in (
        ("request-above-limit", "spec.resources.requests.memory: 1Gi is more than the limit 512Mi"),
        ("refused-claim", "the API server refused the worker's claim"),
    ):
        status = downloads.wait_phase(name, {"Succeeded", "Failed"}, timeout=30)
        ready = downloads.condition(name, "Ready")
        assert (status["phase"], ready["reason"]) == ("Failed", "InvalidSpec"), status
        assert words in ready["message"], ready["message"]
        assert downloads.jobs(name) == []
