"""Names a filesystem and a person can take."""

from __future__ import annotations

import pytest

from gallery_operator.worker.names import MAX_NAME_BYTES, safe_name, url_hash


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cover.jpg", "cover.jpg"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # shown as "invoiceexe.jpg" with the override
        ("a\u2066b\u2069.png", "ab.png"),
        ("zero\u200bwidth.jpg", "zerowidth.jpg"),
        ("tab\tand\x01bell\x07.jpg", "tabandbell.jpg"),
        ("line\u2028break.jpg", "linebreak.jpg"),
        ("\u202e", "item"),
        ("Caf\u0065\u0301.jpg", "Caf\u00e9.jpg"),  # one spelling (NFC)
    ],
)
def test_hidden_characters_are_removed(name: str, expected: str) -> None:
    assert safe_name(name, "https://example.org/x") == expected


@pytest.mark.parametrize(
    "name", ["a" * 300 + ".jpg", "日" * 200 + ".jpeg", "no-extension-" * 30, "x" * 190 + "." + "y" * 40]
)
def test_long_names_keep_their_extension_and_a_stable_hash(name: str) -> None:
    url = "https://example.org/" + name
    short = safe_name(name, url)
    assert len(short.encode()) <= MAX_NAME_BYTES
    assert url_hash(url) in short and short == safe_name(name, url)
    if name.endswith((".jpg", ".jpeg")):
        assert short.endswith(name[name.rindex(".") :])
    assert safe_name(name, url + "?other") != short  # another item, another name
