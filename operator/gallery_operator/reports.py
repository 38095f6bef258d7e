"""Worker reports on their way to a status: who is a worker of which download (from the watch), and the latest
report of each download's current run."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    """The latest report per download, and the pod (uid) that sent it and when that pod was created. A pod's progress
    after its own final report is late and dropped; a retried pod's progress is its own and counts."""

    _reports: dict[Key, Report] = field(default_factory=dict)
    _pods: dict[Key, tuple[str, str]] = field(default_factory=dict)
    """The pod (uid) whose report is held and its creation time, per download ("" when not known)."""

    def put(self, key: Key, pod: str, report: Report, created: str = "") -> bool:
        """Hold the report; False when it is a late progress report of a pod that already sent its final one.
        The report is redacted here once more (`PATTERNS.model`, at most 10 ms for the largest report): the
        worker has removed its own secret values already; this catches credential-shaped text in any report.
        ``created``: when the pod was created (its metadata's creationTimestamp), which places its report among
        its Job's other pods after the pod is gone."""
        report = PATTERNS.model(report)
        current = self._reports.get(key)
        if current is not None and current.final and not report.final and self.pod(key) == pod:
            return False
        self._reports[key] = report
        self._pods[key] = (pod, created)
        return True

    def get(self, key: Key) -> Report | None:
        return self._reports.get(key)

    def pod(self, key: Key) -> str:
        """The pod whose report is held ("" when none is, or its pod is not known)."""
        return self._pods.get(key, ("", ""))[0]

    def created(self, key: Key) -> str:
        """When the pod whose report is held was created ("" when not known)."""
        return self._pods.get(key, ("", ""))[1]

    def drop(self, key: Key) -> None:
        self._reports.pop(key, None)
        self._pods.pop(key, None)


def _report_of(message: str, run: str) -> Report | None:
    try:
        report = Report.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None
    return report if report.run == run else None


def final_report(
    ends: Sequence[tuple[str, str, str]], run: str, held_pod: str = "", held_created: str = ""
) -> tuple[Report, str] | None:
    """The last word of `run` and its pod, from the ended worker containers of its Job ((start time, pod uid,
    termination message), oldest first), when it is newer than the report held (sent by `held_pod`, a pod of this
    run created at `held_created`; "" when no report of this run is held): what the last worker wrote when the live
    report missed the end. Only pods that started strictly after the held report's pod count: an earlier pod's
    message says less than a later pod's report, the held final report of the last pod is itself the richer copy of
    its message, and a pod started within the same second cannot be told later (start times have second precision).
    When the held report's pod has not ended (a Job's FailureTarget comes before its running pod is killed) or is
    gone (an evicted pod is deleted once its Job counted it), it is placed by its creation: a pod that started
    after it was created came after it (a Job creates a pod only once the one before has ended or is going). A
    pod placed nowhere leaves the report held standing. Anything that is not such a report is skipped; None when
    nothing newer is there."""
    if held_pod:
        started = next((start for start, pod, _ in ends if pod == held_pod and start), held_created)
        if not started:
            return None
        ends = [end for end in ends if end[0] > started and end[1] != held_pod]
    for _, pod, message in reversed(ends):
        report = _report_of(message, run)
        if report is not None:
            return report, pod
    return None
