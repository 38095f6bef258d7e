"""The status travels as the model (api/status.py): its stored form, the change check the plan makes without
dumping, the fields a new run clears, the one validation at the end of the builder (the echo check and the model
the memory holds: test_held_status.py)."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from gallery_operator.api.status import GalleryDownloadStatus
from gallery_operator.status import Observation, compute_status
from tests.unit.status_builders import T1, job, statuses


def models() -> list[GalleryDownloadStatus]:
    return [GalleryDownloadStatus(), *(GalleryDownloadStatus.of_stored(s) for s in statuses())]


def test_the_stored_form_round_trips() -> None:
    for stored in statuses():
        assert GalleryDownloadStatus.of_stored(stored).stored() == stored
    assert GalleryDownloadStatus().stored() == {}


def test_the_change_check_agrees_with_the_stored_forms() -> None:
    candidates = models()
    # The same status with a field set to its default differs in the stored form (the key appears).
    candidates.append(candidates[1].but(attempts=0))
    candidates.append(candidates[1].but(message=candidates[1].message))
    for a, b in itertools.product(candidates, repeat=2):
        assert a.stores_as(b) == (a.stored() == b.stored()), (a.stored(), b.stored())


def test_a_new_run_clears_the_runs_fields_and_keeps_the_catalogue() -> None:
    running = models()[2]
    assert {"progress", "attempts", "startedAt", "catalogue"} <= running.stored().keys()
    fresh = running.for_run("dl-next").stored()
    assert fresh["jobName"] == "dl-next" and "catalogue" in fresh
    assert not {"progress", "attempts", "startedAt", "finishedAt", "failures", "queuedAt"} & fresh.keys()
    assert "queuePosition" in models()[1].stored() and "queuePosition" not in models()[1].out_of_queue().stored()


def test_the_builder_validates_the_whole_status_once() -> None:
    with pytest.raises(ValidationError, match="queue_position"):
        GalleryDownloadStatus().but(queue_position=0).validated()
    with pytest.raises(ValidationError, match="message"):
        compute_status(GalleryDownloadStatus(), Observation(1, T1, job_name="j", job=job(active=1))).but(
            message="x" * 1025
        ).validated()
