"""What earlier pods and runs recorded stays in the status. A report whose pod read no catalogue (it could not open
its target, its configuration was refused, it crashed before or after reading) says nothing of what is stored or
how far the run got: the status keeps the catalogue and progress it knew, marked with the run that read them, and
adds the report's failures. A report whose pod read the catalogue says what it holds, an empty one included."""

from __future__ import annotations

import json
from typing import Any

from gallery_operator.api.status import CatalogueItem, Failure, FailureReason
from gallery_operator.cli.kubectl_gallery import describe
from gallery_operator.status import Observation, stored_status
from gallery_operator.workerconfig import Report
from tests.unit.status_builders import T0, T1, T2, job, stored_report

T3 = "2026-11-21T10:02:00Z"
LOCATION = "s3://media/team/dl/.gallery-operator/catalogue.jsonl"
ITEMS = [
    CatalogueItem(path=f"{n}.jpg", size=1000, sha256=f"{n:064x}", content_type="image/jpeg", source_url=f"http://x/{n}")
    for n in range(7)
]
STORED = stored_report("r1", ITEMS, LOCATION)
"""A worker that stored 7 items and read them back into its catalogue."""


def ended_without_catalogue(run: str, reason: FailureReason, message: str, prefix: str = "") -> Report:
    """A pod's final report made without the catalogue, as worker/pod.py writes it: the target could not be opened
    (StorageError), the configuration was refused (InvalidSpec), or the worker's own bug escaped (Internal)."""
    failure = Failure(reason=reason, message=message)
    return Report(run=run, final=True, outcome="Failed", message=f"{prefix}{message}", failures=[failure])


def unopened(run: str) -> Report:
    error = "Could not connect to the endpoint URL: 'http://10.0.0.9:9000/media/team/dl/.gallery-operator/...'"
    return ended_without_catalogue(run, "StorageError", error, "cannot open the target: ")


def crashed(run: str) -> Report:
    return ended_without_catalogue(run, "Internal", "the worker failed: RuntimeError: boom")


def refused(run: str) -> Report:
    return ended_without_catalogue(run, "InvalidSpec", "spec.urls: at least 1 item", "invalid worker configuration: ")


def stalled_reason(status: dict[str, Any]) -> str:
    return str(next(c["reason"] for c in status["conditions"] if c["type"] == "Stalled" and c["status"] == "True"))


def first_run_stored() -> dict[str, Any]:
    """Run dl-r1 stored 7 items and succeeded."""
    running = stored_status({}, Observation(1, T0, job_name="dl-r1", job=job(active=1), report=STORED))
    final = STORED.model_copy(update={"final": True, "outcome": "Succeeded"})
    done = stored_status(running, Observation(1, T1, job_name="dl-r1", job=job("Complete", succeeded=1), report=final))
    assert (done["phase"], done["catalogue"]["items"]) == ("Succeeded", 7)
    return done


def test_a_retried_pod_that_cannot_open_its_target_keeps_the_runs_catalogue_and_progress() -> None:
    first_pod = STORED.model_copy(update={"failures": [Failure(reason="NetworkError", url="http://x/7")]})
    running = stored_status({}, Observation(1, T0, job_name="dl-r1", job=job(active=1), report=first_pod))
    ended = stored_status(
        running,
        Observation(
            1, T1, job_name="dl-r1", job=job("Failed", failed=2, reason="BackoffLimitExceeded"), report=unopened("r1")
        ),
    )
    assert ended["phase"] == "Failed" and stalled_reason(ended) == "StorageError"
    assert ended["catalogue"] == running["catalogue"]
    assert ended["catalogue"] == {
        "items": 7,
        "bytes": 7000,
        "size": "6.8Ki",
        "location": LOCATION,
        "sample": [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in ITEMS],
        "jobName": "dl-r1",
    }
    assert ended["progress"] == running["progress"]  # the first pod stored 7; the second counted nothing
    assert [f["reason"] for f in ended["failures"]] == ["NetworkError", "StorageError"]  # both pods' failures


def test_a_new_run_that_cannot_open_its_target_keeps_the_catalogue_marked_as_the_earlier_runs() -> None:
    done = first_run_stored()
    started = stored_status(done, Observation(2, T2, job_name="dl-r2", job=job(active=1)))
    ended = stored_status(
        started, Observation(2, T3, job_name="dl-r2", job=job("Failed", failed=1), report=unopened("r2"))
    )
    assert ended["phase"] == "Failed" and stalled_reason(ended) == "StorageError"
    assert ended["jobName"] == "dl-r2"
    assert ended["catalogue"] == done["catalogue"]  # 7 items, as run dl-r1 read them
    assert ended["catalogue"]["jobName"] == "dl-r1"
    assert "progress" not in ended  # the new run counted nothing: no progress, not a made-up 0


