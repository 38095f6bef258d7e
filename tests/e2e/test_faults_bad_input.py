"""Bad input, generated: hypothesis breaks one field of a full, valid GalleryDownload or GallerySubscription spec
(a wrong type, a number past its bounds, a hostile string, a missing required field, an unknown field, a repeated
URL, both targets) and sends it to the real API server (strict field validation, as kubectl sends) with the real
operator running. Each is refused at admission naming the field, or, when admitted, the operator's verdict agrees
with its own parser: Failed/InvalidSpec naming the field when the stored spec does not parse, never a failure when
it does. The operator never crashes and still runs a good download to Succeeded afterwards.

GALLERY_FAULTS_EXAMPLES sets the examples per kind (default 40; `make reliability` runs 400).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from gallery_harness.localoperator import CRD_FILE, OperatorProcess
from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL
from gallery_operator.api.spec import parse_spec
from gallery_operator.api.subscription import parse_subscription_spec
from tests.e2e.conftest import Downloads, pvc_spec

EXAMPLES = int(os.environ.get("GALLERY_FAULTS_EXAMPLES", "40"))
SUBSCRIPTIONS = "gallerysubscriptions"
Path = tuple[str | int, ...]

SECRET = {"name": "creds", "key": "k"}
FULL_SPEC: dict[str, Any] = {
    "urls": ["http://127.0.0.1:9/img/1.jpg", "http://127.0.0.1:9/gallery/2"],
    "engine": "gallery-dl",
    "target": {"pvc": {"claimName": "media", "subPath": "a/b"}},
    "auth": {
        "site": "directlink",
        "cookiesSecret": SECRET,
        "usernameSecret": SECRET,
        "passwordSecret": SECRET,
        "tokens": {"apiKey": SECRET},
    },
    "options": {
        "format": "best",
        "itemRange": "1-5,8",
        "rateLimit": "2M",
        "retries": 0,
        "timeoutSeconds": 30,
        "lowSpeedLimit": 1024,
        "lowSpeedSeconds": 60,
        "sleepSeconds": 0.5,
        "stopAfterKnown": 3,
        "writeMetadata": True,
        "galleryDl": {"sleep-request": 1, "retry-codes": [500], "include": ["gallery"], "user-agent": "ua"},
        "ytDlp": {"concurrent_fragment_downloads": 2, "format_sort": ["res:720"], "max_filesize": 1000},
    },
    "limits": {"maxItems": 5, "maxBytes": "1Gi", "activeDeadlineSeconds": 600, "maxItemSeconds": 60},
    "backoffLimit": 1,
    "priority": 3,
    "deletionPolicy": "Retain",
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    "suspend": True,  # admitted and valid: Suspended, no worker; never mutated
}
S3_SPEC = {
    **FULL_SPEC,
    "target": {
        "s3": {
            "bucket": "media",
            "prefix": "p/q",
            "endpoint": "http://127.0.0.1:9",
            "region": "x",
            "forcePathStyle": True,
            "credentialsSecret": {"name": "s3", "accessKeyIdKey": "id", "secretAccessKeyKey": "key"},
        }
    },
}
TEMPLATE = {k: v for k, v in FULL_SPEC.items() if k not in ("suspend", "deletionPolicy")}
FULL_SUBSCRIPTION: dict[str, Any] = {
    "interval": "1h",
    "jitter": "1m",
    "downloadTemplate": TEMPLATE,
    "concurrencyPolicy": "Forbid",
    "startingDeadlineSeconds": 60,
    "successfulRunsHistoryLimit": 2,
    "failedRunsHistoryLimit": 1,
    "suspend": True,
}
HOSTILE_STRINGS = [
    "",
    "..",
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    ".hidden",
    "\x00",
    "line\nbreak",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://",
    "ftp://example.org/x",
    "9" * 400,
    "1e309",
    "-1",
    "0",
    "0.0000001",
    "NaN",
    "$(id)",
    "`id`",
    "a" * 3000,
    "é" * 300,
    "\u202e",
    "http://127.0.0.1:9/ x",
    "CRON_TZ=UTC 0 * * * *",
    "0s",
    "1ms",
    "99999999h",
]
VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([2**63, -(2**63) - 1, 2**70]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_STRINGS),
    st.lists(st.one_of(st.integers(), st.text(max_size=8)), max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "key"]), st.integers(), max_size=2),
)
UNKNOWN_KEYS = st.sampled_from(["bogus", "Extra", "__proto__", "x.y", "claimname", "command"])


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every field and list item under ``value``, by its path."""
    found: list[Path] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def objects(value: Any, prefix: Path = ()) -> list[Path]:
    """The paths of the objects (dicts) under ``value``, itself included."""
    return [prefix] + [p for p in paths(value, prefix) if isinstance(_at(value, p[len(prefix) :]), dict)]


