"""One worker run: engines write into the target, every item is checked, catalogued and reported."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gallery_operator.api.spec import describe_validation, quantity_bytes
from gallery_operator.api.status import MAX_FAILURES, Failure
from gallery_operator.redaction import Redactor
from gallery_operator.worker import programs, transport
from gallery_operator.worker.catalogue import Catalogue, content_type, sha256_of
from gallery_operator.worker.egress import Blocked, Guard, Trust
from gallery_operator.worker.engines import Engine
from gallery_operator.worker.failures import classify, permanent
from gallery_operator.worker.gallerydl import GalleryDl
from gallery_operator.worker.lookahead import Lookahead
from gallery_operator.worker.names import MAX_NAME_BYTES, safe_name, url_hash
from gallery_operator.worker.pace import LowSpeedLimit
from gallery_operator.worker.redact import pod_redactor, redact_output
from gallery_operator.worker.storage import PartUpload, Store, open_store
from gallery_operator.worker.ytdlp import YtDlp
from gallery_operator.workerconfig import (
    CATALOGUE_DIR,
    CATALOGUE_FILE,
    COOKIES_FILE,
    COOKIES_MOUNT,
    EXIT_OK,
    EXIT_PERMANENT,
    EXIT_RETRYABLE,
    SCRATCH_MOUNT,
    TOKEN_FILE,
    TOKEN_MOUNT,
    PvcStorage,
    Report,
    S3Storage,
    WorkerConfig,
)

log = logging.getLogger("gallery_operator.worker")
TERMINATION_LIMIT = 4096
MAX_KEY_BYTES = 1024
"""S3's limit on an object key (prefix, folders and name together)."""


class LimitReached(Exception):
    pass


