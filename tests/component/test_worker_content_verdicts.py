"""gallery-dl's own verdicts on a body it received whole, with no transport error behind them (an HTML page, an empty
file, a redirect that ends on a page where media was expected), end with their own stable reason,
`UnexpectedContent`, never `Internal`: the real worker and the real gallery-dl against the fixture site."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery_harness.site import Handler, image_bytes, serve
from gallery_operator.workerconfig import PvcStorage
from tests.component.workers import run_worker

PAGE = b"<!doctype html><html><body><p>Please log in to see this image.</p></body></html>"
SECRET = "AKtok3n-c0ntent-4711"  # an API key the pod holds (from a Secret)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve() as url:
        Handler.files.update(
            {
                "/verdict/page.jpg": (PAGE, "text/html; charset=utf-8"),
                "/verdict/empty.jpg": (b"", "image/jpeg"),
                "/verdict/notice.html": (PAGE, "text/html"),
                "/verdict/login.html": (PAGE, "text/html"),
                "/verdict/good.jpg": (image_bytes(7), "image/jpeg"),
            }
        )
        yield url


def redirected(site: str, to: str) -> str:
    return f"{site}/redirect/moved.jpg?to={urllib.parse.quote(to, safe='')}"


@pytest.mark.parametrize("case", ["html", "empty", "redirect-to-page"])
def test_a_content_verdict_of_gallery_dl_has_its_own_reason(tmp_path: Path, site: str, case: str) -> None:
    url = {
        "html": f"{site}/verdict/page.jpg",
        "empty": f"{site}/verdict/empty.jpg",
        "redirect-to-page": redirected(site, f"{site}/verdict/notice.html"),
    }[case]
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    code, report = run_worker(tmp_path, {"urls": [url], "engine": "gallery-dl"}, storage)
    assert report["outcome"] == "Failed", report
    [failure] = report["failures"]
    assert failure["reason"] == "UnexpectedContent", failure
    assert code == 1  # not permanent: a page served instead of the file may be gone on the next try
    assert not [p for p in (tmp_path / "claim").rglob("*") if p.is_file() and ".gallery-operator" not in p.parts]


def test_a_content_verdict_beside_a_good_item_and_its_message_redacted(tmp_path: Path, site: str) -> None:
    """One good image and one HTML page in the same run: the run partly succeeds, the page's failure says why in
    gallery-dl's words, and a secret value in the URL of the redirect it names is redacted as in every message. (The
    words of that URL do not decide the reason: "login" in it made this `AuthRequired` before.)"""
    storage = PvcStorage(root=str(tmp_path / "claim"), location="pvc://m/dl")
    leaky = f"{site}/verdict/login.html?session={SECRET}"
    spec = {"urls": [f"{site}/verdict/good.jpg", redirected(site, leaky)], "engine": "gallery-dl"}
    code, report = run_worker(tmp_path, spec, storage, env={"GALLERY_AUTH_API_KEY": SECRET})
    assert (code, report["outcome"], report["itemsDone"]) == (0, "PartiallySucceeded", 1), report
    [failure] = report["failures"]
    assert failure["reason"] == "UnexpectedContent", failure
    assert failure["message"].startswith("HTTP redirect to "), failure
    assert SECRET not in str(report), report
