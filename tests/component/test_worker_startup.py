"""The worker's start: a run imports the engine it may use and not the other one (gallery-dl cost a yt-dlp run about
0.1 s of CPU at every start), and each engine's extractor lookup loads only the extractor modules that may match
(the index of their patterns, worker/url_lookup.py), with the same download as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.component.workers import catalogue, claim, start_worker


def imported_modules(tmp_path: Path, site: str, engine: str, path: str) -> tuple[set[str], str]:
    """(the modules the real worker imported through the import statement, as Python's import trace shows them, and
    the extractor of the one item stored) on a one-item download of ``path``. The trace shows the worker's forked
    children's imports too; it does not show a module loaded by ``importlib.import_module``."""
    spec = {"urls": [f"{site}{path}"], "engine": engine}
    process = start_worker(tmp_path, spec, claim(tmp_path), env={"PYTHONPROFILEIMPORTTIME": "1"})
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    [item] = catalogue(tmp_path / "claim")
    modules = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return modules, item["extractor"]


@pytest.mark.parametrize(
    ("engine", "path", "used", "unused"),
    [
        ("yt-dlp", "/video.html", "yt_dlp", "gallery_dl"),
        ("yt-dlp", "/big/1.mp4", "yt_dlp", "gallery_dl"),
        ("gallery-dl", "/img/1.jpg", "gallery_dl", "yt_dlp"),
    ],
)
def test_a_run_imports_only_the_engine_it_may_use(
    tmp_path: Path, loopback_site: str, engine: str, path: str, used: str, unused: str
) -> None:
    modules, _ = imported_modules(tmp_path, loopback_site, engine, path)
    assert used in modules
    assert not {name for name in modules if name.split(".")[0] == unused}


def test_gallery_dl_s_own_search_of_all_its_modules_is_not_run(tmp_path: Path, loopback_site: str) -> None:
    """gallery-dl's own search imports its ~300 extractor modules (in the worker before, or in its lookahead child);
    the index's lookup in the real worker's configuration imports only those that may match, and finds the same
    extractor (the direct link's)."""
    modules, extractor = imported_modules(tmp_path, loopback_site, "gallery-dl", "/img/1.jpg")
    assert extractor == "directlink"
    extractors = {name for name in modules if name.startswith("gallery_dl.extractor.")}
    assert len(extractors) < 10, sorted(extractors)
