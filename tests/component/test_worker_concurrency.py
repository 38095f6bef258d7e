"""What the worker promises still holds when it transfers a gallery's items concurrently (options.concurrency, issue
26): the real worker process, real gallery-dl, the fixture site on loopback (with latency and bandwidth caps where a
test needs transfers to overlap) and the real S3 server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler, image_bytes, named_bytes, serve
from gallery_operator.workerconfig import Egress, PvcStorage, S3Storage
from tests.component.workers import (
    assert_all_fetchers_paused,
    catalogue,
    files_on_claim,
    run_worker,
    start_worker,
    start_worker_alone,
)


@pytest.fixture(scope="module")
def slow_site() -> Iterator[str]:
    """The site 20 ms away, each response at most 2 MB/s: transfers overlap, and a gallery takes a while."""
    with serve(latency=0.02, bandwidth=2_000_000) as url:
        yield url


def claim(tmp_path: Path) -> PvcStorage:
    return PvcStorage(root=str(tmp_path / "claim"), location="pvc://media/dl")


def page(path: str, links: list[str]) -> str:
    """A gallery page on the site at ``path`` linking ``links`` as images, in that order."""
    body = "".join(f'<a href="{link}"><img src="{link}"></a>' for link in links)
    Handler.files[path] = (f"<html><head><title>P</title></head><body>{body}</body></html>".encode(), "text/html")
    return path


def gallery(site: str, count: int, concurrency: int = 4, **spec: Any) -> dict[str, Any]:
    options = {"retries": 0, "concurrency": concurrency, **spec.pop("options", {})}
    return {"engine": "gallery-dl", "urls": [f"{site}/gallery/?n={count}&size=20480"], "options": options, **spec}


def test_catalogue_keeps_the_gallery_order_when_items_finish_out_of_order(tmp_path: Path, slow_site: str) -> None:
    """The first item answers last (after a second), the others at once: the catalogue still lists them in the
    gallery's order, every file once, each with its own bytes."""
    links = ["/slow/1.jpg?seconds=1", *(f"/img/{n}.jpg" for n in range(2, 13))]
    spec = {
        "engine": "gallery-dl",
        "urls": [slow_site + page("/p/order.html", links)],
        "options": {"retries": 0, "concurrency": 4},
    }
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 12), report
    records = catalogue(tmp_path / "claim")
    assert [r["path"] for r in records] == [f"{n}.jpg" for n in range(1, 13)]
    files = files_on_claim(tmp_path / "claim")
    assert files == {f"{n}.jpg": image_bytes(n) for n in range(1, 13)}
    assert all(r["sha256"] == hashlib.sha256(files[r["path"]]).hexdigest() for r in records)


def test_items_with_the_same_name_never_share_a_path(tmp_path: Path, slow_site: str) -> None:
    """Every album has its cover.jpg and 1.jpg: transferred at once, each still gets a path of its own."""
    albums = "a,b,c,d,e,f"
    spec = {
        "engine": "gallery-dl",
        "urls": [f"{slow_site}/albums/?a={albums}"],
        "options": {"retries": 0, "concurrency": 4},
    }
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 0 and report["itemsDone"] == 12, report
    records = catalogue(tmp_path / "claim")
    paths = [r["path"] for r in records]
    assert len(set(paths)) == 12
    sources = [r["sourceUrl"].removeprefix(slow_site) for r in records]
    assert sources == [f"/same/{a}/{n}.jpg" for a in albums.split(",") for n in ("cover", "1")]
    for record, source in zip(records, sources, strict=True):
        assert (tmp_path / "claim" / record["path"]).read_bytes() == named_bytes(source)


def test_max_items_is_exact(tmp_path: Path, slow_site: str) -> None:
    code, report = run_worker(tmp_path, gallery(slow_site, 30, limits={"maxItems": 5}), claim(tmp_path))
    assert code == 0 and report["itemsDone"] == 5, report
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    assert sorted(files_on_claim(tmp_path / "claim")) == sorted(f"{n}.jpg" for n in range(1, 6))
    assert [r["path"] for r in catalogue(tmp_path / "claim")] == [f"{n}.jpg" for n in range(1, 6)]


