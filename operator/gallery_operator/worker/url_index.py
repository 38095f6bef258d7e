"""Which of an engine's extractors a URL cannot match, told without compiling their URL patterns.

Both engines pick the first extractor, in their own order, whose URL pattern matches the URL. They compile each
pattern on first use: about 1,750 for yt-dlp and 1,100 for gallery-dl (whose ~300 extractor modules are imported
too), 0.25-0.3 s of CPU per engine before a loopback URL reaches the generic or direct-link extractor at the end.

Each pattern is parsed once, when the index is built (``worker/url_index_build.py``, from the pinned engines; a unit
test holds the stored index against a fresh build), into a necessary condition: literal runs that every string
the pattern matches must contain, as clauses of substrings of which at least one must appear. A URL that fails a
pattern's condition cannot match it, so its extractor is skipped unseen; every other extractor is tried with the
engine's own pattern, in the engine's order. The first match is thus the engine's own.

The condition is checked on the URL in lower case, after each character that ``re`` matches case-insensitively
with an ASCII letter is turned into that letter (``(?i)s`` matches the long s U+017F, ``(?i)i`` the dotless i
U+0131, ``(?i)k`` the Kelvin sign: lower-casing alone misses those; FOLDS, held against ``re`` by a test for
every code point); URLs longer than LONGEST_URL characters get the engine's whole search. Literal characters outside
ASCII are not part of any condition; everything that is not a literal (classes, repeats that may be absent,
look-arounds, back-references, conditionals) adds nothing, so a condition only ever asks for less than the pattern
does.

Only the standard library is imported here; ``re._parser`` only when an index is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Clause = tuple[str, ...]
"""At least one of these (lower-case) substrings is in every URL the pattern matches."""
Condition = tuple[Clause, ...]
"""Every clause holds for every URL the pattern matches (an empty condition holds for every URL)."""
LONGEST_URL = 2048
"""URLs longer than this get the engine's own search: checking a condition costs a scan of the URL per literal
(about 11,000 for yt-dlp), which a URL crafted to defeat the substring search makes slow (tens of milliseconds per
lookup at this length). The spec's URLs are at most this long; entries a site hands the worker may be longer."""
CLAUSES_KEPT = 3
"""The most selective clauses kept per pattern (fewer clauses ask less, so any subset stays a necessary condition)."""
FOLDS = {0x130: "i", 0x131: "i", 0x17F: "s", 0x212A: "k"}
"""The characters outside ASCII that ``re`` matches case-insensitively with an ASCII letter (I with dot above,
dotless i, long s, Kelvin sign), and that letter; tests/unit/test_url_index.py asks ``re`` about every code point."""


def folded(url: str) -> str | None:
    """The URL as conditions are checked against it: each character that a case-insensitive pattern matches with an
    ASCII letter turned into that letter, then lower case; None when it is longer than LONGEST_URL (no skipping:
    the engine's own search)."""
    if len(url) > LONGEST_URL:
        return None
    return (url if url.isascii() else url.translate(FOLDS)).lower()


def holds(condition: Condition, url: str) -> bool:
    """Whether ``url`` (as ``folded`` gives it) meets ``condition``: False means no string the pattern matches."""
    return all(any(literal in url for literal in clause) for clause in condition)


def condition(pattern: str, flags: int = 0) -> Condition:
    """The necessary condition of ``pattern`` (compiled by the engine with ``flags``)."""
    from re import _parser  # type: ignore[attr-defined]  # noqa: PLC0415 - only when an index is built

    return tuple(_best(_sequence(_parser.parse(pattern, flags), _parser)))


COMMON = "https://www.example.com/index.html?id=1&v=2#x"
"""Literals found in this are in most URLs: a clause of any of them tells little (such clauses are kept last)."""


def _best(clauses: Iterable[Clause]) -> list[Clause]:
    """The most selective clauses (at most CLAUSES_KEPT): those of rare literals first, then of longer ones."""

    def rank(clause: Clause) -> tuple[bool, int, int]:
        return (any(literal in COMMON for literal in clause), -min(map(len, clause)), len(clause))

    return sorted(set(clauses), key=lambda clause: (*rank(clause), clause))[:CLAUSES_KEPT]


def _sequence(items: Iterable[tuple[Any, Any]], parser: Any) -> list[Clause]:
    """The clauses of a sequence of parsed items: each run of ASCII literals, and what each item requires."""
    clauses: list[Clause] = []
    run: list[str] = []
    for op, argument in items:
        if op is parser.LITERAL and argument < 128:
            run.append(chr(argument).lower())
            continue
        if run:
            clauses.append(("".join(run),))
            run = []
        clauses.extend(_item(op, argument, parser))
    if run:
        clauses.append(("".join(run),))
    return clauses


def _item(op: Any, argument: Any, parser: Any) -> list[Clause]:
    """What one parsed item that is not an ASCII literal requires."""
    if op is parser.SUBPATTERN:  # a group (its flags change no literal's lower case)
        return _sequence(argument[3], parser)
    if op is getattr(parser, "ATOMIC_GROUP", None):
        return _sequence(argument, parser)
    if op in (parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None)):
        low, _, body = argument
        return _sequence(body, parser) if low >= 1 else []
    if op is parser.BRANCH:
        return _either([_sequence(branch, parser) for branch in argument[1]])
    return []  # classes, any character, anchors, look-arounds, back-references, conditionals: nothing required


def _either(branches: Sequence[list[Clause]]) -> list[Clause]:
    """One of the branches matches: (a1 and a2) or (b1 and b2) implies (a1 or b1), (a1 or b2), (a2 or b1) ...; the
    best of those clauses (none when a branch requires nothing)."""
    if any(not clauses for clauses in branches):
        return []
    result = _best(branches[0])
    for clauses in branches[1:]:
        result = _best(tuple(sorted(set(mine) | set(theirs))) for mine in result for theirs in _best(clauses))
    return result
