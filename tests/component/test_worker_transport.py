"""Every transport fault ends as a stable reason (NetworkError, Blocked, Timeout), never Internal: the real worker
with real gallery-dl and yt-dlp against a hostile server on loopback (tests/fixtures/hostile.py)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import run_worker
from tests.fixtures.hostile import FAULTS, LINKED, SCHEMES, self_signed, serve, whole_bytes

ENGINES = ("gallery-dl", "yt-dlp")
POSITIONS = ("first", "redirect")
PER_RUN = 7
"""Cases one worker run takes: their failures must all fit in the termination message (4 KiB, oldest dropped)."""


def in_runs(names: Iterable[str]) -> list[tuple[str, ...]]:
    """``names`` sorted, in groups of at most PER_RUN: one worker run each."""
    ordered = sorted(names)
    return [tuple(ordered[start : start + PER_RUN]) for start in range(0, len(ordered), PER_RUN)]


FAULT_RUNS = in_runs(FAULTS)
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


def reasons_by_case(tmp_path: Path, engine: str, urls: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Run the worker once on every URL of ``urls`` (case -> URL): its exit code, report, and each case's reason.

    One run takes many cases (a worker process costs more CPU than its faults): each URL is its own engine job, each
    request starts with no transport error recorded (worker/transport.py), and the failures are matched to their
    case by the URL they name, exactly one each, so a case that fails otherwise, or not at all, or takes another's
    failure, fails the test as it would alone."""
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    spec = {"urls": list(urls.values()), "engine": engine}
    code, report = run_worker(tmp_path, spec, storage, timeout=60 * len(urls))  # a loaded machine: 15 s a URL
    assert report["itemsFailed"] == len(report.get("failures", [])), report  # none dropped from the message
    found: dict[str, str] = {}
    for failure in report.get("failures", []):
        named = urllib.parse.unquote(failure["url"])  # a redirect's own URL carries its target encoded
        [case] = [case for case in urls if f"/{case}/" in named or f"/{case}." in named] or [failure["url"]]
        assert case not in found, (case, report["failures"])
        found[case] = failure["reason"]
    return code, report, found


def where(hostile: str, position: str, fault: str) -> str:
    """The URL that meets ``fault`` at ``position``: the first request, or after a redirect."""
    return {
        "first": f"{hostile}/fault/{fault}/first.mp4",
        "redirect": f"{hostile}/redirect/{fault}/redirect.mp4",
    }[position]


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("faults", FAULT_RUNS, ids=lambda faults: faults[0])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_transport_fault_is_a_network_error(
    tmp_path: Path, hostile: str, engine: str, faults: tuple[str, ...], position: str
) -> None:
    """Each fault, at the first request or behind a redirect: its URL fails with NetworkError, retryable."""
    cases = {f"{fault}/{position}": where(hostile, position, fault) for fault in faults}
    code, report, reasons = reasons_by_case(tmp_path, engine, cases)
    assert reasons == dict.fromkeys(cases, "NetworkError"), reasons
    assert (report["outcome"], report["itemsDone"]) == ("Failed", 0)
    assert code == 1  # another pod may meet a healthier server


@pytest.mark.parametrize("faults", FAULT_RUNS, ids=lambda faults: faults[0])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_transport_fault_mid_run_is_a_network_error(
    tmp_path: Path, hostile: str, engine: str, faults: tuple[str, ...]
) -> None:
    """A page's first item arrives; the second meets the fault (gallery-dl), or the page's video does (yt-dlp)."""
    page = f"{hostile}/gallery/{{}}/" if engine == "gallery-dl" else f"{hostile}/video/{{}}.html"
    cases = {fault: page.format(fault) for fault in faults}
    code, report, reasons = reasons_by_case(tmp_path, engine, cases)
    assert reasons == dict.fromkeys(cases, "NetworkError"), reasons
    expected = ("PartiallySucceeded", 0) if engine == "gallery-dl" else ("Failed", 1)  # each page had one item
    assert (report["outcome"], code) == expected


