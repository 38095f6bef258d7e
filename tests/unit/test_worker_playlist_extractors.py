"""A pool thread's YoutubeDL (worker/playlist.py) gets the engine thread's extractor table instead of building it
again: the same extractors in the same order as yt-dlp's own table for the same parameters, none bound to another
YoutubeDL, and the worker's allowlist of extractors (yt-dlp's ``allowed_extractors``) kept."""

from __future__ import annotations

from typing import Any

import pytest
from yt_dlp import YoutubeDL

from gallery_operator.worker.playlist import entry_downloader


def table(ydl: Any) -> list[tuple[str, type]]:
    return [(key, ie if isinstance(ie, type) else type(ie)) for key, ie in ydl._ies.items()]


@pytest.mark.parametrize("allowed", [None, ["generic", "youtube"]])
def test_a_pool_downloader_has_yt_dlp_s_own_table_for_its_parameters(allowed: list[str] | None) -> None:
    params: dict[str, Any] = {"quiet": True} if allowed is None else {"quiet": True, "allowed_extractors": allowed}
    main = YoutubeDL(dict(params))
    pool = entry_downloader(dict(params), list(main._ies.values()))
    assert table(pool) == table(YoutubeDL(dict(params)))
    assert len(pool._ies) == 2 if allowed else len(pool._ies) > 1000


def test_no_extractor_instance_is_shared_with_the_engine_thread() -> None:
    """Each extractor instance answers to its own YoutubeDL's parameters (here told apart by their timeouts)."""
    main = YoutubeDL({"quiet": True, "socket_timeout": 3})
    engine_generic = main.get_info_extractor("Generic")  # the engine thread's instance, bound to it, in its table
    pool = entry_downloader({"quiet": True, "socket_timeout": 7}, list(main._ies.values()))
    assert table(pool) == table(main)
    generic = pool._ies["Generic"]
    assert not isinstance(generic, type)
    assert generic is not engine_generic
    assert pool.get_info_extractor("Generic") is generic
    assert (generic.get_param("socket_timeout"), engine_generic.get_param("socket_timeout")) == (7, 3)
