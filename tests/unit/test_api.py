"""The GalleryDownload models and the CRD generated from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gallery_operator.api.crd import build_crd, render_crd
from gallery_operator.api.spec import parse_spec
from tests import REPO_ROOT

REPO = REPO_ROOT
COMMITTED_CRD = REPO / "crds" / "gallerydownloads.gallery-operator.dev.yaml"


def minimal(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "urls": ["https://example.org/gallery/1"],
        "target": {"pvc": {"claimName": "media"}},
    }
    spec.update(changes)
    return spec


CHART_CRD = REPO / "charts" / "gallery-operator" / "files" / "crd.yaml"


@pytest.mark.parametrize("copy", [COMMITTED_CRD, CHART_CRD], ids=["crds", "chart"])
def test_committed_crd_matches_the_models(copy: Path) -> None:
    assert copy.read_text() == render_crd(), f"{copy} drifted from the models: run `make crds`"


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec(minimal())
    assert spec.engine == "auto"
    assert spec.deletion_policy == "Retain"
    assert spec.backoff_limit == 2
    assert spec.options.retries == 4
    assert spec.target.pvc is not None and spec.target.pvc.claim_name == "media"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"urls": []}, "urls", "at least 1"),
        ({"urls": ["ftp://example.org/x"]}, "urls.0", "pattern"),
        ({"urls": ["https://a.example/x", "https://a.example/x"]}, "urls", "must not repeat"),
        ({"target": {}}, "target", "exactly one of target.pvc and target.s3"),
        (
            {"target": {"pvc": {"claimName": "a"}, "s3": {"bucket": "media"}}},
            "target",
            "exactly one of target.pvc and target.s3",
        ),
        ({"target": {"pvc": {}}}, "target.pvc", "exactly one of target.pvc.claimName"),
        ({"target": {"pvc": {"template": {"size": "ten gigs"}}}}, "target.pvc.template.size", "pattern"),
        ({"limits": {"maxBytes": "1.5 GB"}}, "limits.maxBytes", "pattern"),
        (
            {"options": {"ytDlp": {"exec": "rm -rf /"}}},
            "options.ytDlp",
            "not allowed in the passthrough: exec",
        ),
        ({"options": {"itemRange": "1-5;7"}}, "options.itemRange", "pattern"),
        ({"engine": "wget"}, "engine", "'auto', 'gallery-dl' or 'yt-dlp'"),
        ({"auth": {"usernameSecret": {"name": "u", "key": "k"}}}, "auth", "go together"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_spec(minimal(**change))
    errors = raised.value.errors()
    locations = [".".join(str(part) for part in error["loc"]) for error in errors]
    assert any(location.startswith(field) for location in locations), locations
    assert any(words in error["msg"] for error in errors), [e["msg"] for e in errors]


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes that are not structural (no type and not preserving unknown fields)."""
    problems = []
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(path or "<root>")
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "const", "title"):
        if forbidden in schema:
            problems.append(f"{path}:{forbidden}")
    for name, child in schema.get("properties", {}).items():
        problems += _walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], f"{path}{{}}")
    return problems


def test_crd_schema_is_structural_and_explained() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["urls", "target"]
    for name, field in spec["properties"].items():
        assert field.get("description"), f"spec.{name} has no description for kubectl explain"
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["gd", "gdl"]
    assert crd["spec"]["names"]["categories"] == ["gallery"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Progress", "Items", "Size", "Age"]
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_committed_crd_is_valid_yaml_for_kubectl() -> None:
    documents = list(yaml.safe_load_all(COMMITTED_CRD.read_text()))
    assert [d["kind"] for d in documents] == ["CustomResourceDefinition"]


SAMPLES = sorted((REPO / "manifests" / "samples").glob("*.yaml"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_samples_parse(sample: Path) -> None:
    downloads = [d for d in yaml.safe_load_all(sample.read_text()) if d and d["kind"] == "GalleryDownload"]
    for document in downloads:
        parse_spec(document["spec"])
    assert downloads or sample.name == "claim.yaml"