def test_max_bytes_is_never_passed(tmp_path: Path, slow_site: str) -> None:
    """No more than maxBytes stored, the item that crossed it not kept, files and catalogue the same."""
    limit = 5 * 20480 + 100
    code, report = run_worker(tmp_path, gallery(slow_site, 30, limits={"maxBytes": str(limit)}), claim(tmp_path))
    assert code == 0 and report["failures"][0]["reason"] == "LimitExceeded", report
    records = catalogue(tmp_path / "claim")
    assert sum(r["size"] for r in records) <= limit and report["bytesDone"] <= limit
    assert len(records) == report["itemsDone"] >= 1
    kept = [name for name in files_on_claim(tmp_path / "claim") if not name.endswith(".part")]
    assert sorted(kept) == sorted(r["path"] for r in records)  # the items stopped in flight stay partial files


def test_a_trickling_item_fails_alone_at_the_low_speed_limit(tmp_path: Path, slow_site: str) -> None:
    links = [*(f"/img/{n}.jpg" for n in range(1, 4)), "/trickle/4.jpg?every=0.5", *(f"/img/{n}.jpg" for n in (5, 6))]
    options = {"retries": 0, "concurrency": 4, "timeoutSeconds": 3, "lowSpeedLimit": 100, "lowSpeedSeconds": 3}
    spec = {"engine": "gallery-dl", "urls": [slow_site + page("/p/trickle.html", links)], "options": options}
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert report["itemsDone"] == 5, report
    assert [(f["reason"], f["url"].removeprefix(slow_site)) for f in report["failures"]] == [
        ("Timeout", "/trickle/4.jpg?every=0.5")
    ]
    assert [r["path"] for r in catalogue(tmp_path / "claim")] == ["1.jpg", "2.jpg", "3.jpg", "5.jpg", "6.jpg"]
    assert code != 0 or report["outcome"] == "PartiallySucceeded"


def test_an_endless_item_stops_the_run_at_the_item_time_limit(tmp_path: Path, site: str) -> None:
    links = ["/img/1.jpg", "/endless/2.jpg", "/img/3.jpg"]
    spec = {
        "engine": "gallery-dl",
        "urls": [site + page("/p/endless.html", links)],
        "options": {"retries": 0, "concurrency": 4},
    }
    _, report = run_worker(tmp_path, {**spec, "limits": {"maxItemSeconds": 1}}, claim(tmp_path))
    limited = [f for f in report["failures"] if f["reason"] == "LimitExceeded"]
    assert limited and "limits.maxItemSeconds reached" in limited[0]["message"], report["failures"]
    kept = sorted(name for name in files_on_claim(tmp_path / "claim") if not name.endswith(".part"))
    assert "2.jpg" not in kept
    assert [r["path"] for r in catalogue(tmp_path / "claim")] == kept


def wait_for_lines(path: Path, count: int, process: Any) -> None:
    """Until the catalogue at ``path`` has ``count`` lines (or the worker ended early)."""
    while process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the worker ended before {count} items: {process.communicate()[1][-2000:]}")


def test_a_killed_run_resumes_on_a_claim(tmp_path: Path, slow_site: str) -> None:
    """SIGKILL mid-gallery with transfers in flight; the next pod skips what is stored, starts over the partial
    files, and the claim ends with every item once."""
    spec = gallery(slow_site, 40)
    spec["urls"] = [f"{slow_site}/gallery/?n=40&size=300000"]
    storage = claim(tmp_path)
    process = start_worker(tmp_path, spec, storage)
    wait_for_lines(tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert len(catalogue(tmp_path / "claim")) < 40
    code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 40), report
    records = catalogue(tmp_path / "claim")
    assert not [path for path, seen in Counter(r["path"] for r in records).items() if seen > 1]
    files = {name: body for name, body in files_on_claim(tmp_path / "claim").items() if not name.endswith(".part")}
    assert files == {f"{n}.jpg": image_bytes(n, 300000) for n in range(1, 41)}
    assert sorted(r["path"] for r in records) == sorted(files)


