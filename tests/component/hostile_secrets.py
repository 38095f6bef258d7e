"""The secrets a hostile site echoes back, and the worker's environment that carries them as a pod's Secrets would:
shared by the component and e2e secret tests."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

COOKIE = "Ck-9f/Zx+Q=w7"
PASSWORD = "pä ss@w0rd&x"
API_KEY = "AKtok3n_4pi_k3y"
S3_SECRET = "aws/SeCrEt+KeY9"
SECRETS = (COOKIE, PASSWORD, API_KEY, S3_SECRET)


def pod_env(tmp_path: Path, site: str, cookie: tuple[str, str], password: str, **tokens: str) -> dict[str, str]:
    """The worker's environment as a pod gets it from Secrets: a cookie for the site's host, a login, and
    ``tokens`` (environment variable -> value)."""
    folder = tmp_path / "secret"
    folder.mkdir()
    host = urllib.parse.urlsplit(site).hostname
    name, value = cookie
    (folder / "cookies.txt").write_text(f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n")
    return {
        "GALLERY_WORKER_COOKIES_DIR": str(folder),
        "GALLERY_AUTH_USERNAME": "someone",
        "GALLERY_AUTH_PASSWORD": password,
        **tokens,
    }


REDIRECTS = ["leak/redirect/{}.{}".format(*page) for page in (("5", "html"), ("empty-6", "html"), ("deny-7", "html"))]
"""Pages that redirect to a URL carrying the secrets: 404, a page without media, 403."""
