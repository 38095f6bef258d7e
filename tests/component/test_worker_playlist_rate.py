"""`rateLimit` holds for the host as a whole across a yt-dlp playlist's entries transferred at once (options.concurrency
> 1, worker/playlist.py): the real worker, real yt-dlp reading the fixture site's RSS feed of clips on loopback.

The evidence is the site's: the times its request log gives to the answers of the clips' downloads. An entry's
download starts only once its pool thread has waited for the bytes of the entry before it, so over any stretch of the
log the clips answered, beyond those the pool had in flight at its start, carry no more bytes than the rate allows
in that stretch. A rate per transfer (each of the C transfers at the full rate) would answer about C times as many.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gallery_harness.site import Handler, Logged
from tests.component.workers import catalogue, claim, run_worker

CONCURRENCY = 4
CLIPS = 24
CLIP_BYTES = 256 * 1024
RATE = "1M"
RATE_BYTES = 1024 * 1024


def download_answers(log: list[Logged]) -> list[float]:
    """The times of the answers to the clips' downloads: each clip's second answer (the first is yt-dlp's generic
    extractor looking at the link)."""
    seen: Counter[str] = Counter()
    answers = []
    for entry in log:
        if entry.path.startswith("/clip/") and entry.status == 200:
            seen[entry.path] += 1
            if seen[entry.path] == 2:
                answers.append(entry.at)
    return sorted(answers)


def test_rate_limit_is_the_hosts_across_the_entries_of_a_playlist(tmp_path: Path, site: str) -> None:
    started = len(Handler.log)
    spec = {
        "urls": [f"{site}/feed/?n={CLIPS}&size={CLIP_BYTES}"],
        "engine": "yt-dlp",
        "options": {"retries": 0, "concurrency": CONCURRENCY, "rateLimit": RATE},
    }
    code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["itemsDone"]) == (0, CLIPS), report
    assert sorted(record["size"] for record in catalogue(tmp_path / "claim")) == [CLIP_BYTES] * CLIPS
    answers = download_answers(Handler.log[started:])
    assert len(answers) == CLIPS
    # Any stretch of the log from one download's answer to a later one: the answers after the first C of the
    # stretch (those may have been on their way at its start, 2 C allowed for the pool's backlog of finished
    # entries) each needed the host's rate to free a transfer.
    burst = 2 * CONCURRENCY
    for first in range(len(answers)):
        for last in range(first + burst, len(answers)):
            paced = (last - first + 1 - burst) * CLIP_BYTES
            allowed = RATE_BYTES * (answers[last] - answers[first])
            assert paced <= allowed * 1.02, (first, last, paced, allowed, answers)
