"""Engine choice and fallback are one object (worker/engines.py): which engines try a URL, in which order, and when
the next one gets its turn. The engines here are recording stand-ins; the run is the real one."""

from __future__ import annotations

from pathlib import Path

from gallery_operator.worker.engines import EngineChain, Sink
from tests.unit.worker_runs import claim_run


class Stand:
    """An engine that supports what it is told and answers each URL with ``outcome``."""

    def __init__(self, name: str, supported: bool, outcome: str, tried: list[str]) -> None:
        self.name, self.supported, self.outcome, self.tried = name, supported, outcome, tried

    def supports(self, url: str) -> bool:
        return self.supported

    def knows(self, site: str) -> bool:
        return site == self.name

    def run(self, url: str, sink: Sink) -> None:
        self.tried.append(self.name)
        if self.outcome == "unsupported":
            sink.failed(url, "UnsupportedUrl", f"{self.name} finds nothing")
        elif self.outcome == "skipped":
            sink.skipped(None, url)
        elif self.outcome == "crash":
            raise ValueError("engine bug")


def chain(choice: str, gallery: tuple[bool, str], ytdlp: str, tried: list[str]) -> EngineChain:
    return EngineChain(choice, [Stand("gallery-dl", *gallery, tried), Stand("yt-dlp", True, ytdlp, tried)])


def test_auto_takes_gallery_dl_alone_when_it_has_an_extractor(tmp_path: Path) -> None:
    tried: list[str] = []
    run = claim_run(tmp_path)
    chain("auto", (True, "unsupported"), "skipped", tried).download("https://example.org/v", run)
    assert tried == ["gallery-dl"]
    assert [(f.reason, f.message) for f in run.failures] == [("UnsupportedUrl", "gallery-dl finds nothing")]


def test_auto_falls_back_from_yt_dlp_to_gallery_dl_s_generic_extractor(tmp_path: Path) -> None:
    tried: list[str] = []
    run = claim_run(tmp_path)
    chain("auto", (False, "skipped"), "unsupported", tried).download("https://example.org/v", run)
    assert tried == ["yt-dlp", "gallery-dl"]
    assert (run.items_done, run.failures) == (1, [])  # yt-dlp's UnsupportedUrl was held back, then not needed


def test_the_last_engine_s_unsupported_url_is_the_url_s(tmp_path: Path) -> None:
    tried: list[str] = []
    run = claim_run(tmp_path)
    chain("auto", (False, "unsupported"), "unsupported", tried).download("https://example.org/v", run)
    assert tried == ["yt-dlp", "gallery-dl"]
    assert [(f.reason, f.message) for f in run.failures] == [("UnsupportedUrl", "gallery-dl finds nothing")]


def test_an_engine_s_crash_is_the_url_s_failure_and_ends_the_chain(tmp_path: Path) -> None:
    tried: list[str] = []
    run = claim_run(tmp_path)
    chain("auto", (False, "skipped"), "crash", tried).download("https://example.org/v", run)
    assert tried == ["yt-dlp"]
    assert [f.message for f in run.failures] == ["ValueError: engine bug"]


def test_a_named_engine_is_the_only_one(tmp_path: Path) -> None:
    tried: list[str] = []
    run = claim_run(tmp_path)
    chain("yt-dlp", (True, "skipped"), "unsupported", tried).download("https://example.org/v", run)
    assert tried == ["yt-dlp"]
    assert [f.reason for f in run.failures] == ["UnsupportedUrl"]


def test_a_site_no_engine_of_the_choice_knows_is_named() -> None:
    tried: list[str] = []
    assert chain("auto", (True, "skipped"), "skipped", tried).unknown_site("yt-dlp") is None
    assert chain("auto", (True, "skipped"), "skipped", tried).unknown_site(None) is None
    why = chain("gallery-dl", (True, "skipped"), "skipped", tried).unknown_site("yt-dlp")
    assert why is not None and why.startswith("spec.auth.site: 'yt-dlp' is no extractor of gallery-dl")
