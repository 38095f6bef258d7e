"""The network wall on the real control plane: the operator keeps a NetworkPolicy around worker and cleanup pods in
every namespace with downloads (before the first Job there), repairs a tenant's edit or deletion, removes it with
the namespace's last download, and makes none when the setting is off. (Enforcement is the CNI's: proven on the
real node by the real-network tier.)"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from gallery_harness.kube import Watching, absent, create_claim, create_namespace
from gallery_harness.localoperator import OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator.config import Settings, load_settings
from gallery_operator.networkpolicy import POLICY_LABELS, POLICY_NAME, worker_network_policy, worker_policy_spec
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, operator_for, pvc_spec


def settings_of(operator: OperatorProcess) -> Settings:
    """The settings the local operator process runs with (as OperatorProcess.start hands them on)."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("GALLERY_OPERATOR_")}
    port = str(urllib.parse.urlsplit(operator.report_url).port)
    environ |= {
        "GALLERY_OPERATOR_REPORT_PORT": port,
        "GALLERY_OPERATOR_ALLOW_PRIVATE_NETWORKS": "true",
        "GALLERY_OPERATOR_NETWORK_POLICY_PORTS": "",
    }
    return load_settings(environ | operator.settings)


def networking(cluster: Cluster) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(cluster.api)


def read_policy(cluster: Cluster, namespace: str) -> Any:
    return networking(cluster).read_namespaced_network_policy(POLICY_NAME, namespace)