class Run:
    """The state of one worker pod's run; engines call it for every item (the engine Sink).

    Every URL and name an engine hands in passes the run's redactor first: what is recorded, reported and compared
    never holds a secret value. An item's identity is its source URL without the secret values (credential-shaped
    parameters stay in it: see gallery_operator/redaction.py); failures, names and metadata lose both."""

    def __init__(self, config: WorkerConfig, store: Store, scratch: Path, redactor: Redactor | None = None) -> None:
        self.config = config
        self.redactor = redactor or Redactor()
        self.store = store
        self.root = store.workdir.resolve()
        self.scratch = scratch
        self.state = self.root / CATALOGUE_DIR
        store.open_state()
        self.catalogue = Catalogue(self.state / CATALOGUE_FILE)
        self._folders: dict[Path, Path] = {}
        self.lock = threading.Lock()
        self.items_done = 0
        self.bytes_done = 0
        self.bytes_in_flight = 0  # of files still being written
        self.items_failed = 0
        self.original_names: dict[str, str] = {}
        """Path chosen by ``place`` -> the name the engine wanted, when they differ (recorded in the catalogue)."""
        self.counted: dict[str, int | None] = {}
        """Paths counted as done by this pod -> the size stored (None for an item skipped as stored earlier)."""
        self.failures: list[Failure] = []
        self.stop_reason: str | None = None
        limits = config.spec.limits
        self.max_bytes = quantity_bytes(limits.max_bytes) if limits.max_bytes else None

    # -- Sink ----------------------------------------------------------------------------------------

    def _relative(self, path: Path) -> str | None:
        """The path relative to the target root, or None if it escapes it (then the file is removed).

        Symlinks are followed: the folder's real location is resolved once per folder (items share a few), the
        file itself fully whenever it is a link."""
        try:
            if path.is_symlink() or path.name == "..":
                return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        return self._planned(path)

    def _planned(self, path: Path) -> str | None:
        """``_relative`` for a name that is not on disk yet (no link to follow): no system call after the first
        item of a folder, which matters per item on slow disks."""
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = path.parent.resolve()
        try:
            return (folder / path.name).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def stored(
        self,
        path: Path,
        source_url: str,
        engine: str,
        extractor: str,
        metadata: dict[str, Any],
        sha256: str | None = None,
        sidecar: tuple[Path, dict[str, Any]] | None = None,
    ) -> None:
        source_url = self.redactor.values(source_url)
        relative = self._relative(path)
        if relative is None:
            path.unlink(missing_ok=True)
            self.failed(source_url, "Blocked", f"the engine wrote outside the target: {path.name!r}")
            return
        if self.redactor.values(relative) != relative:  # the engine named it past Run.place: no name shows a secret
            path.unlink(missing_ok=True)
            self.failed(source_url, "Blocked", f"the engine named a file with a secret value: {relative!r}")
            return
        size = path.stat().st_size
        kind = content_type(path)
        record = {
            "path": relative,
            "size": size,
            "sha256": sha256 or sha256_of(path),
            "contentType": kind,
            "sourceUrl": source_url,
            "engine": engine,
            "extractor": extractor,
            "metadata": self.redactor.clean(_jsonable(metadata)),
        }
        original = self.original_names.pop(str(path), None)
        if original is not None:
            record["originalName"] = self.redactor.text(original)
        try:
            self.store.stored(path, relative, kind)
        except Exception as error:  # an unreachable bucket must not lose what the catalogue already holds
            self.failed(source_url, "StorageError", f"storing {relative} failed: {error}")
            return
        if sidecar is not None and self.config.spec.options.write_metadata:
            self._write_sidecar(*sidecar, source_url)
        if not self.catalogue.add(record) and self.catalogue.owner(relative) != source_url:
            owner = self.catalogue.owner(relative)
            self.failed(source_url, "Internal", f"not counted: {relative} is catalogued for another item ({owner})")
            return
        self.store.sync_state()
        with self.lock:
            self.items_done += 1
            self.bytes_done += size
            self.counted[relative] = size
        self._check_limits()

    def place(self, path: Path, source_url: str) -> Path:
        """Where an item is stored. First a name a filesystem and a person can take (``names.safe_name``: no control or
        direction-changing characters, at most MAX_NAME_BYTES, fewer when an S3 key would pass 1024 bytes). Then, if
        that name holds another item already (another source URL in the catalogue, or a file the catalogue does not
        know), the name with a short hash of the item's URL before the extension. The same item always gets the same
        name, so a re-run skips it, and two items never share one path."""
        source_url = self.redactor.values(source_url)
        path = path.with_name(self.redactor.values(path.name))
        room = MAX_NAME_BYTES  # the name is not touched on disk before it is safe: a long one raises ENAMETOOLONG
        if isinstance(self.config.storage, S3Storage):
            folder = self._planned(path.parent / "item")
            if folder is None:
                return path  # refused when stored
            used = len(self.config.storage.prefix.encode()) + len(folder.encode()) - len("item") + 1
            room = min(room, max(40, MAX_KEY_BYTES - used))
        safe = path.with_name(safe_name(path.name, source_url, room))
        if self._planned(safe) is None or path.name == "..":
            return path  # refused when stored
        candidate, tries = safe, 0
        while not self._free_for(candidate, source_url):
            tries += 1
            suffix = url_hash(source_url) if tries == 1 else f"{url_hash(source_url)}-{tries}"
            candidate = safe.with_name(f"{safe.stem}-{suffix}{safe.suffix}")
        if candidate.name != path.name:
            self.original_names[str(candidate)] = path.name
        return candidate

    def _free_for(self, path: Path, source_url: str) -> bool:
        relative = self._planned(path)
        owner = self.catalogue.owner(relative) if relative is not None else None
        if owner is not None:
            return owner == source_url
        return not path.exists()

    def _write_sidecar(self, path: Path, metadata: dict[str, Any], source_url: str) -> None:
        """The item's full metadata as JSON beside it, without credentials; stored like the item (not catalogued)."""
        relative = self._relative(path)
        if relative is None:
            return
        try:
            path.write_text(json.dumps(self.redactor.clean(_jsonable(metadata)), ensure_ascii=False, indent=1))
            self.store.stored(path, relative, "application/json")
        except Exception as error:
            self.failed(source_url, "StorageError", f"storing the metadata {relative} failed: {error}")

    def skipped(self, path: Path | None, source_url: str) -> None:
        """An item the engine found stored already. Counted only when the catalogue holds it (yt-dlp's archive names
        no path; its items are recorded by video id)."""
        source_url = self.redactor.values(source_url)
        relative = self._relative(path) if path is not None else None
        if path is not None and (relative is None or self.catalogue.owner(relative) != source_url):
            where = relative or path.name
            self.failed(source_url, "Internal", f"not counted: skipped as stored, but the catalogue holds no {where}")
            return
        with self.lock:
            self.items_done += 1
            if relative is not None:
                self.counted.setdefault(relative, None)
        self._check_limits()

    def verify(self) -> None:
        """Fail loudly (reason Internal, with the paths) if a counted item is not a file of the catalogued size at the
        target. Claims only: an S3 target's objects are checked by the upload itself."""
        if not isinstance(self.config.storage, PvcStorage):
            return
        missing = [
            relative
            for relative, size in self.counted.items()
            if not (self.root / relative).is_file()
            or (size is not None and (self.root / relative).stat().st_size != size)
        ]
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
            failure = Failure(reason=reason, message=message[:1024], url=url[:2048])  # type: ignore[arg-type]
            if failure not in self.failures:
                self.failures = [*self.failures, failure][-MAX_FAILURES:]

    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def clean(self, value: Any) -> Any:
        return self.redactor.clean(value, shapes=False)

    def count(self, size: int) -> bool:
        with self.lock:
            self.bytes_in_flight += size
            total = self.bytes_done + self.bytes_in_flight
        if self.max_bytes and total > self.max_bytes:
            self._stop(f"limits.maxBytes reached ({self.max_bytes} bytes; the file in progress was not kept)")
        return self.should_stop()

    def overdue(self, started: float) -> str | None:
        """Why an item downloading since ``started`` (time.monotonic) must stop, or None; stops the run when so."""
        seconds = self.config.spec.limits.max_item_seconds
        if time.monotonic() - started <= seconds:
            return None
        why = f"limits.maxItemSeconds reached: an item took longer than {seconds}s (an endless stream?); not kept"
        self._stop(why)  # like the other limits, it ends the run (the item in progress is not kept)
        return why

    def stream(self, path: Path) -> PartUpload | None:
        if not self.store.takes_streams:
            return None
        relative = self._relative(path)
        return self.store.stream(path, relative, content_type(path)) if relative is not None else None

    def _check_limits(self) -> None:
        limits = self.config.spec.limits
        if limits.max_items and self.items_done >= limits.max_items:
            self._stop(f"limits.maxItems reached ({limits.max_items} items)")
        elif self.max_bytes and self.bytes_done >= self.max_bytes:
            self._stop(f"limits.maxBytes reached ({self.bytes_done} bytes)")

    def _stop(self, reason: str) -> None:
        with self.lock:
            if self.stop_reason is not None:
                return
            self.stop_reason = reason
        self.failed(self.config.spec.urls[0], "LimitExceeded", reason)

    # -- report ----------------------------------------------------------------------------------------

    def outcome(self) -> str:
        real_failures = [f for f in self.failures if f.reason != "LimitExceeded"]
        if not self.failures:
            return "Succeeded"
        if any(f.reason == "StorageError" for f in self.failures):
            return "Failed"  # the target failed, not an item: a new pod resumes from what was stored
        if self.items_done and (real_failures or self.stop_reason):
            return "PartiallySucceeded"
        return "Failed" if real_failures else "PartiallySucceeded"

    def report(self, final: bool = False) -> Report:
        outcome = self.outcome() if final else "Running"
        location = f"{self.store.location()}/{CATALOGUE_DIR}/{CATALOGUE_FILE}"
        message = self.stop_reason or ""
        if final and not message:
            message = f"{self.items_done} items stored, {self.items_failed} failed"
        return Report(
            run=self.config.run,
            final=final,
            items_done=self.items_done,
            items_failed=self.items_failed,
            bytes_done=self.bytes_done if final else self.bytes_done + max(0, self.bytes_in_flight),
            catalogue_items=self.catalogue.items,
            catalogue_bytes=self.catalogue.bytes,
            catalogue_location=location,
            sample=self.catalogue.sample,
            failures=self.failures,
            outcome=outcome,  # type: ignore[arg-type]
            message=message,
        )

    def exit_code(self) -> int:
        if self.outcome() != "Failed":
            return EXIT_OK
        return EXIT_PERMANENT if all(permanent(f.reason, f.message) for f in self.failures) else EXIT_RETRYABLE


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_jsonable(v) for v in value]
        return str(value)
    return value


