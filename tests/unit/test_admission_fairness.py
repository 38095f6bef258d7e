"""Fairness between namespaces in admission: priority ceilings per namespace and round-robin among equals."""

from __future__ import annotations

import pytest

from gallery_operator.admission import CEILING_ANNOTATION, Admission, Candidate, priority_ceiling, seeded
from gallery_operator.keys import Key


def wanting(namespace: str, count: int, priority: int = 0, day: int = 1) -> list[Candidate]:
    return [
        Candidate.of(namespace, f"{namespace}-{n}", priority, f"2026-01-{day:02d}T00:00:{n:02d}Z", f"{namespace}-{n}-j")
        for n in range(count)
    ]


def grants(admission: Admission, *offers: list[Candidate]) -> list[str]:
    for group in offers:
        for each in group:
            admission.offer(each)
    return [name for _, name in admission.pump()]


@pytest.mark.parametrize(
    ("default_ceiling", "ceilings", "expected"),
    [
        # A tenant's priority 1000 on everything counts as the default ceiling (0) between namespaces: round-robin.
        (0, {}, ["greedy-0", "modest-0", "greedy-1", "modest-1"]),
        # The platform team grants the namespace its priorities: then it goes first.
        (0, {"greedy": 1000}, ["greedy-0", "greedy-1", "greedy-2", "greedy-3"]),
        # A ceiling below the other namespace's priorities puts it behind them.
        (0, {"greedy": -1}, ["modest-0", "modest-1", "modest-2", "greedy-0"]),
        # An operator that lets priorities count everywhere (default ceiling 1000): strict priority, as before.
        (1000, {}, ["greedy-0", "greedy-1", "greedy-2", "greedy-3"]),
    ],
)
def test_priority_counts_between_namespaces_only_up_to_the_ceiling(
    default_ceiling: int, ceilings: dict[str, int], expected: list[str]
) -> None:
    admission = seeded(4, 4, [], [], default_ceiling, ceilings)
    assert grants(admission, wanting("greedy", 10, priority=1000), wanting("modest", 3, day=2)) == expected


@pytest.mark.parametrize(
    ("tenants", "expected"),
    [
        # Equal priorities: the namespace with more and older downloads does not go first every time.
        ({"big": (8, 1), "small": (2, 2)}, ["big-0", "small-0", "big-1", "small-1", "big-2", "big-3"]),
        ({"a": (3, 1), "b": (3, 2), "c": (3, 3)}, ["a-0", "b-0", "c-0", "a-1", "b-1", "c-1"]),
    ],
)
def test_slots_go_round_robin_between_namespaces_at_equal_priority(
    tenants: dict[str, tuple[int, int]], expected: list[str]
) -> None:
    admission = Admission(max_active=len(expected), max_active_per_namespace=10)
    assert grants(admission, *(wanting(ns, count, day=day) for ns, (count, day) in tenants.items())) == expected


def test_round_robin_carries_over_between_pumps() -> None:
    """A namespace that just got a slot waits for the others' turn at the next free slot, however old its queue."""
    admission = Admission(max_active=1, max_active_per_namespace=10)
    assert grants(admission, wanting("big", 5), wanting("small", 2, day=2)) == ["big-0"]
    admission.withdraw(Key("big", "big-0"))  # its grant is given back (finished), a slot is free again
    assert grants(admission) == ["small-0"]
    admission.withdraw(Key("small", "small-0"))
    assert grants(admission) == ["big-1"]


def test_a_namespace_served_last_stays_served_while_its_job_runs_and_ends() -> None:
    """The tenant's first download got the slot while its queue was otherwise empty; its Job runs and ends. The next
    slot goes to the other namespace, although the tenant's next downloads are older."""
    admission = seeded(1, 1, [], [], 0, {})
    assert grants(admission, wanting("greedy", 1, priority=1000)) == ["greedy-0"]
    admission.observe_job("greedy", "greedy-0-j", active=True, gone=False)
    later = [Candidate.of("greedy", f"next-{n}", 1000, "2026-01-01T01:00:00Z", f"next-{n}-j") for n in range(2)]
    fair = Candidate.of("modest", "fair", 0, "2026-01-01T02:00:00Z", "fair-j")
    assert grants(admission, later, [fair]) == []
    admission.observe_job("greedy", "greedy-0-j", active=False, gone=False)
    assert grants(admission) == ["fair"]


def test_within_a_namespace_its_own_priorities_order_its_downloads() -> None:
    admission = seeded(1, 5, [], [], 0, {})
    low = Candidate.of("ns", "low", 10, "2026-01-01T00:00:00Z", "low-j")
    high = Candidate.of("ns", "high", 900, "2026-01-02T00:00:00Z", "high-j")
    assert grants(admission, [low, high]) == ["high"]


def test_a_new_ceiling_moves_the_namespaces_waiting_downloads() -> None:
    admission = seeded(0, 5, [], [], 0, {"modest": 10})
    grants(admission, wanting("greedy", 2, priority=50, day=2), wanting("modest", 2, priority=10))
    assert admission.position(Key("modest", "modest-0")) == 1  # greedy's 50 counts as 0, modest's 10 as 10
    admission.set_ceiling("greedy", 100)
    assert admission.position(Key("greedy", "greedy-0")) == 1 and admission.position(Key("modest", "modest-0")) == 3
    admission.set_ceiling("greedy", None)
    assert admission.position(Key("greedy", "greedy-0")) == 3
    admission.max_active = 1
    assert admission.pump() == [("modest", "modest-0")]


@pytest.mark.parametrize(
    ("annotations", "ceiling"),
    [
        ({}, None),
        ({CEILING_ANNOTATION: "500"}, 500),
        ({CEILING_ANNOTATION: " -20 "}, -20),
        ({CEILING_ANNOTATION: "5000"}, 1000),
        ({CEILING_ANNOTATION: "-5000"}, -1000),
        ({CEILING_ANNOTATION: "high"}, None),
        ({"other": "7"}, None),
    ],
)
def test_the_namespace_annotation_sets_the_ceiling(annotations: dict[str, str], ceiling: int | None) -> None:
    assert priority_ceiling(annotations) == ceiling
