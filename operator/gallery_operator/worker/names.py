"""File names a filesystem and a person can take (pure): no control or direction-changing characters, and no more
bytes than a filesystem allows, keeping the extension and a short stable hash of the item's URL when shortened."""

from __future__ import annotations

import hashlib
import unicodedata

MAX_NAME_BYTES = 200
"""Room under the usual 255-byte limit for what engines and the worker add (`.part`, `.info.json`, `-<hash>`)."""
MAX_EXTENSION_BYTES = 16
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Control characters, format characters (bidirectional overrides and isolates, zero-width joiners and marks) and
line or paragraph separators: a name shown as `photo.jpg` must be `photo.jpg`."""


def url_hash(source_url: str) -> str:
    """Eight hex digits that stay the same for the same item across runs."""
    return hashlib.sha256(source_url.encode()).hexdigest()[:8]


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` within ``max_bytes`` of UTF-8, never splitting a character."""
    return text.encode()[:max_bytes].decode("utf-8", "ignore")


def safe_name(name: str, source_url: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """``name`` without characters that hide what it is, shortened to ``max_bytes`` (extension and hash kept)."""
    if name.isascii() and name.isprintable():
        cleaned = name  # the usual name: no character of a removed category, and NFC already
    else:
        cleaned = "".join(
            c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c) not in _REMOVED_CATEGORIES
        )
    cleaned = cleaned.strip() or "item"
    if len(cleaned.encode()) <= max_bytes:
        return cleaned
    stem, dot, extension = cleaned.rpartition(".")
    if not dot or not stem or len(extension.encode()) > MAX_EXTENSION_BYTES:
        stem, extension = cleaned, ""
    ending = f"-{url_hash(source_url)}" + (f".{extension}" if extension else "")
    return _cut(stem, max(1, max_bytes - len(ending.encode()))) + ending
