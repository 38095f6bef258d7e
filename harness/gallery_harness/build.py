"""Build the pinned control-plane binaries from Go modules into a per-user cache.

Each Go module under ``harness/go/`` pins one tool set. Its binaries land in
``$CACHE/bin/<module>-<key>/`` where the key hashes the module's go.mod, go.sum and own Go sources and the
build flags, so a fresh clone reuses a warm cache and a version bump rebuilds only that module.

Usage: ``python harness/gallery_harness/build.py`` (builds what is missing, prints the binary folders).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GO_ROOT = Path(__file__).resolve().parents[1] / "go"

KUBERNETES_VERSION = "v1.34.4"


def cache_dir() -> Path:
    """The per-user cache folder, outside any clone so CI's fresh clone reuses it."""
    override = os.environ.get("GALLERY_OPERATOR_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gallery-operator"


def _kubernetes_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    stamp = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp += [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(["-s", "-w", *stamp])


@dataclass(frozen=True)
class Module:
    """One Go module folder and the main packages it builds."""

    name: str
    packages: tuple[str, ...]
    ldflags: str = "-s -w"
    on_demand: bool = False  # not part of build_all(): built when a binary of it is first asked for
    env: tuple[tuple[str, str], ...] = ()  # the module's own build environment (e.g. its GOTOOLCHAIN)
    links: tuple[str, ...] = ()  # argv[0] names of a multi-call binary: symlinks to the module's one binary

    @property
    def folder(self) -> Path:
        return GO_ROOT / self.name

    def binaries(self) -> tuple[str, ...]:
        return tuple(_binary_name(p) for p in self.packages) + self.links

    def key(self) -> str:
        digest = hashlib.sha256()
        for file in ("go.mod", "go.sum"):
            digest.update((self.folder / file).read_bytes())
        # The module's own Go sources (pause, coredns, promql): a change to them is a new binary too.
        for source in sorted(self.folder.glob("*.go")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        digest.update(self.ldflags.encode())
        digest.update(" ".join(self.packages).encode())
        digest.update(repr((self.env, self.links)).encode() if self.env or self.links else b"")
        return digest.hexdigest()[:16]

    def bin_dir(self) -> Path:
        return cache_dir() / "bin" / f"{self.name}-{self.key()}"


def _binary_name(package: str) -> str:
    last = package.rstrip("/").split("/")[-1]
    # go build names a binary after the last path element that is not a major-version suffix
    if last.startswith("v") and last[1:].isdigit():
        last = package.rstrip("/").split("/")[-2]
    return {"server": "etcd", "cmd": "argocd"}.get(last, last)


MODULES: tuple[Module, ...] = (
    Module("etcd", ("go.etcd.io/etcd/server/v3",)),
    Module(
        "kubernetes",
        (
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kubectl",
        ),
        ldflags=_kubernetes_ldflags(),
    ),
    # The real node (docs/local-cluster.md): built only when that mode is asked for.
    Module(
        "node",
        (
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "k8s.io/kubernetes/cmd/kubelet",
            "k8s.io/kubernetes/cmd/kube-proxy",
        ),
        ldflags=_kubernetes_ldflags(),
        on_demand=True,
    ),
    Module("pause", ("gallery-operator.dev/cluster/pause",), on_demand=True),
    # The real node's cluster network (docs/local-cluster.md): CoreDNS with the plugins the cluster DNS uses, and
    # kube-router's network-policy controller (v2.1.0 is the only release the module proxy serves; advisories are
    # reported against it, so it runs only inside the local test cluster).
    Module("coredns", ("gallery-operator.dev/cluster/coredns",), on_demand=True),
    Module("kube-router", ("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router",), on_demand=True),
    Module("helm", ("helm.sh/helm/v3/cmd/helm",)),
    Module("s3", ("github.com/versity/versitygw/cmd/versitygw",)),
    # Lint and check tools of `make test` (docs/releasing.md): the workflow linter, and a tiny program on
    # Prometheus's own PromQL parser that lists what the chart's dashboard and alert expressions name.
    Module("actionlint", ("github.com/rhysd/actionlint/cmd/actionlint",)),
    Module("promql", ("gallery-operator.dev/cluster/promql",)),
    # The GitOps tier (docs/local-cluster.md): Argo CD needs Go 1.27, fetched for this module only.
    Module(
        "argocd",
        ("github.com/argoproj/argo-cd/v3/cmd",),
        env=(("GOTOOLCHAIN", "go1.27.3"),),
        links=("argocd-application-controller", "argocd-repo-server"),
    ),
    # Flux's source-controller and kustomize-controller for the GitOps tier (docs/flux.md), each its own module
    # (their replace blocks differ). Built by `make build` like Argo CD, so `make test`'s tests find them cached.
    Module("flux-source-controller", ("github.com/fluxcd/source-controller",)),
    Module("flux-kustomize-controller", ("github.com/fluxcd/kustomize-controller",)),
)


def is_built(module: Module) -> bool:
    return all((module.bin_dir() / b).is_file() for b in module.binaries())


def build(module: Module, log: bool = True) -> Path:
    """Build one module's binaries unless the cache already holds them; return their folder."""
    target = module.bin_dir()
    if is_built(module):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Build into a temporary sibling and rename, so an interrupted build never looks complete.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{module.name}-") as tmp:
        staging = Path(tmp) / "out"
        staging.mkdir()
        for package in module.packages:
            output = staging / _binary_name(package)
            command = ["go", "build", "-trimpath", "-ldflags", module.ldflags, "-o", str(output), package]
            env = {**os.environ, "CGO_ENABLED": "0", **dict(module.env)}
            if log:
                print(f"[build] {module.name}: {package}", file=sys.stderr, flush=True)
            subprocess.run(command, cwd=module.folder, env=env, check=True)
        for link in module.links:
            (staging / link).symlink_to(_binary_name(module.packages[0]))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    if log:
        print(f"[build] {module.name} built in {time.monotonic() - started:.0f}s -> {target}", file=sys.stderr)
    return target


def binary(name: str) -> Path:
    """The path of a built binary by name (kube-apiserver, etcd, helm, versitygw ...), building if needed."""
    for module in MODULES:
        if name in module.binaries():
            return build(module) / name
    raise KeyError(f"no Go module builds a binary named {name!r}")


def module_source(name: str, go_module: str) -> Path:
    """The source folder of ``go_module`` at the version the harness module ``name`` pins (its CRDs, stock
    manifests, scripts), from the Go module cache (downloaded if missing)."""
    module = next(m for m in MODULES if m.name == name)
    env = {**os.environ, **dict(module.env), "GOFLAGS": "-mod=mod"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", go_module],
        cwd=module.folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(json.loads(result.stdout)["Dir"])


def build_all() -> dict[str, Path]:
    """Build every module that is not cached yet; the binary folder of each, by module name."""
    return {m.name: build(m) for m in MODULES if not m.on_demand}


def main(argv: list[str]) -> int:
    wanted = set(argv[1:]) or {m.name for m in MODULES if not m.on_demand}
    unknown = wanted - {m.name for m in MODULES}
    if unknown:
        print(f"unknown module(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for module in MODULES:
        if module.name in wanted:
            print(build(module))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
