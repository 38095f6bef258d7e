"""The incremental stop rule (`options.stopAfterKnown`, set by a subscription on its runs) in each engine's options."""

from __future__ import annotations

from pathlib import Path

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker import options


def spec(**opts: int) -> dict[str, object]:
    return {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "m"}}, "options": opts}


def test_stop_after_known_maps_to_gallery_dls_abort(tmp_path: Path) -> None:
    config = options.gallery_dl_config(
        parse_spec(spec(stopAfterKnown=7)), tmp_path, tmp_path, tmp_path, options.Credentials()
    )
    assert config[("extractor", "skip")] == "abort:7"
    plain = options.gallery_dl_config(parse_spec(spec()), tmp_path, tmp_path, tmp_path, options.Credentials())
    assert plain[("extractor", "skip")] is True


def test_stop_after_known_maps_to_yt_dlps_break_on_existing(tmp_path: Path) -> None:
    params = options.yt_dlp_options(
        parse_spec(spec(stopAfterKnown=3)), tmp_path, tmp_path, tmp_path, options.Credentials()
    )
    assert params["break_on_existing"] is True
    assert params["download_archive"]  # the archive it breaks on
    plain = options.yt_dlp_options(parse_spec(spec()), tmp_path, tmp_path, tmp_path, options.Credentials())
    assert "break_on_existing" not in plain
