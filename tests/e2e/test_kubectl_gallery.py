"""`kubectl gallery` on the local control plane, found and run by the real kubectl as a plugin.

The catalogue of a claim is read by the plugin's short-lived reader pod (under a namespace that enforces the
restricted Pod Security profile, so the API server checks the pod), the catalogue of an S3 target with the
download's own credentials Secret; no reader pod is left behind, also when the plugin is interrupted while its pod
runs. A user with fewer rights gets an error that names the missing right."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness import build
from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec

pytestmark = pytest.mark.e2e

READER = f"{API_GROUP}/catalogue-reader"


def kubectl_gallery(
    kubeconfig: Path, namespace: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`kubectl gallery ...` as a user runs it: kubectl finds the console script kubectl-gallery on PATH."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    command = [str(build.binary("kubectl")), "gallery", "-n", namespace, *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def reader_pods(cluster: Cluster, namespace: str) -> list[str]:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(namespace, label_selector=READER).items
    return [p.metadata.name for p in pods]


def enforce_restricted(cluster: Cluster, namespace: str) -> None:
    """The namespace enforces the restricted Pod Security profile: a pod short of it is refused (checked here)."""
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core = client.CoreV1Api(cluster.api)
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    plain = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]}}
    refusals: list[ApiException] = []

    def refused() -> bool:
        # Pod Security admission reads the namespace's labels from the API server's informer cache, so the patch
        # takes effect a moment later; until then the dry run is admitted (and creates nothing).
        try:
            core.create_namespaced_pod(namespace, plain, dry_run="All")
        except ApiException as error:
            refusals.append(error)
            return True
        return False

    wait_until(refused, 30, "the restricted profile to be enforced")
    assert refusals[-1].status == 403
    assert 'violates PodSecurity "restricted:latest"' in json.loads(refusals[-1].body)["message"]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_catalogue_of_a_claim_through_a_restricted_reader_pod(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str
) -> None:
    downloads.create("album", pvc_spec([f"{site}/img/{n}.jpg" for n in (301, 302, 303)]))
    status = downloads.wait_phase("album", {"Succeeded", "Failed"})
    assert status["phase"] == "Succeeded", status
    enforce_restricted(cluster, namespace)  # from here, a pod that is not restricted is refused

    records = json_lines(kubectl_gallery(cluster.kubeconfig, namespace, "catalogue", "album", "-o", "json").stdout)
    assert reader_pods(cluster, namespace) == []
    sample = {item["path"]: item["sha256"] for item in status["catalogue"]["sample"]}
    assert {r["path"]: r["sha256"] for r in records} == sample
    assert len(records) == status["catalogue"]["items"] == 3

    table = kubectl_gallery(cluster.kubeconfig, namespace, "catalogue", "album").stdout.splitlines()
    assert table[0].split() == ["PATH", "SIZE", "TYPE", "SHA256", "SOURCE"]
    assert sorted(line.split()[0] for line in table[1:]) == sorted(sample)
    assert all(f"{site}/img/" in line for line in table[1:])
    assert reader_pods(cluster, namespace) == []


def test_catalogue_of_an_s3_target_with_the_downloads_own_secret(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, s3_server: Any
) -> None:
    s3_server.client().create_bucket(Bucket="plugin")
    keys = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    client.CoreV1Api(cluster.api).create_namespaced_secret(namespace, {"metadata": {"name": "s3"}, "stringData": keys})
    target = {
        "bucket": "plugin",
        "endpoint": s3_server.endpoint,
        "forcePathStyle": True,
        "credentialsSecret": {"name": "s3"},
    }
    downloads.create("stored", {"urls": [f"{site}/img/311.jpg", f"{site}/img/312.jpg"], "target": {"s3": target}})
    status = downloads.wait_phase("stored", {"Succeeded", "Failed"})
    assert status["phase"] == "Succeeded", status

    records = json_lines(kubectl_gallery(cluster.kubeconfig, namespace, "catalogue", "stored", "-o", "json").stdout)
    assert {r["path"]: r["size"] for r in records} == {i["path"]: i["size"] for i in status["catalogue"]["sample"]}
    assert len(records) == 2
    assert reader_pods(cluster, namespace) == []  # S3 needs no pod

    # Read as the worker reads it (review): a record whose text holds U+2028 is one line, a line cut inside a
    # character is skipped (the plugin failed on both, on every call, where the worker went on).
    s3 = s3_server.client()
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket="plugin")["Contents"] if o["Key"].endswith("catalogue.jsonl")]
    body = s3.get_object(Bucket="plugin", Key=key)["Body"].read()
    separated = {**records[0], "path": "separated.jpg", "metadata": {"title": "one\u2028two"}}
    cut = '{"path": "caf\u00e9'.encode()[:-1]
    s3.put_object(
        Bucket="plugin", Key=key, Body=body + json.dumps(separated, ensure_ascii=False).encode() + b"\n" + cut
    )
    result = kubectl_gallery(cluster.kubeconfig, namespace, "catalogue", "stored", "-o", "json")
    assert sorted(r["path"] for r in json_lines(result.stdout)) == sorted(
        [*(r["path"] for r in records), "separated.jpg"]
    )
    assert "skipped 1 catalogue lines that hold no record" in result.stderr


def make_fifo_catalogue(cluster: Cluster, namespace: str, name: str) -> None:
    """A catalogue that is a named pipe nobody writes: the reader pod's `cat` blocks, so the pod keeps running."""
    folder = cluster.require_local().volumes_root / namespace / "media" / name / ".gallery-operator"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "catalogue.jsonl")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_catalogue_leaves_no_pod(
    cluster: Cluster, downloads: Downloads, namespace: str, stop: signal.Signals
) -> None:
    downloads.create("waiting", pvc_spec(["https://example.org/a.jpg"], suspend=True))
    make_fifo_catalogue(cluster, namespace, "waiting")
    # faulthandler: a plugin that does not end is made to print every thread's stack (SIGABRT) for the report.
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONFAULTHANDLER": "1"}
    plugin = subprocess.Popen(
        [str(Path(sys.executable).parent / "kubectl-gallery"), "-n", namespace, "catalogue", "waiting"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    core = client.CoreV1Api(cluster.api)

    def reader_running() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=READER).items
        return bool(pods) and pods[0].status.phase == "Running"

    try:
        wait_until(reader_running, 60, "the reader pod to run")
        plugin.send_signal(stop)
        try:
            _, stderr = plugin.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            plugin.send_signal(signal.SIGABRT)
            pytest.fail(f"the plugin did not end 60 s after {stop.name}; its stacks:\n{plugin.communicate()[1]}")
    finally:
        plugin.kill()
    assert plugin.returncode == 130, stderr
    assert "interrupted" in stderr
    assert reader_pods(cluster, namespace) == []


@pytest.fixture
def restricted_user(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig of a ServiceAccount that may only read GalleryDownloads in the test namespace."""
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rule = {"apiGroups": [API_GROUP], "resources": ["gallerydownloads"], "verbs": ["get", "list"]}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": [rule]})
    binding = {
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    rbac.create_namespaced_role_binding(namespace, binding)
    token = core.create_namespaced_service_account_token("reader", namespace, {"spec": {"expirationSeconds": 3600}})
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": config["users"][0]["name"], "user": {"token": token.status.token}}]
    path = tmp_path / "reader.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield path


def test_a_user_without_the_right_gets_an_error_naming_it(
    cluster: Cluster, downloads: Downloads, namespace: str, site: str, restricted_user: Path
) -> None:
    downloads.create("missing", pvc_spec([f"{site}/img/does-not-exist.jpg"]))
    downloads.wait_phase("missing", {"Failed", "Succeeded"})

    status = kubectl_gallery(restricted_user, namespace, "status", "missing").stdout
    assert "Phase:      Failed" in status
    assert "NotFound" in status and f"{site}/img/does-not-exist.jpg" in status

    refused = kubectl_gallery(restricted_user, namespace, "catalogue", "missing", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"kubectl-gallery: you may not create pods in namespace {namespace} (RBAC); ask for `create` on pods there"
    )
    assert "Traceback" not in refused.stderr
    other = kubectl_gallery(restricted_user, "default", "status", "missing", check=False)
    assert other.stderr.strip() == (
        "kubectl-gallery: you may not get gallerydownloads in namespace default (RBAC);"
        " ask for `get` on gallerydownloads there"
    )
    assert reader_pods(cluster, namespace) == []


def test_status_shows_the_queue_position(cluster: Cluster, downloads: Downloads, namespace: str, site: str) -> None:
    # The session's operator runs two downloads per namespace: the third waits.
    for number, name in enumerate(("first", "second", "third"), 321):
        downloads.create(name, pvc_spec([f"{site}/slow/{number}.jpg?seconds=30"]))
        wait_until(lambda: downloads.status(name).get("phase") in ("Running", "Queued"), 60, f"{name} admitted")  # noqa: B023
    wait_until(lambda: downloads.status("third").get("queuePosition") == 1, 60, "third to be first in the queue")
    shown = kubectl_gallery(cluster.kubeconfig, namespace, "status", "third").stdout
    assert "Phase:      Queued" in shown
    assert "Queue:      position 1, since " in shown
    running = kubectl_gallery(cluster.kubeconfig, namespace, "status", "first").stdout
    assert "Phase:      Running" in running and "Job:        " in running
    for name in ("first", "second", "third"):
        downloads.delete(name)


def test_a_download_that_does_not_exist_is_named(cluster: Cluster, namespace: str, crd: None) -> None:
    result = kubectl_gallery(cluster.kubeconfig, namespace, "catalogue", "nothing", check=False)
    assert (result.returncode, result.stderr.strip()) == (
        1,
        f"kubectl-gallery: gallerydownload 'nothing' not found in namespace {namespace}",
    )


def test_sync_requests_a_subscription_run(cluster: Cluster, namespace: str, crd: None) -> None:
    """`sync` sets the on-demand annotation on a real GallerySubscription (the committed CRD, suspended so that no
    operator acts on it here); a missing one is named."""
    custom = client.CustomObjectsApi(cluster.api)
    template = {"urls": ["https://example.org/gallery"], "target": {"pvc": {"claimName": "media"}}}
    body = {
        "apiVersion": f"{API_GROUP}/v1alpha1",
        "kind": "GallerySubscription",
        "metadata": {"name": "weekly"},
        "spec": {"interval": "168h", "suspend": True, "downloadTemplate": template},
    }
    custom.create_namespaced_custom_object(API_GROUP, "v1alpha1", namespace, "gallerysubscriptions", body)
    result = kubectl_gallery(cluster.kubeconfig, namespace, "sync", "weekly")
    stored = custom.get_namespaced_custom_object(API_GROUP, "v1alpha1", namespace, "gallerysubscriptions", "weekly")
    stamp = stored["metadata"]["annotations"][f"{API_GROUP}/requested-at"]
    assert result.stdout.strip() == f"gallerysubscription weekly: run requested ({API_GROUP}/requested-at={stamp})"
    again = kubectl_gallery(cluster.kubeconfig, namespace, "sync", "weekly")
    restamped = custom.get_namespaced_custom_object(API_GROUP, "v1alpha1", namespace, "gallerysubscriptions", "weekly")
    assert again.returncode == 0 and restamped["metadata"]["annotations"][f"{API_GROUP}/requested-at"] != stamp
    missing = kubectl_gallery(cluster.kubeconfig, namespace, "sync", "monthly", check=False)
    assert (
        missing.stderr.strip() == f"kubectl-gallery: gallerysubscription 'monthly' not found in namespace {namespace}"
    )


def test_the_node_agent_serves_logs_to_certified_clients_only(cluster: Cluster) -> None:
    """The agent's kubelet port (what pods/log reads through the API server) answers only clients with a certificate
    of the cluster's CA, and only the containerLogs path."""
    local = cluster.require_local()
    if local.real_node:
        pytest.skip("a real kubelet serves the logs")
    assert local.pki is not None
    node = client.CoreV1Api(cluster.api).list_node().items[0]
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    assert port > 0
    url = f"https://127.0.0.1:{port}/containerLogs/default/nothing/c"
    anonymous = ssl.create_default_context(cafile=str(local.pki.ca.cert))
    anonymous.check_hostname = False
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, context=anonymous, timeout=5).read()
    certified = ssl.create_default_context(cafile=str(local.pki.ca.cert))
    certified.check_hostname = False
    certified.load_cert_chain(str(local.pki.admin.cert), str(local.pki.admin.key))
    for path in ("/containerLogs/default/nothing/c", "/containerLogs/../../etc/passwd", "/pods"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=certified, timeout=5)
        assert missing.value.code == 404
