"""The incremental admission structure: ordering, caps, priority changes, deletions, restart seeding, and a
randomised comparison with the obvious batch algorithm (pick the best first download among namespaces with room, fair
between namespaces, while there is room)."""

from __future__ import annotations

import random
from collections import Counter

from gallery_operator.admission import Admission, Candidate, seeded
from gallery_operator.keys import Key


def candidate(namespace: str, name: str, priority: int = 0, created: str = "2026-01-01T00:00:00Z") -> Candidate:
    return Candidate.of(namespace, name, priority, created, f"{name}-run")


def offer_all(admission: Admission, *candidates: Candidate) -> None:
    for each in candidates:
        admission.offer(each)


def test_free_slots_go_in_priority_then_age_order() -> None:
    admission = Admission(max_active=3, max_active_per_namespace=3)
    admission.observe_job("a", "running", active=True, gone=False)
    offer_all(
        admission,
        candidate("a", "old", created="2026-01-01T00:00:00Z"),
        candidate("a", "new", created="2026-01-02T00:00:00Z"),
        candidate("a", "urgent", priority=5, created="2026-01-03T00:00:00Z"),
    )
    assert admission.position(Key("a", "urgent")) == 1 and admission.position(Key("a", "new")) == 3
    assert admission.pump() == [("a", "urgent"), ("a", "old")]
    assert admission.position(Key("a", "new")) == 1
    assert admission.grant(Key("a", "urgent")) == "urgent-run"
    assert admission.pump() == []  # full: 1 running + 2 granted


def test_a_full_namespace_does_not_block_the_namespaces_behind_it() -> None:
    admission = Admission(max_active=10, max_active_per_namespace=2)
    for name in ("j1", "j2"):
        admission.observe_job("busy", name, active=True, gone=False)
    offer_all(admission, candidate("busy", "x", priority=9), candidate("quiet", "y"))
    assert admission.pump() == [("quiet", "y")]
    assert admission.position(Key("busy", "x")) == 1


def test_the_global_cap_holds_everyone() -> None:
    admission = Admission(max_active=4, max_active_per_namespace=9)
    for n in range(4):
        admission.observe_job("c", f"j{n}", active=True, gone=False)
    offer_all(admission, candidate("a", "x"), candidate("b", "y"))
    assert admission.pump() == []
    assert (admission.position(Key("a", "x")), admission.position(Key("b", "y"))) == (1, 2)
    admission.observe_job("c", "j0", active=False, gone=False)  # finished: one slot
    assert admission.pump() == [("a", "x")]


def test_a_namespace_takes_at_most_its_own_cap_of_the_global_one() -> None:
    """Jobs a tenant makes for its own downloads count only up to its namespace's cap: other namespaces still run."""
    admission = Admission(max_active=4, max_active_per_namespace=2)
    for n in range(6):
        admission.observe_job("greedy", f"idle-{n}", active=True, gone=False)
    offer_all(admission, candidate("other", "a"), candidate("other", "b"))
    assert sorted(admission.pump()) == [("other", "a"), ("other", "b")]


def test_a_grant_holds_its_slot_until_the_watch_shows_the_job() -> None:
    admission = Admission(max_active=1, max_active_per_namespace=1)
    offer_all(admission, candidate("ns", "a"), candidate("ns", "b"))
    assert admission.pump() == [("ns", "a")]
    assert admission.pump() == []  # the grant holds the only slot
    admission.observe_job("ns", "a-run", active=True, gone=False)  # the Job appears: its slot now
    assert admission.grant(Key("ns", "a")) is None and admission.active("ns") == 1
    assert admission.pump() == []
    admission.observe_job("ns", "a-run", active=True, gone=True)
    assert admission.pump() == [("ns", "b")]


def test_withdrawing_gives_back_an_unused_grant() -> None:
    """A download deleted (or suspended, or refused by the API server) after its grant frees the slot."""
    admission = Admission(max_active=1, max_active_per_namespace=1)
    offer_all(admission, candidate("ns", "a"), candidate("ns", "b"))
    assert admission.pump() == [("ns", "a")]
    admission.withdraw(Key("ns", "a"))
    assert admission.pump() == [("ns", "b")]


