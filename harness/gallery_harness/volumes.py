"""A volume provisioner for the real node: every claim gets a hostPath PersistentVolume of its own.

Claims are provisioned as they appear, whatever their storage class: a PersistentVolume named after the claim's
uid, pre-bound to it (``claimRef``), backed by ``<root>/<namespace>/<claim>`` (the folder layout the node agent
uses, so tests read a claim's files the same way in both node modes). kube-controller-manager's volume binder
completes the binding. When a claim is deleted its volume is deleted too; the folder is removed with the
cluster's work folder. The folder is writable by every user: hostPath volumes do not honour ``fsGroup``, and the
worker runs as uid 65532.

Usage: ``python -m gallery_harness.volumes --kubeconfig K --root DIR``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger("volumes")


def volume_for(claim: dict[str, Any], root: Path) -> dict[str, Any]:
    """The PersistentVolume that serves ``claim`` (a claim as the API returns it, in camelCase)."""
    meta, spec = claim["metadata"], claim["spec"]
    folder = root / meta["namespace"] / meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "labels": {"gallery-operator.dev/provisioner": "local-test"}},
        "spec": {
            "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "storageClassName": spec.get("storageClassName") or "",
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
        },
    }


class Provisioner:
    def __init__(self, api: client.ApiClient, root: Path) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.root = root

    def provision(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        if claim["spec"].get("volumeName") or meta.get("deletionTimestamp"):
            return
        volume = volume_for(claim, self.root)
        folder = Path(volume["spec"]["hostPath"]["path"])
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        try:
            self.core.create_persistent_volume(volume)
            log.info("provisioned %s for %s/%s", volume["metadata"]["name"], meta["namespace"], meta["name"])
        except ApiException as error:
            if error.status != 409:
                raise

    def release(self, claim: dict[str, Any]) -> None:
        try:
            self.core.delete_persistent_volume(f"pvc-{claim['metadata']['uid']}")
        except ApiException as error:
            if error.status != 404:
                raise

    def run(self) -> None:
        while True:
            try:
                listing = self.core.list_persistent_volume_claim_for_all_namespaces()
                for item in listing.items:
                    self.provision(self.api.sanitize_for_serialization(item))
                stream = watch.Watch().stream(
                    self.core.list_persistent_volume_claim_for_all_namespaces,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=300,
                )
                for event in stream:
                    claim = self.api.sanitize_for_serialization(event["object"])
                    if event["type"] == "DELETED":
                        self.release(claim)
                    else:
                        self.provision(claim)
            except Exception:
                log.exception("provisioner error; listing again")
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", type=Path, required=True)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Provisioner(config.new_client_from_config(options.kubeconfig), options.root).run()


if __name__ == "__main__":
    main()