def _at(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def broken(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], Path]:
    """``base`` with one thing broken, and the path of what was broken."""
    spec = copy.deepcopy(base)
    fields = [p for p in paths(spec) if p[-1] != "suspend"]
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "unknown", "repeat", "both-targets"]))
    if kind == "unknown":
        where = draw(st.sampled_from(objects(spec)))
        key = draw(UNKNOWN_KEYS)
        _at(spec, where)[key] = draw(VALUES)
        return spec, (*where, key)
    if kind == "repeat":
        urls = _at(spec, _urls_path(spec))
        urls.append(urls[0])
        return spec, _urls_path(spec)
    if kind == "both-targets":
        target = _at(spec, (*_urls_path(spec)[:-1], "target"))
        target.update(FULL_SPEC["target"] | S3_SPEC["target"])
        return spec, (*_urls_path(spec)[:-1], "target")
    path = draw(st.sampled_from(fields))
    parent = _at(spec, path[:-1])
    if kind == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(VALUES)
    return spec, path


def _urls_path(spec: dict[str, Any]) -> Path:
    return ("downloadTemplate", "urls") if "downloadTemplate" in spec else ("urls",)


def names_the_field(text: str, path: Path) -> bool:
    """The text names the broken field or the object holding it (a rule across fields names that object), in the
    API server's form (`spec.urls[0]`) or the operator's (`spec.urls.0`)."""
    spelled = set()
    for cut in (path, path[:-1]):
        dotted = ".".join(["spec", *(str(p) for p in cut)])
        bracketed = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in cut)
        spelled |= {dotted, bracketed}
    return any(form in text for form in spelled)


_names = itertools.count()


def create(downloads: Downloads, plural: str, kind: str, spec: dict[str, Any]) -> tuple[str, str | None]:
    """Create the object (strict field validation); its name and the refusal's text, if refused."""
    name = f"bad-{next(_names)}"
    body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
    try:
        downloads.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, downloads.namespace, plural, body, field_validation="Strict"
        )
    except ApiException as error:
        assert error.status in (400, 422), (error.status, error.body)
        return name, str(error.body)
    return name, None


def settled(downloads: Downloads, plural: str, name: str) -> dict[str, Any]:
    """The object once the operator has written a status for its generation."""
    custom, namespace = downloads.custom, downloads.namespace

    def read() -> dict[str, Any]:
        body: dict[str, Any] = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, name)
        return body

    def done() -> bool:
        body = read()
        return bool((body.get("status") or {}).get("observedGeneration") == body["metadata"]["generation"])

    wait_until(done, 60, f"the operator's status for {plural}/{name}", interval=0.1)
    body = read()
    custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural, name)
    return body


def parses(parse: Any, spec: dict[str, Any]) -> str | None:
    """None when ``parse`` accepts the spec, else why not."""
    try:
        parse(spec)
    except ValidationError as error:
        return str(error)
    return None


def reasons(status: dict[str, Any]) -> set[str]:
    return {c.get("reason", "") for c in status.get("conditions") or []}


