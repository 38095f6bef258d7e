"""The local demo (`make demo`): no Docker, no cluster needed beforehand.

It starts a real control plane with the node agent, an S3 server, a local sample site and the operator;
applies one GalleryDownload into a PersistentVolumeClaim and one into an S3 bucket; waits until both are
Ready; and prints `kubectl get gd`, a status and the first catalogue entries. ``--keep`` leaves everything
running until Ctrl-C (the printed KUBECONFIG works with kubectl).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import yaml
from kubernetes import client, config

from gallery_harness import build
from gallery_harness.controlplane import LocalCluster, add_node_argument
from gallery_harness.kube import create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess, apply_crd, operator_for
from gallery_harness.site import serve
from gallery_operator import API_GROUP, API_VERSION

NAMESPACE = "demo"


def kubectl(cluster: LocalCluster, *args: str) -> str:
    command = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", NAMESPACE, *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def downloads(site: str, s3_endpoint: str) -> list[dict[str, Any]]:
    def download(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "GalleryDownload",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }

    return [
        download(
            "cats-to-pvc",
            {
                "urls": [f"{site}/img/{n}.jpg" for n in range(1, 6)],
                "target": {"pvc": {"claimName": "media", "subPath": "cats"}},
                "options": {"retries": 1},
            },
        ),
        download(
            "video-to-s3",
            {
                "urls": [f"{site}/big/8.mp4", f"{site}/img/42.jpg"],
                "target": {
                    "s3": {
                        "bucket": "media",
                        "prefix": "video",  # keys under <namespace>/video: demo/video
                        "endpoint": s3_endpoint,
                        "region": "us-east-1",
                        "forcePathStyle": True,
                        "credentialsSecret": {"name": "s3-credentials"},
                    }
                },
            },
        ),
    ]


def run_demo(cluster: LocalCluster, site: str, operator: OperatorProcess) -> None:
    assert cluster.s3 is not None
    api = config.new_client_from_config(str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    try:
        step(f"namespace {NAMESPACE}: a PVC 'media', an S3 bucket 'media' and its credentials Secret")
        create_namespace(api, NAMESPACE)
        create_claim(api, NAMESPACE)
        s3 = cluster.s3.client()
        s3.create_bucket(Bucket="media")
        core.create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": "s3-credentials"},
                "stringData": {
                    "AWS_ACCESS_KEY_ID": cluster.s3.access_key,
                    "AWS_SECRET_ACCESS_KEY": cluster.s3.secret_key,
                },
            },
        )
        manifests = downloads(site, cluster.s3.endpoint)
        manifest_file = cluster.workdir / "demo-downloads.yaml"
        manifest_file.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
        step(f"kubectl apply -f {manifest_file}")
        print(kubectl(cluster, "apply", "-f", str(manifest_file)), end="")
        step("kubectl wait --for=condition=Ready gd --all")
        started = time.monotonic()
        kubectl(cluster, "wait", "--for=condition=Ready", "gd", "--all", "--timeout=180s")
        print(f"both Ready after {time.monotonic() - started:.1f}s\n")
        step("kubectl get gd")
        print(kubectl(cluster, "get", "gd"))
        step("kubectl get gd cats-to-pvc -o jsonpath='{.status}'")
        status = json.loads(kubectl(cluster, "get", "gd", "cats-to-pvc", "-o", "jsonpath={.status}"))
        status["catalogue"]["sample"] = status["catalogue"]["sample"][:2]
        print(yaml.safe_dump(status, sort_keys=False))
        step("the first catalogue entries (PVC: .gallery-operator/catalogue.jsonl beside the files)")
        catalogue = cluster.volumes_root / NAMESPACE / "media" / "cats" / ".gallery-operator" / "catalogue.jsonl"
        for line in catalogue.read_text().splitlines()[:3]:
            record = json.loads(line)
            print(
                f"  {record['path']:<10} {record['size']:>7} B  {record['contentType']:<11} "
                f"sha256 {record['sha256'][:16]}…  from {record['sourceUrl']}"
            )
        step(f"and in S3 (s3://media/{NAMESPACE}/video/.gallery-operator/catalogue.jsonl)")
        key = f"{NAMESPACE}/video/.gallery-operator/catalogue.jsonl"
        body = s3.get_object(Bucket="media", Key=key)["Body"].read()
        for line in body.decode().splitlines()[:3]:
            record = json.loads(line)
            print(
                f"  {record['path']:<10} {record['size']:>9} B  {record['contentType']:<11} "
                f"sha256 {record['sha256'][:16]}…"
            )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="media", Prefix=f"{NAMESPACE}/")["Contents"]]
        print(f"  objects: {', '.join(sorted(keys))}")
    except BaseException:
        print(f"\noperator log tail ({operator.log}):\n" + operator.log.read_text()[-3000:], file=sys.stderr)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    add_node_argument(parser)
    options = parser.parse_args()
    node = "the node agent" if options.node == "agent" else "a real node (kubelet, containerd, the project's image)"
    step(f"starting etcd, kube-apiserver, kube-controller-manager, {node} and an S3 server")
    with LocalCluster.create(with_s3=True, node=options.node) as cluster, serve(host=cluster.service_host) as site:
        print(f"control plane ready in {cluster.startup_seconds:.1f}s at {cluster.server}; sample site at {site}")
        step("installing the GalleryDownload CRD")
        apply_crd(config.new_client_from_config(str(cluster.kubeconfig)))
        step("starting the operator (python -m gallery_operator)")
        operator = operator_for(
            cluster.kubeconfig,
            cluster,
            cluster.workdir / "logs" / "operator.log",
            {"GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true"},
        )
        operator.start()
        run_demo(cluster, site, operator)
        if options.keep:
            print(
                f"\nstill running: export KUBECONFIG={cluster.kubeconfig}; kubectl -n {NAMESPACE} get gd "
                "(Ctrl-C stops everything)"
            )
            try:
                while True:
                    time.sleep(1)
                    cluster.check_alive()
            except KeyboardInterrupt:
                pass
        operator.stop()
    print("\ndemo finished; every process stopped. `make demo ARGS=--keep` keeps it running.")


if __name__ == "__main__":
    main()
