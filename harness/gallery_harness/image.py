"""The project's image, built here from the real Dockerfile, and the images the real node needs.

No registry can be pulled from on the project's machines, so every image is made locally:

- the base: a Debian trixie root filesystem from ``debootstrap`` (Python 3.13, as the Dockerfile's
  ``python:3.13-slim`` base has), imported into Docker. The host's CA bundle goes in so that ``pip`` and ``uv``
  reach PyPI the way the host does;
- the pause image: the sandbox's first process, built from ``harness/go/pause``;
- the CoreDNS image: the cluster DNS server, built from ``harness/go/coredns``;
- the project: ``docker build`` of the repository's ``Dockerfile`` on that base (its ``PYTHON_IMAGE`` argument).

Each image is saved as a tar in ``$CACHE/images/`` under a key that hashes what went into it (the recipe and,
for the project image, the Dockerfile, the lock file and the code), so a warm run does not start Docker at all.
Docker runs only while something is built: its own daemon, with its data (and so its layer cache) in
``$CACHE/docker``, its socket in a temporary folder, stopped afterwards.

Usage: ``python -m gallery_harness.image`` builds what is missing and prints the image tars.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gallery_harness import REPO_ROOT, build, procs

REGISTRY = "gallery-operator.local"
BASE_SUITE = "trixie"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# What the project image is made of: the Docker build context (.dockerignore keeps it to these) and the recipe.
PROJECT_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "README.md", "operator")
KEEP_PROJECT_IMAGES = 3  # older project image tars are removed (each is about 1 GB)


@dataclass(frozen=True)
class Image:
    """One image as the node loads it: its reference and the tar ``docker save`` wrote."""

    ref: str
    tar: Path


def image_cache() -> Path:
    """Docker's data and the image tars; ``GALLERY_IMAGE_CACHE`` moves them (the cold-build benchmark does)."""
    override = os.environ.get("GALLERY_IMAGE_CACHE")
    return Path(override) if override else build.cache_dir()


