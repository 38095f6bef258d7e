"""The component tier's shared fixtures: a listener on an internal address, a fixture site of the module's own, and
a worker's folders with a real MPEG-TS file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery_harness.site import real_segment, serve
from tests.component.program_wall import Internal


@pytest.fixture
def internal() -> Iterator[Internal]:
    listener = Internal()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def loopback_site() -> Iterator[str]:
    with serve() as url:
        yield url


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(target, scratch) of a worker, with a real two-second MPEG-TS file in the scratch folder."""
    target, scratch = tmp_path / "claim", tmp_path / "scratch"
    target.mkdir()
    scratch.mkdir()
    (scratch / "in.ts").write_bytes(real_segment())
    return target, scratch
