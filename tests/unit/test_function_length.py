"""No function in the operator or the worker is over 60 lines (issue 22): a long function is a sequence of steps that
want names. Manifest literals are the exception, by name (docs/architecture.md lists them): a Kubernetes object
written as one literal reads best whole."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gallery_operator

MAX_LINES = 60
PACKAGE = Path(gallery_operator.__file__).parent

MANIFEST_LITERALS = {
    "jobs.py:_worker_job": "the worker (and cleanup) Job: one manifest literal",
}

# Functions known to be long and being split (none now); the test below fails once one is no longer long.
BEING_SPLIT: set[str] = set()


def function_lengths(source: str) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from `def` to its last line) of every function, methods and nested ones included."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                yield name, (child.end_lineno or child.lineno) - child.lineno + 1
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")

    yield from walk(ast.parse(source), "")


def long_functions() -> dict[str, int]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        for name, lines in function_lengths(path.read_text()):
            if lines > MAX_LINES:
                found[f"{where}:{name}"] = lines
    return found


def test_no_function_is_over_60_lines() -> None:
    excepted = MANIFEST_LITERALS.keys() | BEING_SPLIT
    over = {name: lines for name, lines in long_functions().items() if name not in excepted}
    assert over == {}, f"functions over {MAX_LINES} lines (split them into named steps): {over}"


def test_every_exception_is_still_a_long_function() -> None:
    """An exception that no longer names a long function is stale: remove it here (and from the doc)."""
    long = long_functions()
    stale = sorted(name for name in {*MANIFEST_LITERALS, *BEING_SPLIT} if name not in long)
    assert stale == [], f"no longer over {MAX_LINES} lines, remove from the exceptions: {stale}"


def test_the_manifest_literals_are_named_in_the_architecture_doc() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    for name in MANIFEST_LITERALS:
        module, function = name.split(":")
        assert f"{module.removesuffix('.py')}.{function}" in doc, name


def test_the_count_sees_methods_and_nested_functions() -> None:
    body = "\n".join(f"        x{n} = {n}" for n in range(MAX_LINES))
    source = f"class A:\n    def short(self) -> None:\n        pass\n\n    def long(self) -> None:\n{body}\n"
    source += f"\n\ndef outer() -> None:\n    def inner() -> None:\n{body}\n"
    lengths = dict(function_lengths(source))
    assert lengths["A.short"] == 2
    assert lengths["A.long"] == MAX_LINES + 1
    assert lengths["outer.inner"] == MAX_LINES + 1 and lengths["outer"] == MAX_LINES + 2
