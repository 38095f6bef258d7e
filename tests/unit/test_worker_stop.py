"""A limit stops the run where an item's bytes arrive: the shared item layer raises the worker's own Stopped, and
the gallery-dl adapter turns it into gallery-dl's StopExtraction (which its downloader answers by ending the
download). The item layer knows no engine's exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from gallery_dl import exception

import gallery_operator.worker.items
from gallery_operator.worker.engines import Stopped
from gallery_operator.worker.gallerydl import GalleryDlItemFile
from gallery_operator.worker.items import ItemBytes, ItemFile
from tests.unit.worker_runs import claim_run


@pytest.mark.parametrize(("file_type", "raised"), [(ItemFile, Stopped), (GalleryDlItemFile, exception.StopExtraction)])
def test_crossing_the_byte_limit_stops_the_write(tmp_path: Path, file_type: type[ItemFile], raised: type) -> None:
    run = claim_run(tmp_path, limits={"maxBytes": "16"})
    with (tmp_path / "item.part").open("wb") as handle:
        target = file_type(handle, ItemBytes(run, None))
        target.write(b"x" * 10)
        with pytest.raises(raised):
            target.write(b"x" * 10)
    assert run.should_stop()
    assert [failure.reason for failure in run.failures] == ["LimitExceeded"]


def test_the_item_layer_imports_no_engine() -> None:
    tree = ast.parse(Path(gallery_operator.worker.items.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("gallery_dl", "yt_dlp")}
