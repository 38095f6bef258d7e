"""The harness is a package of its own: the Makefile, the benchmarks and the harness never run or import a test
module (docs/architecture.md, "The harness and the test tiers")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gallery_harness import REPO_ROOT


def imported_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", ["harness", "bench"])
def test_the_harness_and_the_benchmarks_import_no_test_module(folder: str) -> None:
    sources = sorted((REPO_ROOT / folder).rglob("*.py"))
    assert sources
    offenders = {
        str(source.relative_to(REPO_ROOT)): sorted(
            name for name in imported_modules(source) if name.split(".")[0] == "tests"
        )
        for source in sources
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_makefile_runs_no_test_module() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.findall(r"python -m gallery_harness\b", makefile)  # the targets that run the harness name it
    assert re.findall(r"python -m tests\b[\w.]*", makefile) == []
