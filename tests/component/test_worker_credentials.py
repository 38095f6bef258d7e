"""Credentials go to the site they are for: the real engines, and the headers the fixture site receives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.site import Handler
from tests.component.hostile_secrets import pod_env
from tests.component.workers import claim, run_worker
from tests.fixtures.sites import Request, serve_sites
from tests.secrets_check import leaks

COOKIE = "m3mber-c00kie"
PASSWORD = "pa55-w0rd-x"
TOKEN = "r3fresh-t0ken"


@pytest.fixture
def received() -> Iterator[list[tuple[str, str]]]:
    Handler.received = []
    yield Handler.received
    Handler.received = []


def pod_credentials(tmp_path: Path, site: str) -> dict[str, str]:
    """A cookie for the fixture site's host, a login, a refresh token and a video password."""
    tokens = {"GALLERY_AUTH_REFRESH_TOKEN": TOKEN, "GALLERY_AUTH_VIDEO_PASSWORD": PASSWORD}
    return pod_env(tmp_path, site, ("member", COOKIE), PASSWORD, **tokens)


def carrying(received: list[tuple[str, str]]) -> dict[str, bool]:
    """Path -> whether any request for it carried a credential (the cookie, the password, the token, a login)."""
    seen: dict[str, bool] = {}
    for path, headers in received:
        lower = headers.lower()
        holds = any(value in headers for value in (COOKIE, PASSWORD, TOKEN)) or "authorization:" in lower
        seen[path] = seen.get(path, False) or holds or "x-peertube-video-password" in lower
    return seen


def spec(site: str, pages: list[str], engine: str, auth_site: str | None) -> dict[str, Any]:
    auth: dict[str, Any] = {"site": auth_site} if auth_site else {}
    return {"urls": [f"{site}/{page}" for page in pages], "engine": engine, "auth": auth}


def test_gallery_dl_gives_credentials_only_to_the_extractor_of_their_site(
    tmp_path: Path, site: str, received: list[tuple[str, str]]
) -> None:
    """Credentials for `directlink` go with the direct link; the gallery page of the same host, which gallery-dl's
    generic extractor takes, and the images it links are fetched without them."""
    pages = ["cred/page.html", "cred/img/1.jpg"]
    code, report = run_worker(
        tmp_path, spec(site, pages, "gallery-dl", "directlink"), claim(tmp_path), env=pod_credentials(tmp_path, site)
    )
    assert (code, report["itemsDone"]) == (0, 3), report
    assert carrying(received) == {
        "/cred/page.html": False,
        "/cred/img/2.jpg": False,
        "/cred/img/3.jpg": False,
        "/cred/img/1.jpg": True,
    }


@pytest.mark.parametrize(("auth_site", "sent"), [("Vimeo", False), ("generic", True)])
def test_yt_dlp_gives_credentials_only_to_the_extractor_of_their_site(
    tmp_path: Path, site: str, received: list[tuple[str, str]], auth_site: str, sent: bool
) -> None:
    """Credentials for Vimeo never reach a page yt-dlp's generic extractor takes, nor the video it finds there;
    the same credentials for the generic extractor do."""
    code, report = run_worker(
        tmp_path,
        spec(site, ["cred/video.html"], "yt-dlp", auth_site),
        claim(tmp_path),
        env=pod_credentials(tmp_path, site),
    )
    assert (code, report["itemsDone"]) == (0, 1), report
    assert carrying(received) == {"/cred/video.html": sent, "/cred/v.mp4": sent}


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp"])
def test_credentials_without_a_site_are_for_the_download_s_own_urls(
    tmp_path: Path, site: str, received: list[tuple[str, str]], engine: str
) -> None:
    """The form without `auth.site` keeps working: the extractor of each URL the download names gets them."""
    page = "cred/img/4.jpg" if engine == "gallery-dl" else "cred/video.html"
    code, report = run_worker(
        tmp_path, spec(site, [page], engine, None), claim(tmp_path), env=pod_credentials(tmp_path, site)
    )
    assert (code, report["itemsDone"]) == (0, 1), report
    assert carrying(received)[f"/{page}"]


