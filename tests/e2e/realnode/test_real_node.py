"""The worker pod as the operator builds it, run by a real kubelet from the project's image (make test-real-node).

These tests read what the container runtime was told to enforce (the OCI spec runc ran, from containerd) and what
the containers did (files on the claim, objects in S3, status written from reports or the termination message).
The lifecycle tests in test_operator.py run in the same session on the same node.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from gallery_harness.kube import create_claim
from gallery_harness.procs import wait_until
from gallery_harness.realnode import RealNode
from gallery_harness.site import Handler
from gallery_operator.jobs import WORKER_CONTAINER
from gallery_operator.networkpolicy import POLICY_NAME
from gallery_operator.workerconfig import DATA_MOUNT, SCRATCH_MOUNT, TOKEN_MOUNT
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec
from tests.e2e.realnode.node_parts import chart_operator, chart_values

WORKER_UID = 65532
# Mounts kubelet itself gives every container, writable by design (the pod's own hosts file, DNS, the termination
# message file) and the runtime's standard ones.
KUBELET_WRITABLE = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/termination-log", "/dev/shm"}


@pytest.fixture
def node(cluster: Cluster) -> RealNode:
    real_node = cluster.local.real_node if cluster.local else None
    assert real_node is not None, "run with GALLERY_E2E_NODE=kubelet (make test-real-node)"
    return real_node


def worker_pods(downloads: Downloads, name: str) -> list[client.V1Pod]:
    [job] = downloads.jobs(name)
    pods = client.CoreV1Api(downloads.api).list_namespaced_pod(downloads.namespace).items
    return [p for p in pods if any(o.uid == job.metadata.uid for o in p.metadata.owner_references or [])]


def container_id(pod: client.V1Pod) -> str:
    """containerd's id of the pod's (only) container."""
    [status] = pod.status.container_statuses
    return str(status.container_id).removeprefix("containerd://")


def container_spec(node: RealNode, pod: client.V1Pod) -> dict[str, Any]:
    """The OCI runtime spec containerd handed to runc for the pod's container."""
    info = json.loads(node.ctr("containers", "info", container_id(pod)).stdout)
    spec: dict[str, Any] = info["Spec"]
    return spec


def test_the_worker_pod_runs_confined_as_the_operator_builds_it(
    cluster: Cluster, node: RealNode, downloads: Downloads, site: str
) -> None:
    downloads.create("confined", pvc_spec([f"{site}/img/{n}.jpg" for n in (401, 402)]))
    status = downloads.wait_phase("confined", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    [pod] = worker_pods(downloads, "confined")
    assert pod.spec.containers[0].image == node.images["project"].ref
    spec = container_spec(node, pod)

    user = spec["process"]["user"]
    assert (user["uid"], user["gid"]) == (WORKER_UID, WORKER_UID)
    assert spec["root"]["readonly"] is True
    assert spec["process"]["noNewPrivileges"] is True
    assert {k: v for k, v in spec["process"]["capabilities"].items() if v} == {}
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"  # RuntimeDefault, not unconfined

    mounts = {m["destination"]: m for m in spec["mounts"]}
    writable = {d for d, m in mounts.items() if m["type"] == "bind" and "ro" not in m.get("options", [])}
    assert writable - KUBELET_WRITABLE == {SCRATCH_MOUNT, DATA_MOUNT}
    assert "ro" in mounts[TOKEN_MOUNT]["options"]
    assert not any(d.startswith("/var/run/secrets/kubernetes.io") for d in mounts)  # no API token

    # What the container wrote, it wrote as the worker's user.
    folder = cluster.require_local().volumes_root / downloads.namespace / "media" / "confined"
    stored = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert stored == ["401.jpg", "402.jpg"]
    assert {(folder / name).stat().st_uid for name in stored} == {WORKER_UID}


def test_a_sigkilled_worker_is_retried_and_resumes(
    cluster: Cluster, node: RealNode, downloads: Downloads, site: str
) -> None:
    urls = [f"{site}/slow/{n}.jpg?seconds=2" for n in (411, 412, 413, 414)]
    downloads.create("killed", {**pvc_spec(urls), "backoffLimit": 2})
    folder = cluster.require_local().volumes_root / downloads.namespace / "media" / "killed"
    wait_until((folder / "411.jpg").exists, 60, "the first item on the claim")
    [pod] = worker_pods(downloads, "killed")
    node.ctr("tasks", "kill", "--signal=SIGKILL", container_id(pod))

    status = downloads.wait_phase("killed", {"Succeeded", "Failed"}, timeout=180)
    assert status["phase"] == "Succeeded", status
    assert status["catalogue"]["items"] == 4
    pods = worker_pods(downloads, "killed")
    assert sorted(p.status.phase for p in pods) == ["Failed", "Succeeded"]
    [killed] = [p for p in pods if p.status.phase == "Failed"]
    assert killed.status.container_statuses[0].state.terminated.exit_code == 137
    assert Handler.hits["/slow/411.jpg"] == 1  # the retry kept what the killed pod stored


def test_the_termination_message_reaches_status_when_reports_cannot(
    cluster: Cluster, node: RealNode, namespace: str, site: str, no_local_operator: None, tmp_path: Path
) -> None:
    """With the report endpoint out of the pods' reach (the host's loopback), the final status still arrives: from
    the termination message kubelet read from the container's file."""
    unreachable = operator_for(cluster, tmp_path / "operator.log", {"GALLERY_OPERATOR_NAMESPACES": namespace})
    unreachable.report_host = "127.0.0.1"
    try:
        unreachable.start()
        create_claim(cluster.api, namespace)
        downloads = Downloads(cluster.api, namespace)
        downloads.create("unheard", pvc_spec([f"{site}/img/{n}.jpg" for n in (421, 422, 423)]))
        status = downloads.wait_phase("unheard", {"Succeeded", "Failed"}, timeout=180)
    finally:
        unreachable.stop()
        type(unreachable).instances.remove(unreachable)
    assert status["phase"] == "Succeeded", status
    assert status["catalogue"]["items"] == 3
    [pod] = worker_pods(downloads, "unheard")
    message = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert (message["final"], message["catalogueItems"]) == (True, 3)


def test_ffmpeg_post_processing_runs_inside_the_image(cluster: Cluster, downloads: Downloads, site: str) -> None:
    """yt-dlp fetches an HLS stream of real video with its own downloader, then has the image's ffmpeg remux the
    MPEG-TS into MP4."""
    downloads.create("remuxed", pvc_spec([f"{site}/hls/real.m3u8"]))
    status = downloads.wait_phase("remuxed", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    folder = cluster.require_local().volumes_root / downloads.namespace / "media" / "remuxed"
    [video] = [p for p in folder.iterdir() if p.is_file()]
    assert video.suffix == ".mp4"
    assert video.read_bytes()[4:8] == b"ftyp"  # an MP4 container, not the MPEG-TS bytes the site served


def test_an_s3_target_from_a_real_pod(cluster: Cluster, downloads: Downloads, site: str, s3_server: Any) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="real-node")
    client.CoreV1Api(cluster.api).create_namespaced_secret(
        downloads.namespace,
        {
            "metadata": {"name": "s3-keys"},
            "stringData": {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key},
        },
    )
    assert urllib.parse.urlsplit(s3_server.endpoint).hostname == cluster.service_host
    target = {
        "s3": {
            "bucket": "real-node",
            "prefix": "dl",
            "endpoint": s3_server.endpoint,
            "forcePathStyle": True,
            "credentialsSecret": {"name": "s3-keys"},
        }
    }
    downloads.create("uploaded", {"urls": [f"{site}/img/{n}.jpg" for n in (431, 432)], "target": target})
    status = downloads.wait_phase("uploaded", {"Succeeded", "Failed"}, timeout=120)
    assert status["phase"] == "Succeeded", status
    root = f"{downloads.namespace}/dl/"  # a spec's prefix lives under its namespace
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="real-node", Prefix=root)["Contents"]}
    assert {f"{root}431.jpg", f"{root}432.jpg", f"{root}.gallery-operator/catalogue.jsonl"} <= keys


