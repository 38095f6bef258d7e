"""A real S3-compatible server (versitygw, POSIX backend) on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gallery_harness import build, procs


@dataclass
class S3Server:
    """versitygw serving ``root`` as buckets (one folder per bucket), metadata kept in a sidecar folder."""

    binary: Path = field(default_factory=lambda: build.binary("versitygw"))
    root: Path = Path()
    log: Path = Path()
    port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    access_key = "gallery-test-access"
    secret_key = "gallery-test-secret-key"
    region = "us-east-1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """What boto3 and the AWS CLI read to reach this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def start(self) -> None:
        self.port = self.port or procs.free_port()  # started again after a stop: the same endpoint
        data = self.root / "data"
        sidecar = self.root / "meta"
        data.mkdir(parents=True, exist_ok=True)
        sidecar.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key}
        argv = [
            str(self.binary),
            "--port",
            f"{self.host}:{self.port}",
            "--region",
            self.region,
            "posix",
            "--sidecar",
            str(sidecar),
            str(data),
        ]
        self.process = procs.spawn(argv, self.log, env=env)
        procs.wait_until(self._ready, timeout=30, what=f"versitygw on {self.endpoint} (log: {self.log})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"versitygw exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.endpoint, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer (403 without a signature) means it serves
        except urllib.error.URLError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            procs.stop(self.process)
            self.process = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