def fit_termination_message(report: Report) -> str:
    """The final report as JSON within the kubelet's 4 KiB limit, dropping detail (not counts) if needed."""
    while True:
        text = report.model_dump_json(by_alias=True, exclude_none=True)
        if len(text.encode()) <= TERMINATION_LIMIT:
            return text
        if report.failures:
            report = report.model_copy(update={"failures": report.failures[1:]})
        elif report.sample:
            report = report.model_copy(update={"sample": report.sample[:-1]})
        else:
            return report.model_copy(update={"message": report.message[:200]}).model_dump_json(by_alias=True)


class Reporter(threading.Thread):
    """Posts the run's report to the operator every few seconds (best effort; the final one also ends up in
    the termination message)."""

    def __init__(
        self, run: Run, url: str, token_file: Path, interval: float, guard: Guard, trust: Trust | None
    ) -> None:
        super().__init__(name="reporter", daemon=True)
        self.guard = guard
        self.trust = trust
        self.run_state = run
        self.url = url
        self.token_file = token_file
        self.interval = interval
        self.stopped = threading.Event()
        self.warned = False

    FINAL_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Waits before the final report is posted again. A new pod's first connections can be refused while the
    cluster's policy agent has not yet added it to the report port's allowed peers, and the report endpoint answers
    429 or 503 when its budget for this source is spent; the termination message stays the last fallback."""
    RETRIED_STATUSES = frozenset({429, 502, 503, 504})

    def post(self, report: Report, *, final: bool = False) -> None:
        waits = iter(self.FINAL_RETRY_SECONDS if final else ())
        while True:
            error = self._send(report)
            if error is None:
                return
            retried = not isinstance(error, urllib.error.HTTPError) or error.code in self.RETRIED_STATUSES
            wait = next(waits, None) if retried else None
            if wait is None:
                if not self.warned:
                    log.warning("cannot report progress to the operator: %s", error)
                    self.warned = True
                return
            time.sleep(wait)

    def _send(self, report: Report) -> OSError | None:
        try:
            token = self.token_file.read_text().strip()
            report = self.run_state.redactor.model(report)
            request = urllib.request.Request(  # noqa: S310 - the operator's URL from its own config
                self.url,
                data=report.model_dump_json(by_alias=True, exclude_none=True).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                method="POST",
            )
            with self.guard.trusting(self.trust), urllib.request.urlopen(request, timeout=5):  # noqa: S310
                return None
        except OSError as error:  # urllib.error.URLError and HTTPError are OSErrors
            return error

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.post(self.run_state.report())


def engines_for(engine: str, url: str, engines: dict[str, Engine]) -> list[Engine]:
    """The engines to try, in order. `auto`: gallery-dl when it has an extractor for the site, else yt-dlp,
    and gallery-dl's generic extractor (images linked from the page) when yt-dlp finds no video there."""
    if engine != "auto":
        return [engines[engine]]
    gallery = engines["gallery-dl"]
    return [gallery] if gallery.supports(url) else [engines["yt-dlp"], gallery]