def unmount_below(folder: Path) -> None:
    """Unmount whatever a daemon left mounted under ``folder`` (deepest first), so the folder can be removed."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    for target in sorted((line.split()[1] for line in mounts), reverse=True):
        if target == str(folder) or target.startswith(f"{folder}/"):
            subprocess.run(["umount", "--lazy", target], capture_output=True, check=False)


def images_dir() -> Path:
    return image_cache() / "images"


def digest(*parts: bytes) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(len(part).to_bytes(8, "big"))
        hashed.update(part)
    return hashed.hexdigest()[:16]


def tree_bytes(root: Path, names: tuple[str, ...]) -> Iterator[bytes]:
    """Path and content of every file under ``names`` (bytecode caches left out), in a stable order."""
    for name in names:
        top = root / name
        files = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            yield str(file.relative_to(root)).encode()
            yield file.read_bytes()


def base_key() -> str:
    recipe = f"{BASE_SUITE} {BASE_MIRROR} {' '.join(BASE_PACKAGES)}".encode()
    return digest(recipe, HOST_CA_BUNDLE.read_bytes())


class Docker:
    """A Docker daemon of our own for the duration of a build (data kept in the cache, socket in a temp folder)."""

    def __init__(self) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="gallery-docker-"))
        self.socket = self.runtime / "docker.sock"
        self.log = images_dir() / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Docker:
        data = image_cache() / "docker"
        data.mkdir(parents=True, exist_ok=True)
        self.process = procs.spawn(
            [
                "dockerd",
                f"--data-root={data}",
                f"--exec-root={self.runtime / 'exec'}",
                f"--pidfile={self.runtime / 'dockerd.pid'}",
                f"--host=unix://{self.socket}",
                "--storage-driver=overlay2",
                "--bridge=none",  # builds use the host's network; no docker0, no NAT rules
                "--iptables=false",
            ],
            self.log,
        )
        procs.wait_until(self._ready, 60, f"dockerd (log: {self.log})", interval=0.2)
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            procs.stop(self.process, grace=20)
        unmount_below(self.runtime)  # dockerd's default network namespace stays mounted under its exec root
        shutil.rmtree(self.runtime, ignore_errors=True)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"dockerd exited: {self.log.read_text()[-2000:]}")
        return self.run("version", capture=True).returncode == 0

    def run(
        self, *args: str, capture: bool = False, stdin: int | None = None, stdout: int | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        command = [_docker_cli(), *args]
        environment = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"}
        if capture:
            return subprocess.run(command, env=environment, capture_output=True, check=False)
        return subprocess.run(command, env=environment, stdin=stdin, stdout=stdout, check=True)

    def has(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, capture=True).returncode == 0

    def save(self, ref: str, tar: Path) -> Image:
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_suffix(".partial")
        self.run("save", "--output", str(partial), ref)
        partial.rename(tar)  # an interrupted save never looks complete
        return Image(ref, tar)


def _docker_cli() -> str:
    """The client that matches the daemon (Debian's docker.io); another ``docker`` on the PATH may be newer."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def _import_rootfs(docker: Docker, rootfs: Path, ref: str, changes: tuple[str, ...]) -> None:
    archive = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    arguments = [f"--change={change}" for change in changes]
    docker.run("import", *arguments, "-", ref, stdin=archive.stdout.fileno(), stdout=subprocess.DEVNULL)
    archive.stdout.close()
    if archive.wait() != 0:
        raise RuntimeError(f"tar of {rootfs} failed")


def _log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def base_ref() -> str:
    return f"{REGISTRY}/python:3.13-{BASE_SUITE}-{base_key()}"


def _ensure_base(docker: Docker) -> None:
    """The base image in Docker, from debootstrap unless Docker's data (kept in the cache) has it."""
    ref = base_ref()
    if docker.has(ref):
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gallery-rootfs-") as folder:
        rootfs = Path(folder) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(rootfs),
                BASE_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        _import_rootfs(
            docker,
            rootfs,
            ref,
            (
                # Debian marks its Python as externally managed; the Dockerfile's build stage pip-installs uv.
                "ENV PIP_BREAK_SYSTEM_PACKAGES=1 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                'CMD ["python3"]',
            ),
        )
    _log(f"base {ref} made in {time.monotonic() - started:.0f}s")


def _binary_image(name: str, user: str) -> Image:
    """An image holding one static binary built from a Go module, its entrypoint, run as ``user`` (built without
    Docker when its tar is cached; the key is the binary's)."""
    binary = build.binary(name)
    key = digest(binary.read_bytes())
    ref = f"{REGISTRY}/{name}:{key}"
    tar = images_dir() / f"{name}-{key}.tar"
    if tar.exists():
        return Image(ref, tar)
    with Docker() as docker, tempfile.TemporaryDirectory(prefix=f"gallery-{name}-") as folder:
        rootfs = Path(folder)
        shutil.copy2(binary, rootfs / name)
        _import_rootfs(docker, rootfs, ref, (f'ENTRYPOINT ["/{name}"]', f"USER {user}"))
        return docker.save(ref, tar)


def pause_image() -> Image:
    """The pod sandbox image."""
    return _binary_image("pause", "65535:65535")


def coredns_image() -> Image:
    """The cluster DNS server's image (CoreDNS from ``harness/go/coredns``), run as a non-root user."""
    return _binary_image("coredns", "65532:65532")


def project_image(root: Path = REPO_ROOT) -> Image:
    """The project's image from the Dockerfile in ``root`` on the local base; built only when its inputs changed."""
    key = digest(base_ref().encode(), *tree_bytes(root, PROJECT_INPUTS))
    image = Image(f"{REGISTRY}/gallery-operator:{key}", images_dir() / f"gallery-operator-{key}.tar")
    if image.tar.exists():
        image.tar.touch()  # most recently used: kept by _prune
        return image
    with Docker() as docker:
        _ensure_base(docker)
        started = time.monotonic()
        docker.run(
            "build",
            "--network=host",  # the build stage fetches from PyPI and Debian's mirror like the host does
            f"--build-arg=PYTHON_IMAGE={base_ref()}",
            f"--tag={image.ref}",
            "--quiet",
            str(root),
            stdout=subprocess.DEVNULL,
        )
        docker.save(image.ref, image.tar)
        _log(f"project image {image.ref} built and saved in {time.monotonic() - started:.0f}s")
        _prune(docker, keep=image.ref)
    return image


def _prune(docker: Docker, keep: str) -> None:
    """Keep the newest few project image tars; drop older project images from Docker (layers stay cached)."""
    tars = sorted(images_dir().glob("gallery-operator-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[KEEP_PROJECT_IMAGES:]:
        old.unlink(missing_ok=True)
    listed = docker.run("images", "--format", "{{.Repository}}:{{.Tag}}", f"{REGISTRY}/gallery-operator", capture=True)
    for ref in listed.stdout.decode().split():
        if ref != keep:
            docker.run("rmi", ref, capture=True)


def main() -> int:
    for image in (pause_image(), coredns_image(), project_image()):
        print(f"{image.ref} {image.tar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
