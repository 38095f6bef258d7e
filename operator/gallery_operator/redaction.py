"""One redactor for every string that leaves a worker or the operator (pure).

Two kinds of rules:
- The run's own secret values (cookie values, the password, site tokens, S3 keys), which only the worker knows, in
  every form a URL, a header or a message carries them by ordinary means: raw; percent-encoded once or twice, in
  either case of the hex digits, with `+` for a space, character by character (so `quote`, `quote_plus` and
  partly encoded forms are all one pattern); JSON `\\uXXXX` and HTML escapes; base64 (standard and URL-safe, with
  and without padding) whole, inside an HTTP Basic credential `base64(user:password)`, and at each of the three
  alignments a value has when it sits inside a longer base64 text. Letters match in either case (a value in a host
  name comes back in lower case); base64 forms match exactly.
- Credentials recognisable by their shape, whatever their value, which the operator applies too (it never reads
  Secrets, so it knows no values): the value of a URL parameter named like a credential (`access_token`, `api_key`,
  `sig`, anything ending in `_token`, `_secret`, `_password`, `_signature` ...; percent-encoded inside another URL
  too), the password of a URL's user info, `Bearer` and `Basic` credentials, and JSON web tokens.

A bare `key` or `id` parameter is not on the list: sites use those names for what an item is. For the same reason an
item's source URL, which is its identity in the catalogue (two items never share a path unless their source URLs
are the same), loses only the secret values, not credential-shaped parameters: `download?token=a` and `?token=b`
are often two files. The shapes are removed from everything else, and from the catalogue sample and failures in a
report; the tenant's own keys are removed by value wherever they appear.

A site that was sent a secret can always write it back in a form of its own making (reversed, enciphered): no
redactor recognises every transformation. What this one removes is every encoding that carries a value by
accident; that a credential is only sent to the site it is for is the other half (docs/security.md, 6.).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
"""Shorter values (`0`, `yes`) are not worth hiding and would mangle ordinary text."""
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
"""Keys of engine metadata that hold request credentials: dropped wherever they appear."""
CREDENTIAL_PARAMETERS = (
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "oauth_token",
    "oauth_signature",
    "session_token",
    "sessionid",
    "session_id",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "api_secret",
    "client_secret",
    "secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "jwt",
)
"""URL parameter names whose values are credentials, whoever issued them (compared without regard to case)."""

_SEPARATOR = r"(?:[?&;#]|%3[Ff]|%26|%23|%3[Bb])"
_EQUALS = r"(?:=|%3[Dd])"
_NAME = "|".join(re.escape(name) for name in CREDENTIAL_PARAMETERS)
_PARAMETER = re.compile(
    # the value of a URL parameter named like a credential (percent-encoded inside another URL too)
    rf"({_SEPARATOR}(?:{_NAME}|[\w.-]*[_-](?:token|secret|password|signature)){_EQUALS})"
    r"(?:(?!%26|%23)[^&#;\s\"'<>\\])+",
    re.IGNORECASE,
)
_USER_INFO = re.compile(r"((?://|%2F%2F)[^/\s:@?#]*(?::|%3A))[^/\s@?#]+(@|%40)", re.IGNORECASE)
_SCHEME_CREDENTIAL = re.compile(
    # an HTTP credential has a digit or a symbol in it: "basic information" is none
    r"(\b(?P<scheme>bearer|basic)(?:\s+|%20|\+))(?=[A-Za-z._~-]*[0-9+/=])(?P<credential>[A-Za-z0-9._~+/=-]{8,})",
    re.IGNORECASE,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_WEB_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def _shapes(value: str) -> str:
    """``value`` without credential-shaped text. Each pattern runs only on text holding what it needs (a regular
    expression costs microseconds per short string; most strings of metadata hold none of these)."""
    if "=" in value or "%3" in value:
        value = _PARAMETER.sub(lambda m: m.group(1) + REDACTED, value)
    if "@" in value or "%40" in value:
        value = _USER_INFO.sub(lambda m: m.group(1) + REDACTED + m.group(2), value)
    if "asic" in value or "earer" in value or "ASIC" in value or "EARER" in value:
        value = _SCHEME_CREDENTIAL.sub(_scheme_credential, value)
    if "eyJ" in value:
        value = _JSON_WEB_TOKEN.sub(REDACTED, value)
    return value


def _scheme_credential(match: re.Match[str]) -> str:
    """A Bearer token of 16 characters or more, or a Basic credential that is base64 of `user:password`, redacted;
    anything else (a title "Basic 2024-01-01") as it was."""
    credential = match.group("credential")
    if match.group("scheme").lower() == "bearer":
        holds = len(credential) >= 16
    else:
        try:
            holds = b":" in base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True)
        except ValueError:
            holds = False
    return match.group(1) + REDACTED if holds else match.group(0)


Model = TypeVar("Model", bound=BaseModel)


def _hex_escape(byte: int) -> str:
    """`%HH` for one byte, either case of the hex digits, or `%25HH` (encoded twice)."""
    digits = "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02x}")
    return f"%(?:25)?{digits}"


def _character(char: str) -> str:
    """Every way one character of a secret may be written in a URL, JSON or HTML, in either case (host names are
    written in lower case, and some servers fold paths)."""
    cases = {char, char.lower(), char.upper()} if len(char.lower()) == len(char.upper()) == 1 else {char}
    ways = [re.escape(c) for c in sorted(cases)]
    ways += ["".join(_hex_escape(b) for b in c.encode()) for c in sorted(cases)]
    if char == " ":
        ways.append(r"\+")
    if ord(char) < 0x20 or ord(char) > 0x7E or char in '"\\/':
        ways.append(re.escape(json.dumps(char)[1:-1]))
        ways.append(rf"\\u{ord(char):04x}" if ord(char) < 0x10000 else re.escape(json.dumps(char)[1:-1]))
    escaped = html.escape(char)
    if escaped != char:
        ways.append(re.escape(escaped))
    ways.append(f"&#0*{ord(char)};|&#[xX]0*{ord(char):x};")
    return "(?:" + "|".join(ways) + ")"


def _base64_forms(raw: bytes) -> set[str]:
    """Base64 of ``raw``: whole (padded and not) and the part that does not depend on its neighbours when it sits at
    byte offset 0, 1 or 2 of a longer text; each in the standard and the URL-safe alphabet."""
    forms = {base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("=")}
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw + bytes(2)).decode()
        first = -(-8 * offset // 6)  # the first character made only of the value's bits
        last = 8 * (offset + len(raw)) // 6  # one past the last such character
        forms.add(encoded[first:last])
    return forms | {form.replace("+", "-").replace("/", "_") for form in forms}


MAX_KNOWN_KEYS = 4096
MAX_KNOWN_KEY_LENGTH = 64
"""Metadata keys whose redacted form a Redactor remembers, and their longest: a site's own keys are few and short,
a hostile site's need be neither (a megabyte each would otherwise stay for the run)."""
MAX_DEPTH = 64
"""Levels of lists and mappings a cleaned value keeps; a deeper one becomes TOO_DEEP. A site's JSON may nest up to the
interpreter's recursion limit, and a walk that deep from inside an engine's stack raised RecursionError (the item
failed); no metadata a site means to give nests anywhere near this."""
TOO_DEEP = "\u2026"
_SCALARS = frozenset({int, float, bool, type(None)})
"""Types whose values hold no text (checked by exact type first: most metadata values are of these or str)."""
_NUMBERS = (bool, int, float)
_SEQUENCES = (list, tuple)
_NESTED = (dict, list, tuple)