def test_kubectl_gallery_says_when_the_catalogue_is_an_earlier_runs() -> None:
    done = first_run_stored()
    started = stored_status(done, Observation(2, T2, job_name="dl-r2", job=job(active=1)))
    ended = stored_status(
        started, Observation(2, T3, job_name="dl-r2", job=job("Failed", failed=1), report=unopened("r2"))
    )
    meta = {"namespace": "media", "name": "dl"}
    [line] = [line for line in describe({"metadata": meta, "status": ended}) if line.startswith("Catalogue:")]
    assert line.startswith("Catalogue:  7 items, 6.8Ki, as run dl-r1 read it"), line
    [line] = [line for line in describe({"metadata": meta, "status": done}) if line.startswith("Catalogue:")]
    assert "as run" not in line


def test_a_worker_crash_report_keeps_what_the_runs_reports_said() -> None:
    running = stored_status({}, Observation(1, T0, job_name="dl-r1", job=job(active=1), report=STORED))
    ended = stored_status(
        running, Observation(1, T1, job_name="dl-r1", job=job("Failed", failed=1), report=crashed("r1"))
    )
    assert stalled_reason(ended) == "Internal"
    assert (ended["catalogue"], ended["progress"]) == (running["catalogue"], running["progress"])


def test_a_refused_configuration_keeps_the_earlier_runs_catalogue() -> None:
    done = first_run_stored()
    ended = stored_status(done, Observation(2, T2, job_name="dl-r2", job=job("Failed", failed=1), report=refused("r2")))
    assert stalled_reason(ended) == "InvalidSpec"
    assert ended["catalogue"] == done["catalogue"]


def test_a_pod_killed_before_it_reported_keeps_everything_the_run_recorded() -> None:
    running = stored_status({}, Observation(1, T0, job_name="dl-r1", job=job(active=1), report=STORED))
    ended = stored_status(
        running, Observation(1, T1, job_name="dl-r1", job=job("Failed", failed=2, reason="BackoffLimitExceeded"))
    )
    assert stalled_reason(ended) == "BackoffLimitExceeded"
    assert (ended["catalogue"], ended["progress"]) == (running["catalogue"], running["progress"])


def test_a_read_of_an_empty_catalogue_is_reported_as_empty() -> None:
    """A new target (the spec moved the download to another bucket) holds nothing yet: 0 read is 0 stored there."""
    done = first_run_stored()
    moved = "s3://other/team/dl/.gallery-operator/catalogue.jsonl"
    empty = Report(run="r2", catalogue_items=0, catalogue_bytes=0, catalogue_location=moved)
    running = stored_status(done, Observation(2, T2, job_name="dl-r2", job=job(active=1), report=empty))
    assert done["catalogue"]["jobName"] == "dl-r1"
    assert running["catalogue"] == {
        "items": 0,
        "bytes": 0,
        "size": "0",
        "location": moved,
        "sample": [],
        "jobName": "dl-r2",
    }


def test_a_read_with_fewer_records_says_what_the_catalogue_holds() -> None:
    """A retry that resumes from an S3 catalogue synced before its pod was killed reads fewer records than that pod
    reported: the status says what the catalogue holds now (the retry records the rest again as it re-stores them)."""
    running = stored_status({}, Observation(1, T0, job_name="dl-r1", job=job(active=1), report=STORED))
    resumed = STORED.model_copy(update={"catalogue_items": 4, "catalogue_bytes": 4000, "sample": ITEMS[:4]})
    retried = stored_status(running, Observation(1, T1, job_name="dl-r1", job=job(active=1), report=resumed))
    assert (retried["catalogue"]["items"], retried["catalogue"]["bytes"]) == (4, 4000)


def test_reports_tell_no_catalogue_read_from_an_empty_one() -> None:
    sent = json.loads(unopened("r").model_dump_json(by_alias=True, exclude_none=True))
    assert Report.model_validate(sent).catalogue_items is None
    assert Report.model_validate({"run": "r", "final": True, "outcome": "Failed"}).catalogue_items is None
    empty = Report.model_validate({"run": "r", "catalogueItems": 0, "catalogueBytes": 0, "catalogueLocation": LOCATION})
    assert empty.catalogue_items == 0
    # The worker's termination message of a pod that read none carries no catalogue field at all.
    assert "catalogue" not in unopened("r").model_dump_json(by_alias=True, exclude_none=True).lower()
