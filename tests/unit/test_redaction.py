"""The redactor (pure): secret values in every ordinary encoding, and credential-shaped text without a known value."""

from __future__ import annotations

import base64
import gc
import json
import logging
import tracemalloc
import urllib.parse

import pytest

from gallery_operator.api.status import Failure
from gallery_operator.keys import Key
from gallery_operator.redaction import PATTERNS, REDACTED, Redactor
from gallery_operator.reports import Inbox
from gallery_operator.worker.redact import RedactingFilter
from gallery_operator.workerconfig import Report
from tests.secrets_check import leaked

SECRETS = ["Ck-9f/Zx+Q=w7", "pä ss@w0rd&x", "AKtok3n_4pi_k3y", 'quo"te\\back']


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    quoted = urllib.parse.quote(secret, safe="")
    forms = [
        secret,
        quoted,
        quoted.lower(),  # lower-case hex (and letters: only the escapes matter to a decoder, see below)
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(quoted, safe=""),  # encoded twice
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        "".join(f"&#{ord(c)};" for c in secret),
        "Basic " + base64.b64encode(b"someone:" + raw).decode(),
    ]
    for prefix in (b"", b"a", b"ab", b"abc"):
        for suffix in (b"", b"z", b"zz"):
            whole = base64.b64encode(prefix + raw + suffix).decode()
            forms += [whole, whole.rstrip("="), base64.urlsafe_b64encode(prefix + raw + suffix).decode().rstrip("=")]
    return [form for form in forms if leaked(form, secret)]  # the lower-cased letters of `quoted` may hide it


@pytest.mark.parametrize("secret", SECRETS)
def test_every_encoding_of_a_secret_value_is_removed(secret: str) -> None:
    redactor = Redactor(SECRETS, [("someone", secret)])
    for form in encodings(secret):
        text = f"GET https://site.example/a?x={form}&y=1 failed: {form}."
        cleaned = redactor.text(text)
        assert not leaked(cleaned, secret), (form, cleaned)
        assert REDACTED in cleaned and cleaned.startswith("GET https://site.example/a?x=")


def test_mixed_case_escapes_and_values_inside_words_are_found() -> None:
    redactor = Redactor(["ab/cd+ef"])
    assert redactor.text("x=ab%2fcd%2Bef;") == f"x={REDACTED};"
    assert redactor.text("prefixab/cd+efsuffix") == f"prefix{REDACTED}suffix"
    assert redactor.text("host AB/CD+EF.example") == f"host {REDACTED}.example"  # either case
    assert Redactor(["Tok3nValue"]).text("https://tok3nvalue.evil.example/") == f"https://{REDACTED}.evil.example/"


def test_short_values_and_ordinary_text_are_left_alone() -> None:
    redactor = Redactor(["yes", None, ""])
    text = "yes, the basic information about https://example.org/p?id=7&key=photo1 (Basic 2024-01-01) is here"
    assert redactor.text(text) == text


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        ("https://x.example/a?access_token=abc123&page=2", "page=2", "abc123"),
        ("https://x.example/a?page=2&My-Session-Token=s3ss10n#frag", "page=2", "s3ss10n"),
        ("https://x.example/a?X-Amz-Signature=deadbeef99&X-Amz-Date=1", "X-Amz-Date=1", "deadbeef99"),
        ("go to https%3A%2F%2Fy.example%2Fb%3Fapi_key%3Dk3yk3y%26n%3D1", "%26n%3D1", "k3yk3y"),
        ("https://user:pa55word@host.example/x", "user:", "pa55word"),
        ("Authorization: Bearer tok.en-123456789", "Bearer ", "tok.en-123456789"),
        ("auth Basic dXNlcjpwYXNzd29yZA== sent", "Basic ", "dXNlcjpwYXNzd29yZA"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", " end", "eyJzdWIiOiIxIn0"),
    ],
)
def test_credential_shapes_are_removed_without_knowing_the_value(text: str, kept: str, hidden: str) -> None:
    cleaned = PATTERNS.text(text)
    assert hidden not in cleaned and kept in cleaned and REDACTED in cleaned, cleaned


def test_the_identity_of_an_item_keeps_credential_shaped_parameters() -> None:
    redactor = Redactor(["s3cr3t-value"])
    url = "https://cdn.example/get?token=file-1&u=s3cr3t-value"
    assert redactor.values(url) == f"https://cdn.example/get?token=file-1&u={REDACTED}"


def test_a_report_is_redacted_whole_and_stays_within_its_limits() -> None:
    long_message = ("tok=" + "abcd " * 204)[:1024]
    report = Report(
        run="r",
        message="see https://h.example/?sig=abcdef0123",
        failures=[Failure(reason="NotFound", message=long_message, url="https://h.example/a?token=zz99")],
    )
    cleaned = Redactor(["abcd"]).model(report)
    assert "abcdef0123" not in cleaned.message and "zz99" not in str(cleaned.failures[0].url)
    assert "abcd" not in cleaned.failures[0].message and len(cleaned.failures[0].message) <= 1024


