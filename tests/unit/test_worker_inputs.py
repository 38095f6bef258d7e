"""The worker's one input: everything a pod is given is read once, in worker/inputs.py, into a frozen object, and no
other worker module reads the environment."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import gallery_operator.worker
from gallery_operator import workerconfig
from gallery_operator.worker import inputs

WORKER = Path(gallery_operator.worker.__file__).parent
ENVIRONMENT_READS = {"environ", "getenv", "environb", "getenvb"}


def environment_reads(source: str) -> list[int]:
    """Lines of ``source`` that touch os.environ / os.getenv, however imported."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_READS:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for alias in node.names if alias.name in ENVIRONMENT_READS]
    return lines


def test_only_the_inputs_module_reads_the_environment() -> None:
    readers = {
        path.name: found for path in sorted(WORKER.glob("*.py")) if (found := environment_reads(path.read_text()))
    }
    assert readers == {"inputs.py": readers.get("inputs.py")}
    assert readers["inputs.py"]  # the check sees a read where there is one


def test_the_check_sees_every_spelling() -> None:
    assert environment_reads("import os\nos.environ.get('A')") == [2]
    assert environment_reads("import os\nos.getenv('A')") == [2]
    assert environment_reads("from os import environ\nenviron['A']") == [1]
    assert environment_reads("import os\nos.path.join('a')") == []


def test_the_config_variable_is_the_operator_s() -> None:
    assert inputs.CONFIG_ENV == workerconfig.CONFIG_ENV


def test_importing_the_inputs_imports_nothing_of_its_own() -> None:
    """The entrypoint reads its configuration before anything else is imported: the inputs module brings no module
    of its own (urllib, dataclasses, pydantic come later, when they are needed)."""
    code = (
        "import sys, pathlib, os, typing, __future__, gallery_operator.worker; before = set(sys.modules); "
        "import gallery_operator.worker.inputs; print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['gallery_operator.worker.inputs']"


def test_a_pod_s_inputs_are_read_once_and_frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GALLERY_WORKER_CONFIG", '{"run": "r"}')
    monkeypatch.setenv("GALLERY_WORKER_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.setenv("GALLERY_WORKER_COOKIES_DIR", str(tmp_path / "cookies"))
    monkeypatch.setenv("GALLERY_WORKER_TERMINATION_LOG", str(tmp_path / "termination-log"))
    monkeypatch.setenv("GALLERY_WORKER_LOG_FORMAT", "text")
    monkeypatch.setenv("GALLERY_AUTH_USERNAME", "someone")
    monkeypatch.setenv("GALLERY_AUTH_PASSWORD", "pass-word-1")
    monkeypatch.setenv("GALLERY_AUTH_REFRESH_TOKEN", "refresh-token-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio.storage:9000")
    monkeypatch.setenv("LD_PRELOAD", "/lib/x.so")
    pod = inputs.read()
    assert pod.config == '{"run": "r"}'
    assert (pod.scratch, pod.termination_log) == (tmp_path / "scratch", tmp_path / "termination-log")
    assert pod.cookies_file == tmp_path / "cookies" / "cookies.txt"
    assert pod.log_json is False
    assert pod.tokens == (("refresh_token", "refresh-token-1"),)
    assert {"pass-word-1", "refresh-token-1", "s3-secret-1"} <= set(pod.secret_values())
    assert pod.s3_endpoint == "http://minio.storage:9000"
    assert ("LD_PRELOAD", "/lib/x.so") in pod.program_environment
    credentials = pod.credentials(tmp_path / "copy.txt")
    assert (credentials.username, credentials.password) == ("someone", "pass-word-1")
    assert credentials.cookies_file == tmp_path / "copy.txt"
    monkeypatch.setenv("GALLERY_AUTH_PASSWORD", "changed-later")
    assert pod.password == "pass-word-1"  # read once: later changes reach nothing
    with pytest.raises(AttributeError):
        pod.password = "other"  # type: ignore[misc]
    assert inputs.read("given").config == "given"  # the entrypoint's early read is taken back, not read again
