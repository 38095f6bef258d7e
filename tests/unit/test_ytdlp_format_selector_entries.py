"""A hostile review of ``one_selector_per_spec`` (worker/ytdlp.py): one YoutubeDL given entries whose formats differ
(heights, codecs, containers, audio or video only, live), with the format-sort options a spec may set and no
`format`, picks for each entry what a plain YoutubeDL with the same options picks, in the same order of entries."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yt_dlp

from gallery_operator.worker.ytdlp import one_selector_per_spec

SORT_OPTIONS: list[dict[str, Any]] = [
    {},
    {"format_sort": ["res:480", "ext"]},
    {"format_sort": ["+size", "codec:vp9"], "format_sort_force": True},
    {"prefer_free_formats": True, "merge_output_format": "mkv"},
    {"format_sort": ["ext:webm"], "merge_output_format": "mp4/mkv", "max_filesize": 5_000_000},
]


def entry(number: int, pick: random.Random) -> dict[str, Any]:
    formats = []
    for index in range(pick.randint(1, 6)):
        video, audio = pick.choice(
            [("h264", "aac"), ("vp9", "none"), ("none", "opus"), ("av01", "none"), ("h264", "none")]
        )
        formats.append(
            {
                "format_id": f"f{index}",
                "url": f"http://a.example/{number}/{index}",
                "ext": pick.choice(["mp4", "webm", "m4a"]),
                "height": None if video == "none" else pick.choice([144, 240, 480, 720, 1080]),
                "vcodec": video,
                "acodec": audio,
                "filesize": pick.randint(1, 9) * 1_000_000,
                "tbr": pick.randint(100, 4000),
            }
        )
    info = {"id": str(number), "title": str(number), "formats": formats, "webpage_url": f"http://a.example/{number}"}
    return info | {"extractor": "t", "extractor_key": "T", "is_live": pick.random() < 0.2}


def choices(ydl: Any, entries: list[dict[str, Any]]) -> list[Any]:
    picked: list[Any] = []
    for info in entries:
        try:
            result = ydl.process_ie_result(dict(info), download=False)
        except yt_dlp.utils.DownloadError as error:
            picked.append(str(error))
            continue
        picked.append([f["format_id"] for f in result.get("requested_formats") or [result]])
    return picked


@pytest.mark.parametrize("options", SORT_OPTIONS)
def test_entries_with_different_formats_get_yt_dlp_s_own_choice(options: dict[str, Any]) -> None:
    pick = random.Random(7)
    entries = [entry(number, pick) for number in range(40)]
    params = {"quiet": True, "no_warnings": True, "simulate": True, **options}
    plain, ours = yt_dlp.YoutubeDL(params), yt_dlp.YoutubeDL(params)
    one_selector_per_spec(ours)
    assert choices(ours, entries) == choices(plain, entries)
    assert len({str(choice) for choice in choices(plain, entries)}) > 5  # the entries' choices differ
