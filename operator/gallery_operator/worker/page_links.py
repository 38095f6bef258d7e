"""gallery-dl's generic extractor's two searches of a page, in time linear in the page's length (no engine imported).

The generic extractor finds a page's media with two regular expressions run by ``findall``: ``MEDIA_LINKS``
(anything before a media extension) backtracks over every run of URL characters it starts in, and ``SOURCE_LINKS``
(an `<img>`, `<video>` or `<source>` tag's `src`) over everything up to the tag's `>`. Both take time quadratic in
such a run: a page with one inline image of 48 KB (a `data:` URI, 64 Ki characters of base64 and no `.png`) took
6.3 s, one of 200 KB minutes, and a hostile page as long as the Job's deadline allows. The finders here give the
same matches in the same order (``tests/unit/test_page_links.py`` compares them with the expressions on generated
pages), each character of the page looked at a bounded number of times. The gallery-dl adapter hands them to
gallery-dl's cache of compiled expressions under the expressions' own text (``worker/gallerydl.py``), so another
gallery-dl whose generic extractor searches differently keeps its own searches.
"""

from __future__ import annotations

import re

MEDIA_LINKS = r"(?i)(?:[^?&#\"'>\s]+)\.(?:jpe?g|jpe|png|gif|web[mp]|mp4|mkv|og[gmv]|opus)(?:[^\"'<>\s]*)?"
SOURCE_LINKS = r"(?i)<(?:img|video|source)\s[^>]*src(?:set)?=[\"']?(?P<URL>[^\"'\s>]+)"

MAX_LINKS = 100_000
"""The most links either finder gives for one page: gallery-dl's generic extractor keeps two strings, a tuple and a
dict for each, and five million of them (a 30 MiB page of `a.jpg ` words) took the worker to 931 MB (review); a
gallery of more links than this on one page is none the worker takes (``TooManyLinks``)."""


class TooManyLinks(ValueError):
    """A page that links more media than MAX_LINKS: the page fails as content the worker does not take."""

    def __init__(self) -> None:
        super().__init__(f"the page links more than {MAX_LINKS} media files; a page is searched for that many at most")


def _keep(found: list[str], link: str) -> None:
    """``link`` added to a finder's ``found``, which holds MAX_LINKS at most."""
    found.append(link)
    if len(found) > MAX_LINKS:
        raise TooManyLinks()


_RUN = re.compile(r"[^?&#\"'>\s]+")
"""The characters a media link runs over before its extension."""
_EXTENSION = re.compile(r"\.(?:jpe?g|jpe|png|gif|web[mp]|mp4|mkv|og[gmv]|opus)", re.IGNORECASE)
_TAIL = re.compile(r"[^\"'<>\s]*")
"""What a media link runs on over after its extension (its query and fragment)."""
_SOURCE = re.compile(SOURCE_LINKS)
_LONG_TAG = re.compile(r"<(?:img|video|source)\s[^>]{512}", re.IGNORECASE)
"""A tag long enough that the expression's backtracking over it costs."""
_TAG = re.compile(r"<(?:img|video|source)\s", re.IGNORECASE)
_SRC = re.compile(r"src", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"src(?:set)?=[\"']?(?P<URL>[^\"'\s>]+)", re.IGNORECASE)


class MediaLinks:
    """``re.compile(MEDIA_LINKS).findall``: from the first character of a run of URL characters, the longest stretch
    of the run that ends in a media extension (after at least one character), with what follows it up to a quote,
    `<`, `>` or a space. A run without an extension past its first character holds no match at all, wherever in it
    a search starts: it is passed at once instead of from each of its characters."""

    pattern = MEDIA_LINKS

    def findall(self, page: str) -> list[str]:
        """Always the loop: no check cheaper than it tells a page where the expression is cheap (words of 255
        characters with a dot every other one took it 20 s per 4 MB; the loop costs some 5 ms more than the expression
        on a page of a thousand links)."""
        return self.linear(page)

    def linear(self, page: str) -> list[str]:
        found: list[str] = []
        at = 0
        while (run := _RUN.search(page, at)) is not None:
            start, end = run.span()
            last = None
            for last in _EXTENSION.finditer(page, start + 1, end):  # noqa: B007 - the last one is wanted
                pass
            if last is None:
                at = end
                continue
            stop = _TAIL.match(page, last.end())
            at = stop.end() if stop is not None else last.end()
            _keep(found, page[start:at])
        return found


class SourceLinks:
    """``re.compile(SOURCE_LINKS).findall``: for a tag, the URL of its last `src` or `srcset` attribute before the
    tag's `>` (the end of the page without one) that has one. A tag without such an attribute leaves none to the
    tags that start before its `>` either: the search goes on after it."""

    pattern = SOURCE_LINKS

    def findall(self, page: str) -> list[str]:
        """The expression's own search where every tag is short (a match at a time, so that a page of millions holds
        none of them past MAX_LINKS), else ``linear``."""
        if _LONG_TAG.search(page) is not None:
            return self.linear(page)
        found: list[str] = []
        for match in _SOURCE.finditer(page):
            _keep(found, match.group(1))  # findall's item: the one group, which every match sets
        return found

    def linear(self, page: str) -> list[str]:
        found: list[str] = []
        at = 0
        while (tag := _TAG.search(page, at)) is not None:
            close = page.find(">", tag.end())
            close = len(page) if close < 0 else close
            attribute = _last_attribute(page, tag.end(), close)
            if attribute is None:
                at = close
                continue
            _keep(found, attribute.group("URL"))
            at = attribute.end()
        return found


WINDOW = 64 * 1024
"""Characters of a tag searched at a time for its `src` words, from its end: the memory of one search."""


def _last_attribute(page: str, start: int, end: int) -> re.Match[str] | None:
    """The last `src` or `srcset` attribute with a URL that starts in ``page[start:end]``: tried from the end, the
    first that holds one ends the search (each failed try looks at a few characters only)."""
    high = end
    while high > start:
        low = max(start, high - WINDOW)
        words = [word.start() for word in _SRC.finditer(page, low, min(end, high + 2))]
        for at in reversed(words):
            if at < high and (attribute := _ATTRIBUTE.match(page, at)) is not None:
                return attribute
        high = low
    return None