def policy_body(cluster: Cluster, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = cluster.api.sanitize_for_serialization(read_policy(cluster, namespace))
    return body


def in_shape(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> bool:
    if absent(lambda: read_policy(cluster, namespace)):
        return False
    body = policy_body(cluster, namespace)
    return bool(body["spec"] == spec and POLICY_LABELS.items() <= body["metadata"]["labels"].items())


class Creations(Watching):
    """The revision at which each Job and NetworkPolicy in a namespace was created, from watches started before
    anything is made there (etcd's revisions order every write of the cluster)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.revisions: dict[tuple[str, str], int] = {}
        listings = (
            client.BatchV1Api(cluster.api).list_namespaced_job,
            networking(cluster).list_namespaced_network_policy,
        )
        super().__init__(namespace, [(listing, self._record) for listing in listings])

    def _record(self, kind: str, obj: Any) -> None:
        if kind == "ADDED":
            self.revisions.setdefault((obj.kind or "", obj.metadata.name), int(obj.metadata.resource_version))


@pytest.fixture
def creations(cluster: Cluster, namespace: str) -> Iterator[Creations]:
    seen = Creations(cluster, namespace)
    yield seen
    seen.stop()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(allow_private_networks=True, network_policy_ports=()),
        Settings(s3_private_endpoints=("http://10.96.0.20:9000", "http://[fd00::20]:9000")),
    ],
    ids=["defaults", "private-networks", "private-stores"],
)
def test_the_api_server_takes_the_policy_the_operator_makes(
    cluster: Cluster, namespace: str, settings: Settings
) -> None:
    """The real API server validates the policy further than its schema (every exception a strict subset of its
    CIDR, as Go parses it): a refusal would leave a namespace without its wall and so without Jobs."""
    body = worker_network_policy(namespace, settings)
    created = networking(cluster).create_namespaced_network_policy(namespace, body, dry_run="All")
    assert created.metadata.name == POLICY_NAME


def test_the_policy_comes_before_the_first_job_and_goes_with_the_last_download(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str, creations: Creations
) -> None:
    namespace = downloads.namespace
    assert absent(lambda: read_policy(cluster, namespace))
    downloads.create("first", pvc_spec([f"{site}/img/1.jpg"]))
    downloads.create("second", pvc_spec([f"{site}/img/2.jpg"]))
    for name in ("first", "second"):
        assert downloads.wait_phase(name, {"Succeeded", "Failed"})["phase"] == "Succeeded"
    jobs = [job.metadata.name for name in ("first", "second") for job in downloads.jobs(name)]
    seen = f"the Jobs' creation seen (watch ended: {creations.ended})"
    wait_until(lambda: all(("Job", j) in creations.revisions for j in jobs), 30, seen)
    policy = creations.revisions[("NetworkPolicy", POLICY_NAME)]
    assert all(policy < creations.revisions[("Job", j)] for j in jobs), creations.revisions
    assert len([k for k in creations.revisions if k[0] == "NetworkPolicy"]) == 1  # one per namespace
    body = policy_body(cluster, namespace)
    assert body["spec"] == worker_policy_spec(settings_of(operator))
    assert body["spec"]["policyTypes"] == ["Ingress", "Egress"] and not body["spec"].get("ingress")

    downloads.delete("first")
    wait_until(lambda: absent(lambda: downloads.get("first")), 30, "the first download gone")
    assert not absent(lambda: read_policy(cluster, namespace))  # the second is still there
    downloads.delete("second")
    wait_until(lambda: absent(lambda: read_policy(cluster, namespace)), 30, "the policy removed with the last one")


def test_a_tenant_cannot_delete_or_widen_the_policy(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str
) -> None:
    namespace = downloads.namespace
    spec = worker_policy_spec(settings_of(operator))
    downloads.create("kept", pvc_spec([f"{site}/img/3.jpg"]))
    assert downloads.wait_phase("kept", {"Succeeded", "Failed"})["phase"] == "Succeeded"
    wait_until(lambda: in_shape(cluster, namespace, spec), 30, "the policy in place")

    uid = read_policy(cluster, namespace).metadata.uid
    networking(cluster).delete_namespaced_network_policy(POLICY_NAME, namespace)
    wait_until(lambda: in_shape(cluster, namespace, spec), 30, "the deleted policy back")
    assert read_policy(cluster, namespace).metadata.uid != uid

    everything = {"spec": {"egress": [{}], "podSelector": {"matchLabels": {"nothing": "selected"}}}}
    networking(cluster).patch_namespaced_network_policy(POLICY_NAME, namespace, everything)
    wait_until(lambda: in_shape(cluster, namespace, spec), 30, "the widened policy back in shape")

    # Without the operator's labels it is still the operator's policy by its name.
    unlabelled = [{"op": "replace", "path": "/metadata/labels", "value": {"tenant": "mine"}}]
    networking(cluster).patch_namespaced_network_policy(POLICY_NAME, namespace, unlabelled)
    wait_until(lambda: in_shape(cluster, namespace, spec), 30, "the operator's labels back")


def test_no_policy_with_the_setting_off(
    cluster: Cluster, crd: None, namespace: str, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    unwalled = operator_for(
        cluster,
        tmp_path / "operator.log",
        {"GALLERY_OPERATOR_NAMESPACES": namespace, "GALLERY_OPERATOR_NETWORK_POLICY": "false"},
    )
    try:
        create_claim(cluster.api, namespace)
        # A policy left from when the setting was on is removed too.
        leftover = {"metadata": {"name": POLICY_NAME, "labels": POLICY_LABELS}, "spec": {"podSelector": {}}}
        networking(cluster).create_namespaced_network_policy(namespace, leftover)
        unwalled.start()
        downloads = Downloads(cluster.api, namespace)
        downloads.create("open", pvc_spec([f"{site}/img/4.jpg"]))
        assert downloads.wait_phase("open", {"Succeeded", "Failed"})["phase"] == "Succeeded"
        wait_until(lambda: absent(lambda: read_policy(cluster, namespace)), 30, "the leftover policy removed")
        assert networking(cluster).list_namespaced_network_policy(namespace).items == []
    finally:
        unwalled.stop()
        OperatorProcess.instances.remove(unwalled)


def test_a_namespace_being_deleted_is_not_held_by_its_missing_policy(
    cluster: Cluster, crd: None, site: str, no_local_operator: None, tmp_path: Any
) -> None:
    """A download whose namespace is being deleted, its worker running without the policy (made while the setting
    was off): the API server creates nothing in that namespace any more, so the operator does not insist on the
    wall (it would retry for ever, keep the download's finalizer and so the namespace's deletion waiting); the
    download goes with its namespace."""
    core = client.CoreV1Api(cluster.api)
    doomed = f"doomed-{os.urandom(4).hex()}"
    create_namespace(cluster.api, doomed)
    create_claim(cluster.api, doomed)
    settings = {"GALLERY_OPERATOR_NAMESPACES": doomed}
    unwalled = operator_for(cluster, tmp_path / "off.log", settings | {"GALLERY_OPERATOR_NETWORK_POLICY": "false"})
    walled = operator_for(cluster, tmp_path / "on.log", settings)
    hold = {"metadata": {"name": "hold", "finalizers": ["gallery-operator.dev/test-hold"]}}
    try:
        unwalled.start()
        downloads = Downloads(cluster.api, doomed)
        downloads.create("held", pvc_spec([f"{site}/slow/1301.jpg?seconds=60"]))
        downloads.wait_phase("held", {"Running"})
        unwalled.stop()
        core.create_namespaced_config_map(doomed, hold)  # keeps the namespace terminating while the test looks
        core.delete_namespace(doomed)
        walled.start()
        wait_until(lambda: absent(lambda: downloads.get("held")), 90, "the download gone with its namespace")
        assert "NamespaceTerminating" not in (tmp_path / "on.log").read_text()
    finally:
        for process in (unwalled, walled):
            process.stop()
            OperatorProcess.instances.remove(process)
        core.patch_namespaced_config_map("hold", doomed, {"metadata": {"finalizers": None}})
