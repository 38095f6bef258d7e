"""The unit tier's shared pieces: the one recording fake of the operator's Kube facade, and the builders of
downloads and of a controller driven by hand that several unit test modules use. Test modules import these from
here, not from each other. (The same paths run against the real control plane in the e2e tier.)"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.client.rest import ApiException

from gallery_operator import kube
from gallery_operator.api.spec import parse_spec
from gallery_operator.config import Settings
from gallery_operator.controller import Controller
from gallery_operator.download import Download, parse_download
from gallery_operator.facade import Refused
from gallery_operator.jobs import job_name
from gallery_operator.keys import Key
from gallery_operator.snapshots import DownloadSnapshot, JobSnapshot, JobView, PolicySnapshot
from gallery_operator.subscription_plan import SubscriptionSnapshot

CREATED = "2026-11-22T10:00:00Z"

JOB_SETTINGS = Settings(worker_image="example.org/gallery-operator:test", job_ttl_seconds=120)
"""Settings of the Job builders' tests: an image and a TTL that show in the Jobs."""


class RecordingKube:
    """The Kube facade (and SubscriptionKube's), recording every call; `refuse` makes Job creation fail with that
    HTTP status."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.pods: dict[tuple[str, str], int] = {}
        """Pods count_pods finds, by (namespace, field selector)."""
        self.job_list: dict[str, list[dict[str, Any]]] = {}
        """Jobs job_bodies finds, by namespace."""
        self.refuse: int | None = None
        self.job_reads: dict[str, dict[str, Any]] = {}
        """Jobs read_job finds, by name."""
        self.statuses: dict[str, dict[str, Any]] = {}
        """Each download's status as the API server holds it after the merge patches written so far, by name."""

    async def create_job(self, job: dict[str, Any]) -> bool:
        self.calls.append(("create_job", job["metadata"]["name"]))
        if self.refuse in (400, 422):
            raise Refused("the API server refused the worker's Job: refused")  # as ThreadedKube translates it
        if self.refuse is not None:
            raise ApiException(status=self.refuse, reason="refused")
        return True

    async def create_pvc(self, pvc: dict[str, Any]) -> None:
        self.calls.append(("create_pvc", pvc["metadata"]["name"]))

    async def create_download(self, body: dict[str, Any]) -> bool:
        """SubscriptionKube's: a subscription's run."""
        self.calls.append(("create_download", body["metadata"]["name"]))
        return True

    async def delete_download(self, namespace: str, name: str, foreground: bool) -> None:
        self.calls.append(("delete_download", name))

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", name))

    async def keep_network_policy(self, policy: dict[str, Any]) -> None:
        self.calls.append(("keep_network_policy", policy["metadata"]["namespace"]))

    async def delete_network_policy(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_network_policy", namespace))

    async def set_job_suspended(self, namespace: str, name: str, suspended: bool) -> None:
        self.calls.append(("set_job_suspended", (name, suspended)))

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch_status", (name, patch)))
        self.statuses[name] = merged(self.statuses.get(name, {}), patch)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        self.calls.append(("set_finalizers", (name, finalizers)))

    async def list_jobs(self, namespace: str, selector: str, owner_uid: str) -> list[str]:
        self.calls.append(("list_jobs", owner_uid.removeprefix("uid-")))
        return []

    async def job_bodies(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self.job_list.get(namespace, [])

    async def count_pods(self, namespace: str, selector: str, fields: str = "") -> int:
        return self.pods.get((namespace, fields), 0)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.job_reads.get(name)

    async def termination_messages(self, namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]:
        return []

    async def post_event(self, reference: kube.ObjectRef, kind: str, reason: str, message: str) -> None:
        self.calls.append(("post_event", reason))

    async def review_token(self, token: str, audience: str) -> dict[str, Any] | None:
        return None

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def named(self, call: str) -> list[Any]:
        return [argument for name, argument in self.calls if name == call]

    def phases(self, download: str) -> list[str]:
        return [p["phase"] for name, p in self.named("patch_status") if name == download and "phase" in p]


# -- downloads ------------------------------------------------------------------------------------------------


def download_snapshot(
    name: str = "dl",
    namespace: str = "ns",
    *,
    uid: str | None = None,
    urls: list[str] | None = None,
    created: str = "",
    resource_version: str = "",
    **spec: Any,
) -> DownloadSnapshot:
    """A GalleryDownload as the watch shows it: uid `uid-<name>`, one image URL and a claim unless told otherwise;
    ``spec`` adds or replaces spec fields."""
    meta: dict[str, Any] = {"namespace": namespace, "name": name, "uid": uid or f"uid-{name}", "generation": 1}
    if created:
        meta["creationTimestamp"] = created
    if resource_version:
        meta["resourceVersion"] = resource_version
    body = {
        "metadata": meta,
        "spec": {"urls": urls or ["https://example.org/a.jpg"], "target": {"pvc": {"claimName": "m"}}, **spec},
    }
    return DownloadSnapshot.of(body)


def snapshot(name: str, priority: int = 0, created: str = CREATED) -> DownloadSnapshot:
    """One of several downloads in namespace `ns`, each of a URL of its own, in the admission queue by priority
    and age."""
    return download_snapshot(name, urls=[f"https://example.org/{name}.jpg"], created=created, priority=priority)


def parsed(snap: DownloadSnapshot, settings: Settings | None = None) -> Download:
    """The download a snapshot parses into (what the controller holds for it), asserted valid."""
    download = parse_download(snap, settings or Settings())
    assert isinstance(download, Download), download
    return download


def download(name: str = "cats", uid: str = "uid-1", **spec: Any) -> Download:
    """A parsed download for the Job builders: one gallery URL into the claim `media`."""
    raw: dict[str, Any] = {"urls": ["https://example.org/g/1"], "target": {"pvc": {"claimName": "media"}}}
    raw.update(spec)
    return Download("ns", name, uid, 1, "2026-11-21T00:00:00Z", parse_spec(raw))


# -- a controller driven by hand ------------------------------------------------------------------------------


def world(*snapshots: DownloadSnapshot, **settings: Any) -> tuple[Controller, RecordingKube]:
    """A controller whose caches hold these downloads, talking to a recording fake of the facade."""
    fake = RecordingKube()
    downloads = {s.key: [s] for s in snapshots}
    names: dict[str, list[str]] = {}
    for s in snapshots:
        names.setdefault(s.namespace, []).append(s.name)
    controller = Controller(Settings(**settings), downloads, {}, api=fake, namespace_downloads=names)
    return controller, fake


def reconcile(controller: Controller, *names: str) -> None:
    async def run() -> None:
        for name in names:
            await controller.reconcile(Key("ns", name))

    asyncio.run(run())


def taken(controller: Controller) -> set[Key]:
    """The keys waiting in the work queue (taken out: the test runs the reconciles itself)."""
    return set(controller.work.drain())


def job_appears(controller: Controller, name: str, job: str, active: bool = True) -> None:
    """What the Job watch does: the cache gets the Job, then the handler tells the controller."""
    status = {"active": 1, "ready": 1} if active else {"conditions": [{"type": "Complete", "status": "True"}]}
    jobs = controller.jobs
    assert isinstance(jobs, dict)
    jobs[f"uid-{name}"] = [JobSnapshot("ns", job, f"job-{name}", "run", False, JobView.of({"status": status}))]
    controller.observe_job("ns", job, active, gone=False, uid=f"job-{name}", owner=f"uid-{name}")


def watch_shows(controller: Controller, policy: dict[str, Any] | None) -> None:
    """What the policy watch does: the cache changes, then the handler tells the controller."""
    policies = controller.policies
    assert isinstance(policies, dict)
    if policy is None:
        policies.pop("ns", None)
    else:
        policies["ns"] = [PolicySnapshot.of(policy)]
    controller.observe_policy("ns")


def with_two_runs() -> tuple[Controller, Download]:
    """A controller that knows download ns/dl, the Job of its current run (uid job-1) and an earlier one's
    (dl-oldrun, uid job-0)."""
    downloads = {Key("ns", "dl"): [download_snapshot(urls=["https://example.org/a.jpg"])]}
    controller = Controller(Settings(), downloads, {})
    controller.observe_download(Key("ns", "dl"), gone=False, uid="uid-dl")
    current = parsed(downloads[Key("ns", "dl")][0])
    controller.observe_job("ns", job_name(current), active=True, gone=False, uid="job-1", owner="uid-dl")
    controller.observe_job("ns", "dl-oldrun", active=False, gone=False, uid="job-0", owner="uid-dl")
    return controller, current


SUBSCRIPTION_TEMPLATE = {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "media"}}}


def due_subscription(name: str) -> SubscriptionSnapshot:
    """A subscription whose first tick (its creation, an interval's first) has passed: its reconcile makes a run."""
    meta = {"namespace": "team-a", "name": name, "uid": f"uid-{name}", "generation": 1}
    meta["creationTimestamp"] = "2026-11-22T09:00:00Z"
    body = {"metadata": meta, "spec": {"interval": "1h", "jitter": "0s", "downloadTemplate": SUBSCRIPTION_TEMPLATE}}
    return SubscriptionSnapshot.of(body)


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386's MergePatch, as the API server applies a JSON merge patch: objects merged key by key at every depth,
    null removes a key, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result
