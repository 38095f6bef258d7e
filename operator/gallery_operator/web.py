"""The operator's HTTP endpoints: worker reports, /healthz and /readyz, and Prometheus /metrics.

A worker authenticates with its pod's projected service-account token, issued for the operator's audience
(the API server refuses such a token). A TokenReview names the pod the token is bound to; the operator
accepts a report only for the download and run that pod belongs to, so a worker can change nothing but
its own download's report, and needs no RBAC at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from gallery_operator import kube
from gallery_operator.config import Settings
from gallery_operator.jobs import LABEL_DOWNLOAD_UID, LABEL_RUN
from gallery_operator.metrics import register_phase_collector
from gallery_operator.workerconfig import Report

if TYPE_CHECKING:
    from gallery_operator.controller import Controller

log = logging.getLogger(__name__)
POD_NAME_CLAIM = "authentication.kubernetes.io/pod-name"
POD_UID_CLAIM = "authentication.kubernetes.io/pod-uid"
IDENTITY_TTL = 300.0
MAX_REPORT_BYTES = 256 * 1024


@dataclass(frozen=True)
class Identity:
    """Who may report: the download (namespace, name) and run a worker pod belongs to."""

    key: tuple[str, str]
    run: str
    expires: float


class Reports:
    """Authenticates worker reports and hands them to the controller."""

    def __init__(self, settings: Settings, controller: Controller) -> None:
        self.settings = settings
        self.controller = controller
        self.identities: dict[str, Identity] = {}

    async def identify(self, token: str) -> Identity | None:
        cached = self.identities.get(token)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        user = await asyncio.to_thread(kube.review_token, token, self.settings.report_audience)
        if user is None:
            return None
        parts = user["username"].split(":")
        pod_names, pod_uids = user["extra"].get(POD_NAME_CLAIM), user["extra"].get(POD_UID_CLAIM)
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or not pod_names or not pod_uids:
            return None
        namespace = parts[2]
        pod = await asyncio.to_thread(kube.read_pod, namespace, pod_names[0])
        if pod is None or pod.metadata.uid != pod_uids[0]:
            return None
        labels = pod.metadata.labels or {}
        uid, run = labels.get(LABEL_DOWNLOAD_UID), labels.get(LABEL_RUN)
        owner = next((o for o in pod.metadata.owner_references or [] if o.kind == "Job"), None)
        if not uid or not run or owner is None:
            return None
        key = self._download_key(namespace, uid)
        if key is None:
            return None
        identity = Identity(key=key, run=run, expires=time.monotonic() + IDENTITY_TTL)
        self.identities = {t: i for t, i in self.identities.items() if i.expires > time.monotonic()}
        self.identities[token] = identity
        return identity

    def _download_key(self, namespace: str, uid: str) -> tuple[str, str] | None:
        for key, values in list(self.controller.downloads.items()):
            if key[0] == namespace and any(v["uid"] == uid for v in values):
                return (key[0], key[1])
        return None

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return web.json_response({"error": "a bearer token is required"}, status=401)
        identity = await self.identify(header.removeprefix("Bearer ").strip())
        if identity is None:
            return web.json_response({"error": "the token does not belong to a worker pod"}, status=403)
        if (request.content_length or 0) > MAX_REPORT_BYTES:
            return web.json_response({"error": "report too large"}, status=413)
        try:
            report = Report.model_validate_json(await request.read())
        except ValidationError as error:
            return web.json_response({"error": str(error)}, status=422)
        if report.run != identity.run:
            return web.json_response({"error": "the report names another run than the pod's"}, status=403)
        self.controller.accept_report(identity.key, report)
        return web.json_response({"accepted": True})


@dataclass
class Servers:
    runners: list[web.AppRunner]

    async def cleanup(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port).start()  # noqa: S104 - served to the cluster network
    return runner


async def start_servers(settings: Settings, controller: Controller) -> Servers:
    reports = Reports(settings, controller)
    register_phase_collector(controller.phases)

    async def healthz(_: web.Request) -> web.Response:
        alive = controller.alive()
        return web.Response(text="ok" if alive else "reconcilers stopped", status=200 if alive else 500)

    async def readyz(_: web.Request) -> web.Response:
        if not controller.alive():
            return web.Response(text="reconcilers stopped", status=500)
        if not controller.indexed:
            return web.Response(text="caches not yet filled", status=503)
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    runners = []
    report_app = web.Application(client_max_size=MAX_REPORT_BYTES)
    report_app.router.add_post("/report", reports.handle)
    runners.append(await _serve(report_app, settings.report_port))
    if settings.health_port:
        health_app = web.Application()
        health_app.router.add_get("/healthz", healthz)
        health_app.router.add_get("/readyz", readyz)
        runners.append(await _serve(health_app, settings.health_port))
    if settings.metrics_port:
        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", metrics)
        runners.append(await _serve(metrics_app, settings.metrics_port))
    return Servers(runners)
