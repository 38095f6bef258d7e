"""A hostile review of ``unseen_progress_lines`` (worker/ytdlp.py): with yt-dlp's progress line not made, real yt-dlp
downloading from the fixture site on loopback (a direct clip in ranges, an HLS stream of fragments, at a rate limit)
hands its progress hooks the same reports as without the skip: the same statuses and byte counts in the same order,
and the same fields, apart from the line's own text (``_default_template``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from gallery_operator.worker.ytdlp import unseen_progress_lines

LINE_ONLY = {"_default_template"}
"""The one field yt-dlp adds to a report only when it makes the line."""


def reports(url: str, home: Path, skipped: bool) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []

    def hook(progress: dict[str, Any]) -> None:
        fields = frozenset(progress) - LINE_ONLY
        seen.append((progress["status"], progress.get("downloaded_bytes"), progress.get("total_bytes"), fields))

    params = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "paths": {"home": str(home)},
        "progress_hooks": [hook],
        "http_chunk_size": 64 * 1024,
        "ratelimit": 4 * 1024 * 1024,
        "hls_prefer_native": True,
        "external_downloader": {"default": "native"},
        "outtmpl": {"default": "%(id)s.%(ext)s"},
    }
    with yt_dlp.YoutubeDL(params) as ydl:
        if skipped:
            with unseen_progress_lines():
                ydl.download([url])
        else:
            ydl.download([url])
    return seen


@pytest.mark.parametrize("path", ["/clip/3.mp4?size=300000", "/hls/index.m3u8"])
def test_the_hooks_get_the_same_reports_without_the_line(tmp_path: Path, site: str, path: str) -> None:
    plain = reports(site + path, tmp_path / "plain", skipped=False)
    skipped = reports(site + path, tmp_path / "skipped", skipped=True)
    assert [report[:3] for report in skipped] == [report[:3] for report in plain]
    assert [report[3] for report in skipped] == [report[3] for report in plain]
    assert plain[-1][0] == "finished" and len(plain) > 2
