"""What the reliability benchmarks share: an operator that may take its time to become ready."""

from __future__ import annotations

from gallery_harness.controlplane import LocalCluster
from gallery_harness.localoperator import OperatorProcess

READY_SECONDS = 300
"""How long a start (or a restart after a kill) may take to /readyz: the machine is shared, and under a load average
of 70 on two cores a start took longer than the harness's default 30 s."""


def patient_operator(cluster: LocalCluster, **settings: str) -> OperatorProcess:
    """The operator, started, with settings as GALLERY_OPERATOR_<NAME> environment variables."""
    values = {f"GALLERY_OPERATOR_{k.upper()}": v for k, v in settings.items()}
    process = OperatorProcess(cluster.kubeconfig, cluster.workdir / "operator.log", values, ready_seconds=READY_SECONDS)
    process.start()
    return process
