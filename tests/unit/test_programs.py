"""The programs a worker may start: ffmpeg and ffprobe on local files, nothing else."""

from __future__ import annotations

import pytest

from gallery_operator.worker.programs import refusal


@pytest.mark.parametrize(
    ("program", "argv"),
    [
        (None, ["ffmpeg", "-version"]),
        (None, ["ffprobe", "-hide_banner", "-show_streams", "file:/tmp/a b.mp4"]),
        ("/usr/bin/ffmpeg", ["ffmpeg", "-y", "-i", "file:in.ts", "-map", "0:v", "-metadata", "comment=a:b", "file:o"]),
        (b"/usr/bin/ffmpeg", [b"ffmpeg", b"-ss", b"00:01:02", b"-i", b"file:x"]),
    ],
)
def test_ffmpeg_on_local_files_may_run(program: object, argv: list[object]) -> None:
    assert refusal(program, argv) is None


@pytest.mark.parametrize(
    ("program", "argv", "words"),
    [
        (None, ["ffmpeg", "-i", "https://example.org/live.m3u8", "file:o.mp4"], "'https://example.org/live.m3u8'"),
        (None, ["ffmpeg", "-i", "file:a", "http://169.254.169.254/put"], "no network URL"),
        (None, ["ffmpeg", "-i", "tcp:10.0.0.1:80"], "'tcp:10.0.0.1:80'"),
        (None, ["ffmpeg", "-i", "concat:file:a|http://x/b"], "concat:"),
        (None, ["sh", "-c", "id"], "sh is not a program the worker runs"),
        ("/bin/bash", ["ffmpeg", "-version"], "bash is not a program"),
        (None, ["curl", "http://x"], "curl is not a program"),
        (None, "ffmpeg -version", "through a shell"),
        (None, [], "is not a program"),
    ],
)
def test_everything_else_is_refused(program: object, argv: object, words: str) -> None:
    why = refusal(program, argv)
    assert why is not None and words in why