REDDIT_POST = "https://www.reddit.com/r/pics/comments/abc123/a_gallery/"
DEVIANTART_GALLERY = "https://www.deviantart.com/someone/gallery"
REDDIT_HOSTS = ["www.reddit.com", "oauth.reddit.com"]
CLIENT_ID = "r3ddit-client-id"
CLIENT_SECRET = "r3ddit-client-s3cret"


def reddit_and_deviantart(request: Request) -> tuple[int, Any]:
    """Reddit's API as gallery-dl's Reddit extractor uses it: a token, then a post that links a DeviantArt
    gallery. DeviantArt refuses everything (what it was sent is what counts)."""
    if request.host in REDDIT_HOSTS and request.path.startswith("/api/v1/access_token"):
        return 200, {"access_token": "reddit-access", "token_type": "bearer", "expires_in": 3600}
    if request.host in REDDIT_HOSTS and request.path.startswith("/comments/abc123/.json"):
        post = {
            "id": "abc123",
            "title": "a gallery",
            "subreddit": "pics",
            "author": "someone",
            "created_utc": 1700000000,
            "url": DEVIANTART_GALLERY,
            "is_video": False,
            "is_self": False,
            "selftext_html": None,
            "permalink": "/r/pics/comments/abc123/a_gallery/",
        }
        listing = {"kind": "Listing", "data": {"children": [{"kind": "t3", "data": post}]}}
        return 200, [listing, {"kind": "Listing", "data": {"children": []}}]
    return 400, {"error": "invalid_request"}


def test_a_linked_gallery_on_another_site_gets_none_of_the_credentials(
    tmp_path: Path, received: list[tuple[str, str]]
) -> None:
    """The issue's case with gallery-dl's real extractors: a Reddit post (credentials for `reddit`: client id,
    client secret, refresh token) links a DeviantArt gallery. gallery-dl hands the link to its DeviantArt extractor,
    which asks deviantart.com for a token: with none of Reddit's values (on the old code, with all three)."""
    tokens = {
        "GALLERY_AUTH_CLIENT_ID": CLIENT_ID,
        "GALLERY_AUTH_CLIENT_SECRET": CLIENT_SECRET,
        "GALLERY_AUTH_REFRESH_TOKEN": TOKEN,
    }
    with serve_sites(tmp_path, [*REDDIT_HOSTS, "www.deviantart.com"], reddit_and_deviantart) as (proxy, ca, sites):
        env = {
            **tokens,
            "HTTPS_PROXY": proxy,
            "NO_PROXY": "",
            "REQUESTS_CA_BUNDLE": str(ca),
            "HOME": str(tmp_path),  # gallery-dl caches tokens there
        }
        spec = {"urls": [REDDIT_POST], "engine": "gallery-dl", "auth": {"site": "reddit"}}
        _, report = run_worker(tmp_path, spec, claim(tmp_path), env=env)
    secrets = (CLIENT_ID, CLIENT_SECRET, TOKEN)
    to_reddit = "\n".join(r.text() for host in REDDIT_HOSTS for r in sites.to(host))
    to_deviantart = sites.to("www.deviantart.com")
    assert TOKEN in to_reddit, (
        report["failures"],
        [r.text() for r in sites.requests],
    )  # Reddit got its own credentials
    assert to_deviantart, (report, [r.text() for r in sites.requests])  # the link was followed
    # In any encoding: a client id and secret go in an HTTP Basic header, in base64.
    assert leaks("\n".join(r.text() for r in to_deviantart), secrets) == []


@pytest.mark.parametrize("engine", ["gallery-dl", "yt-dlp", "auto"])
def test_a_site_no_engine_knows_is_refused_naming_the_field(
    tmp_path: Path, site: str, received: list[tuple[str, str]], engine: str
) -> None:
    """A misspelt site would send the credentials nowhere, silently: the run fails before any request instead."""
    code, report = run_worker(tmp_path, spec(site, ["cred/img/5.jpg"], engine, "redit"), claim(tmp_path))
    assert code == 2, report
    [failure] = report["failures"]
    assert failure["reason"] == "InvalidSpec" and "spec.auth.site: 'redit'" in failure["message"], failure
    assert received == []
