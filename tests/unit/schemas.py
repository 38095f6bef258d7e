"""Checks of a generated CRD schema shared by the kinds' tests."""

from __future__ import annotations

from typing import Any


def structural_problems(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes that are not structural (no type and not preserving unknown fields)."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(path or "<root>")
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "const", "title"):
        if forbidden in schema:
            problems.append(f"{path}:{forbidden}")
    for name, child in schema.get("properties", {}).items():
        problems += structural_problems(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}{{}}")
    return problems
