"""The engines' extractor lookups, answered in the worker with the index of their URL patterns (worker/url_index.py):
the extractor each engine's own search picks, with the patterns that cannot match skipped unseen instead of
compiled (0.25-0.3 s of CPU per engine and run before).

yt-dlp: the first extractor of the YoutubeDL's own table (so its order, its plugins, its lazy extractors) whose
``suitable(url)`` is true; an extractor is skipped only when its ``suitable`` is yt-dlp's plain pattern match and
every one of its patterns is in the index with a condition the URL fails. gallery-dl: its classes in the order of
its own search as the index lists them, used only while gallery-dl's version, its module list and the classes it
has already listed are those of the index, and no configuration shapes a pattern (a pattern gallery-dl builds from
its configuration at import: the site instances of `extractor.<basecategory>`, `extractor.generic.enabled`,
`extractor.bunkr.tlds`, `extractor.ytdl.enabled`); a candidate's module is imported and its pattern compiled as
gallery-dl does, and a pattern that is not the index's sends the URL to gallery-dl's own search.
"""

from __future__ import annotations

import copy
import functools
import importlib
import itertools
import json
import operator
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gallery_operator.worker.url_index import Condition, folded, holds

PATTERN_OPTIONS = frozenset({"enabled", "tlds"})
"""Options of an extractor category that gallery-dl reads when it builds a pattern (generic, ytdl; bunkr)."""


@functools.cache
def _index(engine: str) -> Any:
    return json.loads(Path(__file__).with_name(f"url_index_{engine}.json").read_text())


def yt_dlp_key(table: Iterable[tuple[str, Any]], url: str) -> str | None:
    """The key of the first extractor of ``table`` ((key, extractor) in order: a YoutubeDL's ``_ies.items()``) that
    yt-dlp finds suitable for ``url``: what yt-dlp's ``extract_info`` without an extractor key would pick.

    The extractors asked are those whose conditions the URL meets (and those the index cannot judge), in the table's
    order; the table is read once (``_YtDlpPlan``), and a lookup scans the URL once per literal of the patterns'
    first clauses instead of walking every extractor's conditions."""
    pairs = tuple(table)
    text = folded(url)
    if text is None:
        return next((str(key) for key, extractor in pairs if extractor.suitable(url)), None)
    for position in _yt_dlp_plan(pairs).candidates(text):
        key, extractor = pairs[position]
        if extractor.suitable(url):
            return str(key)
    return None


class _YtDlpPlan:
    """A table of yt-dlp extractors read for lookups: for each extractor its patterns' conditions (None when the index
    cannot judge it: its own ``suitable`` or ``_match_valid_url``, a pattern not in the index), and which extractors
    each literal of a first clause may let through. An extractor none of whose patterns' first clauses the URL meets
    fails every one of its conditions, so it is skipped as ``holds`` would skip it; the others are checked whole."""

    def __init__(self, pairs: tuple[tuple[str, Any], ...]) -> None:
        self.pairs = pairs
        self.conditions = [_conditions(extractor) for _, extractor in pairs]
        always: list[int] = []
        first: dict[str, list[int]] = {}
        for position, conditions in enumerate(self.conditions):
            if conditions is None or any(not condition for condition in conditions):
                always.append(position)  # asked, or its condition holds for every URL
                continue
            for literal in {literal for condition in conditions for literal in condition[0]}:
                first.setdefault(literal, []).append(position)
        self.always = tuple(always)
        self.first = {literal: tuple(positions) for literal, positions in first.items()}
        self.literals = tuple(self.first)

    def candidates(self, text: str) -> list[int]:
        """The positions of the extractors to ask for ``text`` (``folded``), in the table's order."""
        positions = set(self.always)
        for literal in self.literals:
            if literal in text:
                positions.update(self.first[literal])
        return [
            position
            for position in sorted(positions)
            if (conditions := self.conditions[position]) is None or any(holds(c, text) for c in conditions)
        ]

    def rebased(self, pairs: tuple[tuple[str, Any], ...]) -> _YtDlpPlan | None:
        """This plan for ``pairs``, when they differ from its own table only in extractors with the same keys and
        conditions (a YoutubeDL's table holds an extractor's class until its first use, and then its instance: the
        tables of one run's YoutubeDLs differ in those places only); else None."""
        if len(pairs) != len(self.pairs):
            return None
        for position in itertools.compress(itertools.count(), map(operator.ne, self.pairs, pairs)):
            mine, theirs = self.pairs[position], pairs[position]
            if mine[0] != theirs[0] or _conditions(theirs[1]) != self.conditions[position]:
                return None
        plan = copy.copy(self)
        plan.pairs = pairs
        return plan


