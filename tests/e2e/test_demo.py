"""The README's first command stays true: the local demo ends with Ready downloads and a readable catalogue."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gallery_harness import REPO_ROOT


@pytest.mark.skipif(bool(os.environ.get("KUBECONFIG")), reason="the demo runs its own local control plane")
def test_demo_runs_to_ready_downloads() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gallery_harness.demo"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert "both Ready after" in out
    rows = [line.split() for line in out.split("==> kubectl get gd\n")[1].splitlines()[1:3]]
    assert sorted((row[0], row[1]) for row in rows) == [("cats-to-pvc", "Succeeded"), ("video-to-s3", "Succeeded")]
    assert "1.jpg         2048 B  image/jpeg" in out
    assert "demo/video/8.mp4" in out
    assert "demo finished; every process stopped" in out
