"""The local demo: a real control plane, the node agent and the S3 server, then a first Job into a PVC.

Run with ``make demo``. ``--keep`` leaves everything running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import subprocess
import time

from kubernetes import client, config

from tests.cluster import build
from tests.cluster.controlplane import LocalCluster
from tests.cluster.procs import wait_until

DEMO_NAMESPACE = "demo"


def kubectl(cluster: LocalCluster, *args: str) -> str:
    command = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def run_demo(cluster: LocalCluster) -> None:
    api = config.new_client_from_config(str(cluster.kubeconfig))
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespace({"metadata": {"name": DEMO_NAMESPACE}})
    wait_until(lambda: core.list_namespaced_service_account(DEMO_NAMESPACE).items, 30, "default ServiceAccount")
    core.create_namespaced_persistent_volume_claim(
        DEMO_NAMESPACE,
        {
            "metadata": {"name": "media"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    script = "import pathlib; pathlib.Path('/media/hello.txt').write_text('downloaded by a Job pod\\n')"
    batch.create_namespaced_job(
        DEMO_NAMESPACE,
        {
            "metadata": {"name": "first-job"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "main",
                                "image": "python:3.13-slim",
                                "command": ["python", "-c", script],
                                "volumeMounts": [{"name": "media", "mountPath": "/media"}],
                            }
                        ],
                        "volumes": [{"name": "media", "persistentVolumeClaim": {"claimName": "media"}}],
                    }
                },
            },
        },
    )
    wait_until(
        lambda: batch.read_namespaced_job_status("first-job", DEMO_NAMESPACE).status.succeeded,
        90,
        "the demo Job to succeed",
    )
    print(kubectl(cluster, "get", "nodes,jobs,pods", "-n", DEMO_NAMESPACE))
    written = cluster.volumes_root / DEMO_NAMESPACE / "media" / "hello.txt"
    print(f"{written}: {written.read_text().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the control plane running until Ctrl-C")
    options = parser.parse_args()
    with LocalCluster.create(with_s3=True) as cluster:
        print(f"control plane ready in {cluster.startup_seconds:.1f}s at {cluster.server}")
        run_demo(cluster)
        if options.keep:
            print(f"running; export KUBECONFIG={cluster.kubeconfig}   (Ctrl-C stops everything)")
            try:
                while True:
                    time.sleep(1)
                    cluster.check_alive()
            except KeyboardInterrupt:
                pass
    print("demo finished; every process stopped")


if __name__ == "__main__":
    main()
