"""The interface between a worker run and its engines (gallery-dl in gallerydl.py, yt-dlp in ytdlp.py), and the
chain that picks the engines for a URL and falls back from one to the next."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from gallery_operator.worker import programs
from gallery_operator.worker.failures import classify
from gallery_operator.worker.placement import PathOrText
from gallery_operator.worker.storage import PartUpload

log = logging.getLogger("gallery_operator.worker")


class Stopped(Exception):
    """The run must stop now (a limit was reached): raised where an item's bytes arrive (worker/items.py), and
    turned by each engine's adapter into that engine's own way of ending a download."""


class Sink(Protocol):
    """What an engine tells the run about each item."""

    def stored(
        self,
        path: Path,
        source_url: str,
        engine: str,
        extractor: str,
        metadata: dict[str, Any],
        sha256: str | None = None,
        sidecar: tuple[Path | str, dict[str, Any]] | None = None,
        in_flight: int = 0,
        archive_key: str | None = None,
    ) -> bool | None:
        """An item is stored; ``sidecar`` is where its full metadata goes and what it is, when sidecars are on;
        ``in_flight`` is what the item still has in the count of bytes in flight (moved to the stored bytes in one
        step, or released when the item is not counted); ``archive_key`` is the engine's key for it, which its
        catalogue record carries (``archived``). True when the item got its record, False when it is counted by a
        record of an earlier pod (its path was catalogued for it before), None when it is not counted."""
        ...

    def archived(self, key: str) -> bool:
        """Whether a catalogue record carries the engine's archive key ``key`` (the item is stored)."""
        ...

    def skipped(self, path: Path | None, source_url: str) -> None: ...
    def failed(self, url: str, reason: str, message: str) -> None: ...
    def should_stop(self) -> bool: ...
    def count(self, size: int) -> bool:
        """Bytes of an unfinished file arrived (or, negative, left the count); True when the byte limit is crossed."""
        ...

    def stream(self, path: Path | str) -> PartUpload | None:
        """Where the bytes of ``path`` go while they are written, when the target takes them that way."""
        ...

    def room(self) -> int | None:
        """How many more items the run's limits allow (None: no item limit)."""
        ...

    def place(self, path: PathOrText, source_url: str) -> PathOrText:
        """Where the item from ``source_url`` is stored, when its engine would name it ``path`` (a path, or its text:
        the answer is of the same kind)."""
        ...

    def overdue(self, started: float) -> str | None:
        """Why an item downloading since ``started`` (time.monotonic) must stop now, or None."""
        ...

    def clean(self, value: Any) -> Any:
        """``value`` (a string, or JSON-like) without the run's secret values: what an engine names files after
        (credential shapes stay: they may match ordinary names; the catalogue and reports lose them)."""
        ...


class Engine(Protocol):
    name: str

    def supports(self, url: str) -> bool: ...
    def knows(self, site: str) -> bool:
        """Whether ``site`` names one of the engine's extractors (what spec.auth.site names)."""
        ...

    def run(self, url: str, sink: Sink) -> None: ...


class Recorder(Sink, Protocol):
    """The run as the engine chain sees it: a sink that also takes the program wall's refusals."""

    def refused(self, url: str, refusal: str) -> None:
        """A program start the wall refused while ``url`` ran (recorded once, as Blocked)."""
        ...


class Probe:
    """Forwards to the run, but holds back an UnsupportedUrl failure so the next engine can try the URL. What it only
    passes on is the run's own method (several calls an item, each a call less)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.unsupported: tuple[str, str] | None = None
        self.stored_any = False
        self.should_stop = sink.should_stop
        self.clean = sink.clean
        self.count = sink.count
        self.stream = sink.stream
        self.place = sink.place
        self.overdue = sink.overdue
        self.room = sink.room
        self.archived = sink.archived

    def stored(self, *args: Any, **kwargs: Any) -> bool | None:
        self.stored_any = True
        return self.sink.stored(*args, **kwargs)

    def skipped(self, path: Path | None, source_url: str) -> None:
        self.stored_any = True
        self.sink.skipped(path, source_url)

    def failed(self, url: str, reason: str, message: str) -> None:
        if reason == "UnsupportedUrl":
            self.unsupported = (url, message)
        else:
            self.sink.failed(url, reason, message)


class EngineChain:
    """The engines a download may use, and in which order they try each URL. An engine choice names one engine;
    `auto` is gallery-dl when it has an extractor for the site, else yt-dlp, and then gallery-dl's generic extractor
    (images linked from the page) when yt-dlp finds no video there."""

    def __init__(self, choice: str, engines: Iterable[Engine]) -> None:
        self.choice = choice
        self.engines = {engine.name: engine for engine in engines}

    def candidates(self, url: str) -> list[Engine]:
        """The engines to try on ``url``, in order."""
        if self.choice != "auto":
            return [self.engines[self.choice]]
        gallery = self.engines["gallery-dl"]
        return [gallery] if gallery.supports(url) else [self.engines["yt-dlp"], gallery]

    def unknown_site(self, site: str | None) -> str | None:
        """Why ``site`` (spec.auth.site) names no site an engine of this download knows (credentials for it would go
        nowhere), or None."""
        names = [self.choice] if self.choice != "auto" else list(self.engines)
        if site is None or any(self.engines[name].knows(site) for name in names):
            return None
        return (
            f"spec.auth.site: {site!r} is no extractor of {' or '.join(names)} (a gallery-dl category or a yt-dlp key)"
        )

    def download(self, url: str, recorder: Recorder) -> None:
        """``url`` with each candidate in turn, until one finds something there (or fails otherwise than with
        UnsupportedUrl); the last one's UnsupportedUrl is the URL's. An engine's error is the URL's failure."""
        candidates = self.candidates(url)
        for position, engine in enumerate(candidates, 1):
            log.info("downloading %s with %s", url, engine.name)
            probe = Probe(recorder)
            _attempt(engine, url, probe, recorder)
            if probe.unsupported is None or probe.stored_any:
                return
            if position == len(candidates):
                failed_url, message = probe.unsupported
                recorder.failed(failed_url, "UnsupportedUrl", message)


def _attempt(engine: Engine, url: str, probe: Probe, recorder: Recorder) -> None:
    """One engine on ``url``: its errors and the program wall's refusals are failures of the URL."""
    try:
        engine.run(url, probe)
    except programs.ProgramRefused:
        pass  # recorded by the wall, reported below
    except (Exception, SystemExit) as error:  # an engine bug must not lose what was stored
        log.exception("engine %s failed on %s", engine.name, url)
        message = f"{type(error).__name__}: {error}"
        recorder.failed(url, classify(message, error=error), message)
    for refused in programs.take_refusals():  # also those an engine swallowed
        log.warning("%s: %s", url, refused)
        recorder.refused(url, refused)
