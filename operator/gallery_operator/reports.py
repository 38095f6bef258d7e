"""Worker reports on their way to a status: who is a worker of which download (from the watch), and the latest
report of each download's current run."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from gallery_operator.keys import Key
from gallery_operator.redaction import PATTERNS
from gallery_operator.reportgate import pod_prefix_of, worker_pod_prefix
from gallery_operator.workerconfig import Report


@dataclass(frozen=True)
class WorkerJob:
    """A Job a download controls: where it is, and the uid of that download."""

    namespace: str
    name: str
    owner: str


@dataclass
class Directory:
    """Uids to places, from watch events: an owner reference and a pod's token name uids, not places."""

    _downloads: dict[str, Key] = field(default_factory=dict)
    _jobs: dict[str, WorkerJob] = field(default_factory=dict)
    _pod_prefixes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    """(namespace, the name prefix the Job controller gives a Job's pods) -> uids of the worker Jobs there."""

    def observe_download(self, key: Key, uid: str, gone: bool) -> None:
        if gone:
            self._downloads.pop(uid, None)
        else:
            self._downloads[uid] = key

    def observe_job(self, job: WorkerJob, uid: str, gone: bool) -> None:
        place = (job.namespace, worker_pod_prefix(job.name))
        if gone:
            self._jobs.pop(uid, None)
            uids = self._pod_prefixes.get(place, set())
            uids.discard(uid)
            if not uids:
                self._pod_prefixes.pop(place, None)
        else:
            self._jobs[uid] = job
            self._pod_prefixes.setdefault(place, set()).add(uid)

    def download(self, namespace: str, uid: str) -> Key | None:
        """The download of this uid, if it lives in this namespace."""
        key = self._downloads.get(uid)
        return key if key is not None and key[0] == namespace else None

    def job(self, uid: str) -> WorkerJob | None:
        return self._jobs.get(uid)

    def jobs_of_pod(self, namespace: str, pod_name: str) -> list[tuple[str, WorkerJob]]:
        """(uid, Job) of the worker Jobs in the namespace whose pods could bear this name (no API call)."""
        prefix = pod_prefix_of(pod_name)
        uids = self._pod_prefixes.get((namespace, prefix), set()) if prefix is not None else set()
        return [(uid, self._jobs[uid]) for uid in uids if uid in self._jobs]


@dataclass
class Inbox:
    """The latest report per download. A pod's progress after its own final report is late and dropped; a retried
    pod's progress is its own and counts."""

    _reports: dict[Key, Report] = field(default_factory=dict)
    _final_pods: dict[Key, str] = field(default_factory=dict)
    """The pod (uid) whose final report is held, per download ("" for one read from a termination message)."""

    def put(self, key: Key, pod: str, report: Report) -> bool:
        """Hold the report; False when it is a late progress report of a pod that already sent its final one.

        Every report passes the credential patterns here, before any status, Event or log line is made of it: the
        worker has removed its own secret values already; this catches credential-shaped text in any report."""
        report = PATTERNS.model(report)
        current = self._reports.get(key)
        if current is not None and current.final and not report.final and self._final_pods.get(key) == pod:
            return False
        self._reports[key] = report
        if report.final:
            self._final_pods[key] = pod
        return True

    def get(self, key: Key) -> Report | None:
        return self._reports.get(key)

    def drop(self, key: Key) -> None:
        self._reports.pop(key, None)
        self._final_pods.pop(key, None)


def final_report(messages: Iterable[tuple[str, str]], run: str) -> Report | None:
    """The last report of `run` among pods' termination messages ((start time, message), oldest first): what the
    last worker wrote when the live report missed the end. Anything that is not such a report is skipped."""
    for _, message in reversed(list(messages)):
        try:
            report = Report.model_validate(json.loads(message))
        except (ValueError, ValidationError):
            continue
        if report.run == run:
            return report
    return None
