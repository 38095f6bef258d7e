"""`kubectl gallery` never waits for ever on an API server that accepted the connection and went silent: every
call is bounded, and the user gets one line naming what could not be done (exit status 1), not a hang."""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

import pytest

from gallery_operator.cli import kubectl_gallery


def test_a_silent_api_server_ends_the_plugin_with_an_error(
    silent_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubectl_gallery, "CALL_TIMEOUT", (1.0, 0.5))
    ended: list[int] = []
    stderr = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stderr(stderr):
            ended.append(kubectl_gallery.main(["--kubeconfig", str(silent_kubeconfig), "status", "album"]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # urllib3 tries a GET four times: about 2 s with the timeout above
    assert ended == [1], "the plugin still waits for the silent API server"
    assert "get gallerydownloads in namespace ns: the API server did not answer" in stderr.getvalue()
