"""A yt-dlp playlist's entries transferred concurrently (options.concurrency, issue 26), with what the worker promises
still holding: the real worker process, real yt-dlp reading an RSS feed of direct video links from the fixture site on
loopback (with latency where a test needs entries to overlap), the real S3 server."""

from __future__ import annotations

import hashlib
import html
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gallery_harness.s3server import S3Server
from gallery_harness.site import Handler, Logged, image_bytes, serve
from gallery_operator.workerconfig import Egress, S3Storage
from tests.component.hostile_secrets import pod_env
from tests.component.workers import assert_all_fetchers_paused, catalogue, claim, run_worker, start_worker

CLIP = 20480
COOKIE = "p00l-member-c00kie"


@pytest.fixture(scope="module")
def slow_site() -> Iterator[str]:
    """The site 20 ms away a request, each answer at most 2 MB/s: entries overlap, a playlist takes a while."""
    with serve(latency=0.02, bandwidth=2_000_000) as url:
        yield url


def wait_for_catalogue(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    """Until the catalogue at ``path`` holds ``count`` records; the worker must not end before."""
    while not (path.is_file() and len(path.read_text().splitlines()) >= count):
        if process.poll() is not None:
            raise AssertionError(f"the worker ended before {count} entries: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)


def playlist(site: str, count: int, concurrency: int = 4, size: int = CLIP, **spec: Any) -> dict[str, Any]:
    """yt-dlp on the site's feed of ``count`` clips of ``size`` bytes."""
    options = {"retries": 0, "concurrency": concurrency, **spec.pop("options", {})}
    query = f"n={count}&size={size}" + "".join(f"&{k}={v}" for k, v in spec.pop("feed", {}).items())
    return {"urls": [f"{site}/feed/?{query}"], "engine": "yt-dlp", "options": options, **spec}


def name(number: int) -> str:
    """The file name yt-dlp gives clip ``number`` of the feed (its title, its id: the guid)."""
    return f"Clip_{number} [clip-{number}].mp4"


def clip_numbers(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["sourceUrl"].rsplit("/", 1)[1].split(".", 1)[0]) for r in records]


def media(root: Path) -> dict[str, bytes]:
    """The finished files of a claim (no partial files, no catalogue)."""
    return {p.name: p.read_bytes() for p in root.iterdir() if p.is_file() and not p.name.endswith(".part")}


def assert_files_are_the_catalogue(root: Path, count: int, size: int = CLIP) -> list[dict[str, Any]]:
    """Every clip once, in playlist order, each file the catalogue's size and digest and the clip's bytes, and no
    other file (after a kill too: a file the killed pod moved to its name but never catalogued is removed by the next
    pod, which fetches that clip again under its own name)."""
    records = catalogue(root)
    assert clip_numbers(records) == list(range(1, count + 1))
    assert not [path for path, seen in Counter(r["path"] for r in records).items() if seen > 1]
    files = media(root)
    assert sorted(files) == sorted(r["path"] for r in records)
    for record in records:
        body = files[record["path"]]
        assert (record["size"], record["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert body == image_bytes(clip_numbers([record])[0], size)
    return records


def clip_requests(log: list[Logged]) -> list[Logged]:
    return [entry for entry in log if entry.path.startswith(("/clip/", "/busy/"))]


def most_at_once(log: list[Logged], latency: float) -> int:
    """The most clip answers of the log sent within one latency of each other (answers of overlapping requests)."""
    times = sorted(entry.at for entry in clip_requests(log))
    return max((sum(1 for t in times if start <= t < start + latency) for start in times), default=0)


def test_entries_overlap_and_the_catalogue_keeps_the_playlist_order(tmp_path: Path, slow_site: str) -> None:
    started = len(Handler.log)
    code, report = run_worker(tmp_path, playlist(slow_site, 24), claim(tmp_path))
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", 24), report
    records = assert_files_are_the_catalogue(tmp_path / "claim", 24)
    assert [r["path"] for r in records] == [name(n) for n in range(1, 25)]
    # Requests of several entries were answered within one latency of each other: they were in flight at once.
    assert most_at_once(Handler.log[started:], 0.02) >= 3


def test_concurrency_one_takes_the_entries_one_after_another(tmp_path: Path, slow_site: str) -> None:
    started = len(Handler.log)
    code, report = run_worker(tmp_path, playlist(slow_site, 8, concurrency=1), claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, 8), report
    assert_files_are_the_catalogue(tmp_path / "claim", 8)
    # One request at a time: each clip's requests (its probe, its download) come after the previous clip's.
    order = [int(entry.path.rsplit("/", 1)[1].split(".")[0]) for entry in clip_requests(Handler.log[started:])]
    assert order == sorted(order) and set(order) == set(range(1, 9)), order
    assert most_at_once(Handler.log[started:], 0.015) == 1


def rss(site: str, path: str, links: list[str], numbers: list[int] | None = None) -> str:
    """An RSS feed on the site at ``path`` whose entries link ``links`` (paths of the site), in that order; the
    entry of number n (``numbers``, else 1, 2 ...) is titled `Clip n`, with the guid `clip-n`."""
    items = "".join(
        f"<item><title>Clip {n}</title><link>{html.escape(site + link)}</link><guid>clip-{n}</guid></item>"
        for n, link in zip(numbers or range(1, len(links) + 1), links, strict=True)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Clips</title>{items}</channel></rss>'
    Handler.files[path] = (body.encode(), "application/rss+xml")
    return site + path


def test_max_items_is_exact(tmp_path: Path, slow_site: str) -> None:
    code, report = run_worker(tmp_path, playlist(slow_site, 30, limits={"maxItems": 5}), claim(tmp_path))
    assert code == 0 and report["itemsDone"] == 5, report
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    assert_files_are_the_catalogue(tmp_path / "claim", 5)


def test_max_bytes_is_never_passed(tmp_path: Path, slow_site: str) -> None:
    """No more than maxBytes stored, the entry that crossed it not kept, files and catalogue the same."""
    limit = 5 * CLIP + 100
    spec = playlist(slow_site, 30, limits={"maxBytes": str(limit)})
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert code == 0 and report["failures"][0]["reason"] == "LimitExceeded", report
    records = catalogue(tmp_path / "claim")
    assert sum(r["size"] for r in records) <= limit and report["bytesDone"] <= limit
    assert len(records) == report["itemsDone"] >= 1
    assert clip_numbers(records) == list(range(1, len(records) + 1))
    assert sorted(media(tmp_path / "claim")) == sorted(r["path"] for r in records)


def test_an_endless_entry_stops_the_run_at_the_item_time_limit(tmp_path: Path, site: str) -> None:
    links = ["/clip/1.mp4", "/endless/2.mp4", "/clip/3.mp4"]
    spec = {"urls": [rss(site, "/p/endless.rss", links)], "engine": "yt-dlp", "options": {"concurrency": 4}}
    _, report = run_worker(tmp_path, {**spec, "limits": {"maxItemSeconds": 1}}, claim(tmp_path))
    limited = [f for f in report["failures"] if f["reason"] == "LimitExceeded"]
    assert limited and "limits.maxItemSeconds reached" in limited[0]["message"], report["failures"]
    records = catalogue(tmp_path / "claim")
    assert "Clip_2 [clip-2].mp4" not in media(tmp_path / "claim")
    assert sorted(media(tmp_path / "claim")) == sorted(r["path"] for r in records)
    assert clip_numbers(records) in ([], [1], [1, 3])


def test_the_stop_rule_ends_the_listing_at_the_first_known_entry(tmp_path: Path, slow_site: str) -> None:
    """Clip 5 was stored by an earlier run; with stopAfterKnown the next run stores the clips before it and none
    after it, although entries after it may be in flight when it is found known."""
    storage = claim(tmp_path)
    links = [f"/clip/{n}.mp4?size={CLIP}" for n in range(1, 13)]
    earlier = {"urls": [rss(slow_site, "/p/known-one.rss", links[4:5], [5])], "engine": "yt-dlp"}
    code, report = run_worker(tmp_path, {**earlier, "options": {"concurrency": 4}}, storage)
    assert (code, report["itemsDone"]) == (0, 1), report
    spec = {"urls": [rss(slow_site, "/p/known.rss", links)], "engine": "yt-dlp"}
    code, report = run_worker(tmp_path, {**spec, "options": {"concurrency": 4, "stopAfterKnown": 1}}, storage)
    assert (code, report["itemsDone"]) == (0, 5), report  # clips 1 to 4, and clip 5 skipped as stored
    records = catalogue(tmp_path / "claim")
    assert clip_numbers(records) == [5, 1, 2, 3, 4]
    assert sorted(media(tmp_path / "claim")) == sorted(r["path"] for r in records)


def test_a_killed_run_resumes_on_a_claim(tmp_path: Path, slow_site: str) -> None:
    """SIGKILL mid-playlist with entries in flight; the next pod skips what is stored, finishes the partial files,
    and the claim ends with every clip once, in playlist order."""
    size = 300_000
    spec, storage = playlist(slow_site, 40, size=size), claim(tmp_path)
    process = start_worker(tmp_path, spec, storage)
    wait_for_catalogue(tmp_path / "claim" / ".gallery-operator" / "catalogue.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert len(catalogue(tmp_path / "claim")) < 40
    code, report = run_worker(tmp_path, spec, storage)
    assert (code, report["outcome"]) == (0, "Succeeded"), report
    assert_files_are_the_catalogue(tmp_path / "claim", 40, size)


def test_a_killed_run_resumes_on_s3(tmp_path: Path, slow_site: str, s3_server: S3Server) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="playlist")
    storage = S3Storage(bucket="playlist", prefix="dl", endpoint=s3_server.endpoint, force_path_style=True)
    env = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    size = 300_000
    spec = playlist(slow_site, 40, size=size)
    process = start_worker(tmp_path, spec, storage, env=env)
    wait_for_catalogue(tmp_path / "scratch" / "staging" / ".gallery-operator" / "catalogue.jsonl", 6, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    (tmp_path / "scratch").rename(tmp_path / "old-scratch")  # a new pod: nothing but what the bucket holds
    code, report = run_worker(tmp_path, spec, storage, env=env)
    assert (code, report["outcome"]) == (0, "Succeeded"), report["failures"]
    body = s3.get_object(Bucket="playlist", Key="dl/.gallery-operator/catalogue.jsonl")["Body"].read()
    records = [json.loads(line) for line in body.splitlines()]
    assert sorted(clip_numbers(records)) == list(range(1, 41))
    assert len({r["path"] for r in records}) == 40
    for record in records:
        data = s3.get_object(Bucket="playlist", Key=f"dl/{record['path']}")["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (record["size"], record["sha256"])
        assert data == image_bytes(clip_numbers([record])[0], size)


def test_a_429_with_retry_after_pauses_every_fetcher_of_the_host(tmp_path: Path, site: str) -> None:
    """Clip 3 is refused once with `429, Retry-After: 2`: from that answer on, the site's request log shows no
    request from any entry's transfer for two seconds (a margin for requests already on the wire), then the rest;
    the refused entry is tried again and stored."""
    # The site refuses each /busy/ path once per process: a number no other test asks for.
    links = [f"/clip/{n}.mp4?size={CLIP}" for n in range(1, 31)]
    links[2] = f"/busy/4292.mp4?after=2&size={CLIP}"
    spec = {"urls": [rss(site, "/p/busy.rss", links)], "engine": "yt-dlp", "options": {"retries": 2}}
    assert_all_fetchers_paused(tmp_path, spec, claim(tmp_path))


def test_a_redirect_out_of_the_allowed_domains_is_blocked_on_a_pool_thread(tmp_path: Path, site: str) -> None:
    """Every pool thread's connections pass the egress guard, redirects included: an entry that redirects to an
    address the rules refuse is Blocked, and nothing of it is stored."""
    port = site.rsplit(":", 1)[1]
    local = f"http://localhost:{port}"
    links = [*(f"/clip/{n}.mp4" for n in range(1, 7)), f"/redirect/x.mp4?to=http://127.0.0.1:{port}/clip/9.mp4"]
    rules = Egress(allow_private_networks=True, allowed_domains=["localhost"])
    spec = {"urls": [rss(local, "/p/escape.rss", links)], "engine": "yt-dlp", "options": {"concurrency": 4}}
    _, report = run_worker(tmp_path, spec, claim(tmp_path), egress=rules)
    blocked = [f for f in report["failures"] if f["reason"] == "Blocked"]
    assert blocked and "127.0.0.1 is not on the allowed list" in blocked[0]["message"], report["failures"]
    records = catalogue(tmp_path / "claim")
    assert 7 not in clip_numbers(records) and 9 not in clip_numbers(records)
    assert sorted(media(tmp_path / "claim")) == sorted(r["path"] for r in records)
    assert not [p for p in media(tmp_path / "claim") if "clip-7" in p]


def test_entries_with_the_same_name_never_share_a_path(tmp_path: Path, slow_site: str) -> None:
    """Eight entries with one title and one id (each links its own clip), transferred at once: each is stored under a
    path of its own with its own bytes, in playlist order."""
    links = [f"/clip/{n}.mp4?size={CLIP}" for n in range(1, 9)]
    spec = {"urls": [rss(slow_site, "/p/same.rss", links, [1] * 8)], "engine": "yt-dlp"}
    code, report = run_worker(tmp_path, {**spec, "options": {"concurrency": 4}}, claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, 8), report
    assert_files_are_the_catalogue(tmp_path / "claim", 8)


@pytest.mark.parametrize(("auth_site", "sent"), [("Vimeo", False), ("generic", True)])
def test_entries_on_pool_threads_get_the_credentials_only_of_their_site(
    tmp_path: Path, site: str, auth_site: str, sent: bool
) -> None:
    """A feed of four videos that note the headers they receive, transferred four at a time: credentials for Vimeo
    reach none of the requests of any pool thread; for the generic extractor (the feed's own), the cookie jar and
    login the pool threads share reach every one of them."""
    links = [f"/cred/v.mp4?n={n}" for n in range(1, 5)]
    spec = {
        "urls": [rss(site, "/p/cred.rss", links)],
        "engine": "yt-dlp",
        "auth": {"site": auth_site},
        "options": {"concurrency": 4},
    }
    Handler.received = []
    try:
        code, report = run_worker(
            tmp_path, spec, claim(tmp_path), env=pod_env(tmp_path, site, ("member", COOKIE), "pa55-p00l")
        )
        requests = [headers for path, headers in Handler.received if path == "/cred/v.mp4"]
    finally:
        Handler.received = []
    assert (code, report["itemsDone"]) == (0, 4), report
    assert len(requests) >= 8  # each entry's look at its link, and its download
    assert {COOKIE in headers for headers in requests} == {sent}


def test_a_trickling_entry_fails_at_the_low_speed_limit(tmp_path: Path, slow_site: str) -> None:
    """Entry 4 sends a byte every half second (60 bytes, then a page yt-dlp cannot take): on its pool thread it
    fails as Timeout at the low-speed limit (well inside timeoutSeconds; urllib3 words it "Read timed out"), the
    entries before it are stored in order, and nothing of it is kept."""
    links = [*(f"/clip/{n}.mp4?size={CLIP}" for n in (1, 2, 3)), "/trickle/4.jpg?every=0.5"]
    links += [f"/clip/{n}.mp4?size={CLIP}" for n in (5, 6)]
    options = {"concurrency": 4, "timeoutSeconds": 30, "lowSpeedLimit": 100, "lowSpeedSeconds": 3}
    spec = {"urls": [rss(slow_site, "/p/trickle.rss", links)], "engine": "yt-dlp", "options": options}
    _, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert [f["reason"] for f in report["failures"]] == ["Timeout"], report["failures"]
    records = catalogue(tmp_path / "claim")
    assert clip_numbers(records)[:3] == [1, 2, 3] and 4 not in clip_numbers(records)
    assert sorted(media(tmp_path / "claim")) == sorted(r["path"] for r in records)


def test_sleep_seconds_spaces_the_downloads_of_the_host_whatever_the_concurrency(tmp_path: Path, site: str) -> None:
    """sleepSeconds 0.4 with four entries at once: the downloads of the host start 0.4 s apart (the site's request log:
    each clip is asked for twice, yt-dlp's look at the link and then its download), not four together: no three of
    them reach the site within 0.4 s."""
    started = len(Handler.log)
    spec = playlist(site, 6, options={"sleepSeconds": 0.4})
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, 6), report
    seen: Counter[str] = Counter()
    downloads = []
    for entry in clip_requests(Handler.log[started:]):
        seen[entry.path] += 1
        if seen[entry.path] == 2:
            downloads.append(entry.at)
    assert len(downloads) == 6
    # Spaced 0.4 s at the worker, any three downloads span 0.8 s there. At the site one arrival can come late on a
    # loaded machine and squeeze one gap (0.15 s seen), but no three arrive within 0.4 s; four at once (no sleep
    # shared by the pool) would.
    spans = [downloads[i + 2] - downloads[i] for i in range(len(downloads) - 2)]
    assert min(spans) > 0.4, spans
