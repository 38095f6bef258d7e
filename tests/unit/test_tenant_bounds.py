"""Pure bounds between tenants: S3 prefixes rooted in the download's namespace."""

from __future__ import annotations

import pytest

from gallery_operator.jobs import build_cleanup_job, build_job, storage_for
from gallery_operator.workerconfig import S3Storage
from tests.unit.builders import JOB_SETTINGS as SETTINGS
from tests.unit.builders import download


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, "ns/cats"),
        ("library", "ns/library"),
        ("other/cats", "ns/other/cats"),  # another namespace's default prefix
        ("ns/cats", "ns/ns/cats"),
        ("other", "ns/other"),
    ],
)
def test_an_s3_prefix_is_always_under_the_downloads_namespace(prefix: str | None, expected: str) -> None:
    s3 = {"bucket": "media"} | ({"prefix": prefix} if prefix else {})
    storage = storage_for(download(target={"s3": s3}), SETTINGS)
    assert isinstance(storage, S3Storage) and storage.prefix == expected


@pytest.mark.parametrize(
    ("asked", "operator_limit", "expected"),
    [
        (None, 86400, 86400),  # the default: nothing runs for ever
        (600, 86400, 600),
        (7 * 86400, 86400, 86400),  # capped
        (7 * 86400, 7 * 86400, 7 * 86400),
        (None, 3600, 3600),
    ],
)
def test_every_worker_and_cleanup_job_has_a_deadline_capped_by_the_operator(
    asked: int | None, operator_limit: int, expected: int
) -> None:
    limits = {"activeDeadlineSeconds": asked} if asked else {}
    item = download(limits=limits, deletionPolicy="Delete")
    settings = SETTINGS.model_copy(update={"active_deadline_seconds": operator_limit})
    assert build_job(item, settings)["spec"]["activeDeadlineSeconds"] == expected
    assert build_cleanup_job(item, settings)["spec"]["activeDeadlineSeconds"] == expected