def test_the_chart_runs_the_operator_from_the_image(
    cluster: Cluster, node: RealNode, crd: None, namespace: str, site: str, no_local_operator: None
) -> None:
    """The image's other entrypoint: the chart's Deployment, unmodified, runs `python -m gallery_operator` from the
    project's image under the chart's security context and RBAC, in its own pod network: it reaches the API server
    through the `kubernetes` Service (kube-proxy) and reconciles a download whose worker runs from the same image and
    reports through the chart's Service name (cluster DNS, then kube-proxy to the operator's pod), behind the
    NetworkPolicy the operator keeps in the download's namespace and the chart's report-port policy (the fixture site
    is a private address on the bridge: the test allows private networks, to the guard and the policy alike)."""
    local = cluster.require_local()
    values = chart_values(node, namespace)
    with chart_operator(cluster, values, f"{namespace}-system") as chart:
        [deployment] = [d for d in chart.documents if d["kind"] == "Deployment"]
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        report_url = f"http://{chart.service_host}:{chart.report_port}/report"
        assert env["GALLERY_OPERATOR_REPORT_URL"] == report_url  # the chart's default: its Service's name
        assert "hostNetwork" not in deployment["spec"]["template"]["spec"]
        create_claim(cluster.api, namespace)
        downloads = Downloads(cluster.api, namespace)
        downloads.create("charted", pvc_spec([f"{site}/img/{n}.jpg" for n in (441, 442)]))
        status = downloads.wait_phase("charted", {"Succeeded", "Failed"}, timeout=120)
        assert status["phase"] == "Succeeded", status
        assert status["catalogue"]["items"] == 2
        # The operator made the namespace's worker policy itself (before the Job: tests/e2e/test_network_policy.py).
        policy = client.NetworkingV1Api(cluster.api).read_namespaced_network_policy(POLICY_NAME, namespace)
        assert policy.spec.pod_selector.match_labels
        [operator_pod] = client.CoreV1Api(cluster.api).list_namespaced_pod(chart.release_namespace).items
        spec = container_spec(node, operator_pod)
        assert spec["process"]["user"]["uid"] == WORKER_UID
        assert spec["root"]["readonly"] is True
        assert spec["process"]["args"][:3] == ["python", "-m", "gallery_operator"]
        logs = local.workdir / "node" / "pod-logs"
        text = "".join(p.read_text() for p in logs.glob(f"{chart.release_namespace}_*/operator/*.log"))
        assert "forbidden" not in text.lower(), text[-3000:]
        # Every report the worker posted to the Service name was answered 2xx (a failed post logs this warning).
        [worker_log] = list(logs.glob(f"{namespace}_*/{WORKER_CONTAINER}/*.log"))
        assert worker_log.read_text(), "the worker logged nothing"
        assert "cannot report progress" not in worker_log.read_text(), worker_log.read_text()[-3000:]
