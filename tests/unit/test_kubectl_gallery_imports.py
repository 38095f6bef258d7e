"""`kubectl gallery` runs on users' machines with the user's rights: it must not load the operator's runtime."""

from __future__ import annotations

import json
import subprocess
import sys

RUNTIME = ("kopf", "gallery_dl", "yt_dlp", "boto3", "aiohttp")
OPERATOR = ("controller", "handlers", "web", "facade", "apply", "admission", "worker")


def test_the_plugin_imports_no_runtime() -> None:
    code = "import sys, gallery_operator.cli.kubectl_gallery; print(__import__('json').dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert [m for m in loaded if m.split(".")[0] in RUNTIME] == []
    assert [m for m in loaded if m.startswith("gallery_operator.") and m.split(".")[1] in OPERATOR] == []
    assert "gallery_operator.cli.kubectl_gallery" in loaded
