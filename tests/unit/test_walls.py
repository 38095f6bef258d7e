"""The import contracts (pyproject.toml's [tool.importlinter]) list the rooms by module: every module of the operator
must stand in one, or it is outside the walls. `make lint` runs the contracts; this test keeps their lists whole."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import gallery_operator

PACKAGE = Path(gallery_operator.__file__).parent
SHARED = {"gallery_operator.logs"}
"""Neither core nor runtime: JSON log lines, used by the runtime and the worker alike."""


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())
    return {contract["id"]: contract for contract in config["tool"]["importlinter"]["contracts"]}


def operator_modules() -> set[str]:
    """The package's modules and subpackages, one level down (api/ and worker/ count as one each)."""
    names = {f"gallery_operator.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return names | {f"gallery_operator.{path.parent.name}" for path in PACKAGE.glob("*/__init__.py")}


def ours(modules: list[str]) -> set[str]:
    return {module for module in modules if module.startswith("gallery_operator.")}


def test_every_module_stands_in_one_room() -> None:
    core = set(contracts()["core"]["source_modules"])
    runtime = ours(contracts()["core"]["forbidden_modules"]) - {"gallery_operator.worker"}
    rooms = {"core": core, "runtime": runtime, "worker": {"gallery_operator.worker"}, "shared": SHARED}
    homeless = operator_modules() - set().union(*rooms.values())
    assert homeless == set(), f"add these modules to the core's source_modules or forbidden_modules: {homeless}"
    twice = [(a, b, rooms[a] & rooms[b]) for a in rooms for b in rooms if a < b and rooms[a] & rooms[b]]
    assert twice == []
    gone = set().union(*rooms.values()) - operator_modules()
    assert gone == set(), f"the contracts name modules that no longer exist: {gone}"


def test_the_worker_is_kept_from_the_whole_runtime() -> None:
    runtime = ours(contracts()["core"]["forbidden_modules"]) - {"gallery_operator.worker"}
    assert ours(contracts()["worker"]["forbidden_modules"]) == runtime
