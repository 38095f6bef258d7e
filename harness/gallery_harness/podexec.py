"""Run one container process of the node agent inside a private mount namespace.

Usage: ``python podexec.py SPEC.json``. The spec names bind mounts (volume folder -> mountPath),
whether the root filesystem is read-only, the working directory and argv. The process environment
is already the container's. Standard library only: this runs between fork and the container's exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        libc.mount(source.encode() if source else None, target.encode(), None, flags, None),
        f"mount {source} -> {target}",
    )


def _mountpoint(is_dir: bool, target: str) -> None:
    """Create an empty file or folder at ``target`` to bind ``source`` onto, as container runtimes do."""
    path = Path(target)
    if path.exists() or path.is_symlink():
        return
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    # Hold every source open first: a mount at /tmp would otherwise hide sources that live under /tmp.
    sources = [os.open(m["source"], os.O_PATH | os.O_CLOEXEC) for m in spec["mounts"]]
    keep = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in spec.get("keepVisible", [])]
    for mount, fd in zip(spec["mounts"], sources, strict=True):
        _mountpoint(stat.S_ISDIR(os.fstat(fd).st_mode), mount["target"])
        _mount(f"/proc/self/fd/{fd}", mount["target"], MS_BIND | MS_REC)
        if mount.get("readOnly"):
            _mount(None, mount["target"], MS_REMOUNT | MS_BIND | MS_RDONLY)
    # The project's environment and checkout stay visible even when a volume is mounted over them (a checkout
    # under /tmp with an emptyDir at /tmp), as an image's files would be: bound back, read-only.
    for path, fd in zip(spec.get("keepVisible", []), keep, strict=True):
        if any(path == m["target"] or path.startswith(m["target"].rstrip("/") + "/") for m in spec["mounts"]):
            Path(path).mkdir(parents=True, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, MS_BIND | MS_REC)
            _mount(None, path, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for fd in sources + keep:
        os.close(fd)
    if spec.get("readOnlyRootFilesystem"):
        _mount(None, "/", MS_REMOUNT | MS_BIND | MS_RDONLY)
    os.chdir(spec.get("workingDir") or "/")
    # The spawner asked for SIGKILL on its death; keep that promise across exec.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, dict(os.environ))
    except OSError as error:
        sys.stderr.write(f"exec {argv[0]!r} failed: {error}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
