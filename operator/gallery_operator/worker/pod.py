"""The composition root of a worker pod: from its inputs (worker/inputs.py) to the walls, the target, the engine
chain, the run and its reports, and the end of the pod (exit code and termination message)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gallery_operator.api.spec import GalleryDownloadSpec, describe_validation, rate_bytes
from gallery_operator.api.status import Failure
from gallery_operator.redaction import Redactor
from gallery_operator.worker import programs, quick_requests, transport
from gallery_operator.worker.catalogue import Catalogue
from gallery_operator.worker.egress import Blocked, Guard
from gallery_operator.worker.engines import Engine, EngineChain
from gallery_operator.worker.hosts import Hosts
from gallery_operator.worker.inputs import Inputs
from gallery_operator.worker.pace import LowSpeedLimit
from gallery_operator.worker.redact import pod_redactor, redact_output
from gallery_operator.worker.reporting import Reporter, report_trust, terminate
from gallery_operator.worker.run import Run, catalogue_fields, open_catalogue
from gallery_operator.worker.storage import S3Defaults, Store, open_store
from gallery_operator.workerconfig import COOKIES_FILE, EXIT_OK, EXIT_PERMANENT, EXIT_RETRYABLE, Report, WorkerConfig

log = logging.getLogger("gallery_operator.worker")


def run_redactor(pod: Inputs) -> Redactor:
    """This pod's redactor, installed on everything the process logs or prints from now on."""
    redactor = pod_redactor(pod)
    redact_output(redactor)
    return redactor


def private_cookies(pod: Inputs) -> Path | None:
    """Engines write cookies back at exit: give them a private copy of the read-only Secret file."""
    if not pod.cookies_file.is_file():
        return None
    copy = pod.scratch / COOKIES_FILE
    shutil.copyfile(pod.cookies_file, copy)
    copy.chmod(0o600)
    return copy


def scratch_folder(pod: Inputs) -> Path:
    pod.scratch.mkdir(parents=True, exist_ok=True)
    return pod.scratch


def install_egress_guard(config: WorkerConfig) -> Guard:
    """Every connection of this process obeys the egress rules. The reporter and the S3 client trust their own
    destinations inside their own code (see ``worker/egress.py``)."""
    guard = Guard(config.egress)
    guard.install()
    return guard


def open_target(config: WorkerConfig, pod: Inputs, scratch: Path, guard: Guard) -> Store:
    return open_store(config.storage, scratch, guard, S3Defaults(pod.s3_endpoint, pod.s3_region))


def execute(config: WorkerConfig, pod: Inputs) -> int:
    """One download run, from the walls to the final report; the exit code."""
    redactor = run_redactor(pod)
    programs.install(pod.program_environment)
    if config.spec.options.low_speed_limit:
        LowSpeedLimit(config.spec.options.low_speed_limit, config.spec.options.low_speed_seconds).install()
    guard = install_egress_guard(config)
    scratch = scratch_folder(pod)  # no scratch folder is the worker's own failure (Internal), not the target's
    store: Store | None = None
    catalogue: Catalogue | None = None
    try:
        store = open_target(config, pod, scratch, guard)
        catalogue = open_catalogue(store)
        run = Run(config, store, scratch, catalogue, redactor)
    except Exception as error:
        read = catalogue_fields(catalogue, store) if catalogue is not None and store is not None else {}
        return unusable_target(config, pod, redactor, error, read)
    programs.confine(run.root, pod.scratch)
    reporter = start_reporter(config, pod, run, guard)
    try:
        download_all(config, pod, run)
    except Exception as error:  # the worker's own bug: reported as such, and what was stored is kept
        log.exception("the run failed")
        run.failed(config.spec.urls[0], "Internal", f"the worker failed: {type(error).__name__}: {error}")
    return finish(config, pod, run, store, reporter)


def unusable_target(
    config: WorkerConfig, pod: Inputs, redactor: Redactor, error: Exception, read: dict[str, Any]
) -> int:
    """The target could not be opened, or not made ready for the run: the final report says why, with the catalogue
    when the pod read it (``read``: `catalogue_fields`) and without one when it did not (the operator then keeps the
    last catalogue it knew instead of taking it for an empty one)."""
    log.exception("cannot open the target")
    blocked = isinstance(error, Blocked)
    report = Report(
        run=config.run,
        final=True,
        outcome="Failed",
        message=f"cannot open the target: {error}"[:1024],
        failures=[Failure(reason="Blocked" if blocked else "StorageError", message=str(error)[:1024])],
        **read,
    )
    terminate(pod.termination_log, report, redactor)
    return EXIT_PERMANENT if blocked else EXIT_RETRYABLE


