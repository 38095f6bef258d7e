"""Render the plain kustomize manifests in manifests/base from the Helm chart (default values).

python -m gallery_harness.manifests      # rewrite manifests/base/gallery-operator.yaml
"""

from __future__ import annotations

import subprocess

from gallery_harness import REPO_ROOT, build

REPO = REPO_ROOT
BASE = REPO / "manifests" / "base" / "gallery-operator.yaml"
HEADER = "# Rendered from charts/gallery-operator with default values by `make manifests`. Do not edit.\n"


def render_base() -> str:
    command = [
        str(build.binary("helm")),
        "template",
        "gallery-operator",
        str(REPO / "charts" / "gallery-operator"),
        "--namespace",
        "gallery-operator",
        "--kube-version",
        build.KUBERNETES_VERSION.lstrip("v"),
    ]
    rendered = subprocess.run(
        command, check=True, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    ).stdout
    return HEADER + rendered


if __name__ == "__main__":
    BASE.write_text(render_base())
    print(f"wrote {BASE}")
