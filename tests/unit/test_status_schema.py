"""Every field the operator writes into status is in the CRD's status schema.

The API server prunes unknown fields of a structural schema without an error, so a misspelt status field would
vanish silently. The status builder returns the pydantic model the CRD is generated from (so a field the model
lacks fails at once); this test holds the stored form and the committed CRD together over every phase.
"""

from __future__ import annotations

from typing import Any

import yaml

from gallery_harness import REPO_ROOT
from tests.unit.status_builders import statuses

CRD = REPO_ROOT / "crds" / "gallerydownloads.gallery-operator.dev.yaml"


def status_schema() -> dict[str, Any]:
    [version] = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Paths in ``value`` that ``schema`` would prune."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found = []
        for key, item in value.items():
            if key not in properties:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(item, properties[key], f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in unknown_fields(item, schema.get("items", {}), f"{path}[{i}]")
        ]
    return []


def test_the_check_sees_an_unknown_field() -> None:
    assert unknown_fields({"phase": "Queued", "progres": {}}, status_schema(), "status") == ["status.progres"]
    assert unknown_fields({"catalogue": {"sample": [{"pth": "a"}]}}, status_schema(), "status") == [
        "status.catalogue.sample[0].pth"
    ]


def test_every_status_field_the_operator_writes_is_in_the_crd() -> None:
    schema = status_schema()
    written = statuses()
    assert {s["phase"] for s in written} == {"Queued", "Running", "Succeeded", "Failed", "Suspended"}
    for status in written:
        assert unknown_fields(status, schema, "status") == [], status
