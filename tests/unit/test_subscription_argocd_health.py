"""The Argo CD health check of GallerySubscriptions, run by a real Lua 5.1 interpreter over statuses the plan
writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gallery_operator.api.subscription import parse_subscription_spec
from gallery_operator.subscription_plan import (
    RunSnapshot,
    SubscriptionSituation,
    SubscriptionSnapshot,
    WriteStatus,
    plan_subscription,
)
from tests import REPO_ROOT
from tests.unit.lua_health import run_health

HEALTH = (REPO_ROOT / "manifests" / "argocd" / "health-subscription.lua").read_text()
NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TEMPLATE = {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "media"}}}


def health(obj: dict[str, Any]) -> tuple[str, str]:
    return run_health(HEALTH, obj)


def written(
    spec: dict[str, Any], invalid: str = "", children: tuple[RunSnapshot, ...] = (), **previous: Any
) -> dict[str, Any]:
    snap = SubscriptionSnapshot(
        namespace="ns",
        name="sub",
        uid="u",
        generation=1,
        created="2026-11-22T09:00:00Z",
        deletion_timestamp="",
        finalizers=(),
        resource_version="1",
        spec=spec,
        status={},
    )
    parsed = invalid or parse_subscription_spec(spec)
    plan = plan_subscription(SubscriptionSituation(snap, parsed, previous, NOW, children))
    return next(a.status for a in plan.actions if isinstance(a, WriteStatus))


def obj(spec: dict[str, Any], status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "sub", "generation": generation}, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


HOURLY = {"schedule": "0 * * * *", "jitter": "0s", "downloadTemplate": TEMPLATE}
FAILED = tuple(
    RunSnapshot(f"sub-2026112207{n}000", "Failed", scheduled_time=f"2026-11-22T07:{n}0:00Z", reason="AuthRequired")
    for n in range(3)
)


@pytest.mark.parametrize(
    ("spec", "status", "generation", "expected"),
    [
        (HOURLY, None, 1, "Progressing"),
        (HOURLY, written(HOURLY), 1, "Healthy"),
        (HOURLY, written(HOURLY), 2, "Progressing"),
        ({**HOURLY, "interval": "1h", "schedule": None}, None, 1, "Progressing"),
        ({**HOURLY, "suspend": True}, written({**HOURLY, "suspend": True}), 1, "Suspended"),
        (HOURLY, written(HOURLY, invalid="spec.schedule: Bad minute"), 1, "Degraded"),
    ],
)
def test_health_follows_the_conditions(
    spec: dict[str, Any], status: dict[str, Any] | None, generation: int, expected: str
) -> None:
    assert health(obj(spec, status, generation))[0] == expected


def test_a_run_under_way_is_healthy() -> None:
    interval = {"interval": "1h", "jitter": "0s", "downloadTemplate": TEMPLATE}
    status = written(interval)  # created at 09:00, ticking at 10:00: the run is made now
    assert status["active"]
    assert health(obj(interval, status)) == ("Healthy", f"run {status['active']['name']} is active")


def test_stalled_runs_are_degraded_with_the_reason() -> None:
    spec = {**HOURLY, "failedRunsHistoryLimit": 5}
    records = [{"name": r.name, "scheduledTime": r.scheduled_time} for r in FAILED]
    status = written(spec, children=FAILED, lastScheduleTime="2026-11-22T10:00:00Z", runs=records)
    state, message = health(obj(spec, status))
    assert state == "Degraded" and message.startswith("AuthRequired: the last 3 runs failed")


def test_docs_carry_the_same_script() -> None:
    docs = (REPO_ROOT / "docs" / "argocd.md").read_text()
    indented = "\n".join(("    " + line) if line else "" for line in HEALTH.splitlines())
    assert indented in docs, "docs/argocd.md must embed manifests/argocd/health-subscription.lua verbatim"
