"""The whole soundness check of the URL-pattern index (worker/url_index.py), too long for the unit tier: every URL
of the corpus (yt-dlp's ~6,000 test URLs, gallery-dl's ~1,000 examples, the hostile ones; three spellings each)
against every pattern of both engines. A pattern skipped for a URL (its condition fails) must not match it.

    nice uv run python -m bench.url_index_soundness        (about two minutes of one core)
"""

from __future__ import annotations

import re
import sys
import time

from gallery_harness.url_corpus import HOSTILE, gallery_dl_urls, spellings, yt_dlp_urls
from gallery_operator.worker import url_index_build
from gallery_operator.worker.url_index import folded, holds


def main() -> int:
    started = time.monotonic()
    conditions = {pattern: cond for pattern, cond in url_index_build.yt_dlp_patterns()["patterns"].items()}
    conditions |= {pattern: cond for _, _, pattern, _, cond in url_index_build.gallery_dl_classes()["classes"]}
    compiled = {pattern: re.compile(pattern) for pattern in conditions}
    frozen = {pattern: tuple(tuple(clause) for clause in cond) for pattern, cond in conditions.items()}
    urls = yt_dlp_urls() + gallery_dl_urls() + HOSTILE
    skipped = asked = unsound = 0
    for url in urls:
        for spelling in spellings(url):
            text = folded(spelling)
            if text is None:
                continue  # the engine's own search
            for pattern, regex in compiled.items():
                if holds(frozen[pattern], text):
                    asked += 1
                elif regex.match(spelling):
                    unsound += 1
                    print(f"UNSOUND: {pattern[:120]!r} matches {spelling!r}", flush=True)
                else:
                    skipped += 1
    print(
        f"{len(urls)} URLs x 3 spellings x {len(compiled)} patterns: {skipped} skipped (none of them matching: "
        f"{unsound} did), {asked} asked; {time.monotonic() - started:.0f} s"
    )
    return 1 if unsound else 0


if __name__ == "__main__":
    sys.exit(main())
