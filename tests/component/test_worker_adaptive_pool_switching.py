"""The adaptive gallery-dl pool switching between the engine's thread and the pool within one run (items moved on
the engine's thread with the job's own path format, items moved alone or beside others with copies of it): a site
that answers at once except for some items it holds. What concurrency > 1 promises still holds across the switches:
the gallery's order, one path per item although the names repeat, each file whole, the archive's duplicates
skipped and a second run downloading nothing. The real worker, real gallery-dl and the fixture site."""

from __future__ import annotations

from pathlib import Path

from gallery_harness.site import Handler, image_bytes, named_bytes, serve
from tests.component.workers import catalogue, claim, files_on_claim, run_worker


def links(count: int) -> list[str]:
    """Every item is named cover.jpg (one folder), every seventh held 0.3 s (the pool widens), the rest at once."""
    return [f"/slow/{n}.jpg?seconds=0.3" if n % 7 == 3 else f"/same/a{n}/cover.jpg" for n in range(count)]


def page(path: str, hrefs: list[str]) -> str:
    body = "".join(f'<a href="{link}"><img src="{link}"></a>' for link in hrefs)
    Handler.files[path] = (f"<html><head><title>P</title></head><body>{body}</body></html>".encode(), "text/html")
    return path


def expected_bytes(link: str) -> bytes:
    if link.startswith("/slow/"):
        return image_bytes(int(link.removeprefix("/slow/").split(".")[0]))
    return named_bytes(link)


def test_names_order_and_files_hold_across_switches(tmp_path: Path) -> None:
    hrefs = links(60)
    with serve() as site:
        spec = {
            "engine": "gallery-dl",
            "urls": [site + page("/p/switching.html", hrefs)],
            "options": {"retries": 0, "concurrency": 4},
        }
        code, report = run_worker(tmp_path, spec, claim(tmp_path))
    assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", len(hrefs)), report
    records = catalogue(tmp_path / "claim")
    assert [r["sourceUrl"].removeprefix(site).split("?")[0] for r in records] == [h.split("?")[0] for h in hrefs]
    paths = [r["path"] for r in records]
    assert len(set(paths)) == len(paths), paths
    for record, href in zip(records, hrefs, strict=True):
        assert (tmp_path / "claim" / record["path"]).read_bytes() == expected_bytes(href), record


def test_the_archive_skips_duplicates_and_a_second_run_across_switches(tmp_path: Path) -> None:
    """Each item twice in a row, then the first half again: each stored once; a second run requests no item (its
    ``itemsDone`` counts the items the claim holds)."""
    unique = links(40)
    hrefs = [h for h in unique for _ in range(2)] + unique[:20]
    with serve() as site:
        spec = {
            "engine": "gallery-dl",
            "urls": [site + page("/p/dupes.html", hrefs)],
            "options": {"retries": 0, "concurrency": 4},
        }
        code, report = run_worker(tmp_path / "one", spec, claim(tmp_path))
        assert (code, report["outcome"], report["itemsDone"]) == (0, "Succeeded", len(unique)), report
        Handler.hits.clear()
        code, again = run_worker(tmp_path / "two", spec, claim(tmp_path))
    assert not [p for p in Handler.hits if p.startswith(("/same/", "/slow/", "/img/"))], Handler.hits
    records = catalogue(tmp_path / "claim")
    assert [r["sourceUrl"].removeprefix(site).split("?")[0] for r in records] == [h.split("?")[0] for h in unique]
    assert len(files_on_claim(tmp_path / "claim")) == len(unique)
    assert (code, again["itemsDone"]) == (0, len(unique)), again


def test_item_and_byte_limits_are_exact_on_the_engines_thread(tmp_path: Path) -> None:
    """At zero latency the items move on the engine's thread after the first few: maxItems stores exactly its
    number, maxBytes is never passed, the catalogue and the claim agree."""
    with serve() as site:
        url = f"{site}/gallery/?n=40&size=20480"
        options = {"retries": 0, "concurrency": 4}
        code, report = run_worker(
            tmp_path / "items",
            {"engine": "gallery-dl", "urls": [url], "options": options, "limits": {"maxItems": 9}},
            claim(tmp_path / "items"),
        )
        limit = 11 * 20480 + 100
        limits = {"maxBytes": str(limit)}
        code_bytes, by_bytes = run_worker(
            tmp_path / "bytes",
            {"engine": "gallery-dl", "urls": [url], "options": options, "limits": limits},
            claim(tmp_path / "bytes"),
        )
    assert (code, report["itemsDone"]) == (0, 9), report
    assert [f["reason"] for f in report["failures"]] == ["LimitExceeded"]
    assert [r["path"] for r in catalogue(tmp_path / "items" / "claim")] == [f"{n}.jpg" for n in range(1, 10)]
    assert sorted(files_on_claim(tmp_path / "items" / "claim")) == sorted(f"{n}.jpg" for n in range(1, 10))
    assert code_bytes == 0 and by_bytes["failures"][0]["reason"] == "LimitExceeded", by_bytes
    records = catalogue(tmp_path / "bytes" / "claim")
    assert [r["path"] for r in records] == [f"{n}.jpg" for n in range(1, 12)]
    assert by_bytes["bytesDone"] <= limit and by_bytes["itemsDone"] == 11


def test_speed_and_time_limits_hold_for_an_item_on_the_engines_thread(tmp_path: Path) -> None:
    """At zero latency, after ten items that answered at once, a trickling item fails alone at lowSpeedLimit and
    an endless one stops the run at maxItemSeconds, though the engine's thread moves them itself."""
    fast = [f"/img/{n}.jpg" for n in range(1, 11)]
    trickle = [*fast, "/trickle/11.jpg?every=0.5", "/img/12.jpg", "/img/13.jpg"]
    endless = [*fast, "/endless/11.jpg", "/img/12.jpg"]
    options = {"retries": 0, "concurrency": 4, "timeoutSeconds": 3, "lowSpeedLimit": 100, "lowSpeedSeconds": 3}
    with serve() as site:
        spec = {"engine": "gallery-dl", "urls": [site + page("/p/trickle-late.html", trickle)], "options": options}
        _, slow = run_worker(tmp_path / "slow", spec, claim(tmp_path / "slow"))
        spec = {
            "engine": "gallery-dl",
            "urls": [site + page("/p/endless-late.html", endless)],
            "options": {"retries": 0, "concurrency": 4},
        }
        _, stopped = run_worker(tmp_path / "end", {**spec, "limits": {"maxItemSeconds": 1}}, claim(tmp_path / "end"))
    assert slow["itemsDone"] == 12, slow
    assert [(f["reason"], f["url"].removeprefix(site)) for f in slow["failures"]] == [
        ("Timeout", "/trickle/11.jpg?every=0.5")
    ]
    assert [r["path"] for r in catalogue(tmp_path / "slow" / "claim")] == [f"{n}.jpg" for n in (*range(1, 11), 12, 13)]
    limited = [f for f in stopped["failures"] if f["reason"] == "LimitExceeded"]
    assert limited and "limits.maxItemSeconds reached" in limited[0]["message"], stopped["failures"]
    kept = sorted(name for name in files_on_claim(tmp_path / "end" / "claim") if not name.endswith(".part"))
    assert "11.jpg" not in kept
    assert sorted(r["path"] for r in catalogue(tmp_path / "end" / "claim")) == kept