class Probe:
    """Forwards to the run, but holds back an UnsupportedUrl failure so the next engine can try the URL."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.unsupported: tuple[str, str] | None = None
        self.stored_any = False

    def stored(self, *args: Any, **kwargs: Any) -> None:
        self.stored_any = True
        self.run.stored(*args, **kwargs)

    def skipped(self, path: Path | None, source_url: str) -> None:
        self.stored_any = True
        self.run.skipped(path, source_url)

    def failed(self, url: str, reason: str, message: str) -> None:
        if reason == "UnsupportedUrl":
            self.unsupported = (url, message)
        else:
            self.run.failed(url, reason, message)

    def should_stop(self) -> bool:
        return self.run.should_stop()

    def clean(self, value: Any) -> Any:
        return self.run.clean(value)

    def count(self, size: int) -> bool:
        return self.run.count(size)

    def stream(self, path: Path) -> PartUpload | None:
        return self.run.stream(path)

    def place(self, path: Path, source_url: str) -> Path:
        return self.run.place(path, source_url)

    def overdue(self, started: float) -> str | None:
        return self.run.overdue(started)


def cookies_source() -> Path:
    return Path(os.environ.get("GALLERY_WORKER_COOKIES_DIR", COOKIES_MOUNT)) / COOKIES_FILE


def run_redactor() -> Redactor:
    """This pod's redactor, installed on everything the process logs or prints from now on."""
    redactor = pod_redactor(cookies_source())
    redact_output(redactor)
    return redactor


