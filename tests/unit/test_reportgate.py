"""The report gate: the cheap look at an unverified token, and the budgets per source."""

from __future__ import annotations

import asyncio
import time

import pytest

from gallery_harness.tokens import forged_jwt
from gallery_operator import kube, web
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import job_name
from gallery_operator.reportgate import Claimed, SourceBudgets, pod_prefix_of, precheck, worker_pod_prefix
from gallery_operator.reports import Directory, WorkerJob
from tests.unit.builders import with_two_runs

AUDIENCE = "gallery-operator.dev"
JOB = "photos-0123456789"


def expects(namespace: str, pod: str) -> bool:
    return namespace == "tenant" and pod_prefix_of(pod) == worker_pod_prefix(JOB)


@pytest.mark.parametrize(
    ("token", "answer"),
    [
        ("not-a-jwt", "malformed-token"),
        ("a.b.c", "malformed-token"),
        ("a.bm90IGpzb24.c", "malformed-token"),
        ("a.WzFd.c", "malformed-token"),  # a JSON list, not claims
        (forged_jwt("https://kubernetes.default.svc", "tenant", f"{JOB}-abcde", "u"), "wrong-audience"),
        (forged_jwt(AUDIENCE, "tenant", f"{JOB}-abcde", "u", expires_in=-5), "expired"),
        (
            forged_jwt(AUDIENCE, "tenant", f"{JOB}-abcde", "u", extra={"kubernetes.io": {"namespace": "tenant"}}),
            "no-pod-claim",
        ),
        (
            forged_jwt(
                AUDIENCE,
                "tenant",
                f"{JOB}-abcde",
                "",
            ),
            "no-pod-claim",
        ),
        (forged_jwt(AUDIENCE, "other", f"{JOB}-abcde", "u"), "unexpected-pod"),
        (forged_jwt(AUDIENCE, "tenant", "photos-0123456788-abcde", "u"), "unexpected-pod"),
        (forged_jwt(AUDIENCE, "tenant", f"{JOB}-ABCDE", "u"), "unexpected-pod"),
        (forged_jwt(AUDIENCE, "tenant", f"{JOB}-abcdef", "u"), "unexpected-pod"),
        (forged_jwt(AUDIENCE, "tenant", f"{JOB}-abcde", "u"), Claimed("tenant", f"{JOB}-abcde", "u")),
    ],
)
def test_precheck_refuses_what_cannot_be_a_workers_token(token: str, answer: object) -> None:
    assert precheck(token, AUDIENCE, time.time(), expects) == answer


def test_pod_names_of_long_job_names_keep_58_characters_of_the_prefix() -> None:
    job = "a" * 52 + "-0123456789"  # 63 characters, the longest Job name the operator makes
    pod = worker_pod_prefix(job) + "x7k2p"
    assert len(pod) == 63 and pod_prefix_of(pod) == worker_pod_prefix(job) == job[:58]
    directory = Directory()
    directory.observe_job(WorkerJob("tenant", job, "download-uid"), "job-uid", gone=False)
    assert [uid for uid, _ in directory.jobs_of_pod("tenant", pod)] == ["job-uid"]
    assert directory.jobs_of_pod("elsewhere", pod) == []
    directory.observe_job(WorkerJob("tenant", job, "download-uid"), "job-uid", gone=True)
    assert directory.jobs_of_pod("tenant", pod) == []


def test_one_address_spending_its_budget_leaves_room_for_others() -> None:
    budgets = SourceBudgets(address_per_second=5, address_at_once=5, namespace_per_second=20, namespace_at_once=20)
    now = 100.0
    flood = []
    for _ in range(50):
        flood.append(budgets.try_take("10.0.0.66", "victim", now))
        if flood[-1]:
            budgets.give_back("10.0.0.66", "victim")
    assert flood.count(True) == 5
    assert budgets.try_take("10.0.0.7", "victim", now)
    assert budgets.try_take("10.0.0.66", "victim", now + 1.5)  # a second later the address has room again


def test_a_claimed_namespace_has_its_own_budget_and_reviews_in_flight_count() -> None:
    budgets = SourceBudgets(address_per_second=100, address_at_once=1, namespace_per_second=3, namespace_at_once=10)
    assert budgets.try_take("a", "ns", 0.0)
    assert not budgets.try_take("a", "ns", 0.0)  # one review of this address is still running
    budgets.give_back("a", "ns")
    assert [budgets.try_take(address, "ns", 0.0) for address in "bcd"] == [True, True, False]
    assert budgets.try_take("d", "other", 0.0)


def test_made_up_tokens_never_cost_a_token_review(monkeypatch: pytest.MonkeyPatch) -> None:
    reviewed: list[str] = []
    monkeypatch.setattr(kube, "review_token", lambda token, audience: reviewed.append(token))
    reports = web.Reports(Settings(), Controller(Settings(), {}, {}))
    tokens = ["x" * 40, forged_jwt("other", "ns", "p-abcde", "u"), forged_jwt(AUDIENCE, "ns", "p-abcde", "u")]

    async def scenario() -> list[web.Identity | str]:
        return [await reports.identify(token, "10.0.0.9") for token in tokens]

    assert asyncio.run(scenario()) == ["malformed-token", "wrong-audience", "unexpected-pod"]
    assert reviewed == []


def test_the_controller_expects_pods_only_of_current_worker_jobs() -> None:
    controller, parsed = with_two_runs()
    current = job_name(parsed)
    assert controller.expects_pod("ns", f"{current}-x7k2p")
    assert not controller.expects_pod("ns", "dl-oldrun-x7k2p")  # an earlier run's pods report nothing
    assert not controller.expects_pod("other", f"{current}-x7k2p")
    assert not controller.expects_pod("ns", f"{current}-x7k2")
    controller.observe_job("ns", current, active=False, gone=True, uid="job-1", owner="uid-dl")
    assert not controller.expects_pod("ns", f"{current}-x7k2p")
