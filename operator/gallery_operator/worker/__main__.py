"""The Job pod entrypoint: ``python -m gallery_operator.worker`` (configuration in GALLERY_WORKER_CONFIG)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from gallery_operator import logs
from gallery_operator.worker.run import cleanup, execute
from gallery_operator.workerconfig import CONFIG_ENV, EXIT_PERMANENT, WorkerConfig


def main() -> int:
    logs.configure(logging.INFO, json_format=os.environ.get("GALLERY_WORKER_LOG_FORMAT", "json") == "json")
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        print(f"{CONFIG_ENV} is not set: the worker runs in a Job made by the operator", file=sys.stderr)
        return EXIT_PERMANENT
    try:
        config = WorkerConfig.model_validate_json(raw)
    except ValidationError as error:
        print(f"invalid {CONFIG_ENV}: {error}", file=sys.stderr)
        return EXIT_PERMANENT
    termination = Path(os.environ.get("GALLERY_WORKER_TERMINATION_LOG", "/dev/termination-log"))
    if "--cleanup" in sys.argv[1:]:
        return cleanup(config, termination)
    return execute(config, termination)


if __name__ == "__main__":
    raise SystemExit(main())
