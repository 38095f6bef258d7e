"""The facade's write gate (facade.GATE): with leader election, a replica that does not lead sends no write. Every
call of the facade's interfaces is either a write (refused with the gate shut, before anything is sent) or a read."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from gallery_operator import kube
from gallery_operator.facade import GATE, NotLeader, ThreadedKube, ThreadedSubscriptionKube

WRITES = {
    ThreadedKube: {
        "create_job",
        "create_pvc",
        "keep_network_policy",
        "delete_network_policy",
        "delete_job",
        "set_job_suspended",
        "patch_status",
        "set_finalizers",
        "post_event",
    },
    ThreadedSubscriptionKube: {"create_download", "delete_download", "patch_status", "set_finalizers", "post_event"},
}
READS = {
    ThreadedKube: {
        "list_jobs",
        "job_bodies",
        "count_pods",
        "read_job",
        "termination_messages",
        "review_token",
        "read_pod",
    },
    ThreadedSubscriptionKube: set(),
}


@pytest.fixture
def shut() -> Iterator[None]:
    GATE.may_write = lambda: False
    yield
    GATE.may_write = lambda: True


def arguments(method: Any) -> list[Any]:
    return [{"metadata": {"namespace": "n", "name": "x"}} for _ in inspect.signature(method).parameters]


def test_every_call_is_a_read_or_a_write() -> None:
    for kind, writes in WRITES.items():
        calls = {name for name, _ in inspect.getmembers(kind, inspect.iscoroutinefunction) if not name.startswith("_")}
        assert calls == writes | READS[kind], f"{kind.__name__}: classify {calls ^ (writes | READS[kind])}"


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind, names in WRITES.items() for name in sorted(names)])
def test_a_shut_gate_refuses_every_write_before_it_is_sent(shut: None, kind: type, name: str, monkeypatch: Any) -> None:
    sent: list[str] = []
    for attribute in dir(kube):
        if not attribute.startswith("_") and callable(getattr(kube, attribute)):
            monkeypatch.setattr(kube, attribute, lambda *_, attribute=attribute: sent.append(attribute))
    method = getattr(kind(), name)
    with pytest.raises(NotLeader):
        asyncio.run(method(*arguments(method)))
    assert sent == []


def test_an_open_gate_counts_the_writes_under_way() -> None:
    seen: list[bool] = []

    async def main() -> None:
        await asyncio.to_thread(GATE.run, lambda: seen.append(not asyncio.run(GATE.drained(0.01))))
        seen.append(await GATE.drained(0.01))

    asyncio.run(main())
    assert seen == [True, True]
