"""What `kubectl gallery` prints comes from remote sites (names, URLs, failure messages): no byte of it may drive
the user's terminal (escape sequences, C1 controls, bidirectional overrides), in the table, the status or JSON."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest

from gallery_operator.cli.kubectl_gallery import describe, print_catalogue

HOSTILE = [
    "\x1b]0;owned\x07",  # OSC: sets the terminal's title
    "\x1b[2J",  # CSI: clears the screen
    "\x9b31m",  # C1 CSI
    "\u202egpj.exe",  # right-to-left override
    "line\rover",  # carriage return overwrites the line
    "new\nline",
]


def controls(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]


@pytest.mark.parametrize("output", ["table", "json"])
@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_catalogue_record_cannot_reach_the_terminal(output: str, hostile: str) -> None:
    record = {"path": f"a{hostile}.jpg", "size": 1, "sha256": "0" * 64, "contentType": hostile, "sourceUrl": hostile}
    out = io.StringIO()
    print_catalogue([record], output, out)
    assert controls(out.getvalue()) == []
    assert out.getvalue().count("\n") == (2 if output == "table" else 1)
    if output == "json":
        assert json.loads(out.getvalue()) == record  # the machine output keeps the exact value, escaped


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_status_cannot_reach_the_terminal(hostile: str) -> None:
    download = {
        "metadata": {"namespace": "media", "name": "cats"},
        "status": {
            "phase": "Failed",
            "conditions": [{"type": "Ready", "status": "False", "reason": "NotFound", "message": hostile}],
            "failures": [{"reason": "NotFound", "url": f"http://x/{hostile}", "message": hostile}],
        },
    }
    lines = describe(download)
    assert [controls(line) for line in lines] == [[]] * len(lines)
    assert not any("\n" in line for line in lines)
