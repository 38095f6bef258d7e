"""Secrets stay secret: a hostile site echoes the pod's credentials back in every encoding, through the real engines,
and none of it reaches what the worker writes or says (reports, catalogue, sidecars, file names, logs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery_harness.site import Handler
from tests.component.hostile_secrets import API_KEY, COOKIE, PASSWORD, REDIRECTS, S3_SECRET, SECRETS, pod_env
from tests.component.workers import claim, start_worker
from tests.secrets_check import leaks


@pytest.fixture
def planted() -> Iterator[None]:
    """The hostile site knows the password, the token and the S3 key too (it learnt them somehow)."""
    Handler.planted = [PASSWORD, API_KEY, S3_SECRET]
    yield
    Handler.planted = []


def pod_secrets(tmp_path: Path, site: str) -> dict[str, str]:
    """Every kind of credential a pod may hold."""
    tokens = {"GALLERY_AUTH_API_KEY": API_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}
    return pod_env(tmp_path, site, ("leak", COOKIE), PASSWORD, **tokens)


def everything_written(root: Path) -> dict[str, str]:
    """Every file name under the target, and the text of the catalogue and the sidecars."""
    written = {"file names": "\n".join(str(p.relative_to(root)) for p in sorted(root.rglob("*")))}
    for path in root.rglob("*"):
        if path.suffix in (".json", ".jsonl"):
            written[str(path.relative_to(root))] = path.read_text(errors="replace")
    return written


@pytest.mark.parametrize(
    ("engine", "pages"),
    [
        ("gallery-dl", ["leak/page.html", "leak/redirect/3.jpg", *REDIRECTS]),
        ("yt-dlp", ["leak/video.html", "leak/redirect/4.mp4", *REDIRECTS]),
    ],
)
def test_secrets_echoed_by_a_site_reach_nothing_the_worker_writes(
    tmp_path: Path, site: str, planted: None, engine: str, pages: list[str]
) -> None:
    spec = {
        "urls": [f"{site}/{page}" for page in pages],
        "engine": engine,
        "options": {"retries": 0, "writeMetadata": True},
    }
    process = start_worker(tmp_path, spec, claim(tmp_path), env=pod_secrets(tmp_path, site))
    stdout, stderr = process.communicate(timeout=120)
    termination = (tmp_path / "termination-log").read_text()
    report = json.loads(termination)
    # The hostile content was taken: items stored under names the site chose, the redirect failed and was reported.
    assert report["itemsDone"] >= 1 and report["failures"], (report, stderr[-3000:])
    root = tmp_path / "claim"
    outputs = {"termination message": termination, "stdout": stdout, "stderr": stderr, **everything_written(root)}
    found = {where: leaks(text, SECRETS) for where, text in outputs.items()}
    assert not any(found.values()), {where: secrets for where, secrets in found.items() if secrets}
