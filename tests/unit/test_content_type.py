"""An item's content type by its name: mimetypes' answer, looked up by extension after the first name with it."""

from __future__ import annotations

import gc
import mimetypes
import tracemalloc
from pathlib import Path

from gallery_operator.worker import catalogue
from gallery_operator.worker.catalogue import content_type

NAMES = [
    "1.jpg",
    "2.JPG",
    "3.Jpeg",
    "clip.mp4",
    "page.html",
    "notes.txt",
    "archive.tar.gz",
    "plain.gz",
    "alias.tgz",
    "ALIAS.TGZ",
    "both.tar.GZ",
    "data:image,x.jpg",
    "scheme:x.png",
    ".jpg",
    "..jpg",
    "noext",
    "trailing.",
    "x.unknownext",
    "a.b.c.webm",
    "sound.mp3",
    "pic.svgz",
    "weird.jpg:stream",
]


def test_every_name_gets_what_mimetypes_gives_it_in_any_order() -> None:
    for names in (NAMES, list(reversed(NAMES)), NAMES):
        for name in names:
            expected = mimetypes.guess_type(name)[0] or "application/octet-stream"
            assert content_type(Path(name)) == expected, name


def test_a_header_wins() -> None:
    assert content_type(Path("1.jpg"), "image/png; charset=binary") == "image/png"


def test_a_sites_own_extensions_do_not_grow_the_lookup() -> None:
    """The types of usual extensions are remembered; 2,000 files whose extensions a site made up (20 KB each,
    distinct: 40 MB of text) leave less than 2 MB behind them. Counted where the lookup allocates (with the catalogue
    module on the stack): a server thread of another test's fixture in this process allocates meanwhile."""
    gc.collect()
    tracemalloc.start(16)
    lookup = [tracemalloc.Filter(True, catalogue.__file__, all_frames=True)]
    try:
        before = tracemalloc.take_snapshot().filter_traces(lookup)
        for item in range(2_000):
            assert content_type(Path(f"item.{item:06d}{'x' * 20_000}")) == "application/octet-stream"
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(lookup)
    finally:
        tracemalloc.stop()
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert kept < 2_000_000, f"{kept / 1e6:.1f} MB kept"
