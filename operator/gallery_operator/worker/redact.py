"""Keeps credentials out of what a worker stores: metadata sidecars and the catalogue's metadata (pure).

Engines put request details into their metadata (yt-dlp's info dict carries the cookies and headers it sent), and a
site can echo a credential back into a title or a description. Two rules cover both: keys that hold request
credentials are dropped wherever they appear, and every string that contains one of the run's secret values
(cookie values, the password, site tokens) has it replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"
CREDENTIAL_KEYS = frozenset(
    {
        "cookies",
        "cookie",
        "set-cookie",
        "http_headers",
        "authorization",
        "proxy-authorization",
        "password",
        "videopassword",
        "ap_password",
        "_cookies",
        "_http_headers",
    }
)
MIN_SECRET_LENGTH = 4
"""Shorter values (`0`, `yes`) are not worth hiding and would mangle ordinary text."""


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


class Redactor:
    """Cleans metadata of the keys and values that would reveal this run's credentials."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        self.secrets = sorted(unique, key=len, reverse=True)  # a longer secret first, when one contains another

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.clean(v) for k, v in value.items() if str(k).lower() not in CREDENTIAL_KEYS}
        if isinstance(value, list | tuple):
            return [self.clean(v) for v in value]
        return value
