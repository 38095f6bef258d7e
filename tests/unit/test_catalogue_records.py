"""A catalogue record stays at most MAX_RECORD characters whatever metadata a site gives its items: longer metadata
is cut and the record says so (``metadataCut``); metadata within the bound is recorded as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gallery_operator.worker.catalogue import MAX_RECORD, Catalogue


def nested(depth: int) -> Any:
    value: Any = "deepest"
    for _ in range(depth):
        value = {"next": value}
    return value


HUGE: dict[str, Any] = {
    "a long text": {"description": "lorem ipsum " * 100_000},
    "many entries": {"tags": [f"tag {n}" for n in range(100_000)]},
    "many keys": {f"key {n}": n for n in range(100_000)},
    "long keys": {"k" * 100_000 + str(n): n for n in range(3)},
    "deep nesting": {"tree": nested(500), "filler": "x" * MAX_RECORD},
    "many medium texts": {f"field {n}": "y" * 1000 for n in range(80)},
}


def record(path: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": path,
        "size": 1,
        "sha256": "a" * 64,
        "sourceUrl": f"https://example.org/{path}",
        "metadata": metadata,
    }


def lines(catalogue: Catalogue) -> list[str]:
    catalogue.close()
    return catalogue.file.read_text().splitlines()


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_metadata_past_the_bound_is_cut_and_marked(tmp_path: Path, kind: str) -> None:
    catalogue = Catalogue(tmp_path / "catalogue.jsonl")
    assert catalogue.add(record("a.jpg", HUGE[kind]))
    [line] = lines(catalogue)
    assert len(line) <= MAX_RECORD
    stored = json.loads(line)
    assert (stored["path"], stored["metadataCut"]) == ("a.jpg", True)
    assert Catalogue(catalogue.file).items == 1  # read back by the next pod


def test_metadata_within_the_bound_is_kept_as_it_is(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path / "catalogue.jsonl")
    metadata = {"description": "z" * 30_000, "tags": list(range(500)), "tree": nested(20)}
    assert catalogue.add(record("a.jpg", metadata))
    [line] = lines(catalogue)
    assert json.loads(line)["metadata"] == metadata and "metadataCut" not in json.loads(line)
