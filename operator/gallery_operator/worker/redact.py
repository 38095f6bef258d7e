"""The worker's redactor: the pod's secret values, and the redaction of everything the process logs or prints.

Every string that leaves the worker passes one Redactor (gallery_operator/redaction.py) that knows this pod's
secret values (worker/inputs.py read them): failures, catalogue records, sidecars, file names, reports and the
termination message (worker/run.py, worker/reporting.py) and, from here, every log record of any library (a filter on
the root logger's handlers, exceptions included) and whatever else reaches stdout or stderr (a line-buffered
redacting stream in front of each).
"""

from __future__ import annotations

import atexit
import io
import logging
import sys
import threading
from pathlib import Path
from typing import TextIO

from gallery_operator.redaction import Redactor
from gallery_operator.worker.inputs import Inputs

MAX_HELD = 64 * 1024
"""Characters of an unfinished line a redacting stream holds before it writes them anyway."""


def cookie_values(cookies_file: Path | None) -> list[str]:
    """The values of a Netscape cookies.txt file (its seventh column)."""
    if cookies_file is None or not cookies_file.is_file():
        return []
    values = []
    for line in cookies_file.read_text(errors="replace").splitlines():
        fields = line.removeprefix("#HttpOnly_").split("\t")
        if len(fields) == 7 and not line.startswith("# "):
            values.append(fields[6].strip())
    return values


def pod_redactor(pod: Inputs) -> Redactor:
    """What this pod must never show: its cookie values, password, site tokens and S3 keys."""
    login = (pod.username or "", pod.password or "")
    return Redactor([*cookie_values(pod.cookies_file), *pod.secret_values()], [login])


class RedactingFilter(logging.Filter):
    """Redacts a record's message, exception and stack in place, before any handler formats it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.text(record.stack_info)
        return True


class RedactingStream(io.TextIOBase):
    """A text stream that writes whole lines, redacted, to another (a secret split over two writes is still one
    line)."""

    def __init__(self, target: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self.target = target
        self.redactor = redactor
        self.held = ""
        self.lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            self.held += text
            if "\n" in self.held:
                lines, _, self.held = self.held.rpartition("\n")
                self.target.write(self.redactor.text(lines + "\n"))
            if len(self.held) > MAX_HELD:
                self.target.write(self.redactor.text(self.held))
                self.held = ""
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.target.flush()

    def drain(self) -> None:
        """Write what is held (at exit), then flush."""
        with self.lock:
            if self.held:
                self.target.write(self.redactor.text(self.held))
                self.held = ""
            self.target.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()


def redact_output(redactor: Redactor) -> None:
    """From now on, whatever this process logs or prints passes the redactor."""
    logging.captureWarnings(True)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            wrapped = RedactingStream(stream, redactor)
            setattr(sys, name, wrapped)
            atexit.register(wrapped.drain)
