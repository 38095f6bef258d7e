"""Command line for the local control plane.

    python -m gallery_harness build            build the pinned binaries (skipped when cached)
    python -m gallery_harness up [--dir D] [--node kubelet]     run in the foreground until Ctrl-C
    python -m gallery_harness start [--dir D] [--node kubelet]  run in the background; prints the KUBECONFIG to use
    python -m gallery_harness stop [--dir D]   stop the background control plane
    python -m gallery_harness status [--dir D]

The state folder (default ``.cluster/`` in the checkout) holds the kubeconfig, an ``env`` file to
``source`` (KUBECONFIG and the S3 endpoint and keys), the component logs and the PVC data.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gallery_harness import REPO_ROOT, build
from gallery_harness.controlplane import LocalCluster, NodeKind, add_node_argument

DEFAULT_DIR = REPO_ROOT / ".cluster"


def _pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "pid").read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def up(folder: Path, node: NodeKind) -> int:
    if _pid(folder) and _pid(folder) != os.getpid():
        print(f"a control plane already runs from {folder} (pid {_pid(folder)})", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ready").unlink(missing_ok=True)
    (folder / "pid").write_text(str(os.getpid()))
    cluster = LocalCluster(workdir=folder, node=node, with_s3=True, keep_workdir=True)

    def on_signal(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with cluster:
            lines = [f"export {k}={v}" for k, v in cluster.env().items()]
            (folder / "env").write_text("\n".join(lines) + "\n")
            (folder / "ready").write_text(f"{cluster.startup_seconds:.2f}\n")
            print(f"control plane ready in {cluster.startup_seconds:.1f}s: {cluster.server}")
            if cluster.real_node:
                parts = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in cluster.real_node.timings.items())
                print(f"  real node parts, from start to ready: {parts}")
            print(f"  source {folder / 'env'}   # sets KUBECONFIG={cluster.kubeconfig}")
            sys.stdout.flush()
            while True:
                time.sleep(1)
                cluster.check_alive()
    except KeyboardInterrupt:
        pass
    finally:
        (folder / "ready").unlink(missing_ok=True)
        (folder / "pid").unlink(missing_ok=True)
    return 0


def start(folder: Path, node: NodeKind) -> int:
    if _pid(folder):
        print(f"already running; source {folder / 'env'}")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ready").unlink(missing_ok=True)
    build.build_all()
    log = folder / "up.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gallery_harness", "up", "--dir", str(folder), "--node", node],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + (120 if node == "agent" else 1800)  # a cold real node builds its image
    while not (folder / "ready").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            print(log.read_text()[-3000:], file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"control plane running (pid {process.pid}); to use it:\n  source {folder / 'env'}")
    print(f"  kubectl --kubeconfig {folder / 'kubeconfig'} get nodes")
    print("stop it with: make cluster-stop")
    return 0


def stop(folder: Path) -> int:
    pid = _pid(folder)
    if not pid:
        print("no control plane running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("stopped")
            return 0
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    print("killed after 30 s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m gallery_harness", description="local control plane")
    parser.add_argument("command", choices=["build", "up", "start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state folder (default: .cluster/)")
    add_node_argument(parser)
    options = parser.parse_args()
    folder = options.dir.resolve()
    if options.command == "build":
        for folder_of_module in build.build_all().values():
            print(folder_of_module)
        return 0
    if options.command == "status":
        pid = _pid(folder)
        print(f"running (pid {pid}); source {folder / 'env'}" if pid else "not running")
        return 0 if pid else 1
    if options.command == "stop":
        return stop(folder)
    return {"up": up, "start": start}[options.command](folder, options.node)


if __name__ == "__main__":
    raise SystemExit(main())