def start_reporter(config: WorkerConfig, pod: Inputs, run: Run, guard: Guard) -> Reporter | None:
    """The reporter, when the operator gave an endpoint and the pod its token."""
    if not (config.report_url and pod.report_token.is_file()):
        return None
    interval, trust = config.report_interval_seconds, report_trust(config)
    reporter = Reporter(run.report, run.redactor, config.report_url, pod.report_token, interval, guard, trust)
    reporter.start()
    return reporter


def finish(config: WorkerConfig, pod: Inputs, run: Run, store: Store, reporter: Reporter | None) -> int:
    """The end of a run: the catalogue closed and checked, the target's state saved, the final report sent."""
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
    terminate(pod.termination_log, final, run.redactor)
    log.info("finished: %s", final.message)
    return run.exit_code()


def polite_hosts(spec: GalleryDownloadSpec) -> Hosts | None:
    """The politeness every transfer of the pod shares per host, installed where requests are sent; None with one
    transfer at a time (the engines' own pauses and rate then hold, as they always did)."""
    if spec.options.concurrency == 1:
        return None
    hosts = Hosts(rate_bytes(spec.options.rate_limit) if spec.options.rate_limit else None)
    hosts.install()
    return hosts


def engines(config: WorkerConfig, pod: Inputs, run: Run, hosts: Hosts | None) -> list[Engine]:
    """The engines the spec's choice may use (`auto`: both), each imported only then: a yt-dlp run never loads
    gallery-dl, a gallery-dl run never loads yt-dlp."""
    spec, scratch = config.spec, pod.scratch
    credentials = pod.credentials(private_cookies(pod))
    chosen: list[Engine] = []
    if spec.engine in ("auto", "gallery-dl"):
        from gallery_operator.worker.gallerydl import GalleryDl  # noqa: PLC0415 - imports gallery-dl

        chosen.append(GalleryDl(spec, run.root, run.state, scratch, credentials, pod.requests, hosts))
    if spec.engine in ("auto", "yt-dlp"):
        from gallery_operator.worker.ytdlp import YtDlp  # noqa: PLC0415 - yt-dlp itself is imported by its run

        chosen.append(YtDlp(spec, run.root, run.state, scratch, credentials, hosts))
    return chosen


def download_all(config: WorkerConfig, pod: Inputs, run: Run) -> None:
    """Every URL of the spec through the engine chain, until the run stops."""
    transport.install()
    quick_requests.install()
    spec = config.spec
    chain = EngineChain(spec.engine, engines(config, pod, run, polite_hosts(spec)))
    if unknown := chain.unknown_site(spec.auth.site if spec.auth else None):
        run.failed(spec.urls[0], "InvalidSpec", unknown)
    for url in spec.urls if not unknown else ():
        if run.should_stop():
            break
        before = (run.items_done, run.items_failed)
        chain.download(url, run)
        if (run.items_done, run.items_failed) == before and not run.should_stop():
            run.failed(url, "UnsupportedUrl", "no media found at this URL")


def report_crash(config: WorkerConfig, pod: Inputs, error: BaseException) -> int:
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
    terminate(pod.termination_log, report, run_redactor(pod))
    return EXIT_RETRYABLE


def refuse_config(pod: Inputs, raw: str, error: ValidationError) -> int:
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
    terminate(pod.termination_log, report, run_redactor(pod))
    return EXIT_PERMANENT


def cleanup(config: WorkerConfig, pod: Inputs) -> int:
    """deletionPolicy Delete: remove everything the download stored (files, catalogue, archives)."""
    run_redactor(pod)
    programs.install(pod.program_environment)
    store = open_target(config, pod, scratch_folder(pod), install_egress_guard(config))
    removed = store.delete_all()
    message = json.dumps({"removed": removed, "location": store.location()})
    log.info("cleanup: %s", message)
    try:
        pod.termination_log.write_text(message)
    except OSError as error:
        log.warning("cannot write the termination message: %s", error)
    return EXIT_OK