PLANS_KEPT = 32
_plans: dict[tuple[tuple[str, Any], ...], _YtDlpPlan] = {}
"""The plans of the tables looked up last (a run's YoutubeDLs each have a table), the oldest first."""
_plans_lock = threading.Lock()


def _yt_dlp_plan(pairs: tuple[tuple[str, Any], ...]) -> _YtDlpPlan:
    with _plans_lock:
        plan = _plans.get(pairs)
        latest = next(reversed(_plans.values()), None)
    if plan is None:
        plan = (latest.rebased(pairs) if latest is not None else None) or _YtDlpPlan(pairs)
        with _plans_lock:
            _plans[pairs] = plan
            while len(_plans) > PLANS_KEPT:
                del _plans[next(iter(_plans))]
    return plan


@functools.cache
def _plain_yt_dlp_methods() -> frozenset[Any]:
    """yt-dlp's own ``suitable`` and ``_match_valid_url`` (of its real and, when it has them, its lazy extractors'
    base class)."""
    from yt_dlp.extractor.common import InfoExtractor  # noqa: PLC0415 - the engine is imported by its run

    bases: list[type] = [InfoExtractor]
    try:
        from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor  # noqa: PLC0415
    except ImportError:  # a yt-dlp built without lazy extractors: its real classes only
        pass
    else:
        bases.append(LazyLoadExtractor)
    return frozenset(vars(base)[name].__func__ for base in bases for name in ("suitable", "_match_valid_url"))


def _conditions(extractor: Any) -> tuple[Condition, ...] | None:
    """The conditions of ``extractor``'s patterns (the URL can match it only if one holds), or None when the index
    cannot tell."""
    for method in ("suitable", "_match_valid_url"):
        if getattr(getattr(extractor, method, None), "__func__", None) not in _plain_yt_dlp_methods():
            return None  # an extractor that decides otherwise than by its patterns alone
    valid = extractor._VALID_URL
    listed = [valid] if isinstance(valid, str) else list(valid) if isinstance(valid, list | tuple) else None
    patterns: dict[str, Any] = _index("yt_dlp")["patterns"]
    if not listed or not all(isinstance(pattern, str) and pattern in patterns for pattern in listed):
        return None
    return tuple(_condition(pattern) for pattern in listed)


@functools.cache
def _condition(pattern: str) -> Condition:
    """A pattern's condition in the index, as tuples (one object per pattern, whichever tables share it)."""
    return tuple(tuple(clause) for clause in _index("yt_dlp")["patterns"][pattern])


def gallery_dl_find(url: str) -> Any:
    """gallery-dl's extractor for ``url`` (an instance, or None), as ``gallery_dl.extractor.find`` makes it."""
    from gallery_dl import extractor  # noqa: PLC0415 - the engine is imported by its run

    text = folded(url)
    if text is None or not _gallery_dl_index_holds():
        return extractor.find(url)
    for module_name, class_name, pattern, flags, condition in _index("gallery_dl")["classes"]:
        if not holds(condition, text):
            continue
        cls = _gallery_dl_class(module_name, class_name)
        if cls.pattern.pattern != pattern or cls.pattern.flags != flags:
            return extractor.find(url)  # not the class the index was built from
        if match := cls.pattern.match(url):
            return cls(match)
    return None


def _gallery_dl_index_holds() -> bool:
    """Whether gallery-dl's search now walks the classes of the index, in its order, with its patterns."""
    from gallery_dl import config, extractor, version  # noqa: PLC0415

    index = _index("gallery_dl")
    if version.__version__ != index["version"] or list(extractor.modules) != index["modules"]:
        return False
    known = {(module, name) for module, name, *_ in index["classes"]}
    if any((cls.__module__, cls.__name__) not in known for cls in extractor._cache):
        return False  # a class added by hand (gallery-dl's `add`): not in the index's order
    options = config.get((), "extractor") or {}
    return not any(
        isinstance(value, dict) and (PATTERN_OPTIONS & value.keys() or any(isinstance(v, dict) for v in value.values()))
        for value in options.values()
    )


def _gallery_dl_class(module_name: str, class_name: str) -> Any:
    """A class of gallery-dl's extractor module, with the patterns of the module's classes compiled as gallery-dl
    compiles them when it lists the module (extractors use each other's: Reddit's items() matches links with
    RedditSubmissionExtractor.pattern.match), so that a later listing finds them compiled too."""
    from gallery_dl import extractor  # noqa: PLC0415
    from gallery_dl.text import re_compile  # noqa: PLC0415

    module = importlib.import_module(module_name)
    classes = extractor._get_classes(module)
    if classes and classes[0].pattern.__class__ is str:  # gallery-dl's add_module, without adding to its list
        for cls in classes:
            cls.pattern = re_compile(cls.pattern)
    return getattr(module, class_name)
