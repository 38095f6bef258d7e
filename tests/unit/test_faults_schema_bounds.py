"""Every numeric bound of the generated CRDs is one the API server can hold: it keeps a schema's minimum and maximum
as float64 and compares an integer with int64(bound), so a bound that is no float64 (int64's maximum rounds up to
2**63) overflows and refuses every value (seen on the real API server: tests/e2e/test_faults_bad_input.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = sorted((Path(__file__).resolve().parents[2] / "crds").glob("*.yaml"))


def bounds(schema: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(schema, dict):
        found += [(f"{path}.{key}", schema[key]) for key in ("minimum", "maximum") if key in schema]
        for key, child in schema.items():
            found += bounds(child, f"{path}.{key}")
    elif isinstance(schema, list):
        for n, child in enumerate(schema):
            found += bounds(child, f"{path}[{n}]")
    return found


@pytest.mark.parametrize("crd", CRDS, ids=lambda p: p.name)
def test_every_bound_converts_to_int64_and_back_exactly(crd: Path) -> None:
    found = bounds(yaml.safe_load(crd.read_text()))
    assert found
    for where, bound in found:
        assert float(bound) == bound and -(2**63) <= int(float(bound)) < 2**63, (where, bound)
