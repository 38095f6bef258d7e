"""The recording fake with the ended worker containers of a Job, and a report as a termination message: shared by
the tests of a run's last word."""

from __future__ import annotations

from gallery_operator.workerconfig import Report
from tests.unit.builders import RecordingKube


def message(report: Report) -> str:
    return report.model_dump_json(by_alias=True, exclude_none=True)


class EndedPods(RecordingKube):
    """The recording fake, with the ended worker containers of the Job."""

    def __init__(self, ends: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.ends = ends

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]:
        self.calls.append(("termination_messages", job_name))
        return self.ends
