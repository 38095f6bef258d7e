"""The interface between a worker run and its engines (gallery-dl in gallerydl.py, yt-dlp in ytdlp.py), and
what both read from the pod."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from gallery_operator.worker import options
from gallery_operator.worker.storage import PartUpload
from gallery_operator.workerconfig import PASSWORD_ENV, TOKEN_ENVS, USERNAME_ENV


class Sink(Protocol):
    """What an engine tells the run about each item."""

    def stored(
        self,
        path: Path,
        source_url: str,
        engine: str,
        extractor: str,
        metadata: dict[str, Any],
        sha256: str | None = None,
        sidecar: tuple[Path, dict[str, Any]] | None = None,
    ) -> None:
        """An item is stored; ``sidecar`` is where its full metadata goes and what it is, when sidecars are on."""
        ...

    def skipped(self, path: Path | None, source_url: str) -> None: ...
    def failed(self, url: str, reason: str, message: str) -> None: ...
    def should_stop(self) -> bool: ...
    def count(self, size: int) -> bool:
        """Bytes of an unfinished file arrived (or, negative, left the count); True when the byte limit is crossed."""
        ...

    def stream(self, path: Path) -> PartUpload | None:
        """Where the bytes of ``path`` go while they are written, when the target takes them that way."""
        ...

    def place(self, path: Path, source_url: str) -> Path:
        """Where the item from ``source_url`` is stored, when its engine would name it ``path``."""
        ...

    def overdue(self, started: float) -> str | None:
        """Why an item downloading since ``started`` (time.monotonic) must stop now, or None."""
        ...

    def clean(self, value: Any) -> Any:
        """``value`` (a string, or JSON-like) without the run's secret values: what an engine names files after
        (credential shapes stay: they may match ordinary names; the catalogue and reports lose them)."""
        ...


class Engine(Protocol):
    name: str

    def supports(self, url: str) -> bool: ...
    def knows(self, site: str) -> bool:
        """Whether ``site`` names one of the engine's extractors (what spec.auth.site names)."""
        ...

    def run(self, url: str, sink: Sink) -> None: ...


def environment_shapes_requests() -> bool:
    """Whether requests' ``trust_env`` would change more than the CA bundle: proxy variables or a netrc."""
    if urllib.request.getproxies() or os.environ.get("NETRC"):
        return True
    # os.path.expanduser, as requests uses: it leaves "~" alone when there is no home (a pod's arbitrary user),
    # where Path.expanduser raises.
    return any(Path(os.path.expanduser(f"~/{name}")).exists() for name in (".netrc", "_netrc"))  # noqa: PTH111


def pod_credentials(cookies: Path | None) -> options.Credentials:
    """Credentials from the pod: the cookies copy and the username/password env set from Secrets."""
    tokens = tuple((name, value) for name, env in TOKEN_ENVS.items() if (value := os.environ.get(env)))
    return options.Credentials(
        cookies_file=cookies,
        username=os.environ.get(USERNAME_ENV),
        password=os.environ.get(PASSWORD_ENV),
        tokens=tokens,
    )
