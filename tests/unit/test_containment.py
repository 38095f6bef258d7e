"""Where an engine wrote decides nothing: paths that leave the target root are refused, links included."""

from __future__ import annotations

from pathlib import Path

from tests.unit.worker_runs import claim_run


def test_paths_inside_the_root_are_relative_and_escapes_are_none(tmp_path: Path) -> None:
    run = claim_run(tmp_path)
    root = tmp_path / "root"
    (root / "album").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside")
    (root / "album" / "file-link.jpg").symlink_to(tmp_path / "outside" / "x.jpg")
    placement = run.placement
    assert placement.relative(root / "album" / "1.jpg") == "album/1.jpg"
    assert placement.relative(root / "album" / "1.jpg") == "album/1.jpg"  # the folder now from the cache
    assert placement.relative(root / "album" / ".." / "2.jpg") == "2.jpg"
    assert placement.relative(root / ".." / "escape.jpg") is None
    assert placement.relative(root / "album" / ".." / "..") is None
    assert placement.relative(root / "link-out" / "x.jpg") is None
    assert placement.relative(root / "album" / "file-link.jpg") is None
