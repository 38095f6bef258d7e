"""How often a download's key crosses between the runtime (controller, apply, cleanup) and the pure core in one
reconcile, counted by tracing the calls (issue 22: at most 4).

A crossing is a call from a runtime module into a pure-core module with the download's identity among its
arguments: its key, its snapshot, its parsed spec, its situation or its admission candidate. Calls into the typed
data (snapshots.py, api/: the Job view, the status model) and constructors are not decisions and are not counted;
calls into egress.py carry the namespace and the spec's URLs, not the key (`egress_calls` counts them apart)."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from gallery_operator.admission import Candidate
from gallery_operator.download import Download
from gallery_operator.plan import FINALIZER, Situation
from gallery_operator.snapshots import DownloadSnapshot
from tests.unit.builders import job_appears, snapshot, taken, world

RUNTIME = {"gallery_operator.controller", "gallery_operator.apply", "gallery_operator.cleanup"}
CORE = {
    f"gallery_operator.{name}"
    for name in (
        "plan",
        "status",
        "jobs",
        "download",
        "admission",
        "reports",
        "networkpolicy",
        "workerconfig",
        "config",
    )
}
IDENTITY = (DownloadSnapshot, Download, Candidate)
T = "2026-11-22T10:00:00Z"


def _carries(value: Any, key: tuple[str, str]) -> bool:
    if isinstance(value, Situation):
        return bool(value.snapshot.key == key)
    return bool(value == key or (isinstance(value, IDENTITY) and value.key == key))


@contextmanager
def crossings(key: tuple[str, str]) -> Iterator[list[str]]:
    """The crossings of `key` while the block runs, as `module.function` names."""
    seen: list[str] = []

    def profile(frame: FrameType, event: str, _: Any) -> None:
        if event != "call" or frame.f_back is None:
            return
        callee, caller = frame.f_globals.get("__name__"), frame.f_back.f_globals.get("__name__")
        name = frame.f_code.co_name
        if caller not in RUNTIME or callee not in CORE or name.startswith("__"):
            return
        arguments = [frame.f_locals[v] for v in frame.f_code.co_varnames[: frame.f_code.co_argcount]]
        owner = type(arguments[0]) if arguments else None
        if owner is not None and isinstance(getattr(owner, name, None), property):
            return  # an attribute of a record, not a decision
        if any(_carries(argument, key) for argument in arguments):
            seen.append(f"{callee}.{name}")

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)


def traced(controller: Any, name: str) -> list[str]:
    with crossings(("ns", name)) as seen:
        asyncio.run(controller.reconcile(("ns", name)))
    return seen


RECALL, PLAN = "gallery_operator.plan.recall", "gallery_operator.plan.plan"


def test_how_often_a_reconcile_crosses() -> None:
    delete = dataclasses.replace(snapshot("c"), spec={**snapshot("c").spec, "deletionPolicy": "Delete"})
    controller, fake = world(snapshot("a"), snapshot("b"), delete, max_active_per_namespace=1)
    assert controller.admission.waiting() == 3  # seeded from the caches (and parsed) once, at start
    started = traced(controller, "a")
    assert fake.named("create_job"), "the first reconcile starts the run"
    queued = traced(controller, "b")
    unchanged = traced(controller, "b")
    job_appears(controller, "a", fake.named("create_job")[0])
    taken(controller)
    running = traced(controller, "a")
    downloads = controller.downloads
    assert isinstance(downloads, dict)
    downloads[("ns", "c")] = [dataclasses.replace(delete, deletion_timestamp=T, finalizers=(FINALIZER,))]
    deleting = traced(controller, "c")
    assert fake.named("list_jobs") == ["c"], "the cleanup's reads were made"
    downloads[("ns", "d")] = [snapshot("d")]  # a new download (or a new generation): its spec is parsed once
    new = traced(controller, "d")

    assert queued == unchanged == running == deleting == [RECALL, PLAN]
    assert started == [RECALL, PLAN, "gallery_operator.admission.launch"]
    assert new == ["gallery_operator.plan.parsed", RECALL, PLAN]
