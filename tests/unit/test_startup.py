"""gallery-dl start-up shortcuts: requests stops rescanning the environment only when there is nothing in it for
requests (the extractor lookup's shortcut is tests/unit/test_url_index.py's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gallery_dl import config

from gallery_operator.api.spec import parse_spec
from gallery_operator.worker import inputs
from gallery_operator.worker.gallerydl import GalleryDl
from gallery_operator.worker.options import Credentials


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
