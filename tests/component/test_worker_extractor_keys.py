"""yt-dlp's extractor lookup answered by a forked child (worker/extractor_keys.py): the key yt-dlp itself would pick
for each URL (real yt-dlp on both sides), nothing asked when the tables differ, no answer (and yt-dlp's own lookup)
once the child is gone, and a child that can open no socket, start no program and write no file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from yt_dlp import YoutubeDL

from gallery_operator.worker.extractor_keys import ExtractorKeys

URLS = [
    "https://www.youtube.com/watch?v=BaW_jenozKc",
    "https://youtu.be/BaW_jenozKc",
    "https://www.youtube.com/playlist?list=PLwiyx1dc3P2JR9N8gQaQN_BCvlSlap7re",
    "https://vimeo.com/56015672",
    "https://soundcloud.com/ethmusic/lostin-powers-she-so-heavy",
    "https://www.twitch.tv/videos/6528877",
    "http://127.0.0.1:8080/feed/?n=50&size=20480",
    "http://127.0.0.1:8080/clip/1.mp4?size=20480",
    "https://example.com/some/page\nwith a newline",
    "https://例え.jp/ビデオ",
    "not a url at all",
]


def yt_dlp_s_own(ydl: YoutubeDL, url: str) -> str | None:
    """The key yt-dlp's extract_info picks for ``url`` without one: the first extractor of its table that suits."""
    return next((key for key, extractor in ydl._ies.items() if extractor.suitable(url)), None)


@pytest.fixture(scope="module")
def keys() -> Iterator[ExtractorKeys]:
    child = ExtractorKeys(URLS[:1])
    yield child
    child.close()


def test_the_child_answers_what_yt_dlp_itself_picks(keys: ExtractorKeys) -> None:
    ydl = YoutubeDL({"quiet": True})
    assert keys.matches(ydl._ies)
    answers = {url: keys.key(url) for url in URLS}
    assert answers == {url: yt_dlp_s_own(ydl, url) for url in URLS}
    assert answers[URLS[0]] == "Youtube" and answers[URLS[6]] == "Generic"  # the table is not all one answer


def test_a_worker_whose_table_differs_asks_nothing(keys: ExtractorKeys) -> None:
    assert not keys.matches(YoutubeDL({"quiet": True, "allowed_extractors": ["generic", "youtube"]})._ies)


def test_without_the_child_there_is_no_answer_and_no_process_left() -> None:
    child = ExtractorKeys(URLS[:1])
    pid = child.pid
    assert child.key(URLS[0]) == "Youtube"
    os.kill(pid, 9)
    assert child.key(URLS[0]) is None  # yt-dlp then looks the URL up itself
    assert child.key(URLS[1]) is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped
    child.close()


def test_no_child_for_another_engine() -> None:
    others = ['{"spec": {"engine": "gallery-dl", "urls": ["https://a/"]}}', '{"spec": {"urls": ["https://a/"]}}', "{"]
    for raw in others:
        child = ExtractorKeys.from_config(raw)
        assert child.pid == 0 and child.key("https://www.youtube.com/watch?v=BaW_jenozKc") is None


@pytest.mark.parametrize(
    "attempt",
    [
        "socket.create_connection(('127.0.0.1', PORT), timeout=5)",
        "socket.socket()",
        "subprocess.run(['true'])",
        "os.system('true')",
        "os.execv('/bin/true', ['true'])",
        "os.posix_spawn('/bin/true', ['true'], {})",
        "os.fork()",
        "open(TARGET, 'w')",
        "open(TARGET, 'a')",
        "open(TARGET, 'r+')",
        "os.open(TARGET, os.O_WRONLY | os.O_CREAT)",
        "pathlib.Path(TARGET).write_text('x')",
        "ctypes.CDLL(None)",
    ],
)
def test_the_child_can_open_no_socket_start_no_program_and_write_no_file(tmp_path: Path, attempt: str) -> None:
    """What the child runs under (``confine``), in a process of its own: each attempt is refused, reading is not."""
    listener = socket.create_server(("127.0.0.1", 0))
    target = tmp_path / "written"
    target.write_text("before")
    script = textwrap.dedent(f"""
        import ctypes, os, pathlib, socket, subprocess
        from gallery_operator.worker.extractor_keys import confine
        PORT, TARGET = {listener.getsockname()[1]}, {str(target)!r}
        confine()
        assert open(TARGET).read() == "before"
        try:
            {attempt}
        except PermissionError as error:
            print("refused:", error)
        else:
            print("allowed")
    """)
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    finally:
        listener.close()
    assert result.stdout.startswith("refused:"), (result.stdout, result.stderr[-2000:])
    assert target.read_text() == "before"
