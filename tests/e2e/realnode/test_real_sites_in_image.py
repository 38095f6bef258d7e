"""The real-site extras in the project's image, as a worker pod runs them (issue 28): the self-report names the
engines' extras and deno, and yt-dlp's challenge provider runs the EJS scripts in deno through the program wall
under the worker's confinement (uid 65532, read-only root, no capabilities, RuntimeDefault seccomp, the operator's
default memory limit, HOME on scratch as the Job sets it)."""

from __future__ import annotations

import json
import uuid

from kubernetes import client

from gallery_harness.procs import wait_until
from gallery_harness.realnode import RealNode
from gallery_operator.config import Settings
from gallery_operator.workerconfig import DATA_MOUNT, SCRATCH_MOUNT
from tests.component.program_wall import DRIVER, PROVIDER
from tests.conftest import Cluster
from tests.e2e.realnode.node_parts import WORKER_LABELS, WORKER_SECURITY, real_node


def worker_like_pod(cluster: Cluster, node: RealNode, namespace: str) -> str:
    """A pod of the image confined as the operator confines its workers, idle; its container id."""
    core = client.CoreV1Api(cluster.api)
    settings = Settings()
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}]
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "extras", "labels": WORKER_LABELS},
            "spec": {
                "automountServiceAccountToken": False,
                "restartPolicy": "Never",
                "securityContext": {"fsGroup": 65532},
                "volumes": volumes,
                "containers": [
                    {
                        "name": "main",
                        "image": node.images["project"].ref,
                        "imagePullPolicy": "Never",
                        "command": ["python", "-c", "import time; time.sleep(3600)"],
                        "env": [{"name": "HOME", "value": SCRATCH_MOUNT}],
                        "securityContext": WORKER_SECURITY,
                        "resources": {"limits": {"memory": settings.worker_memory_limit}},
                        "volumeMounts": [
                            {"name": "data", "mountPath": DATA_MOUNT},
                            {"name": "scratch", "mountPath": SCRATCH_MOUNT},
                        ],
                    }
                ],
            },
        },
    )
    wait_until(lambda: core.read_namespaced_pod("extras", namespace).status.phase == "Running", 60, "pod Running")
    [status] = core.read_namespaced_pod("extras", namespace).status.container_statuses
    return str(status.container_id).removeprefix("containerd://")


def exec_in(node: RealNode, container: str, *argv: str) -> str:
    ran = node.ctr("tasks", "exec", f"--exec-id=x-{uuid.uuid4().hex[:8]}", container, *argv, check=False)
    assert ran.returncode == 0, (ran.stdout.decode()[-2000:], ran.stderr.decode()[-3000:])
    return ran.stdout.decode()


def test_the_image_solves_javascript_challenges_behind_the_wall(cluster: Cluster, namespace: str) -> None:
    node = real_node(cluster)
    container = worker_like_pod(cluster, node, namespace)
    report = json.loads(exec_in(node, container, "python", "-m", "gallery_operator.worker", "--version"))
    assert report["javascriptChallenges"] is True, report
    assert report["programs"]["deno"]["path"].startswith("/app/"), report["programs"]
    missing = [name for name, extra in report["extras"].items() if not extra["available"] and name != "curl-cffi"]
    assert missing == [], report["extras"]
    assert report["impersonation"] is False
    outcome = exec_in(node, container, "python", "-c", DRIVER, DATA_MOUNT, SCRATCH_MOUNT, PROVIDER)
    assert json.loads(outcome.strip().splitlines()[-1]) == "ran", outcome
