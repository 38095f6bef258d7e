"""The index of the engines' URL patterns (worker/url_index.py) and the lookups built on it (worker/url_lookup.py):
the stored index is the pinned engines' own, no condition refuses a URL its pattern matches, and each lookup picks
the extractor the engine's own search picks, hostile spellings of a URL included."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from gallery_dl import extractor
from yt_dlp.extractor import _extractors, gen_extractor_classes

from gallery_harness.url_corpus import HOSTILE, gallery_dl_urls, spellings, yt_dlp_urls
from gallery_operator.worker import url_index_build, ytdlp
from gallery_operator.worker.url_index import FOLDS, LONGEST_URL, condition, folded, holds
from gallery_operator.worker.url_lookup import gallery_dl_find, yt_dlp_key


def sample(urls: list[str], count: int) -> list[str]:
    return random.Random(26).sample(urls, min(count, len(urls)))


def test_the_stored_index_is_the_pinned_engines_own(tmp_path: Path) -> None:
    """A fresh build (a fresh process: no engine configuration) writes what is stored; after an engine upgrade,
    `make url-index`."""
    subprocess.run([sys.executable, "-m", "gallery_operator.worker.url_index_build", str(tmp_path)], check=True)
    for name in url_index_build.BUILDERS:
        stored = (url_index_build.FOLDER / name).read_text()
        assert (tmp_path / name).read_text() == stored, f"{name} is stale: run `make url-index`"


@pytest.mark.parametrize(
    ("pattern", "matching"),
    [
        (r"(?i)https?://(?:www\.)?vk\.com/video", "HTTPS://VK.COM/VIDEO"),
        (r"https?://(?:a|bc)\.example/(?:x|yz)+", "http://bc.example/yzx"),
        (r"(?:peertube:(?P<h>[^:]+):|https?://(?:one\.tube|two\.tube)/w/)(?P<id>\d+)", "peertube:x:1"),
        (r"https?://(?!evil)[^/]+/(?P<id>\d+)", "https://good/1"),
        (r"(?x) https?:// (?:www\.)? example\.com / \d+ ", "https://example.com/1"),
        (r"(?P<q>['\"])x(?P=q)", "'x'"),
        (r"(?i)\u017ftream\.example/", "sTREAM.example/"),
    ],
)
def test_a_condition_asks_only_what_every_match_has(pattern: str, matching: str) -> None:
    assert re.match(pattern, matching)
    assert holds(condition(pattern), matching.lower())


def test_a_condition_refuses_what_cannot_match() -> None:
    assert not holds(condition(r"(?i)https?://(?:www\.)?vk\.com/video"), "https://vimeo.com/video")
    assert not holds(condition(r"(?:peertube:\w+|https?://(?:one|two)\.tube/w/)"), "https://three.tube/w/")
    assert not holds(condition(r"(?i)https?://vimeo\.com/"), folded("https://v\u0131mxo.com/") or "")
    assert folded("https://v\u0131meo.\u212aom/\u017f\u00e9") == "https://vimeo.kom/s\u00e9"  # as re matches them
    assert folded("https://vimeo.com/" + "1" * 9000) is None  # too long to check: the engine's own search


def test_no_condition_refuses_a_url_its_pattern_matches() -> None:
    """Each extractor's patterns against its own test URLs (yt-dlp) or example (gallery-dl), and a sample of all
    those URLs and the hostile ones against every pattern, in three spellings each (as written, upper case, case
    swapped)."""
    index = url_index_build.yt_dlp_patterns()["patterns"] | {
        pattern: cond for _, _, pattern, _, cond in url_index_build.gallery_dl_classes()["classes"]
    }
    compiled = {pattern: re.compile(pattern) for pattern in index}
    checked = 0
    pairs = [*own_urls(), *((pattern, url) for url in [*HOSTILE, *sample(all_urls(), 60)] for pattern in index)]
    for pattern, url in pairs:
        for spelling in spellings(url):
            text = folded(spelling)
            if text is not None and compiled[pattern].match(spelling):
                checked += 1
                assert holds(_condition(index[pattern]), text), (pattern[:200], spelling)
    assert checked > 5000


def own_urls() -> Iterator[tuple[str, str]]:
    """(pattern, URL) of each extractor and its own test URLs or example."""
    lazy = {str(ie.ie_key()): ie for ie in gen_extractor_classes()}
    for name, value in vars(_extractors).items():
        if isinstance(value, type) and name.endswith("IE") and name[:-2] in lazy and hasattr(value, "get_testcases"):
            valid = lazy[name[:-2]]._VALID_URL
            for case in value.get_testcases(include_onlymatching=True) if isinstance(valid, str | list) else ():
                yield from ((pattern, str(case["url"])) for pattern in ([valid] if isinstance(valid, str) else valid))
    for cls in extractor._list_classes():
        if getattr(cls, "example", None):
            yield cls.pattern.pattern, str(cls.example)


def all_urls() -> list[str]:
    return yt_dlp_urls() + gallery_dl_urls()


def _condition(stored: Any) -> Any:
    return tuple(tuple(clause) for clause in stored)


def test_yt_dlp_gets_the_extractor_it_would_pick_itself() -> None:
    table = yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True})._ies
    for url in [*HOSTILE, *sample(yt_dlp_urls(), 60), *sample(gallery_dl_urls(), 20)]:
        for spelling in spellings(url):
            own = next((key for key, ie in table.items() if ie.suitable(spelling)), None)
            assert yt_dlp_key(table.items(), spelling) == own, spelling
    assert yt_dlp_key(table.items(), "http://127.0.0.1:8080/video.html") == "Generic"
    classes = ((str(ie.ie_key()), ie) for ie in gen_extractor_classes())
    assert yt_dlp_key(classes, "https://vimeo.com/56015672") == "Vimeo"


def test_gallery_dl_gets_the_extractor_it_would_pick_itself() -> None:
    for url in [*HOSTILE, *sample(gallery_dl_urls(), 200), *sample(yt_dlp_urls(), 60)]:
        for spelling in spellings(url):
            found, own = gallery_dl_find(spelling), extractor.find(spelling)
            assert type(found) is type(own), spelling
            assert (found.url, found.groups) == (own.url, own.groups) if own is not None else found is None


def test_gallery_dl_s_own_search_is_used_when_the_index_may_not_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration that shapes a pattern (an added site instance, the generic extractor enabled) and a class added
    by hand: the engine's own search, whatever the index says."""
    from gallery_dl import config

    searched: list[str] = []
    monkeypatch.setattr(extractor, "find", searched.append)
    assert type(gallery_dl_find("https://imgur.com/a/abcdefg")).__name__ == "ImgurAlbumExtractor"
    assert searched == []  # the index's lookup, not the engine's search
    for shape in ({"generic": {"enabled": True}}, {"danbooru": {"mine": {"root": "https://booru.example"}}}):
        config.clear()
        for category, options in shape.items():
            config.set(("extractor",), category, options)
        assert gallery_dl_find("https://booru.example/posts/1") is None
    config.clear()
    monkeypatch.setattr(extractor, "_cache", [type("Added", (), {"__module__": "elsewhere"})])
    gallery_dl_find("https://imgur.com/a/abcdefg")
    assert searched == ["https://booru.example/posts/1"] * 2 + ["https://imgur.com/a/abcdefg"]


