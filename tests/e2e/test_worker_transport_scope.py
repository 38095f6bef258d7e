"""The transport hooks (worker/transport.py) sit on the engines' requests sessions only: the responses behind
requests carry them, botocore's (the S3 upload) and any other urllib3 client's do not. In a fresh interpreter with
the hooks installed, against the fixture site and the real S3 server on loopback. (That the engines' faults still
get their stable reasons: tests/e2e/test_worker_transport.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = """
import json, sys
from pathlib import Path
import requests, urllib3
from gallery_operator.worker import transport
from tests.cluster.s3server import S3Server
from tests.fixtures.site import serve

transport.install()
folder = Path(sys.argv[1])
kinds = {}
with serve() as site, S3Server(root=folder / "s3", log=folder / "s3.log") as server:
    kinds["requests"] = type(requests.Session().get(site + "/img/1.jpg", stream=True).raw).__name__
    kinds["urllib3"] = type(urllib3.PoolManager().request("GET", site + "/img/1.jpg", preload_content=False)).__name__
    s3 = server.client()
    s3.create_bucket(Bucket="scope")
    s3.put_object(Bucket="scope", Key="k", Body=b"x" * 1000)
    body = s3.get_object(Bucket="scope", Key="k")["Body"]
    kinds["botocore"] = type(body._raw_stream).__name__
    assert body.read() == b"x" * 1000
methods = ("read", "stream", "read_chunked")
hooked = [name for name in methods if hasattr(getattr(urllib3.HTTPResponse, name), "__wrapped__")]
print(json.dumps({"kinds": kinds, "hooked": hooked}))
"""


def test_only_the_engines_responses_carry_the_hooks(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {
        "kinds": {"requests": "EngineResponse", "urllib3": "HTTPResponse", "botocore": "HTTPResponse"},
        "hooked": [],
    }