@pytest.mark.parametrize("faults", FAULT_RUNS, ids=lambda faults: faults[0])
def test_a_fault_in_one_fragment_of_a_stream_fails_the_stream(
    tmp_path: Path, hostile: str, faults: tuple[str, ...]
) -> None:
    """yt-dlp would skip a fragment it cannot fetch and store the stream with a hole, as a success."""
    cases = {fault: f"{hostile}/hls/{fault}.m3u8" for fault in faults}
    code, report, reasons = reasons_by_case(tmp_path, "yt-dlp", cases)
    assert reasons == dict.fromkeys(cases, "NetworkError"), reasons
    assert (report["outcome"], report["itemsDone"], code) == ("Failed", 0, 1)
    assert not [p for p in (tmp_path / "claim").iterdir() if p.is_file()]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_redirect_to_a_refused_scheme_is_blocked(tmp_path: Path, hostile: str, engine: str) -> None:
    cases = {scheme: f"{hostile}/scheme/{scheme}/s.mp4" for scheme in SCHEMES}
    code, report, reasons = reasons_by_case(tmp_path, engine, cases)
    assert reasons == dict.fromkeys(cases, "Blocked"), reasons
    assert (report["outcome"], report["itemsDone"], code) == ("Failed", 0, 2)


def test_a_video_link_of_a_refused_scheme_is_blocked(tmp_path: Path, hostile: str) -> None:
    """yt-dlp would open an ftp: link on a page itself (its urllib handler speaks FTP): refused like the others.
    (gallery-dl reads such links as paths on the page's own site.)"""
    cases = {scheme: f"{hostile}/video/{scheme}.html" for scheme in sorted(set(SCHEMES) - {"data"})}
    code, report, reasons = reasons_by_case(tmp_path, "yt-dlp", cases)
    assert reasons == dict.fromkeys(cases, "Blocked"), reasons
    assert (report["outcome"], report["itemsDone"], code) == ("Failed", 0, 2)


def test_a_data_url_carries_its_bytes_and_connects_nowhere(tmp_path: Path, hostile: str) -> None:
    code, outcome, reasons = failure_reasons(tmp_path, "yt-dlp", f"{hostile}/video/data.html")
    assert (outcome, reasons, code) == ("Succeeded", [], 0)


@pytest.fixture(scope="module")
def untrusted_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tls=self_signed(tmp_path_factory.mktemp("tls"))) as url:
        yield url


@pytest.mark.parametrize("engine", ENGINES)
def test_tls_and_dns_failures_are_network_errors(tmp_path: Path, hostile: str, untrusted_tls: str, engine: str) -> None:
    """A TLS handshake with a server that speaks plain HTTP, a certificate nobody trusts and a name that does not
    resolve, each met at once and behind a redirect: in one run (as the transport faults above), each its URL's
    NetworkError."""
    plain = hostile.replace("http://", "https://")
    failing = {"tls-plain": f"{plain}/ok/{{}}.mp4", "tls-untrusted": f"{untrusted_tls}/ok/{{}}.mp4"}
    failing["dns"] = "http://no-such-host.invalid/{}.mp4"
    cases = {case: url.format(case) for case, url in failing.items()}
    for case, url in failing.items():
        cases[f"{case}-redirected"] = f"{hostile}/to/{urllib.parse.quote(url.format(f'{case}-redirected'), safe='')}"
    code, report, reasons = reasons_by_case(tmp_path, engine, cases)
    assert reasons == dict.fromkeys(cases, "NetworkError"), reasons
    assert (report["outcome"], report["itemsDone"], code) == ("Failed", 0, 1)


def test_an_error_that_escapes_the_run_is_reported_as_internal(tmp_path: Path, hostile: str) -> None:
    """The worker's own failure (here: its scratch folder cannot be made) ends the pod with a report that says
    Internal and why, not with a traceback alone."""
    (tmp_path / "scratch").write_text("a file where the scratch folder should be")
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [f"{hostile}/ok/a.jpg"]}, storage)
    assert (code, report["outcome"]) == (1, "Failed")
    [failure] = report["failures"]
    assert failure["reason"] == "Internal" and "FileExistsError" in failure["message"], failure


@pytest.mark.parametrize("engine", ENGINES)
def test_whole_gzip_and_deflate_answers_are_stored_whole(tmp_path: Path, hostile: str, engine: str) -> None:
    # urllib3 inflates at most so much a read and keeps the rest in its decoder: a whole answer's stream was taken
    # for a cut one once its last bytes had arrived (every page and file over about 10 KB that a site compresses).
    urls = [f"{hostile}/whole/gzip/page.html"] if engine == "gallery-dl" else [f"{hostile}/whole/gzip/1.jpg"]
    urls += [f"{hostile}/whole/deflate/2.jpg"] if engine == "yt-dlp" else []
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": urls, "engine": engine}, storage)
    assert (code, report["itemsDone"], report.get("failures", [])) == (0, 2, []), report
    stored = {path.name.split(" ")[0].split(".")[0]: path.read_bytes() for path in (tmp_path / "claim").glob("*.jpg")}
    assert stored == {str(n): whole_bytes(f"{n}.jpg") for n, _ in LINKED}
