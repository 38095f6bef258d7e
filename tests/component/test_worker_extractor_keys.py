"""yt-dlp's extractor lookup answered by a forked child (worker/extractor_keys.py): the key yt-dlp itself would pick
for each URL (real yt-dlp on both sides), nothing asked when the tables differ, no answer (and yt-dlp's own lookup)
once the child is gone, and a child that can open no socket, start no program and write no file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
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


def test_a_url_longer_than_a_question_is_not_asked_and_the_pipe_stays_in_step() -> None:
    """A site's entry URL larger than the pipe's buffer, while the child is not reading (stopped here): the worker
    does not write it (a blocked write held every pool thread behind the lock), yt-dlp looks it up itself, and the
    next question gets its own answer."""
    child = ExtractorKeys(URLS[:1])
    try:
        assert child.key(URLS[0]) == "Youtube"
        os.kill(child.pid, signal.SIGSTOP)
        answers: list[str | None] = []
        asking = threading.Thread(target=lambda: answers.append(child.key("https://x/" + "a" * 200_000)), daemon=True)
        asking.start()
        asking.join(30)  # a hang detector, not a speed check: the old code blocked here until the child read
        assert answers == [None]
        os.kill(child.pid, signal.SIGCONT)
        assert child.key(URLS[3]) == "Vimeo"
    finally:
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
        # found by a hostile review: doors without an open for writing, or without an audit event
        "multiprocessing.util.spawnv_passfds(b'/bin/sh', [b'sh', b'-c', b'echo x > ' + TARGET.encode() + b'.sh'], [])",
        "os.truncate(TARGET, 0)",
        "os.rename(TARGET, TARGET + '.moved')",
        "os.remove(TARGET)",
        "os.mkdir(TARGET + '.d')",
        "os.symlink(TARGET, TARGET + '.link')",
        "os.link(TARGET, TARGET + '.hard')",
        "os.chmod(TARGET, 0o777)",
        "os.utime(TARGET, (0, 0))",
        "shutil.rmtree(os.path.dirname(TARGET))",
        "os.kill(os.getppid(), 0)",
    ],
)
def test_the_child_can_open_no_socket_start_no_program_and_write_no_file(tmp_path: Path, attempt: str) -> None:
    """What the child runs under (``confine``), in a process of its own: each attempt is refused, reading is not."""
    listener = socket.create_server(("127.0.0.1", 0))
    target = tmp_path / "written"
    target.write_text("before")
    script = textwrap.dedent(f"""
        import ctypes, multiprocessing.util, os, pathlib, shutil, socket, subprocess
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
    assert [p.name for p in tmp_path.iterdir()] == ["written"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o777) and target.stat().st_mtime > 0


def test_the_child_writes_nowhere_and_may_start_no_process_below_python() -> None:
    """The running child's standard streams lead to /dev/null (it is forked before the worker's output is redacted),
    and the kernel holds its limits: no new process, no byte written to a file (read from /proc, as the kernel
    keeps them)."""
    child = ExtractorKeys(URLS[:1])
    try:
        assert child.key(URLS[0]) is not None  # it has started and confined itself
        for fd in (0, 1, 2):
            assert str(Path(f"/proc/{child.pid}/fd/{fd}").readlink()) == os.devnull
        limits = Path(f"/proc/{child.pid}/limits").read_text().splitlines()
        assert [line.split()[-3:-1] for line in limits if line.startswith(("Max processes", "Max file size"))] == [
            ["0", "0"],
            ["0", "0"],
        ]
    finally:
        child.close()
