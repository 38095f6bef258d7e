"""yt-dlp's progress line of a download is not made when nothing would show it (worker/ytdlp.py,
``unseen_progress_lines``): no progress (a printer that prints nothing) and no console title."""

from __future__ import annotations

from typing import Any

import pytest
import yt_dlp
from yt_dlp.downloader.http import HttpFD

from gallery_operator.worker.ytdlp import unseen_progress_lines


@pytest.mark.parametrize(
    ("params", "made"),
    [
        ({"noprogress": True}, False),  # every worker run
        ({"noprogress": True, "consoletitle": True}, True),  # the title shows it
        ({}, True),  # the progress printer shows it
    ],
)
def test_the_line_is_made_only_where_it_shows(params: dict[str, Any], made: bool) -> None:
    ydl = yt_dlp.YoutubeDL({"quiet": True, **params})
    downloader = HttpFD(ydl, ydl.params)
    lines: list[str] = []
    downloader._multiline.print_at_line = lambda text, pos: lines.append(text)
    ydl.to_console_title = lambda message=None, *args: lines.append(str(message))
    status = {"status": "downloading", "downloaded_bytes": 1, "total_bytes": 2, "info_dict": {}, "elapsed": 1.0}
    with unseen_progress_lines():
        downloader.report_progress(status)
    assert bool(lines) == made
    downloader.report_progress(dict(status))  # outside the block: yt-dlp's own line
    assert lines
