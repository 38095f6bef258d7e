"""What the worker can do on real sites: engine versions, their optional dependencies, the programs it may start
(``python -m gallery_operator.worker --version`` prints it as JSON)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import subprocess
from typing import Any

from gallery_operator.worker import programs
from gallery_operator.worker.inputs import Inputs

EXTRAS = {
    "brotli": ("brotli", "Brotli-encoded responses (Content-Encoding: br)"),
    "pycryptodomex": ("Cryptodome", "AES-128 encrypted HLS in yt-dlp's own downloader"),
    "mutagen": ("mutagen", "metadata and thumbnail embedding"),
    "websockets": ("websockets", "yt-dlp's websocket-based extractors"),
    "yt-dlp-ejs": ("yt_dlp_ejs", "the scripts that solve YouTube's JavaScript challenges"),
    "curl-cffi": ("curl_cffi", "impersonation (left out: libcurl connects past the egress guard)"),
}
"""Distribution -> (module, what it gives)."""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _program_version(path: str, flag: str) -> str | None:
    """The first line a program prints for its version flag (through the program wall), or None."""
    try:
        done = subprocess.run([path, flag], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else None


def report(pod: Inputs) -> dict[str, Any]:
    """The capabilities of this worker, as found in this process (the program wall installed first)."""
    programs.install(pod.program_environment)
    extras = {
        distribution: {
            "version": _version(distribution),
            "available": importlib.util.find_spec(module) is not None,
            "for": purpose,
        }
        for distribution, (module, purpose) in EXTRAS.items()
    }
    found = programs.admitted()
    flags = {"ffmpeg": "-version", "ffprobe": "-version", "deno": "--version"}
    return {
        "python": platform.python_version(),
        "engines": {"gallery-dl": _version("gallery-dl"), "yt-dlp": _version("yt-dlp")},
        "extras": extras,
        "programs": {
            name: {"path": path, "version": _program_version(path, flags[name])} for name, path in found.items()
        },
        "javascriptChallenges": bool(extras["yt-dlp-ejs"]["available"]) and "deno" in found,
        "impersonation": False,
    }
