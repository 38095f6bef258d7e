"""URLs to hold the engines' extractor lookups against (tests/unit/test_url_index.py, bench/url_index_soundness.py):
hostile spellings, the engines' own test URLs and examples, and the spellings each is tried in."""

from __future__ import annotations

from collections.abc import Iterator

from gallery_dl import extractor
from yt_dlp.extractor import _extractors

HOSTILE = [
    # letters a case-insensitive pattern matches with ASCII ones: dotless i, long s, Kelvin sign, and others
    "https://v\u0131meo.com/56015672",
    "https://\u017foundcloud.com/a/b",
    "https://\u212aick.com/video/1",
    "https://www.\u0131nstagram.com/p/abc/",
    "https://www.pixiv.net/en/artworks/96641\u0662",
    "https://\uff56imeo.com/56015672",
    # case, userinfo, trailing dots, doubled slashes, encoded separators
    "HTTPS://WWW.YOUTUBE.COM/WATCH?V=BaW_jenozKc",
    "hTtPs://ViMeO.cOm/56015672",
    "https://user:pass@vimeo.com/56015672",
    "https://vimeo.com@127.0.0.1/56015672",
    "https://vimeo.com./56015672",
    "https://www.youtube.com//watch?v=BaW_jenozKc",
    "https://www.youtube.com%2Fwatch%3Fv%3DBaW_jenozKc",
    "https://IMGUR.com/a/abcdefg",
    "https://imgur.com/a/abcdefg",
    "HTTP://127.0.0.1:8080/IMG/1.JPG",
    "http://127.0.0.1:8080/img/1.jpg",
    "http://127.0.0.1:8080/video.html",
    "http://127.0.0.1:8080/big/1.mp4",
    "generic:https://example.org/page.html",
    "GENERIC:https://example.org/page.html",
    "https://example.org/page.html",
    "ytsearch:cats",
    "",
    "\ufeffhttps://vimeo.com/1",
    # longer than the index is used for (the engine's own search), and just inside
    "https://vimeo.com/" + "1" * 9000,
    "https://vimeo.com/" + "1" * 8000,
]


def yt_dlp_urls() -> list[str]:
    """The URLs of yt-dlp's own test cases (about 6,000)."""
    urls = []
    for value in vars(_extractors).values():
        if isinstance(value, type) and hasattr(value, "get_testcases"):
            urls += [str(case["url"]) for case in value.get_testcases(include_onlymatching=True) if "url" in case]
    return sorted(set(urls))


def gallery_dl_urls() -> list[str]:
    """The example URL of every gallery-dl extractor class."""
    return sorted({str(cls.example) for cls in extractor._list_classes() if getattr(cls, "example", None)})


def spellings(url: str) -> Iterator[str]:
    yield from (url, url.upper(), url.swapcase())
