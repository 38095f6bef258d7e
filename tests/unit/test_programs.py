"""The grammar of the ffmpeg and ffprobe command lines the worker admits, and where the protocol whitelist goes.
(The wall itself, with the real ffmpeg and every other door to a program: tests/component/test_worker_programs.py.)"""

from __future__ import annotations

import pytest

from gallery_operator.worker.programs import WHITELIST, deno_refusal, parse, with_protocol_whitelist

# Command lines yt-dlp builds (seen in real runs and in its FFmpegPostProcessor), program name first.
YT_DLP_SHAPES = [
    ["ffmpeg", "-bsfs"],
    ["ffprobe", "-bsfs"],
    ["ffprobe", "-hide_banner", "-show_format", "-show_streams", "-print_format", "json", "file:/s/a [b].mp4"],
    ["ffprobe", "-show_streams", "file:/s/a.mp4"],
    [
        *("ffmpeg", "-y", "-loglevel", "repeat+info", "-i", "file:/s/a.mp4", "-map", "0", "-dn", "-ignore_unknown"),
        *("-c", "copy", "-f", "mp4", "-movflags", "+faststart", "file:/s/a.temp.mp4"),
    ],
    [
        *("ffmpeg", "-y", "-loglevel", "repeat+info", "-i", "file:/s/v.mp4", "-i", "file:/s/a.m4a", "-c", "copy"),
        *("-map", "0:v:0", "-map", "1:a:0", "-movflags", "+faststart", "file:/s/out.mp4"),
    ],
    ["ffmpeg", "-y", "-i", "file:/s/a.mp4", "-map", "0", "-c", "copy", "-f", "mp4", "-bsf:a", "aac_adtstoasc", "file:"],
    ["ffmpeg", "-y", "-i", "file:/s/a.mp4", "-vf", "setpts=PTS-STARTPTS", "-map", "0", "-ss", "1.5", "file:o.mp4"],
    ["ffmpeg", "-y", "-i", "file:/s/a.mp4", "-c", "copy", "-aspect", "1.777778", "file:o.mp4"],
    ["ffmpeg", "-y", "-hide_banner", "-nostdin", "-f", "concat", "-safe", "0", "-i", "file:/s/o.concat", "file:o"],
    ["ffmpeg", "-y", "-i", "file:/s/a", "-metadata", "title=a -i http://x", "-metadata:s:1", "language=en", "file:o"],
]


@pytest.mark.parametrize("argv", YT_DLP_SHAPES)
def test_the_shapes_yt_dlp_builds_parse(argv: list[str]) -> None:
    shape = parse(argv[0], argv[1:])
    assert all(file.startswith("file:") for file in shape.files)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["ffmpeg", "-f", "lavfi", "-i", "amovie=x"], "-f may not be 'lavfi'"),
        (["ffmpeg", "-i", "file:a", "-f", "tee", "[f=mp4]file:b"], "-f may not be 'tee'"),
        (["ffmpeg", "-i", "file:a", "-vf", "movie=http\\://x/y", "file:b"], "-vf may not be"),
        (["ffmpeg", "-i", "file:a", "-filter_complex", "amovie=x", "file:b"], "'-filter_complex' is not one"),
        (["ffmpeg", "-i", "file:a", "-lavfi", "amovie=x", "file:b"], "'-lavfi' is not one"),
        (["ffmpeg", "-protocol_whitelist", "subfile,http,tcp", "-i", "file:a"], "-protocol_whitelist may not be"),
        (["ffmpeg", "-headers", "X: y", "-i", "file:a"], "'-headers' is not one"),
        (["ffmpeg", "-i"], "-i without a value"),
        (["ffmpeg", "-y", "-loglevel"], "-loglevel may not be ''"),
        (["ffmpeg", "-dump_attachment:t", "", "-i", "file:a"], "is not one"),
    ],
)
def test_anything_outside_the_grammar_is_refused(argv: list[str], words: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse(argv[0], argv[1:])
    assert words in str(refused.value)


def test_files_are_every_input_attachment_and_output() -> None:
    argv = ["-y", "-i", "file:a", "-i", "subfile,,:http://x", "-attach", "file:i.json", "-c", "copy", "http://o"]
    assert parse("ffmpeg", argv).files == ("file:a", "subfile,,:http://x", "file:i.json", "http://o")


def test_the_whitelist_goes_before_every_file_once() -> None:
    argv = ["ffmpeg", "-y", "-f", "concat", "-safe", "0", "-i", "file:a", "-i", "file:b", "-c", "copy", "file:o"]
    forced = with_protocol_whitelist(argv)
    assert forced == [
        *("ffmpeg", "-y", "-f", "concat", "-safe", "0", *WHITELIST, "-i", "file:a", *WHITELIST, "-i", "file:b"),
        *("-c", "copy", *WHITELIST, "file:o"),
    ]
    assert with_protocol_whitelist(forced) == forced
    assert with_protocol_whitelist(["ffprobe", "-show_streams", "file:a"]) == [
        *("ffprobe", "-show_streams", *WHITELIST, "file:a")
    ]


def test_the_whitelist_also_goes_where_the_grammar_does_not_reach() -> None:
    """Outside the grammar each option is taken to have one value and anything else is a file: the whitelist then
    comes before each of them too (the e2e test runs these against the real ffmpeg)."""
    argv = ["ffmpeg", "-headers", "X: y", "-i", "http://x", "-f", "tee", "[f=mp4]http://y"]
    assert with_protocol_whitelist(argv) == [
        *("ffmpeg", "-headers", "X: y", *WHITELIST, "-i", "http://x", "-f", "tee", *WHITELIST, "[f=mp4]http://y")
    ]


YT_DLP_DENO = [
    *("run", "--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock", "--node-modules-dir=none"),
    "--no-config",
]


@pytest.mark.parametrize(
    "arguments",
    [["--version"], [*YT_DLP_DENO, "--no-npm", "--cached-only", "-"], [*YT_DLP_DENO, "--cached-only", "-"]],
)
def test_deno_in_the_challenge_providers_shapes_may_run(arguments: list[str]) -> None:
    assert deno_refusal(arguments) is None


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ([*YT_DLP_DENO, "--allow-net", "-"], "'--allow-net' is not one"),
        ([*YT_DLP_DENO, "-A", "-"], "'-A' is not one"),
        ([*YT_DLP_DENO, "script.js"], "a script on stdin"),
        ([*YT_DLP_DENO[:4], *YT_DLP_DENO[5:], "-"], "only with --no-remote"),
        (["eval", "1"], "a script on stdin"),
        ([], "a script on stdin"),
    ],
)
def test_deno_in_any_other_shape_is_refused(arguments: list[str], words: str) -> None:
    why = deno_refusal(arguments)
    assert why is not None and words in why