def private_cookies(scratch: Path) -> Path | None:
    """Engines write cookies back at exit: give them a private copy of the read-only Secret file."""
    source = cookies_source()
    if not source.is_file():
        return None
    copy = scratch / COOKIES_FILE
    shutil.copyfile(source, copy)
    copy.chmod(0o600)
    return copy


def scratch_folder() -> Path:
    scratch = Path(os.environ.get("GALLERY_WORKER_SCRATCH", SCRATCH_MOUNT))
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def install_egress_guard(config: WorkerConfig) -> Guard:
    """Every connection of this process obeys the egress rules. The reporter and the S3 client trust their own
    destinations inside their own code (see ``worker/egress.py``)."""
    guard = Guard(config.egress)
    guard.install()
    return guard


def report_trust(config: WorkerConfig) -> Trust | None:
    """The operator's report endpoint: its own service, on whatever address the cluster gives it."""
    host = urllib.parse.urlsplit(config.report_url).hostname if config.report_url else None
    return Trust(host, private=True) if host else None


def execute(config: WorkerConfig, termination_log: Path, lookahead: Lookahead | None = None) -> int:
    redactor = run_redactor()
    programs.install()
    if config.spec.options.low_speed_limit:
        LowSpeedLimit(config.spec.options.low_speed_limit, config.spec.options.low_speed_seconds).install()
    guard = install_egress_guard(config)
    scratch = scratch_folder()
    try:
        store = open_store(config.storage, scratch, guard)
        run = Run(config, store, scratch, redactor)
    except Exception as error:
        log.exception("cannot open the target")
        blocked = isinstance(error, Blocked)
        report = Report(
            run=config.run,
            final=True,
            outcome="Failed",
            message=f"cannot open the target: {error}"[:1024],
            failures=[Failure(reason="Blocked" if blocked else "StorageError", message=str(error)[:1024])],
        )
        _terminate(termination_log, report, redactor)
        return EXIT_PERMANENT if blocked else EXIT_RETRYABLE
    programs.confine(run.root, scratch)
    reporter = None
    token = Path(TOKEN_MOUNT) / TOKEN_FILE
    if config.report_url and token.is_file():
        reporter = Reporter(run, config.report_url, token, config.report_interval_seconds, guard, report_trust(config))
        reporter.start()
    try:
        download_all(config, run, scratch, lookahead)
    except Exception as error:  # the worker's own bug: reported as such, and what was stored is kept
        log.exception("the run failed")
        run.failed(config.spec.urls[0], "Internal", f"the worker failed: {type(error).__name__}: {error}")
    run.catalogue.close()
    run.verify()
    try:
        store.finish()
        store.sync_state(force=True)
    except Exception as error:
        run.failed(config.spec.urls[0], "StorageError", f"saving the catalogue failed: {error}")
    final = run.report(final=True)
    if reporter is not None:
        reporter.stopped.set()
        reporter.post(final, final=True)
    _terminate(termination_log, final, redactor)
    log.info("finished: %s", final.message)
    return run.exit_code()


