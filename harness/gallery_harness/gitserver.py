"""A local git server over smart HTTP: Debian's git-http-backend (CGI) behind a small HTTP wrapper.

GitOps engines (Argo CD, Flux) pull from ``http://127.0.0.1:<port>/<name>.git`` as from any git host. The repository
is bare; :class:`GitRepository` commits into a working tree and pushes to it, as a platform team's merge would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GIT_HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "gallery-operator tests",
    "GIT_AUTHOR_EMAIL": "tests@gallery-operator.dev",
    "GIT_COMMITTER_NAME": "gallery-operator tests",
    "GIT_COMMITTER_EMAIL": "tests@gallery-operator.dev",
}


def git(*args: str, cwd: Path) -> str:
    """Run git with a fixed identity and no user or system configuration; its output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        **_GIT_IDENTITY,
    }
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class _Handler(BaseHTTPRequestHandler):
    """Hands each request to git-http-backend as CGI and relays its answer."""

    server: _GitHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        for header in ("Git-Protocol", "Content-Encoding"):
            if header in self.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        result = subprocess.run([str(GIT_HTTP_BACKEND)], input=body, env=env, capture_output=True, check=False)
        # A CGI answer: header lines (CRLF or LF), an empty line, the body.
        separator = b"\r\n\r\n" if b"\r\n\r\n" in result.stdout else b"\n\n"
        head, _, payload = result.stdout.partition(separator)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        if result.returncode != 0 and not head:
            status, payload = 500, result.stderr
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.root = root


@dataclass
class GitServer:
    """Serves the bare repositories under ``root`` on loopback until stopped. Use as a context manager."""

    root: Path
    host: str = "127.0.0.1"
    _server: _GitHTTPServer | None = None

    def __enter__(self) -> GitServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._server = _GitHTTPServer(self.root, self.host)
        threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def url(self, name: str) -> str:
        assert self._server is not None, "the git server is not running"
        return f"http://{self.host}:{self._server.server_address[1]}/{name}.git"

    def repository(self, name: str, worktree: Path) -> GitRepository:
        """A new bare repository ``<name>.git`` and a working tree that pushes to it."""
        bare = self.root / f"{name}.git"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=self.root)
        worktree.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--initial-branch=main", cwd=worktree)
        git("remote", "add", "origin", str(bare), cwd=worktree)
        return GitRepository(worktree, self.url(name))


@dataclass
class GitRepository:
    """A working tree whose commits are pushed to the served bare repository at ``url``."""

    worktree: Path
    url: str
    commits: list[str] = field(default_factory=list)

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (text) or remove (None) files, commit and push; the new commit's id."""
        for name, text in files.items():
            path = self.worktree / name
            if text is None:
                git("rm", "--quiet", "-r", name, cwd=self.worktree)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git("add", name, cwd=self.worktree)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.worktree)
        git("push", "--quiet", "origin", "main", cwd=self.worktree)
        commit = git("rev-parse", "HEAD", cwd=self.worktree).strip()
        self.commits.append(commit)
        return commit

    def copy_tree(self, source: Path, into: str) -> None:
        """Copy a folder of the project (e.g. the Helm chart) into the working tree, staged for the next commit."""
        target = self.worktree / into
        shutil.copytree(source, target, dirs_exist_ok=True)
        git("add", into, cwd=self.worktree)
