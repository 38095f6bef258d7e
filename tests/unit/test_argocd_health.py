"""The Argo CD health check, run by a real Lua 5.1 interpreter over sample objects."""

from __future__ import annotations

from typing import Any

import pytest

from gallery_harness import REPO_ROOT
from gallery_operator.snapshots import JobView
from gallery_operator.status import Observation, stored_status
from tests.unit.lua_health import run_health

REPO = REPO_ROOT
HEALTH = (REPO / "manifests" / "argocd" / "health.lua").read_text()
T = "2026-11-21T10:00:00Z"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    return run_health(HEALTH, obj)


def download(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "d", "generation": generation}, "spec": {"urls": ["https://x"]}}
    if status is not None:
        obj["status"] = status
    return obj


def job(*conditions: str, ready: int = 0) -> JobView:
    return JobView.of(
        {
            "status": {
                "ready": ready,
                "active": ready,
                "conditions": [{"type": c, "status": "True", "reason": "", "message": ""} for c in conditions],
            }
        }
    )


@pytest.mark.parametrize(
    ("status", "generation", "expected"),
    [
        (None, 1, "Progressing"),
        (stored_status({}, Observation(1, T, queue_position=2)), 1, "Progressing"),
        (stored_status({}, Observation(1, T, job_name="j", job=job(ready=1))), 1, "Progressing"),
        (stored_status({}, Observation(1, T, job_name="j", job=job("Complete"))), 1, "Healthy"),
        (stored_status({}, Observation(1, T, job_name="j", job=job("Complete"))), 2, "Progressing"),
        (stored_status({}, Observation(1, T, job_name="j", job=job("Failed"))), 1, "Degraded"),
        (stored_status({}, Observation(1, T, invalid="spec.urls: too short")), 1, "Degraded"),
        (stored_status({}, Observation(1, T, suspended=True)), 1, "Suspended"),
    ],
)
def test_health_follows_the_conditions(status: dict[str, Any] | None, generation: int, expected: str) -> None:
    assert health(download(status, generation))[0] == expected


def test_degraded_message_names_the_reason() -> None:
    status = stored_status({}, Observation(1, T, invalid="spec.urls: at least 1 item"))
    assert health(download(status)) == ("Degraded", "InvalidSpec: spec.urls: at least 1 item")


def test_docs_carry_the_same_script() -> None:
    docs = (REPO / "docs" / "argocd.md").read_text()
    indented = "\n".join(("    " + line) if line else "" for line in HEALTH.splitlines())
    assert indented in docs, "docs/argocd.md must embed manifests/argocd/health.lua verbatim"