def test_a_lookup_imports_only_the_modules_that_may_match() -> None:
    code = (
        "import sys; from gallery_operator.worker.url_lookup import gallery_dl_find; "
        "found = gallery_dl_find('http://127.0.0.1:8080/img/1.jpg'); "
        "print(type(found).__name__, sorted(m for m in sys.modules if m.startswith('gallery_dl.extractor.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    name, modules = done.stdout.split(" ", 1)
    assert name == "DirectlinkExtractor"
    assert len(json.loads(modules.replace("'", '"'))) < 10, modules


def test_the_folds_are_the_characters_re_matches_with_an_ascii_letter() -> None:
    """Asked of `re` for every code point outside ASCII: a character a case-insensitive pattern's ASCII letter
    matches must be turned into that letter before the check, or its extractor could be skipped wrongly."""
    letter = re.compile("(?i)[a-z]")
    found = {}
    for point in range(0x80, sys.maxunicode + 1):
        if letter.fullmatch(char := chr(point)):
            [found[point]] = [a for a in "abcdefghijklmnopqrstuvwxyz" if re.fullmatch(f"(?i){a}", char)]
    assert found == FOLDS


def test_a_long_url_gets_the_engines_own_search() -> None:
    assert folded("https://a.example/" + "x" * LONGEST_URL) is None
    assert folded("https://A.example/\u212a\u017f") == "https://a.example/ks"


def test_only_the_first_long_urls_of_a_youtubedl_are_keyed_from_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """A site's playlist hands the worker as many keyless entry URLs as it likes: every one up to
    ALWAYS_KEYED_LENGTH is keyed from the index (cheaper than yt-dlp's compiled table whatever it holds); of the
    longer ones, after KEYED_LOOKUPS of them, yt-dlp's own search (its table compiled once) answers."""
    looked_up: list[str] = []

    def counted(table: Any, url: str) -> str | None:
        looked_up.append(url)
        return yt_dlp_key(table, url)

    monkeypatch.setattr(ytdlp, "yt_dlp_key", counted)
    picked: list[str | None] = []
    ydl = yt_dlp.YoutubeDL({"quiet": True})
    monkeypatch.setattr(ydl, "extract_info", lambda url, download, ie_key, *_: picked.append(ie_key))
    ytdlp.key_from_index(ydl)
    short = [f"https://vimeo.com/{n}" for n in range(ytdlp.KEYED_LOOKUPS + 5)]
    long = [f"https://vimeo.com/{n}?{'x' * ytdlp.ALWAYS_KEYED_LENGTH}" for n in range(ytdlp.KEYED_LOOKUPS + 5)]
    urls = [url for pair in zip(short, long, strict=True) for url in pair]
    for url in urls:
        ydl.extract_info(url)
    keyed = [url for url in urls if url in short or url in long[: ytdlp.KEYED_LOOKUPS]]
    assert len(keyed) == len(short) + ytdlp.KEYED_LOOKUPS
    assert looked_up == keyed
    assert picked == ["Vimeo" if url in keyed else None for url in urls]
