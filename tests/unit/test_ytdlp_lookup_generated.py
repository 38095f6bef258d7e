"""A hostile review of the index's yt-dlp lookup (worker/url_lookup.py, ``yt_dlp_key``) now that every URL up to
ALWAYS_KEYED_LENGTH is keyed from it: URLs generated from the extractors' own patterns (not only their test URLs),
in hostile spellings (upper case, swapped case, the characters ``re`` folds onto ASCII letters, a percent-encoded
dot, padded to the keyed length), each against yt-dlp's own search in its own table order, for a table of classes
and for a table half of whose extractors are instances (the plan rebased from the classes' table)."""

from __future__ import annotations

import random
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import yt_dlp

from gallery_operator.worker import ytdlp
from gallery_operator.worker.url_lookup import yt_dlp_key

CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./?=&%"
REPEATS = (_parser.MAX_REPEAT, _parser.MIN_REPEAT, getattr(_parser, "POSSESSIVE_REPEAT", None))


def generated(items: Any, pick: random.Random, groups: dict[int, str]) -> str:
    """A string the parsed pattern ``items`` is likely to match (look-arounds ignored: any string is a fair input)."""
    out: list[str] = []
    for op, argument in items:
        if op is _parser.LITERAL:
            out.append(chr(argument))
        elif op is _parser.NOT_LITERAL or op is _parser.ANY:
            out.append(pick.choice([c for c in CHARACTERS if ord(c) != argument]))
        elif op is _parser.IN:
            out.append(in_class(argument, pick))
        elif op is _parser.BRANCH:
            out.append(generated(pick.choice(argument[1]), pick, groups))
        elif op is _parser.SUBPATTERN:
            groups[argument[0] or 0] = text = generated(argument[3], pick, groups)
            out.append(text)
        elif op in REPEATS:
            low, high, body = argument
            out.extend(generated(body, pick, groups) for _ in range(pick.randint(low, min(high, low + 3))))
        elif op is getattr(_parser, "ATOMIC_GROUP", None):
            out.append(generated(argument, pick, groups))
        elif op is _parser.GROUPREF:
            out.append(groups.get(argument, ""))
        elif op is _parser.GROUPREF_EXISTS and argument[1]:
            out.append(generated(argument[1], pick, groups))
    return "".join(out)


def in_class(members: Any, pick: random.Random) -> str:
    if any(op is _parser.NEGATE for op, _ in members):
        return pick.choice("aZ9_-")
    op, argument = pick.choice(members)
    if op is _parser.LITERAL:
        return chr(argument)
    if op is _parser.RANGE:
        return chr(pick.randint(argument[0], min(argument[1], argument[0] + 60)))
    return {_parser.CATEGORY_DIGIT: "7", _parser.CATEGORY_WORD: "w"}.get(argument, "x")


def spelled(url: str, pick: random.Random) -> list[str]:
    padded = url + "?" + "x" * max(0, ytdlp.ALWAYS_KEYED_LENGTH - len(url) - 1)
    folds = url.replace("k", "\u212a").replace("s", "\u017f").replace("i", "\u0131").replace("I", "\u0130")
    return [url, pick.choice([url.upper(), url.swapcase(), folds, url.replace(".", "%2E", 1), padded])]


def patterns_of(valid: Any) -> list[str]:
    return [valid] if isinstance(valid, str) else list(valid) if isinstance(valid, list | tuple) else []


def urls_of(table: dict[str, Any], count: int, seed: int) -> list[str]:
    pick = random.Random(seed)
    patterns = [pattern for extractor in table.values() for pattern in patterns_of(extractor._VALID_URL)]
    urls: list[str] = []
    for pattern in pick.sample(patterns, count):
        urls.extend(spelled(generated(_parser.parse(pattern), pick, {}), pick))
    return urls


def assert_own_picks(table: dict[str, Any], urls: list[str]) -> None:
    wrong = []
    for url in urls:
        own = next((key for key, extractor in table.items() if extractor.suitable(url)), None)
        if yt_dlp_key(table.items(), url) != own:
            wrong.append((url[:200], own))
    assert wrong == []


def test_urls_generated_from_the_patterns_get_yt_dlp_s_own_pick() -> None:
    table = yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True})._ies
    assert_own_picks(table, urls_of(table, 300, 13))


def test_a_table_of_instances_gets_yt_dlp_s_own_pick() -> None:
    """A YoutubeDL's table holds an extractor's instance (of the real class, not the lazy one) after its first use:
    the plan rebased from the classes' table must still pick as yt-dlp does."""
    ydl = yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True})
    assert yt_dlp_key(ydl._ies.items(), "https://vimeo.com/1") == "Vimeo"  # the classes' plan first
    for key in list(ydl._ies)[::2]:
        ydl.get_info_extractor(key)
    assert sum(not isinstance(extractor, type) for extractor in ydl._ies.values()) > 500
    assert_own_picks(ydl._ies, urls_of(ydl._ies, 200, 14))
