"""The Job pod entrypoint: ``python -m gallery_operator.worker`` (configuration in GALLERY_WORKER_CONFIG)."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

from gallery_operator.worker import deferred, inputs


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        import json  # noqa: PLC0415 - only for the self-report

        from gallery_operator.worker.capabilities import report  # noqa: PLC0415

        print(json.dumps(report(inputs.read()), indent=1))
        return 0
    raw = inputs.config_json()  # read here before anything heavy is imported
    cleanup_only = "--cleanup" in sys.argv[1:]
    deferred.install()  # yt-dlp's extras' crypto modules load at their first use, not at yt-dlp's import

    import logging  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from gallery_operator import logs  # noqa: PLC0415
    from gallery_operator.worker.pod import cleanup, execute, refuse_config, report_crash  # noqa: PLC0415
    from gallery_operator.workerconfig import EXIT_PERMANENT, WorkerConfig  # noqa: PLC0415

    pod = inputs.read(raw)
    logs.configure(logging.INFO, json_format=pod.log_json)
    if not raw:
        print(f"{inputs.CONFIG_ENV} is not set: the worker runs in a Job made by the operator", file=sys.stderr)
        return EXIT_PERMANENT
    try:
        # The second check of the allowlist of engine options (the CRD is the first): nothing the models do not
        # describe reaches an engine, whoever wrote this configuration.
        config = WorkerConfig.model_validate_json(raw)
    except ValidationError as error:
        print(f"invalid {inputs.CONFIG_ENV}: {error}", file=sys.stderr)
        return refuse_config(pod, raw, error)
    if cleanup_only:
        return cleanup(config, pod)
    try:
        return execute(config, pod)
    except Exception as error:  # execute reports what it can; this is for what escapes it
        return report_crash(config, pod, error)


def leave(code: int) -> NoReturn:
    """End the process as the interpreter's exit would, without its teardown: threads that are not daemons are
    waited for (and idle thread pools woken to end), the exit handlers run (logging's flush, the redacted output's
    drain, gallery-dl's archive close), the standard streams are flushed, and then the process ends without
    freeing its modules and objects one by one, which took 0.1-0.25 s of every worker's wall time after its work
    was done (docs/benchmarks.md)."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:  # an interpreter without it: the ordinary exit
        sys.exit(code)
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
