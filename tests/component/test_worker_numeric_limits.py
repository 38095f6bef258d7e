"""Every numeric option at the schema's limits either builds an engine configuration that runs, with the real worker
and both engines, or is refused by the schema naming the field (never a crash outside any handler)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_operator.api.spec import LARGEST_INTEGER, parse_spec
from gallery_operator.workerconfig import Egress, PvcStorage, WorkerConfig
from tests.component.workers import run_worker
from tests.fixtures.hostile import SMALL, media_bytes, serve

AT_THE_LIMITS: list[dict[str, Any]] = [
    {"options": {"rateLimit": "999999999999999.999999G"}},  # the largest rate the pattern admits
    {"options": {"rateLimit": "999999999999999"}},
    {"options": {"rateLimit": "1.5k", "timeoutSeconds": 600, "retries": 20}},
    {"options": {"timeoutSeconds": 1.0, "retries": 0.0, "lowSpeedLimit": 1024**3, "lowSpeedSeconds": 3600}},
    {"options": {"sleepSeconds": 1e-9, "lowSpeedLimit": 0, "lowSpeedSeconds": 1}},
    {"options": {"galleryDl": {"sleep-request": 0.0, "sleep-429": 3600, "retry-codes": [400, 599]}}},
    {
        "options": {
            "ytDlp": {
                "http_chunk_size": 1024,
                "min_filesize": 0,
                "max_filesize": LARGEST_INTEGER,
                "throttledratelimit": 1,
                "concurrent_fragment_downloads": 16,
                "age_limit": 99,
            }
        }
    },
    {"options": {"ytDlp": {"http_chunk_size": 1024**3}}},
    {"limits": {"maxItems": 1_000_000, "maxBytes": "999999999999999.999999Pi", "maxItemSeconds": 7 * 24 * 3600}},
    {"limits": {"maxBytes": "1Mi", "maxItemSeconds": 1}, "backoffLimit": 10, "priority": -1000},
]


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
@pytest.mark.parametrize("extra", AT_THE_LIMITS, ids=lambda e: str(e)[:60])
def test_numeric_options_at_the_limits_run(tmp_path: Path, hostile: str, engine: str, extra: dict[str, Any]) -> None:
    url = f"{hostile}/small/limits.mp4"  # 4 KiB: at rateLimit 1.5k, 64 KiB would take 43 s of waiting
    spec = {"urls": [url], "engine": engine, "target": {"pvc": {"claimName": "x"}}, **extra}
    parse_spec(spec)  # admitted
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 1), report
    stored = [p for p in (tmp_path / "claim").iterdir() if p.is_file()]  # gallery-dl names it .jpg (its bytes)
    assert [p.read_bytes() for p in stored] == [media_bytes("limits.mp4", SMALL)]


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_the_smallest_byte_limit_stops_the_run_naming_it(tmp_path: Path, hostile: str, engine: str) -> None:
    spec = {"urls": [f"{hostile}/ok/limits.mp4"], "engine": engine, "limits": {"maxBytes": "1"}}
    code, report = run_worker(tmp_path, spec, PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl"))
    assert (code, report["itemsDone"]) == (0, 0)
    [failure] = report["failures"]
    assert failure["reason"] == "LimitExceeded" and "limits.maxBytes" in failure["message"]


def test_a_rate_of_many_digits_given_to_the_worker_is_refused_with_a_report(tmp_path: Path, hostile: str) -> None:
    """Past the API server (a configuration written by hand, an older CRD): the worker's own check refuses it with
    a report naming the field, where it once crashed building the engines' options, outside any handler."""
    spec = parse_spec({"urls": [f"{hostile}/ok/a.mp4"], "target": {"pvc": {"claimName": "x"}}})
    config = WorkerConfig(
        namespace="ns",
        name="dl",
        uid="u",
        run="run1",
        spec=spec,
        storage=PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl"),
        egress=Egress(allow_private_networks=True),
    )
    raw = json.loads(config.model_dump_json(by_alias=True))
    raw["spec"]["options"]["rateLimit"] = "9" * 400
    termination = tmp_path / "termination-log"
    environment = {
        **os.environ,
        "GALLERY_WORKER_CONFIG": json.dumps(raw),
        "GALLERY_WORKER_SCRATCH": str(tmp_path / "scratch"),
        "GALLERY_WORKER_TERMINATION_LOG": str(termination),
        "GALLERY_WORKER_LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gallery_operator.worker"], env=environment, capture_output=True, text=True, timeout=120
    )
    assert termination.exists(), done.stderr[-2000:]
    report = json.loads(termination.read_text())
    assert (done.returncode, report["outcome"]) == (2, "Failed")
    assert [f["reason"] for f in report["failures"]] == ["InvalidSpec"]
    assert "spec.options.rateLimit" in report["failures"][0]["message"]
