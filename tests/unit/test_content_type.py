"""An item's content type by its name: mimetypes' answer, looked up by extension after the first name with it."""

from __future__ import annotations

import mimetypes
from pathlib import Path

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
