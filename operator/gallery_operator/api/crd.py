"""Generate the GalleryDownload and GallerySubscription CustomResourceDefinitions from the pydantic models (pure).

``python -m gallery_operator.api.crd [--subscription] [FILE ...]`` writes the YAML to each FILE (stdout without one).
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from gallery_operator import API_GROUP, API_VERSION, KIND, PLURAL, SUBSCRIPTION_KIND, SUBSCRIPTION_PLURAL
from gallery_operator.api.spec import ApiModel, EngineOptions, GalleryDownloadSpec
from gallery_operator.api.status import GalleryDownloadStatus
from gallery_operator.api.subscription import SPEC_RULES, GallerySubscriptionSpec, GallerySubscriptionStatus

SHORT_NAMES = ["gd", "gdl"]
CATEGORIES = ["gallery"]
GENERATED_HEADER = "# Generated from operator/gallery_operator/api by `make crds`. Do not edit.\n"

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Lifecycle phase"},
    {
        "name": "Progress",
        "type": "string",
        "jsonPath": ".status.progress.summary",
        "description": "Items done",
    },
    {
        "name": "Items",
        "type": "integer",
        "jsonPath": ".status.catalogue.items",
        "description": "Stored files",
    },
    {"name": "Size", "type": "string", "jsonPath": ".status.catalogue.size", "description": "Stored bytes"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# JSON-schema keywords Kubernetes' structural schemas do not accept, or that carry no meaning there.
_DROP = {"title", "additionalProperties", "$defs", "examples"}


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    """Inline $refs and turn pydantic's JSON schema into a Kubernetes structural schema."""
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            # Optional[X]: the field is simply omitted when unset.
            node = {**options[0], **node}
        else:
            # A union of scalars and lists (the passthrough values): keep any JSON value.
            node["x-kubernetes-preserve-unknown-fields"] = True
    if "$ref" in node:
        # The field's own keywords (its description, its default) win over the referenced model's.
        target = copy.deepcopy(definitions[node.pop("$ref").rsplit("/", 1)[-1]])
        node = {**target, **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    default = node.get("default")
    if isinstance(default, dict) or (default is None and "default" in node):
        # Object defaults are applied by the models; an API-server default would need every nested field.
        node.pop("default")
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP and not (key == "additionalProperties" and isinstance(value, dict)):
            continue
        if key == "properties":
            result[key] = {name: _resolve(schema, definitions) for name, schema in value.items()}
        else:
            result[key] = _resolve(value, definitions)
    if result.get("type") == "object" and "properties" not in result and "additionalProperties" not in result:
        result["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in result and "type" not in result:
        result["type"] = "string"
    return result


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring under the field in the class body (a subclass's own over its parents')."""
    found: dict[str, str] = {}
    for owner in reversed(model.__mro__):
        if isinstance(owner, type) and issubclass(owner, ApiModel | EngineOptions):
            found |= _own_field_docstrings(owner)
    return found


@functools.cache
def _own_field_docstrings(owner: type) -> dict[str, str]:
    """The docstrings a class body gives its own fields. Kept per class: ``inspect.getsource`` parses the class's
    whole module to find it, and one CRD reads each of about 40 models and their parents."""
    found: dict[str, str] = {}
    [body] = ast.parse(textwrap.dedent(inspect.getsource(owner))).body
    assert isinstance(body, ast.ClassDef)
    for field, text in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(text, ast.Expr)
            and isinstance(text.value, ast.Constant)
            and isinstance(text.value.value, str)
        ):
            found[field.target.id] = inspect.cleandoc(text.value.value)
    return found


class _Described(GenerateJsonSchema):
    """pydantic's JSON schema, with each field's docstring as its description (unless the field states one)."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        model: type[BaseModel] = schema["cls"]
        properties = json_schema.get("properties", {})
        for name, text in field_docstrings(model).items():
            field = model.model_fields.get(name)
            if field is None or field.description is not None:
                continue
            described = properties.get(field.alias or name)
            if described is not None:
                described.setdefault("description", text)
        return json_schema


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model, descriptions included."""
    schema = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Described)
    resolved: dict[str, Any] = _resolve(schema, schema.get("$defs", {}))
    return resolved


def _status_schema() -> dict[str, Any]:
    schema = openapi_schema(GalleryDownloadStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return _unobserved_by_default(schema)


def _unobserved_by_default(status_schema: dict[str, Any]) -> dict[str, Any]:
    """The API server serves an object the operator has not written yet with the status's defaults (observedGeneration
    0, behind every generation), not without a status: kstatus, which Flux's health checks use, calls an object
    without a status Current, and Flux polls what it applied before the operator's first write (docs/flux.md)."""
    return {**status_schema, "default": {}}


def build_crd() -> dict[str, Any]:
    """The CustomResourceDefinition manifest."""
    spec_schema = openapi_schema(GalleryDownloadSpec)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{API_GROUP}",
            "labels": {"app.kubernetes.io/name": "gallery-operator", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A declarative download of galleries and media into a PVC or S3.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    return GENERATED_HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


SUBSCRIPTION_SHORT_NAMES = ["gsub"]
SUBSCRIPTION_PRINTER_COLUMNS = [
    {"name": "Schedule", "type": "string", "jsonPath": ".status.schedule", "description": "Schedule or interval"},
    {"name": "Last run", "type": "date", "jsonPath": ".status.lastScheduleTime", "description": "Latest tick"},
    {"name": "New", "type": "integer", "jsonPath": ".status.newItems", "description": "Items the last run added"},
    {"name": "Items", "type": "integer", "jsonPath": ".status.library.items", "description": "Stored files"},
    {"name": "Size", "type": "string", "jsonPath": ".status.library.size", "description": "Stored bytes"},
    # A string: kubectl shows a date column as an age, and a time to come as "<invalid>".
    {"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime", "description": "Next tick"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_subscription_crd() -> dict[str, Any]:
    """The GallerySubscription CustomResourceDefinition: the download's manifest with the second kind's names,
    columns and models (its downloadTemplate is the download's spec schema, CEL rules included)."""
    crd = build_crd()
    crd["metadata"]["name"] = f"{SUBSCRIPTION_PLURAL}.{API_GROUP}"
    names = crd["spec"]["names"]
    names |= {
        "kind": SUBSCRIPTION_KIND,
        "listKind": f"{SUBSCRIPTION_KIND}List",
        "plural": SUBSCRIPTION_PLURAL,
        "singular": SUBSCRIPTION_KIND.lower(),
        "shortNames": SUBSCRIPTION_SHORT_NAMES,
    }
    version = crd["spec"]["versions"][0]
    version["additionalPrinterColumns"] = SUBSCRIPTION_PRINTER_COLUMNS
    spec_schema = openapi_schema(GallerySubscriptionSpec)
    spec_schema["x-kubernetes-validations"] = [*spec_schema.get("x-kubernetes-validations", []), *SPEC_RULES]
    status_schema = openapi_schema(GallerySubscriptionStatus)
    status_schema["properties"]["conditions"] |= {
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }
    root = version["schema"]["openAPIV3Schema"]
    root["description"] = (
        "A GalleryDownload run on a schedule, keeping a library in sync: each run fetches what is new."
    )
    root["properties"]["spec"] = spec_schema
    root["properties"]["status"] = _unobserved_by_default(status_schema)
    return crd


def render_subscription_crd() -> str:
    return GENERATED_HEADER + yaml.safe_dump(build_subscription_crd(), sort_keys=False, width=120)


def main(argv: list[str]) -> int:
    subscription = "--subscription" in argv
    argv = [a for a in argv if a != "--subscription"]
    text = render_subscription_crd() if subscription else render_crd()
    if len(argv) == 1:
        sys.stdout.write(text)
    for path in argv[1:]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
