"""Admission queue, settings, engine options and failure classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from gallery_operator.api.spec import parse_spec, quantity_bytes
from gallery_operator.config import Settings, load_settings
from gallery_operator.controller import Controller
from gallery_operator.jobs import job_name, run_id
from gallery_operator.keys import Key
from gallery_operator.worker import options
from gallery_operator.worker.failures import classify, permanent
from gallery_operator.workerconfig import Report
from tests.unit.builders import download_snapshot, parsed, with_two_runs


def test_settings_from_environment() -> None:
    settings = load_settings(
        {"GALLERY_OPERATOR_NAMESPACES": "media, team-b", "GALLERY_OPERATOR_MAX_ACTIVE": "3", "OTHER": "x"}
    )
    assert settings.namespaces == ("media", "team-b")
    assert settings.max_active == 3
    with pytest.raises(ValueError, match="GALLERY_OPERATOR_MAX_ACTIVE: Input should be greater than or equal to 1"):
        load_settings({"GALLERY_OPERATOR_MAX_ACTIVE": "0"})
    with pytest.raises(ValueError, match="GALLERY_OPERATOR_SURPRISE"):
        load_settings({"GALLERY_OPERATOR_SURPRISE": "1"})


def test_engine_options_from_spec(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "urls": ["https://example.org/v"],
            "target": {"pvc": {"claimName": "m"}},
            "options": {
                "itemRange": "1-3,8,20-",
                "rateLimit": "500k",
                "retries": 2,
                "timeoutSeconds": 9,
                "format": "best[height<=720]",
                "ytDlp": {"concurrent_fragment_downloads": 4, "format_sort": ["res:720", "ext"]},
                "galleryDl": {"sleep-request": 1.5, "retry-codes": [520], "user-agent": "Mozilla/5.0 (X11)"},
            },
            "limits": {"maxItems": 7},
        }
    )
    creds = options.Credentials(cookies_file=tmp_path / "c.txt", username="u", password="p")
    ydl = options.yt_dlp_options(spec, tmp_path / "root", tmp_path / "state", tmp_path / "scratch", creds)
    assert ydl["playlist_items"] == "1-3,8,20:"
    assert ydl["ratelimit"] == 512000
    assert ydl["max_downloads"] == 7
    assert ydl["concurrent_fragment_downloads"] == 4
    assert ydl["format"] == "best[height<=720]"
    assert ydl["restrictfilenames"] is True
    assert "cookiefile" not in ydl and "password" not in ydl  # see tests/unit/test_credentials.py
    gdl = options.gallery_dl_config(spec, tmp_path / "root", tmp_path / "state", tmp_path / "scratch", creds)
    assert gdl[("extractor", "image-range")] == "1-3,8,20-"
    assert gdl[("extractor", "sleep-request")] == 1.5
    assert gdl[("extractor", "retry-codes")] == [520]
    # a plain header, not gallery-dl's `user-agent` (which reads `@...` as a browser to start)
    assert gdl[("extractor", "headers")] == {"User-Agent": "Mozilla/5.0 (X11)"}
    assert gdl[("extractor", "user-agent")] == "gallery-operator (+https://gallery-operator.dev)"
    assert ydl["format_sort"] == ["res:720", "ext"]
    assert gdl[("extractor", "retries")] == 2
    # concurrency 6 (the default): the rate is the host's, shared by the transfers (worker/hosts.py), not gallery-dl's
    # per download; with one transfer at a time, gallery-dl's own, as before
    assert ("downloader", "rate") not in gdl
    single = spec.model_copy(update={"options": spec.options.model_copy(update={"concurrency": 1})})
    gdl_single = options.gallery_dl_config(single, tmp_path / "root", tmp_path / "state", tmp_path / "scratch", creds)
    assert gdl_single[("downloader", "rate")] == 512000
    assert ("extractor", "username") not in gdl and ("extractor", "cookies") not in gdl


@pytest.mark.parametrize(
    ("quantity", "size"), [("5Gi", 5 * 1024**3), ("1.5G", 1_500_000_000), ("100", 100), ("2Ki", 2048)]
)
def test_quantities(quantity: str, size: int) -> None:
    assert quantity_bytes(quantity) == size


@pytest.mark.parametrize(
    ("message", "status", "reason"),
    [
        ("'404 Not Found' for 'http://x/a.jpg'; Failed to download a.jpg", None, "NotFound"),
        ("HTTP Error 403: Forbidden", None, "Forbidden"),
        ("whatever", 429, "RateLimited"),
        ("Unsupported URL: http://x/", None, "UnsupportedUrl"),
        ("Read timed out", None, "Timeout"),
        ("'503 Service Unavailable' for 'http://x'", None, "NetworkError"),
        ("Connection refused", None, "NetworkError"),
        ("[Errno 28] No space left on device", None, "StorageError"),
        ("something odd", None, "Internal"),
    ],
)
def test_failure_classification(message: str, status: int | None, reason: str) -> None:
    assert classify(message, status) == reason


def test_a_worker_is_known_by_the_uid_of_the_job_of_the_current_run() -> None:
    controller, parsed = with_two_runs()
    name = job_name(parsed)
    assert controller.worker_of("ns", name, "job-1") == (Key("ns", "dl"), run_id(parsed))
    assert controller.worker_of("ns", name, "job-x") is None  # same name, another Job: a copy
    assert controller.worker_of("other", name, "job-1") is None  # a uid names no place
    assert controller.worker_of("ns", "dl-oldrun", "job-0") is None  # an earlier run's Job
    # A Job controlled by a uid that belongs to a download of another namespace is nobody's worker.
    controller.observe_job("evil", name, active=True, gone=False, uid="job-2", owner="uid-dl")
    assert controller.worker_of("evil", name, "job-2") is None


def test_reports_are_held_per_current_run_and_per_pod() -> None:
    downloads = {Key("ns", "dl"): [download_snapshot(urls=["https://example.org/a.jpg"])]}
    controller = Controller(Settings(), downloads, {})
    run = run_id(parsed(downloads[Key("ns", "dl")][0]))
    key = Key("ns", "dl")
    assert not controller.accept_report(key, "older-run", "pod-0", Report(run="older-run", items_done=9))
    assert controller.accept_report(key, run, "pod-1", Report(run=run, final=True, outcome="Failed", items_done=1))
    # The same pod's late progress does not undo its final report; a retried pod's progress is its own.
    assert controller.accept_report(key, run, "pod-1", Report(run=run, items_done=1))
    report = controller.inbox.get(key)
    assert report is not None and report.final
    assert controller.accept_report(key, run, "pod-2", Report(run=run, items_done=2))
    assert controller.inbox.get(key) == Report(run=run, items_done=2)


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("Exceeded 30 redirects.; Failed to download x.jpg", None),
        ("[generic] x: Unable to download webpage: HTTP Error 302: Found (redirect loop detected)", 302),
    ],
)
def test_redirect_loops_are_permanent_network_errors(message: str, status: int | None) -> None:
    reason = classify(message, status)
    assert reason == "NetworkError" and permanent(reason, message)
    assert not permanent("NetworkError", "Connection reset by peer")
