"""A YoutubeDL of the worker builds each format spec's selector once (worker/ytdlp.py, ``one_selector_per_spec``),
as yt-dlp does for a given `format`, and picks what yt-dlp picks."""

from __future__ import annotations

from typing import Any

import yt_dlp

from gallery_operator.worker.ytdlp import one_selector_per_spec


def formats() -> list[dict[str, Any]]:
    return [
        {
            "format_id": "low",
            "url": "http://a.example/low.mp4",
            "ext": "mp4",
            "height": 240,
            "vcodec": "h264",
            "acodec": "aac",
        },
        {
            "format_id": "high",
            "url": "http://a.example/high.mp4",
            "ext": "mp4",
            "height": 720,
            "vcodec": "h264",
            "acodec": "aac",
        },
        {
            "format_id": "v",
            "url": "http://a.example/v.mp4",
            "ext": "mp4",
            "height": 1080,
            "vcodec": "h264",
            "acodec": "none",
        },
    ]


def picked(ydl: Any, spec: str) -> list[str]:
    video = {"id": "x", "title": "x", "formats": formats(), "extractor": "t", "extractor_key": "T", "webpage_url": "u"}
    return [
        f["format_id"]
        for f in ydl._select_formats(
            ydl._get_formats(ydl.process_ie_result(video, download=False)), ydl.build_format_selector(spec)
        )
    ]


def test_each_spec_is_built_once_and_picks_what_yt_dlp_picks() -> None:
    plain = yt_dlp.YoutubeDL({"quiet": True})
    ours = yt_dlp.YoutubeDL({"quiet": True})
    one_selector_per_spec(ours)
    assert ours.build_format_selector("best") is ours.build_format_selector("best")
    assert ours.build_format_selector("worst") is not ours.build_format_selector("best")
    for spec in ("best", "worst", "bv*+ba/b", "b[height<=480]"):
        assert picked(ours, spec) == picked(plain, spec) == picked(ours, spec), spec
