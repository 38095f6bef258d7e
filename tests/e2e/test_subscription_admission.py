"""The GallerySubscription CRD on the real API server: the samples pass, bad input is refused at admission with
the field named (the schema and the CEL rules generated from api/subscription.py)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.cluster import build
from tests.conftest import Cluster

TEMPLATE = {"urls": ["https://example.org/gallery/1"], "target": {"pvc": {"claimName": "media"}}}


def dry_run(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    body = {
        "apiVersion": "gallery-operator.dev/v1alpha1",
        "kind": "GallerySubscription",
        "metadata": {"name": "sub"},
        "spec": spec,
    }
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace]
    return subprocess.run(
        [*kubectl, "create", "--dry-run=server", "-f", "-"], input=yaml.safe_dump(body), capture_output=True, text=True
    )


def test_subscription_samples_pass_admission(cluster: Cluster, namespace: str, crd: None) -> None:
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace]
    result = subprocess.run(
        [*kubectl, "apply", "--dry-run=server", "-f", "manifests/samples/subscription.yaml"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("gallerysubscription.gallery-operator.dev/") == 2


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"downloadTemplate": TEMPLATE}, "set exactly one of schedule and interval"),
        ({"schedule": "0 * * * *", "interval": "1h", "downloadTemplate": TEMPLATE}, "exactly one of schedule"),
        ({"interval": "1h", "timeZone": "Europe/Berlin", "downloadTemplate": TEMPLATE}, "timeZone goes with schedule"),
        ({"schedule": "0 * * *", "downloadTemplate": TEMPLATE}, "spec.schedule"),
        ({"schedule": "CRON_TZ=UTC 0 * * *", "downloadTemplate": TEMPLATE}, "spec.schedule"),
        ({"interval": "an hour", "downloadTemplate": TEMPLATE}, "spec.interval"),
        ({"interval": "1h", "concurrencyPolicy": "Allow", "downloadTemplate": TEMPLATE}, "spec.concurrencyPolicy"),
        (
            {"interval": "1h", "downloadTemplate": {**TEMPLATE, "deletionPolicy": "Delete"}},
            "downloadTemplate.deletionPolicy: runs always keep their files",
        ),
        (
            {"interval": "1h", "downloadTemplate": {**TEMPLATE, "target": {"pvc": {"template": {"size": "1Gi"}}}}},
            "downloadTemplate.target.pvc.template: not allowed",
        ),
        (
            {"interval": "1h", "downloadTemplate": {**TEMPLATE, "urls": ["ftp://example.org/x"]}},
            "spec.downloadTemplate.urls[0]",
        ),
        ({"interval": "1h", "downloadTemplate": {"urls": ["https://example.org/"], "target": {}}}, "target.pvc"),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(
    cluster: Cluster, namespace: str, crd: None, spec: dict[str, Any], words: str
) -> None:
    result = dry_run(cluster, namespace, spec)
    assert result.returncode != 0, result.stdout
    assert words in result.stderr, result.stderr


def test_a_good_subscription_is_admitted_with_defaults(cluster: Cluster, namespace: str, crd: None) -> None:
    result = dry_run(
        cluster, namespace, {"schedule": "@hourly", "timeZone": "Europe/Berlin", "downloadTemplate": TEMPLATE}
    )
    assert result.returncode == 0, result.stderr
