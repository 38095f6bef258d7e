"""Tests test behaviour and public views, and share helpers through support modules:

- no test reads or writes the private state of a product object (an attribute or function whose name starts with
  one underscore and is defined in gallery_operator or gallery_harness), by attribute, getattr/setattr or import;
- no module under tests/ imports a test module (``test_*.py``): shared helpers live in tests/unit/builders.py,
  tests/component/workers.py, tests/fixtures, gallery_harness, or a conftest's fixtures.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests import REPO_ROOT

PRODUCT = (REPO_ROOT / "operator" / "gallery_operator", REPO_ROOT / "harness" / "gallery_harness")
PRODUCT_PACKAGES = ("gallery_operator", "gallery_harness")
TESTS = REPO_ROOT / "tests"
OWN = frozenset({"self", "cls"})
"""A test's own classes keep their own private attributes."""


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def modules(root: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def defined_private_names(roots: tuple[Path, ...]) -> frozenset[str]:
    """Every private name the product defines: functions, classes, module and class variables, `self._x`."""
    names: set[str] = set()
    for root in roots:
        for _, tree in modules(root):
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
    return frozenset(name for name in names if private(name))


def private_reads(tree: ast.Module, product_private: frozenset[str]) -> Iterator[tuple[int, str]]:
    """(line, what) for each reach into product-private state in a test module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in product_private:
            if not (isinstance(node.value, ast.Name) and node.value.id in OWN):
                yield node.lineno, f"{ast.unparse(node.value)}.{node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if called in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) > 1:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value in product_private:
                    yield node.lineno, f"{called}(..., {name.value!r})"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PRODUCT_PACKAGES:
            yield from ((node.lineno, f"import {a.name}") for a in node.names if private(a.name))


def imports_of_test_modules(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) for each import of a test module (``tests.….test_*``)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(f"{node.module}.{name}" for name in names)]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests" and any(part.startswith("test_") for part in parts):
                yield node.lineno, name
                break


def offences(tests: Path, roots: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """(private reads, test-module imports) found in the modules under `tests`, as `path:line: what`."""
    product_private = defined_private_names(roots)
    reads, imports = [], []
    for path, tree in modules(tests):
        where = path.relative_to(tests.parent)
        reads += [f"{where}:{line}: {what}" for line, what in sorted(private_reads(tree, product_private))]
        imports += [f"{where}:{line}: {what}" for line, what in sorted(imports_of_test_modules(tree))]
    return reads, imports


def test_no_test_reads_private_state_of_a_product_object() -> None:
    reads, _ = offences(TESTS, PRODUCT)
    assert reads == [], "give the class a public read-only view, or test through behaviour:\n" + "\n".join(reads)


def test_no_module_under_tests_imports_a_test_module() -> None:
    _, imports = offences(TESTS, PRODUCT)
    assert imports == [], "move the shared helper into a support module:\n" + "\n".join(imports)


def test_the_checks_see_each_kind_of_offence(tmp_path: Path) -> None:
    """The scanner itself: each way of reaching in, and each way of importing a test module, is found."""
    product = tmp_path / "product"
    product.mkdir()
    (product / "thing.py").write_text(
        "class Thing:\n    _limit = 1\n    def __init__(self):\n        self._queued = {}\n"
        "    def _take(self):\n        pass\n_CACHE = {}\n"
    )
    tests = tmp_path / "tests"
    (tests / "unit").mkdir(parents=True)
    (tests / "unit" / "test_a.py").write_text(
        "from gallery_operator.thing import _CACHE\nfrom tests.unit.test_b import helper\n"
        "import tests.unit.test_c\nfrom tests.unit import test_d\n"
        "def test(thing, other):\n    thing.work._queued.clear()\n    other._take()\n"
        "    getattr(thing, '_limit')\n    self._queued = 1\n    thing._unrelated\n    thing.__dict__\n"
        "from tests.unit.builders import world\n"
    )
    reads, imports = offences(tests, (product,))
    assert [r.split(": ", 1)[1] for r in reads] == [
        "import _CACHE",
        "thing.work._queued",
        "other._take",
        "getattr(..., '_limit')",
    ]
    assert [i.split(": ", 1)[1] for i in imports] == ["tests.unit.test_b", "tests.unit.test_c", "tests.unit.test_d"]