def test_log_records_are_redacted_with_their_arguments_and_exceptions() -> None:
    redactor = Redactor(["Ck-9f/Zx+Q=w7"])
    try:
        raise ValueError("bad Ck-9f%2FZx%2BQ%3Dw7")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, "f", 1, "got %s", ("Ck-9f/Zx+Q=w7",), __import__("sys").exc_info()
        )
    RedactingFilter(redactor).filter(record)
    formatted = logging.Formatter().format(record)
    assert not leaked(formatted, "Ck-9f/Zx+Q=w7") and "ValueError" in formatted, formatted


def test_the_operator_takes_no_credential_shaped_text_from_a_report() -> None:
    """The operator knows no secret values; the shapes are removed from any report it holds."""
    inbox = Inbox()
    leaky = "https://h.example/a?access_token=zz99zz&n=1"
    report = Report(run="r", message=f"stopped at {leaky}", failures=[Failure(reason="NotFound", url=leaky)])
    assert inbox.put(Key("ns", "dl"), "pod", report)
    held = inbox.get(Key("ns", "dl"))
    assert held is not None and "zz99zz" not in held.model_dump_json() and "n=1" in held.message


class _Shown:
    """A metadata value JSON has no form for, whose text holds whatever it was given (an engine's own object)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"Shown({self.text})"


def test_metadata_is_made_json_and_redacted_in_one_walk_what_json_cannot_hold_as_its_redacted_text() -> None:
    secret = "s3cr3t-session-value"
    redactor = Redactor([secret])
    metadata = {
        "title": f"about {secret}",
        "when": _Shown(f"token={secret}"),
        "tags": ("a", secret),
        "sizes": {1: 2.5, None: True, (1, 2): {secret}},
        "nested": {"Cookie": secret, "password": "pw", "fine": [1, None, _Shown("x")]},
    }
    cleaned = redactor.clean_json(metadata)
    assert json.loads(json.dumps(cleaned)) == cleaned  # JSON whole: strings, numbers, lists, objects
    assert secret not in json.dumps(cleaned)
    assert cleaned["title"] == f"about {REDACTED}"
    assert cleaned["when"] == f"Shown(token={REDACTED})"  # its text, redacted like any string
    assert cleaned["tags"] == ["a", REDACTED]
    assert cleaned["sizes"] == {"1": 2.5, "None": True, "(1, 2)": "{'" + REDACTED + "'}"}
    assert cleaned["nested"] == {"fine": [1, None, "Shown(x)"]}  # credential keys dropped, as `clean` drops them


def test_a_hostile_sites_long_metadata_keys_are_not_kept_between_items() -> None:
    """Metadata keys' redacted form is remembered (a site's own keys are few and short), but not a megabyte of key
    per item: 64 items with one distinct 1 MB key each leave less than 8 MB behind them (64 MB before the bound)."""
    redactor = Redactor(["s3cr3t-token-value"])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for item in range(64):
            redactor.clean_json({f"{item:04d}" + "k" * 1_000_000: 1, "title": "x"})
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 8_000_000, f"{kept / 1e6:.0f} MB of metadata keys kept"


@pytest.mark.parametrize("secrets", [[], ["hunter2-password"]])
def test_lone_surrogates_become_replacement_characters_everywhere_text_leaves(secrets: list[str]) -> None:
    redactor = Redactor(secrets)
    metadata = {"ti\udc80tle": "A \ud800 talk", "tags": ["\udfff", "ok \u00e9"], "pair": "\ud83d\ude00"}
    cleaned = redactor.clean_json(metadata)
    assert cleaned == {"ti\ufffdtle": "A \ufffd talk", "tags": ["\ufffd", "ok \u00e9"], "pair": "\ufffd\ufffd"}
    json.dumps(cleaned, ensure_ascii=False).encode()  # UTF-8 holds every character left
    assert redactor.clean("name \ud800", shapes=False) == "name \ufffd"
    assert redactor.values("\ud800") == redactor.text("\ud800") == "\ufffd"
    assert redactor.values("plain ascii") == "plain ascii"


def test_metadata_nested_past_the_depth_kept_is_cut_instead_of_raising() -> None:
    deep: object = "hunter2-password"
    for _ in range(5000):  # deeper than the interpreter's recursion limit: a site's JSON gets near it
        deep = {"a": deep}
    redactor = Redactor(["hunter2-password"])
    for cleaned in (redactor.clean_json(deep), redactor.clean(deep), redactor.clean(deep, shapes=False)):
        level, levels = cleaned, 0
        while isinstance(level, dict):
            level, levels = level["a"], levels + 1
        assert (levels, level) == (64, "\u2026")
    assert redactor.clean_json({"a": [{"b": "hunter2-password"}]}) == {"a": [{"b": REDACTED}]}
