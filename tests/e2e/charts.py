"""The Helm chart rendered as the tests render it, and a server-side dry run of a manifest: shared by the chart's,
the dashboard's and the real node's tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from gallery_harness import build
from tests.conftest import Cluster
from tests.e2e.conftest import REPO

CHART = REPO / "charts" / "gallery-operator"
KUBE_VERSION = "1.34.4"


def render(*sets: str, values: dict[str, Any] | None = None, namespace: str = "gallery-system") -> list[dict[str, Any]]:
    """The chart rendered as helm template would, with ``--set`` items and a values document."""
    flags = [item for value in sets for item in ("--set", value)] + (["--values", "-"] if values else [])
    output = helm(
        "template",
        "gallery",
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *flags,
        input_text=yaml.safe_dump(values) if values else None,
    ).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def server_dry_run(cluster: Cluster, manifest: str) -> str:
    """`kubectl apply --dry-run=server`: the API server validates every object; its output."""
    result = subprocess.run(
        [str(build.binary("kubectl")), f"--kubeconfig={cluster.kubeconfig}", "apply", "--dry-run=server", "-f", "-"],
        input=manifest,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def helm(
    *args: str, kubeconfig: Path | None = None, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "HELM_CACHE_HOME": "/tmp/helm-cache",
        "HELM_CONFIG_HOME": "/tmp/helm-config",
        "HELM_DATA_HOME": "/tmp/helm-data",
    }
    if kubeconfig:
        env["KUBECONFIG"] = str(kubeconfig)
    command = [str(build.binary("helm")), *args]
    return subprocess.run(command, input=input_text, capture_output=True, text=True, env=env, check=check)


def operator_env(documents: list[dict[str, Any]]) -> dict[str, str]:
    """The operator container's environment in a rendered chart, by name."""
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
