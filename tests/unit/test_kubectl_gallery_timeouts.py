"""`kubectl gallery` never waits for ever on an API server that accepted the connection and went silent: every
call is bounded, and the user gets one line naming what could not be done (exit status 1), not a hang."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import threading
import time

import pytest

from gallery_harness.procs import wait_until
from gallery_operator.cli import kubectl_gallery
from tests.unit.conftest import SilentApi


def test_a_silent_api_server_ends_the_plugin_with_an_error(
    silent_api: SilentApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kubectl_gallery, "CALL_TIMEOUT", (1.0, 0.5))
    ended: list[int] = []
    stderr = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stderr(stderr):
            ended.append(kubectl_gallery.main(["--kubeconfig", str(silent_api.kubeconfig), "status", "album"]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # urllib3 tries a GET four times: about 2 s with the timeout above
    assert ended == [1], "the plugin still waits for the silent API server"
    assert "get gallerydownloads in namespace ns: the API server did not answer" in stderr.getvalue()


WAITS_FOR_THE_POD = """
import sys
from gallery_operator.cli import kubectl_gallery
kubectl_gallery.CALL_TIMEOUT = (60.0, 60.0)
kube = kubectl_gallery.connect(sys.argv[1], None, None)
kubectl_gallery.read_claim(kube, "album", "claim", "album", "image", 60)
"""


def test_a_second_interrupt_ends_a_plugin_waiting_on_a_call(silent_api: SilentApi) -> None:
    """The first Ctrl-C is noted while the reader pod's creation waits on the API server (the plugin goes on to
    remove the pod after the call); a second one ends it at once and names the pod it may leave."""
    plugin = subprocess.Popen(
        [sys.executable, "-c", WAITS_FOR_THE_POD, str(silent_api.kubeconfig)], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: silent_api.connections, 60, "the reader pod's creation on the wire")
        plugin.send_signal(signal.SIGINT)
        time.sleep(1)
        assert plugin.poll() is None, "the first interrupt ended the plugin inside a call"
        plugin.send_signal(signal.SIGINT)
        _, stderr = plugin.communicate(timeout=30)
    finally:
        plugin.kill()
    assert plugin.returncode == 130
    assert "interrupted again; the reader pod gallery-catalogue-album-" in stderr
    assert "kubectl -n ns delete pod gallery-catalogue-album-" in stderr
