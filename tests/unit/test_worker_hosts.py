"""Politeness per host (worker/hosts.py) and the transfer pool's order and item room (worker/transfers.py), on a
recording clock and real threads."""

from __future__ import annotations

import threading

from gallery_operator.worker.hosts import MAX_PAUSE_SECONDS, Hosts, host_of, retry_after
from gallery_operator.worker.transfers import Transfers


class Clock:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_retry_after_reads_seconds_and_dates_and_is_bounded() -> None:
    assert retry_after("2") == 2.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert retry_after("999999") == MAX_PAUSE_SECONDS
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_hosts_are_told_apart_by_port() -> None:
    assert host_of("http://A.example:8080/x") == "a.example:8080" != host_of("http://a.example/x")


def test_item_starts_of_one_host_are_spaced_by_the_pause() -> None:
    clock = Clock()
    hosts = Hosts(None, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        hosts.start_item("http://a.example/1.jpg", 2.0)
    hosts.start_item("http://b.example/1.jpg", 2.0)  # another host: its own spacing
    assert clock.slept == [2.0, 2.0]


def test_a_retry_after_pauses_every_request_to_its_host_only() -> None:
    clock = Clock()
    hosts = Hosts(None, clock=clock, sleep=clock.sleep)
    hosts.answered("http://a.example/3.jpg", 429, {"Retry-After": "5"})
    hosts.answered("http://a.example/4.jpg", 404, {"Retry-After": "50"})  # not a pausing status
    hosts.before_request("http://b.example/1.jpg")
    assert clock.slept == []
    hosts.before_request("http://a.example/1.jpg")
    hosts.before_request("http://a.example/2.jpg")
    assert clock.slept == [5.0]


def test_the_rate_is_the_hosts_whole() -> None:
    clock = Clock()
    hosts = Hosts(1000, clock=clock, sleep=clock.sleep)
    hosts.take("http://a.example/1.jpg", 500)
    hosts.take("http://a.example/2.jpg", 500)  # another transfer, the same host: booked after the first
    assert clock.slept == [0.5, 0.5]


def test_results_are_committed_in_the_order_items_were_handed_in() -> None:
    pool = Transfers(4, lambda: None)
    release = threading.Event()
    committed: list[int] = []

    def transfer(index: int) -> None:
        if index == 3:
            release.set()  # items 1 to 3 are done with their transfers and wait for their turn
        if index == 0:
            release.wait()  # the first item finishes last
        with pool.in_turn(index):
            committed.append(index)

    for _ in range(8):
        pool.submit(transfer)
    pool.close()
    assert committed == list(range(8))


def test_no_more_items_start_than_the_limit_allows() -> None:
    done = [0]
    lock = threading.Lock()
    most = [0]
    running = [0]

    def transfer(index: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0] + done[0])
        with lock:
            running[0] -= 1
            done[0] += 1

    pool = Transfers(4, lambda: 3 - done[0])
    for _ in range(3):
        pool.submit(transfer)
    pool.close()
    assert most[0] <= 3 and done[0] == 3


def test_an_items_error_is_raised_on_the_engines_thread() -> None:
    pool = Transfers(2, lambda: None)

    def failing(index: int) -> None:
        raise RuntimeError(f"item {index}")

    pool.submit(failing)
    pool.drain()
    try:
        pool.raise_pending()
    except RuntimeError as error:
        assert str(error) == "item 0"
    else:
        raise AssertionError("the item's error was lost")
    pool.close()
