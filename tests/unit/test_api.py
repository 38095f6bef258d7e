"""The GalleryDownload models and the CRD generated from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gallery_harness import REPO_ROOT
from gallery_operator.api.crd import build_crd, render_crd
from gallery_operator.api.spec import GalleryDlOptions, YtDlpOptions, parse_spec
from tests.unit.schemas import structural_problems

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
        ({"limits": {"maxBytes": "0"}}, "limits.maxBytes", "less than one byte"),
        ({"limits": {"maxBytes": "0.5"}}, "limits.maxBytes", "less than one byte"),
        ({"limits": {"maxBytes": "500m"}}, "limits.maxBytes", "pattern"),
        ({"limits": {"maxBytes": "9" * 400}}, "limits.maxBytes", "at most 24"),
        ({"target": {"pvc": {"template": {"size": "0Gi"}}}}, "target.pvc.template.size", "less than one byte"),
        ({"target": {"pvc": {"claimName": "m", "subPath": "."}}}, "target.pvc.subPath", "pattern"),
        ({"target": {"pvc": {"claimName": "m", "subPath": "a/../b"}}}, "target.pvc.subPath", "pattern"),
        ({"target": {"pvc": {"claimName": "m", "subPath": ".gallery-operator"}}}, "target.pvc.subPath", "pattern"),
        ({"target": {"s3": {"bucket": "media", "prefix": ".."}}}, "target.s3.prefix", "pattern"),
        ({"resources": {"requests": {"gpu": "1"}}}, "resources.requests.gpu", "Extra inputs"),
        ({"resources": {"limits": {"memory": "1" * 40}}}, "resources.limits.memory", "at most 24"),
        ({"urls": [f"https://example.org/{n}/" + "x" * 2000 for n in range(20)]}, "urls", "at most 32768 characters"),
        ({"options": {"ytDlp": {"exec": "rm -rf /"}}}, "options.ytDlp.exec", "Extra inputs are not permitted"),
        (
            {"options": {"galleryDl": {"directlink": "{postprocessors: [{name: exec, command: [sh]}]}"}}},
            "options.galleryDl.directlink",
            "Extra inputs are not permitted",
        ),
        ({"options": {"galleryDl": {"sleep-request": "[1, 2]"}}}, "options.galleryDl.sleep-request", "number"),
        ({"options": {"galleryDl": {"include": [{"a": 1}]}}}, "options.galleryDl.include.0", "string"),
        ({"options": {"galleryDl": {"user-agent": "a\r\nCookie: x"}}}, "options.galleryDl.user-agent", "pattern"),
        ({"options": {"ytDlp": {"format_sort": ["res", "x" * 65]}}}, "options.ytDlp.format_sort.1", "at most 64"),
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


def test_crd_schema_is_structural_and_explained() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert structural_problems(schema) == []
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
    assert downloads or sample.name in {"claim.yaml", "subscription.yaml"}


def test_allowed_engine_options_are_real_options_of_the_engines() -> None:
    """Each allowlisted name is an option the engine reads: a typo would be accepted and silently do nothing."""
    import gallery_dl
    import yt_dlp

    gallery_source = "\n".join(p.read_text() for p in Path(gallery_dl.__file__).parent.rglob("*.py"))
    built = {"file-unique": '_prepare_predicates(\n            "file"'}  # read as target + "-unique"
    for name in (f.alias or n for n, f in GalleryDlOptions.model_fields.items()):
        assert f'"{name}"' in gallery_source or built.get(name, "?") in gallery_source, name
    from yt_dlp.downloader.fragment import FragmentFD

    documented = f"{yt_dlp.YoutubeDL.__doc__}{FragmentFD.__doc__}"  # parameters of yt-dlp and of its downloaders
    for name in YtDlpOptions.model_fields:
        assert re.search(rf"\b{name}\b", documented), name


def test_engine_options_in_the_crd_are_typed_and_closed() -> None:
    """The CRD lists the allowed options with types and no map or free-form values anywhere beneath them."""
    options = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "options"
    ]["properties"]
    for engine in ("galleryDl", "ytDlp"):
        schema = options[engine]
        assert schema["type"] == "object" and "additionalProperties" not in schema
        assert "x-kubernetes-preserve-unknown-fields" not in schema
        for name, option in schema["properties"].items():
            assert option["type"] in ("number", "integer", "boolean", "string", "array"), name
            assert option.get("description"), name
            if option["type"] == "array":
                assert option["items"]["type"] in ("string", "integer") and option["maxItems"] <= 32, name
            if option["type"] == "string":
                assert option["maxLength"] <= 256 and option.get("pattern"), name
