"""gallery-dl start-up shortcuts: the forked extractor lookup answers exactly what gallery-dl's own search answers,
and requests stops rescanning the environment only when there is nothing in it for requests."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from gallery_dl import config, extractor

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker import inputs
from gallery_operator.worker.gallerydl import GalleryDl
from gallery_operator.worker.lookahead import Lookahead
from gallery_operator.worker.options import Credentials

URLS = [
    "https://imgur.com/a/abcdefg",
    "http://127.0.0.1:8080/big/1.mp4",
    "https://example.org/page.html",
    "generic:https://example.org/page.html",
]


def test_the_child_finds_what_gallery_dl_finds() -> None:
    answers = Lookahead(URLS).result()
    for url in URLS:
        found = extractor.find(url)
        expected = (type(found).__module__, type(found).__name__) if found is not None else None
        assert answers[url] == expected, url
    assert answers["http://127.0.0.1:8080/big/1.mp4"] == ("gallery_dl.extractor.directlink", "DirectlinkExtractor")
    assert answers["https://example.org/page.html"] is None


def test_only_urls_gallery_dl_may_see_are_looked_up() -> None:
    spec = {"urls": ["https://a.example/v"], "engine": "yt-dlp"}
    assert Lookahead.from_config(json.dumps({"spec": spec})).result() == {}
    assert Lookahead.from_config("not json").result() == {}
    assert Lookahead.from_config(None).result() == {}
    auto = Lookahead.from_config(json.dumps({"spec": {"urls": ["https://a.example/v.jpg"]}})).result()
    assert auto == {"https://a.example/v.jpg": ("gallery_dl.extractor.directlink", "DirectlinkExtractor")}


def test_requests_keeps_reading_the_environment_when_it_holds_proxy_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "NETRC":
            monkeypatch.delenv(name)
    assert not inputs.read().requests.shaped
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert inputs.read().requests.shaped
    monkeypatch.delenv("HTTPS_PROXY")
    (tmp_path / ".netrc").write_text("machine example.org login a password b\n")
    assert inputs.read().requests.shaped


def test_a_ca_bundle_from_the_environment_still_verifies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name in ("NETRC", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    spec = parse_spec({"urls": ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "x"}}})
    GalleryDl(spec, tmp_path, tmp_path / "state", tmp_path / "scratch", Credentials(), inputs.read().requests)
    assert config.get(("extractor",), "proxy-env") is False
    assert config.get(("extractor",), "verify") == "/etc/company-ca.pem"
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    GalleryDl(spec, tmp_path, tmp_path / "state", tmp_path / "scratch", Credentials(), inputs.read().requests)
    assert config.get(("extractor",), "proxy-env") is None  # gallery-dl's default: read the environment
    config.clear()


def test_a_child_that_does_not_answer_is_killed_and_ignored() -> None:
    lookahead = Lookahead([])
    child = subprocess.Popen(["sleep", "30"])
    read_end, write_end = os.pipe()
    lookahead.pid, lookahead.fd = child.pid, read_end
    started = time.monotonic()
    assert lookahead.result(timeout=0.3) == {}
    assert time.monotonic() - started < 5
    os.close(write_end)
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)  # killed and reaped, not left running
    child.returncode = -9  # reaped above; keeps Popen from waiting for it again
