"""The fixture site's bandwidth cap (gallery_harness.site.Pacer) on a virtual clock: what a link of that rate would
carry, whatever the writer's own scheduling."""

from __future__ import annotations

import pytest

from gallery_harness.site import Pacer


class Clock:
    """A virtual clock whose sleeps overrun by ``overrun`` seconds (a thread that wakes late: timer slack, a busy
    core)."""

    def __init__(self, overrun: float = 0.0) -> None:
        self.now = 0.0
        self.overrun = overrun

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.overrun


def test_a_writer_that_wakes_late_still_gets_the_whole_rate() -> None:
    """1,000 bytes at 1,000 bytes a second in 100 pieces, each sleep 5 ms late: the link's second is kept (it sends
    from the queue the writer filled ahead); a pacer that restarts its clock at each late wake-up takes 1.5 s."""
    clock = Clock(overrun=0.005)
    pacer = Pacer(rate=1000, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        pacer.take(10)
    assert pacer.free_at == pytest.approx(1.0)
    assert clock.now <= 1.0 + Pacer.BURST_SECONDS


def test_without_a_burst_the_late_wake_ups_are_lost() -> None:
    """The same writer through a pacer without a bucket (burst 0: the site's pacer before): 5 ms lost per piece."""
    clock = Clock(overrun=0.005)
    pacer = Pacer(rate=1000, burst=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        pacer.take(10)
    assert clock.now == pytest.approx(1.5, abs=0.01)


def test_an_idle_link_banks_no_more_than_its_burst() -> None:
    """After 10 s idle, 1,000 bytes at 1,000 bytes a second still take the second, less the 10 ms burst."""
    clock = Clock()
    pacer = Pacer(rate=1000, clock=clock, sleep=clock.sleep)
    clock.now = 10.0
    pacer.take(1000)
    assert clock.now == pytest.approx(10.0 + 1.0 - Pacer.BURST_SECONDS)


def test_threads_share_the_rate() -> None:
    """Bookings of two writers (two responses under a site-wide cap) come one after the other."""
    clock = Clock()
    pacer = Pacer(rate=1000, clock=clock, sleep=lambda seconds: None)
    pacer.take(500)
    pacer.take(500)
    assert pacer.free_at == pytest.approx(1.0)
