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

import functools
import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gallery_operator.worker.url_index import folded, holds

PATTERN_OPTIONS = frozenset({"enabled", "tlds"})
"""Options of an extractor category that gallery-dl reads when it builds a pattern (generic, ytdl; bunkr)."""


@functools.cache
def _index(engine: str) -> Any:
    return json.loads(Path(__file__).with_name(f"url_index_{engine}.json").read_text())


def yt_dlp_key(table: Iterable[tuple[str, Any]], url: str) -> str | None:
    """The key of the first extractor of ``table`` ((key, extractor) in order: a YoutubeDL's ``_ies.items()``) that
    yt-dlp finds suitable for ``url``: what yt-dlp's ``extract_info`` without an extractor key would pick."""
    text = folded(url)
    patterns: dict[str, Any] = _index("yt_dlp")["patterns"] if text is not None else {}
    plain = _plain_yt_dlp_methods() if text is not None else frozenset()
    for key, extractor in table:
        if text is not None and _cannot_match(extractor, text, patterns, plain):
            continue
        if extractor.suitable(url):
            return str(key)
    return None


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


def _cannot_match(extractor: Any, text: str, patterns: dict[str, Any], plain: frozenset[Any]) -> bool:
    """Whether the index shows that no pattern of ``extractor`` matches the URL (False when it cannot tell)."""
    for method in ("suitable", "_match_valid_url"):
        if getattr(getattr(extractor, method, None), "__func__", None) not in plain:
            return False  # an extractor that decides otherwise than by its patterns alone
    valid = extractor._VALID_URL
    listed = [valid] if isinstance(valid, str) else list(valid) if isinstance(valid, list | tuple) else None
    if not listed or not all(isinstance(pattern, str) and pattern in patterns for pattern in listed):
        return False
    return not any(holds(patterns[pattern], text) for pattern in listed)


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
