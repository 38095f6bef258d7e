"""The worker's memory with S3 targets when the bucket falls behind the downloads (issue 26): the real worker
process, real gallery-dl, the fixture site and the real S3 server behind a proxy that stops reading mid-run."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from gallery_harness.s3server import S3Server
from gallery_harness.site import image_bytes
from gallery_harness.tcpproxy import TcpProxy
from gallery_operator.workerconfig import S3Storage
from tests.component.workers import start_worker_alone

MB = 1024 * 1024


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_memory_stays_bounded_while_the_bucket_stops_reading(tmp_path: Path, site: str, s3_server: S3Server) -> None:
    """16 items of 16 MB, eight at a time, into a bucket that stops reading once the first parts are on their way:
    every download runs into the stalled upload. The worker's memory is bounded by its part buffers (2 x the parts
    in flight, 8 x 8 MiB, shared by all items) and the digest's queue (16 MiB, shared), not by the number of items
    in flight: its peak stays under 256 MB. (Before, each item held a joined part waiting for an upload slot and up
    to 16 MiB of chunks for its digest: about 300 MB here.) Then the bucket reads again and every item arrives whole."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="stall")
    proxy = TcpProxy(("127.0.0.1", s3_server.port))
    proxy.pause(after=20 * MB)  # the catalogue's fetch and the first two parts pass, then nothing
    endpoint = f"http://127.0.0.1:{proxy.address[1]}"
    storage = S3Storage(bucket="stall", prefix="dl", endpoint=endpoint, force_path_style=True, private_endpoint=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    size = 16_000_000
    spec = {"urls": [f"{site}/gallery/?n=16&size={size}"], "options": {"retries": 0, "concurrency": 8}}
    process = start_worker_alone(tmp_path, spec, storage, env=env)
    stalled: list[float] = []

    def stall() -> None:
        """While the bucket reads nothing, the downloads go on until they wait for it; then it reads again."""
        while proxy.flowing.is_set() and process.poll() is None:
            time.sleep(0.05)
        settled, last = 0, 0.0
        while settled < 30 and process.poll() is None:  # 3 s without growth: every fetcher waits
            now = resident_mb(process.pid)
            settled, last = (settled + 1, last) if now <= last + 1 else (0, now)
            time.sleep(0.1)
        stalled.append(last)
        proxy.resume()

    watcher = threading.Thread(target=stall, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    report = json.loads((tmp_path / "termination-log").read_text())
    assert (process.returncode, report["itemsDone"]) == (0, 16), process.stderr.read()[-3000:] if process.stderr else ""
    assert stalled, "the bucket never stalled"
    assert usage.ru_maxrss / 1024 < 256, f"peak {usage.ru_maxrss / 1024:.0f} MB (stalled at {stalled[0]:.0f} MB)"
    for number in (1, 8, 16):
        body = s3.get_object(Bucket="stall", Key=f"dl/{number}.jpg")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(image_bytes(number, size)).digest()