class Redactor:
    """Replaces the run's secret values (in every form) and credential-shaped text with REDACTED."""

    def __init__(self, secrets: Iterable[str | None] = (), logins: Iterable[tuple[str, str]] = ()) -> None:
        """``secrets``: values never to show; ``logins``: (user, password) pairs, whose HTTP Basic form is hidden
        whole (the user alone is no secret and stays)."""
        values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        literal: set[str] = set()
        for value in values:
            literal |= _base64_forms(value.encode())
        for user, password in logins:
            if user and password:
                whole = base64.b64encode(f"{user}:{password}".encode()).decode()
                literal |= {whole, whole.rstrip("=")}
        literal = {form for form in literal if len(form) >= MIN_SECRET_LENGTH}
        patterns = [re.escape(form) for form in sorted(literal, key=len, reverse=True)]
        patterns += ["".join(_character(c) for c in value) for value in values]
        self.secrets = values
        self._values = re.compile("|".join(patterns)) if patterns else None
        self._keys: dict[str, str | None] = {}

    def values(self, value: str) -> str:
        """``value`` without the secret values; credential shapes stay (what an item's identity and names keep).
        A lone surrogate (JSON's escapes allow one, UTF-8 has no form for it) becomes U+FFFD: names, records and
        reports are UTF-8, and a site's "\\ud800" in a title failed its item."""
        if not value.isascii():
            value = _SURROGATE.sub("\ufffd", value)
        return self._values.sub(REDACTED, value) if self._values is not None else value

    def text(self, value: str) -> str:
        """``value`` without the secret values and without credential-shaped text."""
        return _shapes(self.values(value))

    def clean(self, value: Any, shapes: bool = True, depth: int = MAX_DEPTH) -> Any:
        """A JSON-like value with every string redacted and the keys that hold request credentials dropped. Without
        ``shapes``, only the secret values go (for what names files: a shape may match an ordinary name)."""
        kind = type(value)
        if kind is str or isinstance(value, str):
            return self.text(value) if shapes else self.values(value)
        if kind in _SCALARS:
            return value  # the usual metadata values: nothing to look into
        if depth == 0 and isinstance(value, _NESTED):
            return TOO_DEEP
        if isinstance(value, dict):
            return {
                self.clean(str(k), shapes): self.clean(v, shapes, depth - 1)
                for k, v in value.items()
                if str(k).lower() not in CREDENTIAL_KEYS
            }
        if isinstance(value, _SEQUENCES):
            return [self.clean(v, shapes, depth - 1) for v in value]
        return value

    def _key(self, key: Any) -> str | None:
        """A metadata key as ``text`` gives it, or None for a key that holds request credentials (dropped);
        remembered: the items of a run share their few keys."""
        text = str(key)
        if text in self._keys:
            return self._keys[text]
        known = None if text.lower() in CREDENTIAL_KEYS else self.text(text)
        if len(self._keys) < MAX_KNOWN_KEYS and len(text) <= MAX_KNOWN_KEY_LENGTH:
            self._keys[text] = known
        return known

    def clean_json(self, value: Any, depth: int = MAX_DEPTH) -> Any:
        """``clean`` for a value JSON may not hold whole (an item's metadata): what JSON has no form for (a date, a
        set) becomes its text, redacted like any other string, in the same walk."""
        kind = type(value)
        if kind is str or isinstance(value, str):
            return self.text(value)
        if kind in _SCALARS or isinstance(value, _NUMBERS):
            return value
        if depth == 0 and isinstance(value, _NESTED):
            return TOO_DEEP
        if isinstance(value, dict):
            return {key: self.clean_json(v, depth - 1) for k, v in value.items() if (key := self._key(k)) is not None}
        if isinstance(value, _SEQUENCES):
            return [self.clean_json(v, depth - 1) for v in value]
        return self.text(str(value))

    def model(self, model: Model) -> Model:
        """A copy of a pydantic model with every string redacted. Should a longer marker break a length limit of the
        model, every string is cut to its former length (a cut can only shorten a marker, never uncover a secret)."""

        def redacted(value: Any, cut: bool) -> Any:
            if isinstance(value, str):
                return self.text(value)[: len(value) if cut else None]
            if isinstance(value, dict):
                return {k: redacted(v, cut) for k, v in value.items()}
            if isinstance(value, list):
                return [redacted(v, cut) for v in value]
            return value

        fields = model.model_dump(by_alias=True)
        try:
            return type(model).model_validate(redacted(fields, cut=False))
        except ValidationError:
            return type(model).model_validate(redacted(fields, cut=True))


PATTERNS = Redactor()
"""The rules that need no secret value: what the operator applies to every report it takes."""
