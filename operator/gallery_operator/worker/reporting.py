"""What a run tells the operator: its report posted every few seconds, and the final one in the termination
message too."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gallery_operator.redaction import Redactor
from gallery_operator.worker.egress import Guard, Trust
from gallery_operator.workerconfig import Report, WorkerConfig

log = logging.getLogger("gallery_operator.worker")
TERMINATION_LIMIT = 4096


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


def terminate(termination_log: Path, report: Report, redactor: Redactor) -> None:
    """The final report, redacted, where the kubelet takes the termination message from."""
    try:
        termination_log.write_text(fit_termination_message(redactor.model(report)))
    except OSError as error:
        log.warning("cannot write the termination message: %s", error)


def report_trust(config: WorkerConfig) -> Trust | None:
    """The operator's report endpoint: its own service, on whatever address the cluster gives it."""
    host = urllib.parse.urlsplit(config.report_url).hostname if config.report_url else None
    return Trust(host, private=True) if host else None


class Reporter(threading.Thread):
    """Posts the run's report (``current``) to the operator every few seconds (best effort; the final one also ends
    up in the termination message)."""

    def __init__(
        self,
        current: Callable[[], Report],
        redactor: Redactor,
        url: str,
        token_file: Path,
        interval: float,
        guard: Guard,
        trust: Trust | None,
    ) -> None:
        super().__init__(name="reporter", daemon=True)
        self.guard = guard
        self.trust = trust
        self.current = current
        self.redactor = redactor
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
            report = self.redactor.model(report)
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
            self.post(self.current())
