"""Every transport fault ends as a stable reason (NetworkError, Blocked, Timeout), never Internal: the real worker
with real gallery-dl and yt-dlp against a hostile server on loopback (tests/fixtures/hostile.py)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import run_worker
from tests.fixtures.hostile import FAULTS, SCHEMES, self_signed, serve

ENGINES = ("gallery-dl", "yt-dlp")
ENDS = {"NetworkError", "Blocked", "Timeout"}


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    with serve() as url:
        yield url


def failure_reasons(tmp_path: Path, engine: str, url: str) -> tuple[int, str, list[str]]:
    """Run the worker on one URL: its exit code, outcome and the reasons of its failures."""
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [url], "engine": engine}, storage)
    return code, report["outcome"], [f["reason"] for f in report.get("failures", [])]


def where(hostile: str, position: str, fault: str) -> str:
    """The URL that meets ``fault`` at ``position``: the first request, after a redirect, or mid-run."""
    extension = "mp4" if position != "first-jpg" else "jpg"
    return {
        "first": f"{hostile}/fault/{fault}/f.{extension}",
        "first-jpg": f"{hostile}/fault/{fault}/f.{extension}",
        "redirect": f"{hostile}/redirect/{fault}/r.mp4",
    }[position]


@pytest.mark.parametrize("position", ["first", "redirect"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("engine", ENGINES)
def test_a_transport_fault_is_a_network_error(
    tmp_path: Path, hostile: str, engine: str, fault: str, position: str
) -> None:
    code, outcome, reasons = failure_reasons(tmp_path, engine, where(hostile, position, fault))
    assert outcome == "Failed"
    assert reasons == ["NetworkError"], reasons
    assert code == 1  # another pod may meet a healthier server


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("engine", ENGINES)
def test_a_transport_fault_mid_run_is_a_network_error(tmp_path: Path, hostile: str, engine: str, fault: str) -> None:
    """A page's first item arrives; the second meets the fault (gallery-dl), or the page's video does (yt-dlp)."""
    page = f"{hostile}/gallery/{fault}/" if engine == "gallery-dl" else f"{hostile}/video/{fault}.html"
    code, outcome, reasons = failure_reasons(tmp_path, engine, page)
    assert reasons == ["NetworkError"], reasons
    expected = ("PartiallySucceeded", 0) if engine == "gallery-dl" else ("Failed", 1)  # the page had one item
    assert (outcome, code) == expected


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_in_one_fragment_of_a_stream_fails_the_stream(tmp_path: Path, hostile: str, fault: str) -> None:
    """yt-dlp would skip a fragment it cannot fetch and store the stream with a hole, as a success."""
    code, outcome, reasons = failure_reasons(tmp_path, "yt-dlp", f"{hostile}/hls/{fault}.m3u8")
    assert (outcome, reasons, code) == ("Failed", ["NetworkError"], 1)
    assert not [p for p in (tmp_path / "claim").iterdir() if p.is_file()]


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("engine", ENGINES)
def test_a_redirect_to_a_refused_scheme_is_blocked(tmp_path: Path, hostile: str, engine: str, scheme: str) -> None:
    code, outcome, reasons = failure_reasons(tmp_path, engine, f"{hostile}/scheme/{scheme}/s.mp4")
    assert (outcome, reasons, code) == ("Failed", ["Blocked"], 2)


@pytest.mark.parametrize("scheme", sorted(set(SCHEMES) - {"data"}))
def test_a_video_link_of_a_refused_scheme_is_blocked(tmp_path: Path, hostile: str, scheme: str) -> None:
    """yt-dlp would open an ftp: link on a page itself (its urllib handler speaks FTP): refused like the others.
    (gallery-dl reads such links as paths on the page's own site.)"""
    code, outcome, reasons = failure_reasons(tmp_path, "yt-dlp", f"{hostile}/video/{scheme}.html")
    assert (outcome, reasons, code) == ("Failed", ["Blocked"], 2)


def test_a_data_url_carries_its_bytes_and_connects_nowhere(tmp_path: Path, hostile: str) -> None:
    code, outcome, reasons = failure_reasons(tmp_path, "yt-dlp", f"{hostile}/video/data.html")
    assert (outcome, reasons, code) == ("Succeeded", [], 0)


@pytest.fixture(scope="module")
def untrusted_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tls=self_signed(tmp_path_factory.mktemp("tls"))) as url:
        yield url


@pytest.mark.parametrize("engine", ENGINES)
def test_tls_and_dns_failures_are_network_errors(tmp_path: Path, hostile: str, untrusted_tls: str, engine: str) -> None:
    plain = hostile.replace("http://", "https://")  # a TLS handshake with a server that speaks plain HTTP
    failing = (f"{plain}/ok/t.mp4", f"{untrusted_tls}/ok/t.mp4", "http://no-such-host.invalid/x.mp4")
    for url in (*failing, *(f"{hostile}/to/{urllib.parse.quote(u, safe='')}" for u in failing)):  # and redirected
        code, outcome, reasons = failure_reasons(tmp_path, engine, url)
        assert (outcome, reasons, code) == ("Failed", ["NetworkError"], 1), url


def test_an_error_that_escapes_the_run_is_reported_as_internal(tmp_path: Path, hostile: str) -> None:
    """The worker's own failure (here: its scratch folder cannot be made) ends the pod with a report that says
    Internal and why, not with a traceback alone."""
    (tmp_path / "scratch").write_text("a file where the scratch folder should be")
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [f"{hostile}/ok/a.jpg"]}, storage)
    assert (code, report["outcome"]) == (1, "Failed")
    [failure] = report["failures"]
    assert failure["reason"] == "Internal" and "FileExistsError" in failure["message"], failure
