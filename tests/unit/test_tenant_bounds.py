"""Pure bounds between tenants: S3 prefixes rooted in the download's namespace."""

from __future__ import annotations

import pytest

from gallery_operator.jobs import storage_for
from gallery_operator.workerconfig import S3Storage
from tests.unit.test_jobs import SETTINGS, download


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
