"""The operator's last-written memory holds each download's status as the model (issue 22 step 1), made light to hold
(`api.status.held`): the same values and stored form, the fields-set objects and the unset defaults shared between
downloads, the builder still building on it, and the echo check answering from it."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc
from typing import Any

import pytest
from pydantic import BaseModel

from gallery_operator.api.status import GalleryDownloadStatus, echoes, held
from gallery_operator.keys import Key
from gallery_operator.status import Observation, compute_status
from tests.unit.builders import reconcile, snapshot, world
from tests.unit.status_builders import T1, T2, job, statuses


def queued(position: int, now: str = T1) -> GalleryDownloadStatus:
    """A download's status as the operator writes it on entering the queue (9,995 of 10,000 in `bench.operator
    scale`)."""
    return compute_status(GalleryDownloadStatus(), Observation(1, now, queue_position=position))


def typed() -> list[GalleryDownloadStatus]:
    """Every kind of status, built and typed from its stored form."""
    built = [queued(3), compute_status(queued(1), Observation(2, T2, job_name="dl-r", job=job(active=1)))]
    return [*built, GalleryDownloadStatus(), *(GalleryDownloadStatus.of_stored(s) for s in statuses())]


def test_a_held_status_keeps_its_values_its_fields_set_and_its_stored_form() -> None:
    for status in typed():
        before, names = status.stored(), set(status.model_fields_set)
        twin = GalleryDownloadStatus.of_stored(before)
        assert held(status) is status
        assert status.stored() == before and status == twin and status.model_fields_set == names
        assert status.stores_as(twin) and twin.stores_as(status)
        assert status.model_dump(exclude_unset=True) == twin.model_dump(exclude_unset=True)
        assert copy.deepcopy(status) == twin and pickle.loads(pickle.dumps(status)) == twin


def test_held_statuses_share_their_field_sets_and_unset_defaults() -> None:
    one, other = held(queued(1)), held(queued(2, T2))
    assert one.model_fields_set is other.model_fields_set
    for a, b in zip(one.conditions, other.conditions, strict=True):
        assert a.model_fields_set is b.model_fields_set
    fields = GalleryDownloadStatus.model_fields
    for name in fields.keys() - one.model_fields_set:
        # pydantic copies a default it cannot hash (a list, the catalogue holding one) into every instance; held
        # models share one value per field instead, never pydantic's own default (the source of those copies)
        assert getattr(one, name) is getattr(other, name), name
        assert getattr(one, name) == fields[name].default, name
        if isinstance(fields[name].default, list | BaseModel):
            assert getattr(one, name) is not fields[name].default, name


def test_a_shared_default_refuses_changes_so_no_status_reaches_another() -> None:
    """A change in place to an unset list of a held status would reach every held status and, through pydantic's
    default, every status built later (another download's, in another namespace): it is refused."""
    one = held(queued(1))
    failure: Any = "x"  # refused before its type matters
    for change in (
        lambda: one.failures.append(failure),
        lambda: one.failures.extend([failure]),
        lambda: one.catalogue.sample.append(failure),
        lambda: one.failures.__setitem__(slice(0, 0), [failure]),
        lambda: one.failures.__iadd__([failure]),
    ):
        with pytest.raises(TypeError, match="shared"):
            change()
    assert GalleryDownloadStatus().failures == [] and GalleryDownloadStatus().catalogue.sample == []
    assert GalleryDownloadStatus.model_fields["failures"].default == []
    copied = copy.deepcopy(one.failures)
    copied.append(failure)  # a copy is the caller's own
    assert one.failures == []
    assert pickle.loads(pickle.dumps(one)) == one


def test_only_a_frozen_model_can_be_held() -> None:
    class Loose(BaseModel):
        names: list[str] = []

    with pytest.raises(TypeError, match="not frozen"):
        held(Loose())


def test_the_shared_field_set_refuses_changes_and_copies_into_a_plain_set() -> None:
    names = held(queued(1)).model_fields_set
    changes: list[tuple[str, tuple[Any, ...]]] = [
        ("add", ("message",)),
        ("discard", ("phase",)),
        ("remove", ("phase",)),
        ("pop", ()),
        ("clear", ()),
        ("update", ({"x"},)),
        ("difference_update", ({"phase"},)),
        ("intersection_update", (set(),)),
        ("symmetric_difference_update", ({"x"},)),
        ("__ior__", ({"x"},)),
        ("__iand__", (set(),)),
        ("__isub__", ({"phase"},)),
        ("__ixor__", ({"x"},)),
    ]
    for method, arguments in changes:
        with pytest.raises(TypeError, match="shared"):
            getattr(names, method)(*arguments)
    assert "phase" in names and "x" not in names
    plain = copy.copy(names)
    plain.add("x")
    assert type(plain) is set and "x" not in names
    assert names - {"phase"} == set(names) - {"phase"}


def test_the_builder_builds_on_a_held_status_as_on_a_built_one() -> None:
    for observation in (
        Observation(1, T2, queue_position=1),
        Observation(2, T2, job_name="dl-next", job=job(active=1)),
        Observation(2, T2, job_name="dl-r", job=job("Complete", succeeded=1)),
    ):
        for status in typed():
            expected = compute_status(GalleryDownloadStatus.of_stored(status.stored()), observation).stored()
            light = held(GalleryDownloadStatus.of_stored(status.stored()))
            names = set(light.model_fields_set)
            assert compute_status(light, observation).stored() == expected
            assert light.model_fields_set == names  # the shared set is untouched by the copies
    running = held(GalleryDownloadStatus.of_stored(statuses()[1]))
    assert running.but(attempts=7).stored()["attempts"] == 7 and running.stored()["attempts"] != 7
    assert "progress" not in running.for_run("dl-next").stored() and "progress" in running.stored()


def _parts(value: Any) -> list[BaseModel]:
    return [part for part in (value if isinstance(value, list) else [value]) if isinstance(part, BaseModel)]


def test_a_status_built_on_a_held_one_is_held_whole_its_new_parts_too() -> None:
    """`held` returns at once for a model held before (the parts a status reuses from the one before it), and still
    reaches every part that is new: the builder's copy of a held status is not itself held."""
    before = held(compute_status(queued(1), Observation(2, T2, job_name="dl-r", job=job(active=1))))
    after = compute_status(before, Observation(2, T2, job_name="dl-r", job=job("Complete", succeeded=1)))
    assert type(after.model_fields_set) is set  # a copy: plain, not the shared set
    parts = [part for name in after.model_fields_set for part in _parts(getattr(after, name))]
    new = [part for part in parts if not any(part is old for old in (*before.conditions, before.catalogue))]
    assert new  # the finished run brings new conditions at least
    assert held(after) is after
    assert after.model_fields_set is held(after.model_copy()).model_fields_set  # the shared set of these names
    for part in new:
        assert part.model_fields_set is held(part.model_copy()).model_fields_set


def _traced(build: Any, count: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = [build(n) for n in range(count)]
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - base
        assert len(kept) == count  # held until measured
        return size
    finally:
        tracemalloc.stop()


def test_a_held_status_costs_less_than_half_of_a_built_one() -> None:
    """The memory's reason to hold the model at all: 1,000 Queued statuses, built (about 5.3 KB each) against held
    (about 1.9 KB each; the stored form is about 1.4 KB). Each has a message and times of its own, as in a queue."""
    held(queued(1))  # the shared field sets exist before the count (a few, for any number of downloads)

    def time_of(n: int) -> str:
        return f"2026-11-21T10:{n // 60 % 60:02d}:{n % 60:02d}Z"

    built = _traced(lambda n: queued(n + 1, time_of(n)), 1000)
    light = _traced(lambda n: held(queued(n + 1, time_of(n))), 1000)
    stored = _traced(lambda n: queued(n + 1, time_of(n)).stored(), 1000)
    assert light * 2 < built, (light, built)
    assert light < 1.5 * stored, (light, stored)


def test_the_echo_of_a_written_status_is_recognised_from_the_memorys_model() -> None:
    controller, fake = world(snapshot("a"), snapshot("b"), max_active_per_namespace=1)
    reconcile(controller, "a", "b")  # a is granted its slot (Pending, JobCreated); b waits (Queued)
    for name, phase in (("a", "Pending"), ("b", "Queued")):
        stored = fake.statuses[name]
        assert stored["phase"] == phase
        body = {"metadata": {"uid": f"uid-{name}", "generation": 1}, "status": stored}
        assert controller.is_own_status_echo(Key("ns", name), body)
        assert not controller.is_own_status_echo(Key("ns", name), {**body, "metadata": {"uid": "x", "generation": 1}})
        assert not controller.is_own_status_echo(
            Key("ns", name), {**body, "metadata": {"uid": f"uid-{name}", "generation": 2}}
        )
        other = [{**c, "message": "changed by hand"} for c in stored["conditions"]]
        assert not controller.is_own_status_echo(Key("ns", name), {**body, "status": {**stored, "conditions": other}})
        assert not controller.is_own_status_echo(Key("ns", name), {**body, "status": {**stored, "phase": "Failed"}})


def test_echoes_compares_the_phase_and_the_conditions_as_stored() -> None:
    written = compute_status(GalleryDownloadStatus(), Observation(3, T1, job_name="j", job=job(active=1)))
    stored = written.stored()
    for status in (written, held(GalleryDownloadStatus.of_stored(stored))):
        assert echoes(stored, status, 3)
        assert not echoes(stored, status, 4)  # a newer generation: reconcile
        assert not echoes({**stored, "phase": "Failed"}, status, 3)
        assert not echoes({**stored, "conditions": stored["conditions"][:2]}, status, 3)
        assert not echoes({key: v for key, v in stored.items() if key != "conditions"}, status, 3)
    unwritten = GalleryDownloadStatus().but(observed_generation=3)
    assert echoes({"observedGeneration": 3}, unwritten, 3)
    assert not echoes({"observedGeneration": 3, "phase": "Pending"}, unwritten, 3)
