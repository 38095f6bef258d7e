"""The leader election's rules (leadership.py): who may take the Lease when, and until when a leader may write."""

from __future__ import annotations

import dataclasses

import pytest

from gallery_operator.config import load_settings
from gallery_operator.leadership import (
    LeaseRecord,
    Move,
    Timing,
    lease_body,
    lease_spec,
    next_look,
    next_move,
    observed_at,
    released_spec,
    report_target,
    writes_until,
)

TIMING = Timing()


def record(holder: str = "a", version: str = "1", duration: int = 15, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, duration, "t0", "t1", transitions, version)


def test_no_lease_is_created() -> None:
    assert next_move(None, "b", 0.0, 0.0) is Move.CREATE


def test_the_holder_renews() -> None:
    assert next_move(record("b"), "b", 0.0, 100.0) is Move.RENEW


def test_a_held_lease_is_waited_for_until_it_has_not_changed_for_its_duration() -> None:
    assert next_move(record("a"), "b", 10.0, 24.9) is Move.WAIT
    assert next_move(record("a"), "b", 10.0, 25.0) is Move.TAKE


def test_a_released_lease_is_taken_at_once() -> None:
    assert next_move(record(""), "b", 10.0, 10.0) is Move.TAKE


def test_the_waiting_time_counts_from_the_last_change_seen_by_the_reader() -> None:
    first = record(version="1")
    seen = observed_at(None, 0.0, first, 5.0)
    assert seen == 5.0
    assert observed_at(first, seen, record(version="1"), 9.0) == 5.0  # unchanged: the clock keeps running
    assert observed_at(first, seen, record(version="2"), 9.0) == 9.0  # renewed: it starts again


def test_a_leader_stops_writing_before_any_standby_may_take_over() -> None:
    """The renewal started at t reached the API server after t: a standby saw it at t or later and waits the lease
    duration from then, while the leader writes only until t + renew deadline."""
    renewal_started = 100.0
    standby_saw_it = renewal_started
    first_take = next(
        t / 10 for t in range(1000, 2000) if next_move(record("a"), "b", standby_saw_it, t / 10) is Move.TAKE
    )
    assert writes_until(renewal_started, TIMING) < first_take


def test_taking_a_held_lease_counts_a_transition_and_renewing_keeps_the_acquire_time() -> None:
    taken = lease_spec(Move.TAKE, record("a", transitions=3), "b", TIMING, "now")
    assert taken == {
        "holderIdentity": "b",
        "leaseDurationSeconds": 15,
        "acquireTime": "now",
        "renewTime": "now",
        "leaseTransitions": 4,
    }
    renewed = lease_spec(Move.RENEW, record("b", transitions=4), "b", TIMING, "later")
    assert renewed["acquireTime"] == "t0" and renewed["renewTime"] == "later" and renewed["leaseTransitions"] == 4
    assert lease_spec(Move.CREATE, None, "b", TIMING, "now")["leaseTransitions"] == 0
    assert lease_spec(Move.TAKE, record(""), "b", TIMING, "now")["leaseTransitions"] == 0


def test_a_release_leaves_no_holder() -> None:
    released = released_spec(record("a", transitions=2), "now")
    assert released["holderIdentity"] == "" and released["leaseDurationSeconds"] == 1
    assert next_move(LeaseRecord.of({"spec": released, "metadata": {"resourceVersion": "9"}}), "b", 0, 0) is Move.TAKE


def test_a_lease_body_is_read() -> None:
    body = {
        "metadata": {"resourceVersion": "42"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "r", "leaseTransitions": 2},
    }
    assert LeaseRecord.of(body) == LeaseRecord("a", 15, "", "r", 2, "42")
    assert LeaseRecord.of({}) == LeaseRecord("", 0, "", "", 0, "")


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [("15", "15", "2"), ("15", "20", "2"), ("15", "10", "10"), ("15", "10", "12")],
)
def test_durations_that_cannot_keep_two_leaders_apart_are_refused(duration: str, deadline: str, retry: str) -> None:
    env = {
        "GALLERY_OPERATOR_LEADER_ELECTION": "true",
        "GALLERY_OPERATOR_LEASE_DURATION_SECONDS": duration,
        "GALLERY_OPERATOR_RENEW_DEADLINE_SECONDS": deadline,
        "GALLERY_OPERATOR_RETRY_PERIOD_SECONDS": retry,
    }
    with pytest.raises(ValueError, match="RENEW_DEADLINE_SECONDS"):
        load_settings(env)


def test_the_defaults_are_client_gos() -> None:
    settings = load_settings({"GALLERY_OPERATOR_LEADER_ELECTION": "true"})
    assert settings.election_timing() == Timing(15, 10.0, 2.0)


def test_a_standby_looks_again_when_the_lease_it_waits_for_expires() -> None:
    """A Lease last changed at 10 (duration 15) expires at 25: a standby looking at 24 looks again at 25, not at its
    next read (26); within a retry period of the expiry it looks no later than the expiry (plus a hair)."""
    wait = next_look(record("a"), "b", 10.0, 24.0, TIMING)
    assert 1.0 <= wait <= 1.05
    assert next_move(record("a"), "b", 10.0, 24.0 + wait) is Move.TAKE
    assert next_look(record("a"), "b", 10.0, 20.0, TIMING) == TIMING.retry_period  # still far: the usual read
    assert next_look(record("a"), "b", 10.0, 30.0, TIMING) <= 0.05  # expired already: at once


def test_the_holder_and_a_replica_before_its_first_read_look_every_retry_period() -> None:
    assert next_look(record("b"), "b", 10.0, 24.0, TIMING) == TIMING.retry_period
    assert next_look(None, "b", 0.0, 24.0, TIMING) == TIMING.retry_period
    assert next_look(record(""), "b", 10.0, 24.0, TIMING) == TIMING.retry_period


def test_a_standby_forwards_reports_where_the_holder_said_and_nowhere_else() -> None:
    written = lease_body(lease_spec(Move.TAKE, None, "a", TIMING, "t"), "http://10.0.0.5:8082/report")
    held = LeaseRecord.of({"spec": written["spec"], "metadata": {"annotations": written["annotations"]}})  # as stored
    assert held.report_url == "http://10.0.0.5:8082/report"
    assert report_target(held, "b") == "http://10.0.0.5:8082/report"
    assert report_target(held, "a") is None  # the holder itself applies reports
    assert report_target(dataclasses.replace(held, holder=""), "b") is None  # released: nobody leads
    assert report_target(dataclasses.replace(held, report_url=""), "b") is None  # said nowhere (an older holder)
    assert report_target(None, "b") is None
    assert lease_body(released_spec(held, "t"), "")["annotations"] == {}
