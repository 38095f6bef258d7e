"""The only programs a worker runs are ffmpeg and ffprobe, on local files: never another program, never a URL.

yt-dlp hands a stream to ffmpeg when its own downloaders cannot take it (live HLS and DASH, playlists with features
its native HLS downloader lacks, sections of a video); ffmpeg then resolves names, follows redirects and connects
by itself, where the egress guard (which sits in this process's name resolution) never sees it. Engines can also be
configured to run commands (gallery-dl's exec post-processor, yt-dlp's exec). A Python audit hook sees every
program this process starts, from any library: it lets ffmpeg and ffprobe start only when no argument names a
network resource (yt-dlp passes local files as ``file:PATH``), and refuses everything else. ffmpeg itself refuses
network segments inside a local file that pretends to be a playlist.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

PROGRAMS = frozenset({"ffmpeg", "ffprobe"})
# A URL or an ffmpeg protocol prefix (`http:`, `tcp:`, `concat:`, `subfile:`...), except local `file:` paths.
_PROTOCOL = re.compile(r"^(?!file:)[A-Za-z][A-Za-z0-9+.-]*:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn"})
_installed = False


class ProgramRefused(PermissionError):
    """A program the worker does not run; the message starts with 'blocked' for the failure classifier."""


def _text(value: Any) -> str:
    return os.fsdecode(value) if isinstance(value, bytes | os.PathLike) else str(value)


def refusal(program: Any, argv: Any) -> str | None:
    """Why the worker refuses to start ``program`` with ``argv``, or None when it may."""
    if isinstance(argv, str | bytes) or argv is None:
        return "commands through a shell are not run"
    arguments = [_text(a) for a in argv]
    name = Path(_text(program) if program is not None else (arguments[0] if arguments else "")).name
    if name not in PROGRAMS:
        return f"{name or 'a program'} is not a program the worker runs"
    # A URL is named first when there is one (a header value such as `Referer: ...` looks like a protocol too).
    flagged = sorted((a for a in arguments[1:] if _PROTOCOL.match(a)), key=lambda a: not _URL.match(a))
    if flagged:
        return f"{name} may not open {flagged[0][:200]!r}: no network URL reaches an external program"
    return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "os.system":
        raise ProgramRefused("blocked: commands through a shell are not run")
    if event in _EVENTS:
        why = refusal(args[0], args[1])
        if why is not None:
            raise ProgramRefused(f"blocked: {why}")


def install() -> None:
    """From now on, for the life of this process (an audit hook cannot be removed)."""
    global _installed  # noqa: PLW0603 - one hook per process
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True
