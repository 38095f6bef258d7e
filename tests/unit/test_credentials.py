"""Credentials are options of the site they are for, in the real engines' own configuration lookups (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gallery_dl import config, extractor
from yt_dlp import YoutubeDL
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.extractor.peertube import PeerTubeIE
from yt_dlp.extractor.vimeo import VimeoIE

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker import options
from gallery_operator.worker.gallerydl import GalleryDl
from gallery_operator.worker.inputs import RequestsEnvironment
from gallery_operator.worker.options import Credentials
from gallery_operator.worker.ytdlp import scoped_login

REDDIT = "https://www.reddit.com/r/pics/comments/abc123/title/"
DEVIANTART = "https://www.deviantart.com/someone/gallery"


@pytest.fixture
def gallery_dl_config() -> Any:
    config.clear()
    yield config
    config.clear()


def test_gallery_dl_credentials_are_read_only_by_the_extractor_of_their_site(
    tmp_path: Path, gallery_dl_config: Any
) -> None:
    """A Reddit download's tokens: the Reddit extractor reads them, the DeviantArt extractor a linked gallery would
    be handed to reads nothing (on the old code, every extractor read `extractor.refresh-token`)."""
    spec = parse_spec({"urls": [REDDIT], "target": {"pvc": {"claimName": "x"}}, "auth": {"site": "reddit"}})
    creds = options.Credentials(
        cookies_file=tmp_path / "c.txt", username="u", password="p", tokens=(("refresh_token", "t0ken"),)
    )
    sites = options.credential_sites(spec, lambda url: "unused")
    settings = options.gallery_dl_config(spec, tmp_path, tmp_path, tmp_path, creds, sites)
    credential_keys = ("cookies", "username", "password", "refresh-token")
    assert {path[:-1] for path in settings if path[-1] in credential_keys} == {("extractor", "reddit")}
    for path, value in settings.items():
        gallery_dl_config.set(path[:-1], path[-1], value)
    reddit, deviantart = extractor.find(REDDIT), extractor.find(DEVIANTART)
    assert (reddit.category, deviantart.category) == ("reddit", "deviantart")
    assert (reddit.config("refresh-token"), reddit.config("password")) == ("t0ken", "p")
    assert reddit.config("cookies") == str(tmp_path / "c.txt")
    for key in ("refresh-token", "password", "username", "cookies"):
        assert deviantart.config(key) is None, key


def test_without_a_site_the_credentials_are_for_the_download_s_own_urls() -> None:
    spec = parse_spec({"urls": [REDDIT, DEVIANTART], "target": {"pvc": {"claimName": "x"}}})
    assert options.credential_sites(spec, lambda url: extractor.find(url).category) == {"reddit", "deviantart"}


def test_yt_dlp_hands_the_login_only_to_the_extractor_of_its_site() -> None:
    """PeerTube sends the video password as a header; credentials for Vimeo never become that header."""
    login = {"videopassword": "v1deo-pass", "username": "u", "password": "p"}
    plain = InfoExtractor.get_param
    InfoExtractor.get_param = scoped_login(plain, login, frozenset({"vimeo"}))
    try:
        with YoutubeDL({"quiet": True}) as ydl:
            peertube, vimeo = PeerTubeIE(ydl), VimeoIE(ydl)
            assert peertube._get_headers() == {}
            assert peertube.get_param("username") is None and peertube.get_param("password", "none") == "none"
            assert vimeo.get_param("videopassword") == "v1deo-pass"
            assert vimeo._get_login_info() == ("u", "p")
            assert vimeo.get_param("quiet") is True  # other parameters as before
    finally:
        InfoExtractor.get_param = plain
    with YoutubeDL({"quiet": True, "videopassword": "v1deo-pass"}) as ydl:  # the old, global way
        assert PeerTubeIE(ydl)._get_headers() == {"x-peertube-video-password": "v1deo-pass"}


@pytest.mark.parametrize(
    ("site", "known"), [("reddit", True), ("danbooru", True), ("mastodon.social", True), ("redit", False)]
)
def test_gallery_dl_knows_its_categories_and_those_of_site_instances(tmp_path: Path, site: str, known: bool) -> None:
    spec = parse_spec({"urls": [REDDIT], "target": {"pvc": {"claimName": "x"}}})
    engine = GalleryDl(spec, tmp_path, tmp_path, tmp_path, Credentials(), RequestsEnvironment())
    assert engine.knows(site) is known