def download_all(config: WorkerConfig, run: Run, scratch: Path, lookahead: Lookahead | None) -> None:
    """Every URL of the spec, each with the engines ``engines_for`` names; an engine's error is the URL's failure."""
    transport.install()
    cookies = private_cookies(scratch)
    engines: dict[str, Engine] = {
        "gallery-dl": GalleryDl(config.spec, run.root, run.state, scratch, cookies, lookahead),
        "yt-dlp": YtDlp(config.spec, run.root, run.state, scratch, cookies),
    }
    if unknown := unknown_site(config, engines):
        run.failed(config.spec.urls[0], "InvalidSpec", unknown)
    for url in config.spec.urls if not unknown else ():
        if run.should_stop():
            break
        candidates = engines_for(config.spec.engine, url, engines)
        before = (run.items_done, run.items_failed)
        for position, engine in enumerate(candidates, 1):
            log.info("downloading %s with %s", url, engine.name)
            probe = Probe(run)
            try:
                engine.run(url, probe)
            except programs.ProgramRefused:
                pass  # recorded by the wall, reported below
            except (Exception, SystemExit) as error:  # an engine bug must not lose what was stored
                log.exception("engine %s failed on %s", engine.name, url)
                message = f"{type(error).__name__}: {error}"
                run.failed(url, classify(message, error=error), message)
            for refused in programs.take_refusals():  # also those an engine swallowed
                log.warning("%s: %s", url, refused)
                if not any(refused in failure.message for failure in run.failures):
                    run.failed(url, "Blocked", refused)
            if probe.unsupported is None or probe.stored_any:
                break
            if position == len(candidates):
                failed_url, message = probe.unsupported
                run.failed(failed_url, "UnsupportedUrl", message)
        if (run.items_done, run.items_failed) == before and not run.should_stop():
            run.failed(url, "UnsupportedUrl", "no media found at this URL")


def unknown_site(config: WorkerConfig, engines: dict[str, Engine]) -> str | None:
    """Why spec.auth.site names no site an engine of this download knows (credentials for it would go nowhere), or
    None."""
    site = config.spec.auth.site if config.spec.auth else None
    names = [config.spec.engine] if config.spec.engine != "auto" else list(engines)
    if site is None or any(engines[name].knows(site) for name in names):
        return None
    return f"spec.auth.site: {site!r} is no extractor of {' or '.join(names)} (a gallery-dl category or a yt-dlp key)"


def _terminate(termination_log: Path, report: Report, redactor: Redactor) -> None:
    try:
        termination_log.write_text(fit_termination_message(redactor.model(report)))
    except OSError as error:
        log.warning("cannot write the termination message: %s", error)


def report_crash(config: WorkerConfig, error: BaseException, termination_log: Path) -> int:
    """The last resort for an exception that escaped the run (the worker's own bug): a report says so, with the
    message, and the pod ends instead of leaving only a traceback behind."""
    log.error("the worker failed", exc_info=error)
    message = f"the worker failed: {type(error).__name__}: {error}"[:1024]
    report = Report(
        run=config.run,
        final=True,
        outcome="Failed",
        message=message,
        failures=[Failure(reason="Internal", message=message, url=config.spec.urls[0])],
    )
    _terminate(termination_log, report, run_redactor())
    return EXIT_RETRYABLE


def refuse_config(raw: str, error: ValidationError, termination_log: Path) -> int:
    """A configuration the models refuse: nothing runs; the termination message names each refused field."""
    try:
        run = str(json.loads(raw).get("run") or "")
    except (ValueError, AttributeError):
        run = ""
    message = describe_validation(error, prefix="")
    report = Report(
        run=run,
        final=True,
        outcome="Failed",
        message=f"invalid worker configuration: {message}"[:1024],
        failures=[Failure(reason="InvalidSpec", message=message[:1024])],
    )
    _terminate(termination_log, report, run_redactor())
    return EXIT_PERMANENT


def cleanup(config: WorkerConfig, termination_log: Path) -> int:
    """deletionPolicy Delete: remove everything the download stored (files, catalogue, archives)."""
    run_redactor()
    programs.install()
    store = open_store(config.storage, scratch_folder(), install_egress_guard(config))
    removed = store.delete_all()
    message = json.dumps({"removed": removed, "location": store.location()})
    log.info("cleanup: %s", message)
    try:
        termination_log.write_text(message)
    except OSError as error:
        log.warning("cannot write the termination message: %s", error)
    return EXIT_OK
