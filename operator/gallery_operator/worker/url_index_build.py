"""Builds the index of the engines' URL patterns (worker/url_index.py) from the installed engines:

    python -m gallery_operator.worker.url_index_build [folder]     (make url-index)

Run it in a fresh process (no engine configuration loaded: gallery-dl's patterns are built from its defaults, as
the worker's configuration never changes them; see ``worker/url_lookup.py``). tests/unit/test_url_index.py holds
the stored file against a fresh build, so an engine upgrade without a new index fails there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gallery_operator.worker.url_index import condition

FOLDER = Path(__file__).parent
BUILDERS = {"url_index_yt_dlp.json": "yt_dlp_patterns", "url_index_gallery_dl.json": "gallery_dl_classes"}
"""Each index file and the function that builds it."""


def yt_dlp_patterns() -> dict[str, Any]:
    """Every URL pattern of yt-dlp's extractors (as its lazy extractors hold them), with its condition."""
    import yt_dlp.version  # noqa: PLC0415
    from yt_dlp.extractor import gen_extractor_classes  # noqa: PLC0415

    patterns: dict[str, Any] = {}
    for extractor in gen_extractor_classes():
        valid = extractor._VALID_URL
        for pattern in [valid] if isinstance(valid, str) else valid if isinstance(valid, list | tuple) else []:
            patterns[pattern] = condition(pattern)
    return {"version": yt_dlp.version.__version__, "patterns": patterns}


def gallery_dl_classes() -> dict[str, Any]:
    """gallery-dl's extractor classes in the order of its own search, each with its pattern and condition."""
    import gallery_dl.version  # noqa: PLC0415
    from gallery_dl import extractor  # noqa: PLC0415

    classes = [
        [
            cls.__module__,
            cls.__name__,
            cls.pattern.pattern,
            cls.pattern.flags,
            condition(cls.pattern.pattern, cls.pattern.flags),
        ]
        for cls in extractor._list_classes()
    ]
    return {"version": gallery_dl.version.__version__, "modules": list(extractor.modules), "classes": classes}


def build(name: str) -> str:
    """The text of the index file ``name``."""
    return json.dumps(globals()[BUILDERS[name]](), indent=0, sort_keys=True) + "\n"


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if sys.argv[1:] else FOLDER
    for name in BUILDERS:
        (folder / name).write_text(build(name))