def test_a_killed_run_resumes_on_s3(tmp_path: Path, slow_site: str, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="concurrency")
    storage = S3Storage(bucket="concurrency", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    spec = gallery(slow_site, 40)
    spec["urls"] = [f"{slow_site}/gallery/?n=40&size=300000"]
    process = start_worker(tmp_path, spec, storage, env=env)
    staged = tmp_path / "scratch" / "staging" / ".gallery-operator" / "catalogue.jsonl"
    wait_for_lines(staged, 6, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    (tmp_path / "scratch").rename(tmp_path / "old-scratch")  # a new pod: nothing but what the bucket holds
    code, report = run_worker(tmp_path, spec, storage, env=env)
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 40), report["failures"]
    body = s3.get_object(Bucket="concurrency", Key="dl/.gallery-operator/catalogue.jsonl")["Body"].read()
    records = [json.loads(line) for line in body.splitlines()]
    assert sorted(r["path"] for r in records) == sorted(f"{n}.jpg" for n in range(1, 41))
    for n in (1, 20, 40):
        assert s3.get_object(Bucket="concurrency", Key=f"dl/{n}.jpg")["Body"].read() == image_bytes(n, 300000)


def test_a_redirect_out_of_the_allowed_domains_is_blocked_in_a_pool(tmp_path: Path, site: str) -> None:
    """Every transfer thread's connections pass the egress guard, redirects included."""
    port = site.rsplit(":", 1)[1]
    links = [
        *(f"http://localhost:{port}/img/{n}.jpg" for n in range(1, 7)),
        f"http://localhost:{port}/redirect/x.jpg?to=http://127.0.0.1:{port}/img/9.jpg",
    ]
    rules = Egress(allow_private_networks=True, allowed_domains=["localhost"])
    url = f"http://localhost:{port}" + page("/p/escape.html", links)
    spec = {"engine": "gallery-dl", "urls": [url], "options": {"retries": 0, "concurrency": 4}}
    _, report = run_worker(tmp_path, spec, claim(tmp_path), egress=rules)
    assert report["itemsDone"] == 6, report
    blocked = [f for f in report["failures"] if f["reason"] == "Blocked"]
    assert blocked and "127.0.0.1 is not on the allowed list" in blocked[0]["message"]
    assert "9.jpg" not in files_on_claim(tmp_path / "claim") and "x.jpg" not in files_on_claim(tmp_path / "claim")


def test_a_429_with_retry_after_pauses_every_fetcher_of_the_host(tmp_path: Path, site: str) -> None:
    """Image 4293 (third in the gallery) is refused once with `429, Retry-After: 2`: from that answer on, the site's
    request log shows no request from any transfer for two seconds (a margin for requests already on the wire), then
    the rest."""
    # The site refuses each /busy/ path once per process: a number no other test asks for.
    links = [f"/img/{n}.jpg" for n in (1, 2)] + ["/busy/4293.jpg?after=2"] + [f"/img/{n}.jpg" for n in range(4, 31)]
    options = {"retries": 2, "concurrency": 4, "galleryDl": {"sleep-429": 1, "retry-codes": [429]}}
    spec = {"engine": "gallery-dl", "urls": [site + page("/p/busy.html", links)], "options": options}
    assert_all_fetchers_paused(tmp_path, spec, claim(tmp_path))


def test_s3_memory_stays_flat_with_large_items_in_flight(tmp_path: Path, site: str, s3_server: S3Server) -> None:
    """16 items of 16 MB into S3, four at a time: each streams in 8 MiB parts while it downloads; the worker's peak
    resident memory stays under 256 MB although 256 MB pass through it. The bound: the store's part buffers (2 x its
    parts in flight, 8 x 8 MiB) and the digest's queue (16 MiB), both shared by all items in flight
    (test_worker_s3_memory.py stalls the bucket to hold the worker at it)."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="flat")
    storage = S3Storage(bucket="flat", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    size = 16_000_000
    spec = {
        "engine": "gallery-dl",
        "urls": [f"{site}/gallery/?n=16&size={size}"],
        "options": {"retries": 0, "concurrency": 4},
    }
    process = start_worker_alone(tmp_path, spec, storage, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    report = json.loads((tmp_path / "termination-log").read_text())
    assert (process.returncode, report["itemsDone"]) == (0, 16), report
    assert usage.ru_maxrss / 1024 < 256, f"peak {usage.ru_maxrss / 1024:.0f} MB"
    head = s3.head_object(Bucket="flat", Key="dl/16.jpg")
    assert head["ContentLength"] == size and "-" in head["ETag"]  # streamed in parts
    body = s3.get_object(Bucket="flat", Key="dl/9.jpg")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(image_bytes(9, size)).hexdigest()
