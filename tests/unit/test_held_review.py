"""Hostile review of `held`'s early return (1e85b7c): a model whose fields set is already the shared one is taken as
held whole. Whatever sequence of reports builds two downloads' statuses (runs, retries, a report that read no
catalogue, the queue), no mutable object is shared between them, nor with pydantic's own defaults: a change in place
through one download's status can reach no other (the shared objects all refuse changes)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from gallery_operator.api.status import CatalogueItem, Failure, GalleryDownloadStatus, held
from gallery_operator.status import Observation, compute_status
from gallery_operator.workerconfig import Report
from tests.unit.status_builders import T1, T2, job

ITEM = CatalogueItem(path="a.jpg", size=1, sha256="0" * 64)


def _graph(value: Any, seen: dict[int, Any]) -> dict[int, Any]:
    """Every list, set, dict and model reachable from ``value`` (the fields set included), by id."""
    if id(value) in seen or not isinstance(value, list | set | dict | BaseModel):
        return seen
    seen[id(value)] = value
    if isinstance(value, BaseModel):
        _graph(value.__pydantic_fields_set__, seen)
        parts: Any = value.__dict__.values()
    else:
        parts = value.values() if isinstance(value, dict) else value
    for part in parts:
        _graph(part, seen)
    return seen


def history(run: str) -> list[GalleryDownloadStatus]:
    """One download's statuses as the operator holds them: queued, running, a report with a catalogue, a retried
    pod's report that read none, the end, and a new run that read none either."""
    reports = [
        Report(run=run, items_done=1, catalogue_items=1, catalogue_bytes=1, sample=[ITEM]),
        Report(run=run, final=True, outcome="Failed", failures=[Failure(reason="StorageError", message=run)]),
    ]
    observations = [
        Observation(1, T1, queue_position=2),
        Observation(1, T1, job_name=f"{run}-1", job=job(active=1)),
        Observation(1, T2, job_name=f"{run}-1", job=job(active=1), report=reports[0]),
        Observation(1, T2, job_name=f"{run}-1", job=job(active=1, failed=1), report=reports[1]),
        Observation(1, T2, job_name=f"{run}-1", job=job("Failed", failed=2), report=reports[1]),
        Observation(2, T2, job_name=f"{run}-2", job=job("Failed", failed=1), report=reports[1]),
    ]
    status, held_ones = GalleryDownloadStatus(), []
    for observation in observations:
        status = held(compute_status(status, observation))
        held_ones.append(status)
    return held_ones


def test_two_downloads_statuses_share_only_what_refuses_changes() -> None:
    one, other = history("a"), history("b")
    ours = {key: value for status in one for key, value in _graph(status, {}).items()}
    theirs = {key: value for status in other for key, value in _graph(status, {}).items()}
    models: list[type[BaseModel]] = [
        GalleryDownloadStatus,
        *{type(v) for v in ours.values() if isinstance(v, BaseModel)},
    ]
    defaults = {
        key: value
        for model in models
        for info in model.model_fields.values()
        for key, value in _graph(info.default, {}).items()
    }
    assert not ours.keys() & defaults.keys(), "a held status holds pydantic's own default object"
    shared = [ours[key] for key in ours.keys() & theirs.keys()]
    assert shared  # the unset defaults and field sets are shared: that is held's point
    for value in shared:
        change: dict[type, Any] = {
            list: lambda v: v.append(None),
            set: lambda v: v.add("x"),
            dict: lambda v: v.update(x=1),
        }
        if isinstance(value, BaseModel):
            with pytest.raises(Exception, match=r"frozen|shared"):
                setattr(value, next(iter(type(value).model_fields)), None)
            continue
        with pytest.raises(TypeError, match="shared"):
            change[type(value).__mro__[-2]](value)
    assert one[-1].catalogue.items == 1 and one[-1].catalogue.job_name == "a-1"  # kept from the run that read it
