"""The program wall's test parts: the egress rules that allow only the fixture site, a listener on an internal
address, and code run inside a process with the worker's wall installed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

from gallery_harness.site import real_segment
from gallery_operator.workerconfig import Egress

ONLY_THE_SITE = Egress(allow_private_networks=True, allowed_domains=["127.0.0.1"])
"""The fixture site (127.0.0.1) is allowed; 127.0.0.2 stands for an internal address the guard refuses."""


SETTLE = b"settle"
"""What ``Internal.settle`` sends on a connection of its own: answered, not recorded."""


class Internal:
    """A listener on 127.0.0.2 that records every connection and answers like a small video server."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.2", 0))
        self.url = f"http://127.0.0.2:{self.server.getsockname()[1]}"
        self.connections: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        body = real_segment()
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with client:
                client.settimeout(2)
                try:
                    request = client.recv(4096)
                    if request == SETTLE:
                        client.sendall(SETTLE)
                        continue
                    self.connections.append(request)
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                except OSError:
                    self.connections.append(b"")

    def settle(self) -> None:
        """Return once every connection made before the call is recorded: a program that connected and exited
        leaves its connection to be accepted and recorded later by the listener's thread. The listener serves
        connections one at a time in the order they came, so when a connection of this call's own is answered,
        every earlier one has been recorded."""
        with socket.create_connection(self.server.getsockname(), timeout=30) as probe:
            probe.sendall(SETTLE)
            assert probe.recv(len(SETTLE)) == SETTLE

    def close(self) -> None:
        self.server.close()


DRIVER = """
import json, os, subprocess, sys
from pathlib import Path
from gallery_operator.worker import inputs, programs
target, scratch = Path(sys.argv[1]), Path(sys.argv[2])
marker = scratch / "marker"
programs.install(inputs.read().program_environment)
programs.confine(target, scratch)
try:
    exec(sys.argv[3])
    outcome = "ran"
except programs.ProgramRefused as error:
    outcome = f"refused: {error}"
print(json.dumps(outcome))
"""


def inside_worker(folders: tuple[Path, Path], code: str) -> str:
    """Run ``code`` in a Python process with the worker's program wall (as ``execute`` installs it): "ran", or
    "refused: <why>" when the wall refused a start. A start that hangs fails the test (the subprocess times out)."""
    target, scratch = folders
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(target), str(scratch), code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    outcome: str = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


PROVIDER = """
import yt_dlp
from yt_dlp.extractor.youtube.jsc._builtin.deno import DenoJCP
from yt_dlp.extractor.youtube.pot._provider import IEContentProviderLogger

class Quiet(IEContentProviderLogger):
    def trace(self, message): pass
    debug = info = trace
    def warning(self, message, *, once=False): raise AssertionError(message)
    error = warning

ydl = yt_dlp.YoutubeDL({"quiet": True, "cachedir": False})
provider = DenoJCP(ydl.get_info_extractor("Youtube"), Quiet(), {})
assert provider.is_available(), "deno is not available to yt-dlp"
assert provider.runtime_info.name == "deno" and provider.runtime_info.supported, provider.runtime_info
assert provider._lib_script.source.value == "python package", provider._lib_script
assert provider._core_script.source.value == "python package", provider._core_script
assert provider._run_js_runtime("console.log(JSON.stringify(6 * 7))").strip() == "42"
# The real solver scripts run in deno through the wall: a page that is no YouTube player is the solver's error.
try:
    provider._run_js_runtime(provider._construct_stdin("var notAPlayer = 1;", False, []))
except Exception as error:
    assert "unexpected structure" in str(error), error
else:
    raise AssertionError("the solver accepted a page that is no player")
assert programs.take_refusals() == []
"""
