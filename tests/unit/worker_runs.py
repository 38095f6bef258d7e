"""A worker Run on a claim folder under a test's tmp_path, for the unit tests of the worker's run layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker.run import Run, open_catalogue
from gallery_operator.worker.storage import ClaimStore
from gallery_operator.workerconfig import PvcStorage, WorkerConfig


def claim_run(tmp_path: Path, **spec: Any) -> Run:
    """A run of one URL into ``tmp_path/root``; ``spec`` adds fields of the download's spec."""
    full = {"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "x"}}, **spec}
    storage = PvcStorage(root=str(tmp_path / "root"), location="pvc://x/dl")
    config = WorkerConfig(namespace="ns", name="dl", uid="u", run="r", spec=parse_spec(full), storage=storage)
    store = ClaimStore(storage)
    return Run(config, store, tmp_path / "scratch", open_catalogue(store))
