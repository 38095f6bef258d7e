"""yt-dlp's extractor lookup, answered by a forked child for the life of the run (engine yt-dlp).

For a URL without an extractor key (the spec's URL, and every entry of a feed or a generic page) yt-dlp tries its
~1,800 extractors' URL patterns in order, compiling each on first use: about 0.35 s of CPU before the first request,
then about 3 ms a URL, all under the one interpreter lock that the playlist's pool threads share. The worker imports
yt-dlp first (which it would do later anyway), then forks a child before its other imports and before it has any
thread (as worker/lookahead.py does for gallery-dl); the child, sharing that import, compiles the patterns on the
pod's other core while the worker starts, and answers each URL with the key of the first extractor that matches it.
The worker hands that key to yt-dlp (``extract_info(url, ie_key=...)``), which then checks only that extractor's
pattern: what yt-dlp would have picked itself, as both walk the same table in the same order (the child sends a
digest of its table's keys first; a worker whose table differs asks nothing).

The child only computes: before it does anything its standard streams are pointed at /dev/null, the kernel's
limits allow it no new process and no byte written to a file, and an audit hook refuses it every socket, every
program start, every file written or changed and every signal. Without an answer (no child, a child that died or
did not answer in time) the worker lets yt-dlp look the URL up itself, as before.

Only the standard library may be imported at module level here: this runs before everything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

ANSWER_SECONDS = 60.0
"""How long the worker waits for one answer (the first includes the child's compiling of yt-dlp's patterns)."""
QUESTION_BYTES = 8192
"""The longest question asked (a JSON-quoted URL, far inside a pipe's buffer): longer URLs yt-dlp looks up itself."""
REFUSED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.system",
    "os.fork",
    "os.forkpty",
    "pty.",
    "ctypes.",
    # a file or folder changed without an open for writing
    "os.truncate",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.lchmod",
    "os.chown",
    "os.lchown",
    "os.chflags",
    "os.lchflags",
    "os.utime",
    "os.setxattr",
    "os.removexattr",
    "shutil.",
    # a signal to the worker or anything else
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
)


def table_digest(keys: Iterable[str]) -> str:
    """A digest of an extractor table's keys, in order."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def confine() -> None:
    """For the rest of this process: no socket, no program, no file written or changed, no signal sent (the lookup
    child). Below Python, the kernel's limits: no new process (RLIMIT_NPROC 0, for a user without the capability
    to exceed it, as the worker's pod runs) and no byte written to any file (RLIMIT_FSIZE 0; pipes are not files)."""
    import _posixsubprocess  # noqa: PLC0415 - starts a program without an audit event (multiprocessing's spawn)
    import resource  # noqa: PLC0415

    for limit in (resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(limit, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of ending us

    def refuse(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith(REFUSED_EVENTS):
            raise PermissionError(f"the extractor lookup child may not {event}")
        if event == "open" and not isinstance(args[0], int) and _writes(args):  # its own pipe's end stays usable
            raise PermissionError(f"the extractor lookup child may not write {args[0]!r}")

    def no_program(*_: Any) -> int:
        raise PermissionError("the extractor lookup child may not start a program")

    _posixsubprocess.fork_exec = no_program
    sys.addaudithook(refuse)


def _detach_output() -> None:
    """The child's standard streams lead nowhere: what it prints would reach the pod's log unredacted (it is forked
    before the worker's redaction of its output is installed)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _writes(args: tuple[Any, ...]) -> bool:
    """Whether an ``open`` audit event's (path, mode, flags) open the path for writing."""
    mode, flags = (*args[1:3], None, None)[:2]
    if isinstance(mode, str) and mode.strip("rbt"):
        return True
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))


class ExtractorKeys:
    """The worker's side: ``key(url)`` is the first matching extractor's key, or None (yt-dlp looks it up)."""

    def __init__(self, urls: list[str]) -> None:
        self.pid = 0
        self.lock = threading.Lock()
        self.digest: str | None = None
        self.to_child: Any = None
        self.from_child: Any = None
        if not urls:
            return
        import yt_dlp  # noqa: F401, PLC0415 - the worker's own import, before the fork: the child shares it

        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: answer until the worker closes its end, then leave without exit handlers
            os.close(down_write)
            os.close(up_read)
            code = 0
            try:
                _serve(down_read, up_write, urls)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(down_read)
        os.close(up_write)
        self.pid = pid
        self.to_child = os.fdopen(down_write, "w", buffering=1)
        self.from_child = os.fdopen(up_read, "rb", buffering=0)

    @classmethod
    def from_config(cls, raw: str | None) -> ExtractorKeys:
        """From the worker's raw JSON config: a child for a yt-dlp run, none otherwise."""
        try:
            spec = json.loads(raw or "{}").get("spec", {})
            urls = [str(u) for u in spec.get("urls", [])] if spec.get("engine") == "yt-dlp" else []
        except (ValueError, AttributeError):
            urls = []
        return cls(urls)

    def matches(self, keys: Iterable[str]) -> bool:
        """Whether the child walks the same table as a YoutubeDL whose extractor keys are ``keys`` (in order)."""
        with self.lock:
            digest = self._digest()
        return bool(digest) and digest == table_digest(keys)

    def _digest(self) -> str:
        """The digest of the child's table, its first line ("" without one)."""
        if self.digest is None:
            self.digest = self._read_line() or ""
        return self.digest

    def key(self, url: str) -> str | None:
        """The key of the first extractor whose pattern matches ``url``, or None (no child, no answer, no match, or a
        URL too long to ask about: a question must fit the pipe, so that writing it never waits on the child)."""
        question = json.dumps(url) + "\n"
        if len(question) > QUESTION_BYTES:
            return None
        with self.lock:
            if not self._digest() or self.to_child is None:
                return None
            try:
                self.to_child.write(question)
                answer = self._read_line()
            except OSError:
                self._stop()
                return None
            except BaseException:  # an answer left in the pipe would be taken as the next URL's
                self._stop()
                raise
        try:
            found = json.loads(answer) if answer is not None else None
        except ValueError:
            found = None
        return found if isinstance(found, str) else None

    def _read_line(self) -> str | None:
        """One line from the child within ANSWER_SECONDS; None (and the child stopped) without one."""
        if self.from_child is None:
            return None
        deadline = time.monotonic() + ANSWER_SECONDS
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.from_child], [], [], remaining)[0]:
                self._stop()
                return None
            byte = self.from_child.read(1)
            if not byte:
                self._stop()
                return None
            line += byte
        return line.decode().strip()

    def _stop(self) -> None:
        """No more questions: the child is ended and reaped."""
        for stream in (self.to_child, self.from_child):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self.to_child = self.from_child = None
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0

    def close(self) -> None:
        with self.lock:
            self._stop()


def _serve(down: int, up: int, urls: list[str]) -> None:
    _detach_output()
    confine()
    from yt_dlp import YoutubeDL  # noqa: PLC0415 - imported by the worker before the fork

    table = YoutubeDL({"quiet": True, "no_warnings": True})._ies
    with os.fdopen(down, "r") as questions, os.fdopen(up, "w", buffering=1) as answers:
        answers.write(table_digest(table) + "\n")
        for url in urls:  # compiled now, while the worker starts
            _first(table, url)
        for question in questions:
            answers.write(json.dumps(_first(table, str(json.loads(question)))) + "\n")


def _first(table: dict[str, Any], url: str) -> str | None:
    return next((key for key, extractor in table.items() if extractor.suitable(url)), None)
