"""The node agent's answer to `kubectl logs`: the part of the kubelet API the API server proxies pods/log to.

The API server reads a container's log from ``https://<node InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/
containerLogs/<namespace>/<pod>/<container>``, presenting its kubelet client certificate. This serves exactly that
path over TLS, to clients with a certificate of the cluster's CA only, from the files the agent writes each
container's output to. Options of the request (follow, tailLines, sinceSeconds ...) are not honoured: the whole
log is sent.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PREFIX = "/containerLogs/"


def serve_logs(
    log_file: Callable[[str, str, str], Path | None], cert: Path, key: Path, client_ca: Path
) -> ThreadingHTTPServer:
    """Serve container logs on a free loopback port (``server.server_port``) in a daemon thread; ``log_file`` maps
    (namespace, pod, container) to the file holding the container's output, or None."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            parts = [unquote(p) for p in path[len(PREFIX) :].split("/")] if path.startswith(PREFIX) else []
            found = log_file(*parts) if len(parts) == 3 else None
            if found is None or not found.is_file():
                self.send_error(404, "no such container log")
                return
            body = found.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="container-logs", daemon=True).start()
    return server