def test_a_priority_change_moves_the_download_and_deletions_close_the_gap() -> None:
    admission = Admission(max_active=0, max_active_per_namespace=1)
    offer_all(admission, *(candidate("ns", name) for name in ("a", "b", "c")))
    assert [admission.position(Key("ns", n)) for n in ("a", "b", "c")] == [1, 2, 3]
    admission.offer(candidate("ns", "c", priority=1))  # the same download, re-prioritised: moved, not doubled
    assert [admission.position(Key("ns", n)) for n in ("a", "b", "c")] == [2, 3, 1]
    assert admission.waiting() == 3
    admission.withdraw(Key("ns", "a"))
    assert admission.position(Key("ns", "a")) is None
    assert admission.in_order(5) == [("ns", "c"), ("ns", "b")]
    admission.withdraw(Key("ns", "a"))  # twice is harmless
    assert admission.waiting() == 2


def test_restart_seeding_counts_running_jobs_before_the_first_grant() -> None:
    """After a restart the Jobs still running hold their slots, and the queue's order holds from the first grant:
    a high-priority download seen later in the listing still goes first."""
    admission = seeded(
        2,
        2,
        jobs=[("ns", "a-run", True), ("ns", "old-run", False)],
        waiting=[candidate("ns", "low", priority=-1), candidate("ns", "high", priority=3)],
    )
    assert admission.active("ns") == 1
    assert admission.pump() == [("ns", "high")]
    admission.observe_job("ns", "a-run", active=True, gone=False)  # its own listing event, later: counted once
    assert admission.active("ns") == 2 and admission.pump() == []


def batch(
    waiting: list[Candidate], occupied: Counter[str], max_active: int, cap: int, served: dict[str, int] | None = None
) -> list[Key]:
    """The obvious algorithm: while both caps have room, look at every namespace with room, take the first download
    of the one whose first download has the highest priority, served longest ago among equals (`served`: the turn
    each namespace was last granted a slot), then the oldest."""
    counts = Counter(occupied)
    total = sum(min(v, cap) for v in counts.values())
    last = dict(served or {})
    turn = max(last.values(), default=0)
    queues = {ns: sorted(c for c in waiting if c.namespace == ns) for ns in {c.namespace for c in waiting}}
    admitted = []
    while total < max_active:
        firsts = [(c.sort_key[0], last.get(ns, 0), c.sort_key[1], c) for ns, q in queues.items() if q and (c := q[0])]
        firsts = [f for f in firsts if counts[f[-1].namespace] < cap]
        if not firsts:
            break
        each = min(firsts)[-1]
        queues[each.namespace].pop(0)
        admitted.append(each.key)
        counts[each.namespace] += 1
        total += 1
        turn += 1
        last[each.namespace] = turn
    return admitted


def test_random_operations_agree_with_the_batch_algorithm() -> None:
    rng = random.Random(20261122)
    for _ in range(200):
        max_active, cap = rng.randint(0, 6), rng.randint(1, 4)
        admission = Admission(max_active, cap)
        waiting: dict[Key, Candidate] = {}
        jobs: dict[tuple[str, str], bool] = {}
        for step in range(60):
            namespace, name = rng.choice("xyz"), rng.choice("abcdefgh")
            roll = rng.random()
            if roll < 0.45:
                each = Candidate.of(namespace, name, rng.randint(-2, 2), f"2026-01-0{rng.randint(1, 9)}", f"{name}-j")
                if admission.grant(Key(namespace, name)) is None:
                    admission.offer(each)
                    waiting[each.key] = each
            elif roll < 0.6:
                admission.withdraw(Key(namespace, name))
                waiting.pop(Key(namespace, name), None)
            else:
                job, active, gone = f"job-{step % 7}", rng.random() < 0.6, rng.random() < 0.3
                admission.observe_job(namespace, job, active, gone)
                jobs.pop((namespace, job), None)
                if not gone:
                    jobs[(namespace, job)] = active
            occupied = Counter(ns for (ns, _), active in jobs.items() if active)
            occupied.update(key[0] for key in admission.grants())
            expected = batch(list(waiting.values()), occupied, max_active, cap, dict(admission.served()))
            assert admission.pump() == expected
            for key in expected:
                del waiting[key]
            order = sorted(waiting.values())
            assert [admission.position(each.key) for each in order] == list(range(1, len(order) + 1))
