"""The test cluster behaves like Kubernetes where this project relies on it.

Runs on the harness's local control plane (then also checks node-agent details such as the claim folder on
disk) or on any cluster named by KUBECONFIG.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gallery_harness import build
from gallery_harness.kube import absent, create_claim
from gallery_harness.procs import wait_until
from tests.conftest import Cluster

IMAGE = "python:3.13-slim"  # what a real node would pull; the local node agent ignores images


def python_pod_spec(script: str, **extra: Any) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "command": ["python", "-c", script]}
    container |= extra.pop("container", {})
    return {"restartPolicy": "Never", "containers": [container], **extra}


def job(name: str, pod_spec: dict[str, Any], backoff_limit: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": pod_spec}},
    }


def job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> str | None:
    status = batch.read_namespaced_job_status(name, namespace).status
    for condition in status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def wait_pod_phase(core: client.CoreV1Api, namespace: str, name: str, phases: set[str], timeout: float = 60) -> Any:
    wait_until(
        lambda: core.read_namespaced_pod(name, namespace).status.phase in phases,
        timeout,
        what=f"pod {phases}",
    )
    return core.read_namespaced_pod(name, namespace)


def test_version_is_stamped(cluster: Cluster) -> None:
    info = client.VersionApi(cluster.api).get_code()
    assert info.git_version.startswith("v1.")
    if cluster.local:
        assert info.git_version == build.KUBERNETES_VERSION
        assert (info.major, info.minor) == ("1", "34")


def test_job_writes_into_pvc_and_completes(cluster: Cluster, namespace: str) -> None:
    batch = client.BatchV1Api(cluster.api)
    create_claim(cluster.api, namespace, "data")
    script = "open('/data/out/hello.txt', 'w').write('hello from a pod')"
    spec = python_pod_spec(
        script,
        container={"volumeMounts": [{"name": "data", "mountPath": "/data/out", "subPath": "run-1"}]},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    batch.create_namespaced_job(namespace, job("writer", spec))
    wait_until(lambda: job_condition(batch, namespace, "writer"), 90, what="Job writer to finish")
    assert job_condition(batch, namespace, "writer") == "Complete"
    assert batch.read_namespaced_job_status("writer", namespace).status.succeeded == 1
    if cluster.local:
        written = cluster.local.volumes_root / namespace / "data" / "run-1" / "hello.txt"
        assert written.read_text() == "hello from a pod"


def test_failing_pod_fails_job_after_backoff_limit(cluster: Cluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(cluster.api), client.CoreV1Api(cluster.api)
    batch.create_namespaced_job(namespace, job("failer", python_pod_spec("raise SystemExit(3)"), backoff_limit=1))
    wait_until(lambda: job_condition(batch, namespace, "failer"), 120, what="Job failer to finish")
    status = batch.read_namespaced_job_status("failer", namespace).status
    assert job_condition(batch, namespace, "failer") == "Failed"
    assert status.failed == 2
    reasons = {c.reason for c in status.conditions if c.type == "Failed"}
    assert reasons == {"BackoffLimitExceeded"}
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=failer").items
    codes = sorted(p.status.container_statuses[0].state.terminated.exit_code for p in pods)
    assert codes == [3, 3]


def test_deleting_owner_collects_children(cluster: Cluster, namespace: str) -> None:
    core, batch = client.CoreV1Api(cluster.api), client.BatchV1Api(cluster.api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [reference]}})
    core.delete_namespaced_config_map("owner", namespace)

    wait_until(
        lambda: absent(lambda: core.read_namespaced_config_map("child", namespace)),
        60,
        what="garbage collection of the child ConfigMap",
    )

    # A Job's pods go with it (background propagation through the garbage collector).
    spec = python_pod_spec("import time; time.sleep(600)")
    batch.create_namespaced_job(namespace, job("sleeper", spec))
    wait_until(
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=sleeper").items,
        60,
        what="the sleeper pod",
    )
    batch.delete_namespaced_job("sleeper", namespace, propagation_policy="Background")
    wait_until(
        lambda: not core.list_namespaced_pod(namespace, label_selector="job-name=sleeper").items,
        60,
        what="the sleeper pod to be collected",
    )


def test_rbac_allows_only_what_a_role_grants(cluster: Cluster, namespace: str) -> None:
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "narrow"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "mine"}, "data": {"k": "v"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "secret"}, "stringData": {"k": "v"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "narrow"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["mine"],
                    "verbs": ["get", "patch"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "narrow"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
            "subjects": [{"kind": "ServiceAccount", "name": "narrow", "namespace": namespace}],
        },
    )
    token = core.create_namespaced_service_account_token("narrow", namespace, {"spec": {}}).status.token
    configuration = client.Configuration()
    configuration.host = cluster.api.configuration.host
    configuration.ssl_ca_cert = cluster.api.configuration.ssl_ca_cert
    configuration.verify_ssl = cluster.api.configuration.verify_ssl
    configuration.api_key = {"authorization": f"Bearer {token}"}
    narrow = client.CoreV1Api(client.ApiClient(configuration))

    wait_until(
        lambda: narrow.read_namespaced_config_map("mine", namespace).data == {"k": "v"},
        15,
        what="the Role to take effect",
    )
    narrow.patch_namespaced_config_map("mine", namespace, {"data": {"k": "changed"}})
    denied: list[Callable[[], object]] = [
        lambda: narrow.read_namespaced_config_map("other", namespace),
        lambda: narrow.read_namespaced_secret("secret", namespace),
        lambda: narrow.list_namespaced_config_map(namespace),
        lambda: narrow.delete_namespaced_config_map("mine", namespace),
        lambda: narrow.read_namespaced_config_map("mine", "default"),
    ]
    for call in denied:
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == 403


def test_node_agent_runs_pods_like_kubelet(cluster: Cluster, namespace: str) -> None:
    """One pod that checks, from inside, everything the project's Job pods rely on."""
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"user": "ann", "pw": "s3"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"mode": "fast"}})
    script = r"""
import json, os, pathlib, ssl, urllib.request
sa = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount')
host, port = os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT']
request = urllib.request.Request(
    f'https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews', method='POST',
    data=b'{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}',
    headers={'Authorization': 'Bearer ' + (sa / 'token').read_text(), 'Content-Type': 'application/json'})
context = ssl.create_default_context(cafile=str(sa / 'ca.crt'))
with urllib.request.urlopen(request, context=context) as response:
    user = json.load(response)['status']['userInfo']['username']
try:
    pathlib.Path('/rootfs-probe').write_text('x'); root_writable = True
except OSError:
    root_writable = False
pathlib.Path('/scratch/f').write_text('ok')
result = {
    'user': user, 'cwd': os.getcwd(), 'secret_env': os.environ['USER_NAME'], 'cm_env': os.environ['MODE'],
    'pod_name': os.environ['POD_NAME'], 'ns': os.environ['POD_NS'], 'expanded': os.environ['GREETING'],
    'secret_file': pathlib.Path('/etc/creds/pw').read_text(),
    'cm_file': pathlib.Path('/etc/settings/mode').read_text(),
    'namespace_file': (sa / 'namespace').read_text(), 'root_writable': root_writable,
    'scratch': pathlib.Path('/scratch/f').read_text(),
}
pathlib.Path('/dev/termination-log').write_text(json.dumps(result))
raise SystemExit(7)
"""
    env = [
        {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GREETING", "value": "hi $(USER_NAME)"},
    ]
    container = {
        "env": env,
        "workingDir": "/scratch",
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        "volumeMounts": [
            {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
            {"name": "settings", "mountPath": "/etc/settings", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
    }
    volumes = [
        {"name": "creds", "secret": {"secretName": "creds"}},
        {"name": "settings", "configMap": {"name": "settings"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    pod = {
        "metadata": {"name": "probe"},
        "spec": python_pod_spec(script, container=container, volumes=volumes),
    }
    core.create_namespaced_pod(namespace, pod)
    done = wait_pod_phase(core, namespace, "probe", {"Succeeded", "Failed"}, timeout=90)
    terminated = done.status.container_statuses[0].state.terminated
    assert done.status.phase == "Failed"
    assert terminated.exit_code == 7
    result = json.loads(terminated.message)
    assert result == {
        "user": f"system:serviceaccount:{namespace}:default",
        "cwd": "/scratch",
        "secret_env": "ann",
        "cm_env": "fast",
        "pod_name": "probe",
        "ns": namespace,
        "expanded": "hi ann",
        "secret_file": "s3",
        "cm_file": "fast",
        "namespace_file": namespace,
        "root_writable": False,
        "scratch": "ok",
    }


def test_pod_deadline_and_deletion_stop_the_process(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    sleeper = python_pod_spec("import time; time.sleep(600)")
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "deadline"}, "spec": {**sleeper, "activeDeadlineSeconds": 2}}
    )
    failed = wait_pod_phase(core, namespace, "deadline", {"Failed", "Succeeded"}, timeout=60)
    assert failed.status.phase == "Failed"
    assert failed.status.reason == "DeadlineExceeded"

    core.create_namespaced_pod(namespace, {"metadata": {"name": "victim"}, "spec": sleeper})
    wait_pod_phase(core, namespace, "victim", {"Running"})
    started = time.monotonic()
    core.delete_namespaced_pod("victim", namespace, grace_period_seconds=5)

    wait_until(
        lambda: absent(lambda: core.read_namespaced_pod("victim", namespace)),
        30,
        what="the deleted pod to disappear",
    )
    # SIGTERM ends a sleeping Python at once: the pod must not wait out its grace period.
    assert time.monotonic() - started < 5
    if cluster.local:
        leftover = subprocess.run(["pgrep", "-f", "time.sleep(600)"], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", "the deleted pod's process is still running"


def test_s3_server_accepts_multipart_upload(s3_server: Any, tmp_path: Any) -> None:
    from boto3.s3.transfer import TransferConfig

    s3 = s3_server.client()
    s3.create_bucket(Bucket="media")
    payload = bytes(range(256)) * (4 * 1024 * 12)  # 12 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), "media", "videos/big.bin", Config=config)
    head = s3.head_object(Bucket="media", Key="videos/big.bin")
    assert head["ContentLength"] == len(payload)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert s3.get_object(Bucket="media", Key="videos/big.bin")["Body"].read() == payload


def test_helm_installs_a_chart(cluster: Cluster, namespace: str, tmp_path: Any) -> None:
    helm = str(build.binary("helm"))
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\nkubeVersion: '>=1.30.0-0'\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n"
        "  greeting: {{ .Values.greeting | quote }}\n"
    )
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "hc"),
        "HELM_CONFIG_HOME": str(tmp_path / "hcfg"),
        "HELM_DATA_HOME": str(tmp_path / "hd"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    subprocess.run(
        [helm, "install", "tiny", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait"],
        check=True,
        env=env,
        capture_output=True,
    )
    data = client.CoreV1Api(cluster.api).read_namespaced_config_map("tiny", namespace).data
    assert data == {"greeting": "hi"}
    listing = subprocess.run(
        [helm, "list", "-n", namespace, "-o", "json"], check=True, env=env, capture_output=True, text=True
    )
    assert [r["status"] for r in json.loads(listing.stdout)] == ["deployed"]