@dataclass(frozen=True)
class Kind:
    """A kind of object under test: how it is named, parsed, and what its status says of a good spec."""

    kind: str
    plural: str
    parse: Callable[[dict[str, Any]], object]
    message: Callable[[dict[str, Any]], str]
    accepted: Callable[[dict[str, Any]], bool]


DOWNLOAD = Kind(
    "GalleryDownload",
    PLURAL,
    parse_spec,
    lambda status: next(c["message"] for c in status["conditions"] if c["type"] == "Ready"),
    lambda status: bool(status["phase"] == "Suspended"),
)
SUBSCRIPTION = Kind(
    "GallerySubscription",
    SUBSCRIPTIONS,
    parse_subscription_spec,
    lambda status: str(status.get("message", "")),
    lambda status: "InvalidSpec" not in reasons(status),
)


def check(downloads: Downloads, kind: Kind, spec: dict[str, Any], path: Path) -> None:
    """Refused naming the field; or admitted, and then the operator's verdict is its parser's."""
    name, refusal = create(downloads, kind.plural, kind.kind, spec)
    if refusal is not None:
        assert names_the_field(refusal, path), (path, refusal)
        return
    stored = settled(downloads, kind.plural, name)
    status, problem = stored["status"], parses(kind.parse, stored["spec"])
    if problem is None:
        assert kind.accepted(status), (path, json.dumps(stored)[:3000])
        return
    assert "InvalidSpec" in reasons(status), (path, status, problem)
    assert status.get("phase", "Failed") == "Failed", status  # a subscription has no phase; a download fails
    assert names_the_field(kind.message(status), path), (path, status, problem)


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is a product bug to fix, not a flake
    suppress_health_check=[HealthCheck.too_slow],
)


def test_broken_downloads_are_refused_or_fail_naming_the_field(
    downloads: Downloads, operator: OperatorProcess, site: str
) -> None:
    """Then the same operator process is alive and runs a good download to the end."""

    @PROPERTY
    @given(case=st.one_of(broken(FULL_SPEC), broken(S3_SPEC)))
    def each(case: tuple[dict[str, Any], Path]) -> None:
        check(downloads, DOWNLOAD, *case)

    each()
    assert operator.healthy()
    downloads.create("good", pvc_spec([f"{site}/img/1.jpg"]))
    assert downloads.wait_phase("good", {"Succeeded", "Failed"}, timeout=120)["phase"] == "Succeeded"


def test_broken_subscriptions_are_refused_or_stall_naming_the_field(
    downloads: Downloads, operator: OperatorProcess
) -> None:
    @PROPERTY
    @given(case=broken(FULL_SUBSCRIPTION))
    def each(case: tuple[dict[str, Any], Path]) -> None:
        check(downloads, SUBSCRIPTION, *case)

    each()
    assert operator.healthy()


def bounded_numbers(schema: dict[str, Any], prefix: Path = ()) -> list[tuple[Path, int | float]]:
    """Every number field under ``schema`` (objects only, not inside lists) with its minimum and its maximum."""
    found: list[tuple[Path, int | float]] = []
    for key, child in (schema.get("properties") or {}).items():
        if child.get("type") in ("integer", "number"):
            found += [((*prefix, key), child[bound]) for bound in ("minimum", "maximum") if bound in child]
        found += bounded_numbers(child, (*prefix, key))
    return found


def test_every_number_bound_of_the_schema_is_itself_admitted(downloads: Downloads) -> None:
    """The API server compares integers with a bound it holds as a float64: a bound no float64 holds exactly
    (int64's maximum rounds up to 2**63, which overflows back to int64's minimum) would refuse every value."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    checked = bounded_numbers(schema)
    assert len(checked) > 20, checked
    for path, bound in checked:
        spec = copy.deepcopy(FULL_SPEC)
        parent: Any = spec
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        parent[path[-1]] = bound
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "GalleryDownload", "metadata": {"name": "edge"}}
        downloads.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, downloads.namespace, PLURAL, body | {"spec": spec}, dry_run="All"
        )
