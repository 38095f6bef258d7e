"""Items transferred at once into a folder that does not exist yet all land (issue 26's pool against gallery-dl's
real PathFormat): gallery-dl makes a missing folder when opening a file fails, without ``exist_ok`` since it writes
one file at a time, so two transfers opening the first files of a new folder together failed one of them with
FileExistsError (seen on the paged Danbooru listing: 409 of 410 items, one ``Internal``)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from gallery_dl import config, extractor, path

from gallery_operator.worker.gallerydl import track_items

pytestmark = pytest.mark.component

TRANSFERS = 8
ROUNDS = 30


class _Sink:
    """What an item on a claim asks of its run: no upload stream (the file stays on disk), no limits."""

    def stream(self, target: Path) -> None:
        return None

    def count(self, size: int) -> bool:
        return False

    def overdue(self, started: float) -> str | None:
        return None


def _open_together(pathfmt: Any, sink: _Sink, number: int) -> list[BaseException]:
    """TRANSFERS copies of one PathFormat, as the pool makes them, open their files in one new folder at once."""
    barrier = threading.Barrier(TRANSFERS)
    errors: list[BaseException] = []

    def transfer(index: int) -> None:
        item = copy.copy(pathfmt)
        track_items(item, sink, lambda: f"http://site.test/{number}/{index}.jpg")  # type: ignore[arg-type]
        item.set_filename({"category": "danbooru", "id": index, "md5": str(index), "extension": "jpg"})
        item.build_path()
        barrier.wait()
        try:
            with item.open("wb") as handle:
                handle.write(b"x")
        except BaseException as error:  # the test reports what each transfer met
            errors.append(error)

    threads = [threading.Thread(target=transfer, args=(index,)) for index in range(TRANSFERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_transfers_opening_the_first_files_of_a_new_folder_together_all_succeed(tmp_path: Path) -> None:
    config.set((), "base-directory", str(tmp_path))
    try:
        found = extractor.find("https://danbooru.donmai.us/posts?tags=landscape")
        assert found is not None
        failed = []
        for number in range(ROUNDS):
            pathfmt = path.PathFormat(found)
            pathfmt.set_directory({"category": "danbooru", "search_tags": f"new-{number}"})
            if errors := _open_together(pathfmt, _Sink(), number):
                failed.append((number, errors))
            files = sorted(p.name for p in Path(pathfmt.realdirectory).iterdir())
            assert len(files) == TRANSFERS, (number, files, errors)
        assert failed == []
    finally:
        config.clear()
