"""Finds a secret value in text in any encoding a URL, a header or a message may carry it (for tests).

Written independently of the worker's redactor: it decodes the text (percent-encoding once and twice, `+` as a
space, HTML and JSON escapes, base64 runs at every alignment) and looks for the raw value, rather than encoding the
secret in a list of known ways.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import urllib.parse
from collections.abc import Iterable

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{6,}={0,2}")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _decodings(text: str) -> set[str]:
    found = {text}
    for _ in range(2):
        for form in list(found):
            found |= {
                urllib.parse.unquote(form),
                urllib.parse.unquote_plus(form),
                html.unescape(form),
                _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), form),
            }
    return found


def _base64_payloads(text: str) -> Iterable[bytes]:
    for run in _BASE64_RUN.findall(text):
        normal = run.replace("-", "+").replace("_", "/")
        for start in range(4):
            part = normal[start:].rstrip("=")
            if len(part) % 4 == 1:
                part = part[:-1]
            part += "=" * (-len(part) % 4)
            try:
                yield base64.b64decode(part, validate=True)
            except (binascii.Error, ValueError):
                continue


def leaked(text: str, secret: str) -> bool:
    """Whether ``secret`` can be read from ``text``."""
    raw = secret.encode()
    for form in _decodings(text):
        if secret in form:
            return True
        if any(raw in payload for payload in _base64_payloads(form)):
            return True
    return False


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets that ``text`` gives away."""
    return [secret for secret in secrets if leaked(text, secret)]
