"""The forked extractor lookup answers exactly what gallery-dl's own search answers."""

from __future__ import annotations

import json

from gallery_dl import extractor

from gallery_operator.worker.lookahead import Lookahead

URLS = [
    "https://imgur.com/a/abcdefg",
    "http://127.0.0.1:8080/big/1.mp4",
    "https://example.org/page.html",
    "generic:https://example.org/page.html",
]


def test_the_child_finds_what_gallery_dl_finds() -> None:
    answers = Lookahead(URLS).result()
    for url in URLS:
        found = extractor.find(url)
        expected = (type(found).__module__, type(found).__name__) if found is not None else None
        assert answers[url] == expected, url
    assert answers["http://127.0.0.1:8080/big/1.mp4"] == ("gallery_dl.extractor.directlink", "DirectlinkExtractor")
    assert answers["https://example.org/page.html"] is None


def test_only_urls_gallery_dl_may_see_are_looked_up() -> None:
    spec = {"urls": ["https://a.example/v"], "engine": "yt-dlp"}
    assert Lookahead.from_config(json.dumps({"spec": spec})).result() == {}
    assert Lookahead.from_config("not json").result() == {}
    assert Lookahead.from_config(None).result() == {}
    auto = Lookahead.from_config(json.dumps({"spec": {"urls": ["https://a.example/v.jpg"]}})).result()
    assert auto == {"https://a.example/v.jpg": ("gallery_dl.extractor.directlink", "DirectlinkExtractor")}
