"""Where an engine wrote decides nothing: paths that leave the target root are refused, links included."""

from __future__ import annotations

from pathlib import Path

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker.run import Run
from gallery_operator.worker.storage import ClaimStore
from gallery_operator.workerconfig import PvcStorage, WorkerConfig


def make_run(tmp_path: Path) -> Run:
    spec = parse_spec({"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "x"}}})
    storage = PvcStorage(root=str(tmp_path / "root"), location="pvc://x/dl")
    config = WorkerConfig(namespace="ns", name="dl", uid="u", run="r", spec=spec, storage=storage)
    return Run(config, ClaimStore(storage), tmp_path / "scratch")


def test_paths_inside_the_root_are_relative_and_escapes_are_none(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    root = tmp_path / "root"
    (root / "album").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside")
    (root / "album" / "file-link.jpg").symlink_to(tmp_path / "outside" / "x.jpg")
    assert run._relative(root / "album" / "1.jpg") == "album/1.jpg"
    assert run._relative(root / "album" / "1.jpg") == "album/1.jpg"  # the folder now from the cache
    assert run._relative(root / "album" / ".." / "2.jpg") == "2.jpg"
    assert run._relative(root / ".." / "escape.jpg") is None
    assert run._relative(root / "album" / ".." / "..") is None
    assert run._relative(root / "link-out" / "x.jpg") is None
    assert run._relative(root / "album" / "file-link.jpg") is None
