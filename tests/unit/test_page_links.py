"""The linear finders give exactly what gallery-dl's generic extractor's expressions give, on generated pages and
on the shapes that made the expressions slow; and they are the expressions of the gallery-dl this project pins."""

from __future__ import annotations

import random
import re
import tracemalloc

import pytest
from gallery_dl.extractor.generic import GenericExtractor

from gallery_operator.worker.page_links import (
    MAX_LINKS,
    MEDIA_LINKS,
    SOURCE_LINKS,
    WINDOW,
    MediaLinks,
    SourceLinks,
    TooManyLinks,
)

TOKENS = [
    "<img ",
    "<IMG\n",
    "<video\t",
    "<source ",
    "<image ",
    "<imgx ",
    "src=",
    "SRC=",
    "srcset=",
    "srcSet='",
    'src="',
    "src",
    "set",
    "=",
    '"',
    "'",
    ">",
    "<",
    " ",
    "\n",
    "\u2003",
    ".jpg",
    ".JPEG",
    ".jpe",
    ".jpeg",
    ".png",
    ".webp",
    ".webm",
    ".ogv",
    ".opus",
    ".mp4x",
    ".",
    "/",
    "//",
    "a",
    "b",
    "img",
    "x.y",
    "?",
    "&",
    "#",
    "?q=1",
    "#f",
    "&a=b",
    "http://h/",
    "data:image/png;base64,",
    "AAAA",
    "+/=",
    "%20",
]
FINDERS: list[tuple[str, MediaLinks | SourceLinks]] = [(MEDIA_LINKS, MediaLinks()), (SOURCE_LINKS, SourceLinks())]


def page(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 40)))


@pytest.mark.parametrize(("pattern", "finder"), FINDERS, ids=["media", "source"])
def test_the_finders_match_the_expressions_on_generated_pages(pattern: str, finder: MediaLinks | SourceLinks) -> None:
    expression = re.compile(pattern)
    rng = random.Random(20261207)
    for _ in range(20_000):
        text = page(rng)
        assert finder.linear(text) == finder.findall(text) == expression.findall(text), text
    for _ in range(300):  # with a run and a tag long enough that findall takes the linear way
        text = page(rng) + "<img " + "QUJD" * rng.randrange(60, 200) + page(rng)
        assert finder.findall(text) == expression.findall(text), text


@pytest.mark.parametrize(("pattern", "finder"), FINDERS, ids=["media", "source"])
def test_the_finders_match_the_expressions_on_real_shapes(pattern: str, finder: MediaLinks | SourceLinks) -> None:
    pages = [
        '<a href="/img/1.jpg?x=1#f"><img src="/img/1.jpg" srcset="/a.png 1x, /b.png 2x"></a> //c.gif',
        "<img alt='x' src=a.png data-src=b.jpg>",
        '<img src="" src=good.jpg>',
        "<video\nclass=v\nsrc='/v.mp4'></video> <source srcset=/s.webm>",
        '<img src="data:image/png;base64,' + "QUJD" * 500 + '"> <a href="/2.JPG">',
        "a.jpg.png?b.gif c.jpeg<d.png>e.mp4",
    ]
    expression = re.compile(pattern)
    for text in pages:
        assert finder.linear(text) == finder.findall(text) == expression.findall(text), text


def test_the_finders_pass_long_runs_at_once() -> None:
    # The shapes that took the expressions quadratic time (a 64 Ki-character run: 6.3 s): found the same, the
    # finders looking at each character a bounded number of times (the page is long enough that the expressions'
    # way would not end within the test's time limit).
    def shaped(run: int, tags: int) -> str:
        return f'<img src="data:image/png;base64,{"QUJD" * run}"><a href="/1.jpg">' + "<img " * tags + "src=x.png"

    small = shaped(500, 500)
    for pattern, finder in FINDERS:
        assert finder.linear(small) == finder.findall(small) == re.compile(pattern).findall(small)
    text = shaped(1_000_000, 200_000)
    assert MediaLinks().findall(text) == ["/1.jpg", "src=x.png"]
    assert SourceLinks().findall(text) == [f"data:image/png;base64,{'QUJD' * 1_000_000}", "x.png"]


def test_the_pinned_gallery_dl_searches_with_these_expressions() -> None:
    # A gallery-dl whose generic extractor searches otherwise keeps its own searches (the finders are handed over
    # under these texts only); this says when an upgrade needs the finders looked at again.
    constants = GenericExtractor.images.__code__.co_consts
    assert MEDIA_LINKS in constants and SOURCE_LINKS in constants


@pytest.mark.parametrize("good", [0, WINDOW - 1, WINDOW + 3, 2 * WINDOW - 2, 3 * WINDOW])
def test_a_tag_longer_than_the_search_window_gives_its_last_attribute(good: int) -> None:
    filler = "srcsrc=" + "src " * (4 * WINDOW // 4)
    text = "<img " + filler[:good] + "src=good.jpg " + filler[good:] + ">"
    assert SourceLinks().linear(text) == re.compile(SOURCE_LINKS).findall(text)


def test_the_finders_hold_little_more_than_the_page() -> None:
    # A word list of the page (to find its longest word) and every `src` of a tag held at once took 79 and 171 MB to
    # search a page of 4 MB (review); the expressions themselves hold almost nothing. Pages of 1 MB here.
    pages = ["<img " + "src " * 250_000 + ">", "a.a " * 250_000]
    for text in pages:
        tracemalloc.start()
        try:
            MediaLinks().findall(text)
            SourceLinks().findall(text)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, f"{peak / 1e6:.0f} MB to search a page of {len(text) / 1e6:.0f} MB"


@pytest.mark.parametrize(
    ("finder", "link", "long_tag"),
    [
        (MediaLinks(), "a.jpg ", ""),
        (SourceLinks(), "<img src=x>", ""),
        (SourceLinks(), "<img src=x>", "<img " + "y" * 600 + ">"),  # a long tag: the linear search
    ],
    ids=["media", "source", "source, linear"],
)
def test_a_page_of_more_links_than_the_most_is_refused(
    finder: MediaLinks | SourceLinks, link: str, long_tag: str
) -> None:
    assert len(finder.findall(long_tag + link * MAX_LINKS)) == MAX_LINKS
    with pytest.raises(TooManyLinks, match="more than 100000 media files"):
        finder.findall(long_tag + link * (MAX_LINKS + 1))
