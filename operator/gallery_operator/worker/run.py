"""One worker run as its engines see it (the engine Sink): every item is checked, stored, catalogued and counted,
every failure recorded; and the run's outcome, report and exit code."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

from gallery_operator.api.status import MAX_FAILURES, Failure
from gallery_operator.redaction import Redactor
from gallery_operator.worker.catalogue import Catalogue, content_type, sha256_of
from gallery_operator.worker.failures import permanent
from gallery_operator.worker.limits import Limits
from gallery_operator.worker.placement import PLACED_FILE, PathOrText, Placement
from gallery_operator.worker.storage import PartUpload, Store
from gallery_operator.workerconfig import (
    CATALOGUE_DIR,
    CATALOGUE_FILE,
    EXIT_OK,
    EXIT_PERMANENT,
    EXIT_RETRYABLE,
    MAX_COUNT,
    MAX_SHOWN_URL,
    PvcStorage,
    Report,
    S3Storage,
    WorkerConfig,
)


class Run:
    """The state of one worker pod's run; engines call it for every item (the engine Sink), through the engine
    chain (worker/engines.py). Names are the placement's (worker/placement.py), counts and stops the limits'
    (worker/limits.py).

    Every URL and name an engine hands in passes the run's redactor first: what is recorded, reported and compared
    never holds a secret value. An item's identity is its source URL without the secret values (credential-shaped
    parameters stay in it: see gallery_operator/redaction.py); failures, names and metadata lose both."""

    def __init__(
        self, config: WorkerConfig, store: Store, scratch: Path, catalogue: Catalogue, redactor: Redactor | None = None
    ) -> None:
        self.config = config
        self.redactor = redactor or Redactor()
        self.store = store
        self.root = store.workdir.resolve()
        self.scratch = scratch
        self.state = self.root / CATALOGUE_DIR
        self.catalogue = catalogue
        """The target's catalogue as read by `open_catalogue`."""
        prefix = config.storage.prefix if isinstance(config.storage, S3Storage) else None
        self.placement = Placement(self.root, self.catalogue, self.redactor, prefix, self.state / PLACED_FILE)
        self.leftovers = self.placement.clear_leftovers()
        """Files of earlier pods that were never catalogued, removed before this run (logged by the entrypoint)."""
        self.limits = Limits(config.spec.limits, self._stopped)
        self.lock = threading.Lock()
        self.bytes_reported = 0
        """The highest bytesDone a running report gave: with items in flight it counts their bytes, which a limit
        or a failure may drop again; running reports never go below it."""
        self.items_failed = 0
        self.counted: dict[str, int | None] = {}
        """Paths counted as done by this pod -> the size stored (None for an item skipped as stored earlier)."""
        self.failures: list[Failure] = []

    @property
    def items_done(self) -> int:
        return self.limits.items_done

    # -- Sink ----------------------------------------------------------------------------------------

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
        stored: tuple[int, bool] | None = None
        try:
            stored = self._store(path, source_url, engine, extractor, metadata, sha256, sidecar, archive_key)
        finally:
            if stored is not None:
                self.limits.stored(stored[0], in_flight)
            elif in_flight:
                self.limits.count(-in_flight)  # not counted: its bytes only leave the in-flight count
        return None if stored is None else stored[1]

    def archived(self, key: str) -> bool:
        return self.catalogue.archived(self.redactor.values(key))

    def _store(
        self,
        path: Path,
        source_url: str,
        engine: str,
        extractor: str,
        metadata: dict[str, Any],
        sha256: str | None,
        sidecar: tuple[Path | str, dict[str, Any]] | None,
        archive_key: str | None = None,
    ) -> tuple[int, bool] | None:
        """The item stored and catalogued: its size and whether it got its own record (else a record of an earlier
        pod counts it), or None when it is not counted (a failure is recorded)."""
        source_url = self.redactor.values(source_url)
        relative, status = self.placement.located(path)
        if relative is None:
            path.unlink(missing_ok=True)
            self.failed(source_url, "Blocked", f"the engine wrote outside the target: {path.name!r}")
            return None
        if self.redactor.values(relative) != relative:  # named past the placement: no name shows a secret
            path.unlink(missing_ok=True)
            self.failed(source_url, "Blocked", f"the engine named a file with a secret value: {relative!r}")
            return None
        size = status.st_size if status is not None and stat.S_ISREG(status.st_mode) else path.stat().st_size
        kind = content_type(path)
        record = {
            "path": relative,
            "size": size,
            "sha256": sha256 or sha256_of(path),
            "contentType": kind,
            "sourceUrl": source_url,
            "engine": engine,
            "extractor": extractor,
            "metadata": self.redactor.clean_json(metadata),
        }
        original = self.placement.original_name(path)
        if original is not None:
            record["originalName"] = self.redactor.text(original)
        if archive_key is not None:  # an identity, as the source URL is: without the secret values only
            record["archiveKey"] = self.redactor.values(archive_key)
        try:
            self.store.stored(path, relative, kind)
        except Exception as error:  # an unreachable bucket must not lose what the catalogue already holds
            self.failed(source_url, "StorageError", f"storing {relative} failed: {error}")
            return None
        if sidecar is not None and self.config.spec.options.write_metadata:
            self._write_sidecar(Path(sidecar[0]), sidecar[1], source_url)
        recorded = self.catalogue.add(record)
        if not recorded and self.catalogue.owner(relative) != source_url:
            owner = self.catalogue.owner(relative)
            self.failed(source_url, "Internal", f"not counted: {relative} is catalogued for another item ({owner})")
            return None
        self.store.sync_state()
        with self.lock:
            self.counted[relative] = size
        return size, recorded

    def place(self, path: PathOrText, source_url: str) -> PathOrText:
        return self.placement.place(path, source_url)

    def _write_sidecar(self, path: Path, metadata: dict[str, Any], source_url: str) -> None:
        """The item's full metadata as JSON beside it, without credentials; stored like the item (not catalogued)."""
        relative = self.placement.relative(path)
        if relative is None:
            return
        try:
            path.write_text(json.dumps(self.redactor.clean_json(metadata), ensure_ascii=False, indent=1))
            self.store.stored(path, relative, "application/json")
        except Exception as error:
            self.failed(source_url, "StorageError", f"storing the metadata {relative} failed: {error}")

    def skipped(self, path: Path | None, source_url: str) -> None:
        """An item the engine found stored already. Counted only when the catalogue holds it (yt-dlp's archive names
        no path; its items are recorded by video id)."""
        source_url = self.redactor.values(source_url)
        relative = self.placement.relative(path) if path is not None else None
        if path is not None and (relative is None or self.catalogue.owner(relative) != source_url):
            where = relative or path.name
            self.failed(source_url, "Internal", f"not counted: skipped as stored, but the catalogue holds no {where}")
            return
        if relative is not None:
            with self.lock:
                self.counted.setdefault(relative, None)
        self.limits.skipped()

    def verify(self) -> None:
        """Fail loudly (reason Internal, with the paths) if a counted item is not a file of the catalogued size at the
        target. Claims only: an S3 target's objects are checked by the upload itself."""
        if not isinstance(self.config.storage, PvcStorage):
            return
        missing = [relative for relative, size in self.counted.items() if not _is_file(self.root / relative, size)]
        if missing:
            self.failed(
                self.config.spec.urls[0],
                "Internal",
                f"counted but not stored as catalogued: {', '.join(sorted(missing)[:20])}",
            )

    def failed(self, url: str, reason: str, message: str) -> None:
        url, message = self.redactor.text(url), self.redactor.text(message)  # redacted first, then cut
        with self.lock:
            self.items_failed += 1
            failure = Failure(reason=reason, message=message[:1024], url=url[:MAX_SHOWN_URL])  # type: ignore[arg-type]
            if failure not in self.failures:
                self.failures = [*self.failures, failure][-MAX_FAILURES:]

    def refused(self, url: str, refusal: str) -> None:
        """A program start the program wall refused: Blocked, unless a failure names it already."""
        if not any(refusal in failure.message for failure in self.failures):
            self.failed(url, "Blocked", refusal)

    def should_stop(self) -> bool:
        return self.limits.should_stop()

    def clean(self, value: Any) -> Any:
        return self.redactor.clean(value, shapes=False)

    def count(self, size: int) -> bool:
        return self.limits.count(size)

    def overdue(self, started: float) -> str | None:
        return self.limits.overdue(started)

    def room(self) -> int | None:
        return self.limits.room()

    def stream(self, path: Path | str) -> PartUpload | None:
        if not self.store.takes_streams:
            return None  # asked per item: no path made for a target written in place
        path = Path(path)
        relative = self.placement.relative(path)
        return self.store.stream(path, relative, content_type(path)) if relative is not None else None

    def _stopped(self, reason: str) -> None:
        self.failed(self.config.spec.urls[0], "LimitExceeded", reason)

    # -- report ----------------------------------------------------------------------------------------

    def outcome(self) -> str:
        real_failures = [f for f in self.failures if f.reason != "LimitExceeded"]
        if not self.failures:
            return "Succeeded"
        if any(f.reason == "StorageError" for f in self.failures):
            return "Failed"  # the target failed, not an item: a new pod resumes from what was stored
        if self.limits.items_done and (real_failures or self.limits.stop_reason):
            return "PartiallySucceeded"
        return "Failed" if real_failures else "PartiallySucceeded"

    def report(self, final: bool = False) -> Report:
        outcome = self.outcome() if final else "Running"
        limits = self.limits
        message = limits.stop_reason or ""
        if final and not message:
            message = f"{limits.items_done} items stored, {self.items_failed} failed"
        return Report(
            run=self.config.run,
            final=final,
            items_done=limits.items_done,
            items_failed=self.items_failed,
            bytes_done=limits.bytes_done if final else self._running_bytes(),
            failures=self.failures,
            outcome=outcome,  # type: ignore[arg-type]
            message=message,
            **catalogue_fields(self.catalogue, self.store),
        )

    def _running_bytes(self) -> int:
        """Bytes stored and in flight, never less than a running report said before (the final report's are the
        bytes stored, exactly)."""
        limits = self.limits
        self.bytes_reported = max(self.bytes_reported, limits.bytes_done + max(0, limits.bytes_in_flight))
        return self.bytes_reported

    def exit_code(self) -> int:
        if self.outcome() != "Failed":
            return EXIT_OK
        return EXIT_PERMANENT if all(permanent(f.reason, f.message) for f in self.failures) else EXIT_RETRYABLE


def open_catalogue(store: Store) -> Catalogue:
    """The target's state opened (an S3 target's catalogue and archives of earlier pods fetched) and its catalogue
    read: what a run resumes from."""
    store.open_state()
    return Catalogue(store.workdir.resolve() / CATALOGUE_DIR / CATALOGUE_FILE)


def catalogue_fields(catalogue: Catalogue, store: Store) -> dict[str, Any]:
    """A report's catalogue fields: the catalogue as this pod read it and added to it, and where it is. A report of
    a pod that read no catalogue has none of them (the operator then keeps the last catalogue it knew)."""
    return {
        "catalogue_items": min(catalogue.items, MAX_COUNT),  # hand-edited records may sum past any count
        "catalogue_bytes": min(catalogue.bytes, MAX_COUNT),
        "catalogue_location": f"{store.location()}/{CATALOGUE_DIR}/{CATALOGUE_FILE}",
        "sample": catalogue.sample,
    }


def _is_file(path: Path, size: int | None) -> bool:
    """Whether ``path`` is a file (links followed) of ``size`` bytes (any size for None): one system call."""
    try:
        status = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(status.st_mode) and (size is None or status.st_size == size)
