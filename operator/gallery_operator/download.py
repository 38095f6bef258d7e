"""A download as the operator runs it: `Download` (identity and parsed spec) and `parse_download`, the one place a
watched object's spec becomes one (or the reason, field named, why it cannot run). Pure: the controller keeps the
parse cache, one result per (uid, generation)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

from pydantic import ValidationError

from gallery_operator.api.spec import GalleryDownloadSpec, describe_validation, parse_spec
from gallery_operator.config import Settings
from gallery_operator.jobs import spec_problem
from gallery_operator.keys import Key
from gallery_operator.snapshots import DownloadSnapshot

RUN_ID_LENGTH = 10

# Spec fields that do not change what a run downloads: editing them must not start a new run.
RUN_NEUTRAL_FIELDS = frozenset({"suspend", "priority", "deletion_policy"})


@dataclass(frozen=True)
class Download:
    """The identity and parsed spec of one GalleryDownload."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    spec: GalleryDownloadSpec

    @property
    def key(self) -> Key:
        return Key(self.namespace, self.name)

    @functools.cached_property
    def run_id(self) -> str:
        """Hash of the uid and every spec field that changes what is downloaded (computed once per object)."""
        fields = self.spec.model_dump(mode="json", by_alias=True, exclude=set(RUN_NEUTRAL_FIELDS))
        canonical = json.dumps({"uid": self.uid, "spec": fields}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:RUN_ID_LENGTH]


def parse_download(snapshot: DownloadSnapshot, settings: Settings) -> Download | str:
    """The download a snapshot describes, or why it cannot run (the field named): what the schema let through but
    the model, or a worker Job, cannot take."""
    try:
        spec = parse_spec(snapshot.spec)
    except ValidationError as error:
        return describe_validation(error)
    download = Download(snapshot.namespace, snapshot.name, snapshot.uid, snapshot.generation, snapshot.created, spec)
    return spec_problem(download, settings) or download
