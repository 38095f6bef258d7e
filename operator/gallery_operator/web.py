"""The operator's HTTP endpoints: worker reports, /healthz and /readyz, and Prometheus /metrics.

A worker authenticates with its pod's projected service-account token, issued for the operator's audience
(the API server refuses such a token). A TokenReview names the pod the token is bound to; the operator
accepts a report only when that pod's controller is the exact Job (by uid) it made for a download's current
run, so a worker can change nothing but its own download's report, and needs no RBAC at all. Labels, which
anyone who can create a pod can copy, identify nothing.

Before any TokenReview, the report gate (reportgate.py) looks at the unverified token and refuses what cannot be a
worker's, and budgets the reviews per client address and per claimed namespace, so a flood from one source
cannot spend the global budget real workers need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from gallery_operator.config import START_CEILING, Settings
from gallery_operator.keys import Key
from gallery_operator.metrics import REPORTS_FORWARDED, REPORTS_REFUSED, register_phase_collector
from gallery_operator.reportgate import Claimed, SourceBudgets, precheck
from gallery_operator.workerconfig import Report

if TYPE_CHECKING:
    from gallery_operator.controller import Controller
    from gallery_operator.election import Elector

log = logging.getLogger(__name__)
POD_NAME_CLAIM = "authentication.kubernetes.io/pod-name"
POD_UID_CLAIM = "authentication.kubernetes.io/pod-uid"
IDENTITY_TTL = 300.0
REFUSAL_TTL = 60.0
MAX_CACHED = 10_000
REVIEWS_AT_ONCE = 4
REVIEWS_PER_SECOND = 50
MAX_REPORT_BYTES = 256 * 1024
FORWARDED_HEADER = "X-Gallery-Operator-Forwarded"
"""Marks a report a standby forwarded: a replica that receives one does not forward it again (no loops)."""
FORWARDS_AT_ONCE = 32
FORWARD_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Identity:
    """Who may report: the download (namespace, name) and run a worker pod belongs to, and the pod's uid."""

    key: Key
    run: str
    pod: str
    expires: float
    created: str = ""
    """When the pod was created (its creationTimestamp): places its report among its Job's pods (Inbox.put)."""


class Reports:
    """Authenticates worker reports and hands them to the controller.

    A token is worth a report only when the TokenReview binds it to a pod whose controller is the exact Job (by
    uid) the operator made for a download's current run. A token whose unverified claims cannot be a worker's is
    refused without a review; results are cached (a refusal for a minute); reviews are budgeted per client address
    and per claimed namespace, at most a few run at once and at most REVIEWS_PER_SECOND start per second, so a stream
    of made-up tokens costs the API server little and locks no other source's workers out."""

    def __init__(
        self, settings: Settings, controller: Controller, report_target: Callable[[], str | None] = lambda: None
    ) -> None:
        self.settings = settings
        self.controller = controller
        self.report_target = report_target
        """Where a standby forwards reports (the leader's report URL from the Lease), or None."""
        self.forwards = asyncio.Semaphore(FORWARDS_AT_ONCE)
        self.session: ClientSession | None = None
        self.identities: dict[str, Identity] = {}
        self.refusals: dict[str, float] = {}
        self.reviews = asyncio.Semaphore(REVIEWS_AT_ONCE)
        self.started: list[float] = []
        self.sources = SourceBudgets()

    def _remember(self, token: str, identity: Identity | None) -> None:
        now = time.monotonic()
        for cache in (self.identities, self.refusals):
            if len(cache) >= MAX_CACHED:
                expired = [t for t, v in cache.items() if (v.expires if isinstance(v, Identity) else v) <= now]
                for stale in expired or list(cache)[: MAX_CACHED // 10]:
                    del cache[stale]
        if identity is None:
            self.refusals[token] = now + REFUSAL_TTL
        else:
            self.identities[token] = identity

    def _rate_limited(self) -> bool:
        now = time.monotonic()
        self.started = [t for t in self.started if t > now - 1.0]
        if len(self.started) >= REVIEWS_PER_SECOND:
            return True
        self.started.append(now)
        return False

    async def identify(self, token: str, address: str = "") -> Identity | str:
        """The identity of the worker holding this token (sent from ``address``), or why there is none (a metric
        label)."""
        now = time.monotonic()
        cached = self.identities.get(token)
        if cached is not None and cached.expires > now:
            return cached
        if self.refusals.get(token, 0.0) > now:
            return "not-a-worker"
        claimed = precheck(token, self.settings.report_audience, time.time(), self.controller.expects_pod)
        if not isinstance(claimed, Claimed):
            return claimed
        if not self.sources.try_take(address, claimed.namespace, now):
            return "source-rate-limited"
        try:
            if self._rate_limited():
                return "rate-limited"
            async with self.reviews:
                identity = await self._review(token)
        finally:
            self.sources.give_back(address, claimed.namespace)
        self._remember(token, identity)
        return identity if identity is not None else "not-a-worker"

    async def _review(self, token: str) -> Identity | None:
        user = await self.controller.api.review_token(token, self.settings.report_audience)
        if user is None:
            return None
        parts = user["username"].split(":")
        pod_names, pod_uids = user["extra"].get(POD_NAME_CLAIM), user["extra"].get(POD_UID_CLAIM)
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or not pod_names or not pod_uids:
            return None
        namespace = parts[2]
        pod = await self.controller.api.read_pod(namespace, pod_names[0])
        meta = (pod or {}).get("metadata") or {}
        if meta.get("uid") != pod_uids[0]:
            return None
        job = next(
            (
                o
                for o in meta.get("ownerReferences") or []
                if o.get("controller") and o.get("kind") == "Job" and o.get("apiVersion") == "batch/v1"
            ),
            None,
        )
        worker = self.controller.worker_of(namespace, job["name"], job["uid"]) if job is not None else None
        if worker is None:
            return None
        key, run = worker
        created = str(meta.get("creationTimestamp") or "")
        return Identity(key=key, run=run, pod=pod_uids[0], expires=time.monotonic() + IDENTITY_TTL, created=created)

    async def handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not self.controller.leading:
            return await self.forward(request, header)
        if not header.startswith("Bearer "):
            REPORTS_REFUSED.labels(reason="unauthenticated").inc()
            return web.json_response({"error": "a bearer token is required"}, status=401)
        identity = await self.identify(header.removeprefix("Bearer ").strip(), request.remote or "")
        if isinstance(identity, str):
            REPORTS_REFUSED.labels(reason=identity).inc()
            if identity in ("rate-limited", "source-rate-limited"):
                return web.json_response({"error": "too many unknown tokens; try again"}, status=429)
            return web.json_response({"error": "the token does not belong to a worker pod"}, status=403)
        if (request.content_length or 0) > MAX_REPORT_BYTES:
            REPORTS_REFUSED.labels(reason="too-large").inc()
            return web.json_response({"error": "report too large"}, status=413)
        try:
            report = Report.model_validate_json(await request.read())
        except ValidationError as error:
            REPORTS_REFUSED.labels(reason="invalid").inc()
            return web.json_response({"error": str(error)}, status=422)
        if not self.controller.accept_report(identity.key, identity.run, identity.pod, report, identity.created):
            REPORTS_REFUSED.labels(reason="other-run").inc()
            return web.json_response({"error": "the report is not for the download's current run"}, status=403)
        return web.json_response({"accepted": True})

    async def forward(self, request: web.Request, header: str) -> web.Response:
        """A standby behind the same Service relays a worker's report to the leader, as it came (the token, the
        body): the leader authenticates and applies it as any report, and its answer goes back to the worker. The
        standby trusts nothing in it and holds nothing. Without a leader to forward to (none recorded, or a report
        forwarded already), or when the leader does not answer, 503: the worker posts again; the termination
        message stays the last fallback."""
        target = self.report_target()
        if target is None or request.headers.get(FORWARDED_HEADER) or self.forwards.locked():
            return self._standby_refusal()
        if not header.startswith("Bearer "):
            REPORTS_REFUSED.labels(reason="unauthenticated").inc()
            return web.json_response({"error": "a bearer token is required"}, status=401)
        body = await request.read()  # at most MAX_REPORT_BYTES: the app's own limit answers 413 beyond it
        headers = {"Authorization": header, "Content-Type": request.content_type, FORWARDED_HEADER: "1"}
        try:
            async with self.forwards:
                if self.session is None:
                    self.session = ClientSession(timeout=ClientTimeout(total=FORWARD_TIMEOUT_SECONDS))
                async with self.session.post(target, data=body, headers=headers, allow_redirects=False) as answer:
                    relayed = await answer.read()
                    status, kind = answer.status, answer.content_type
                    retry = answer.headers.get("Retry-After")
        except (ClientError, TimeoutError) as error:
            log.info("could not forward a report to the leader at %s: %r", target, error)
            return self._standby_refusal()
        REPORTS_FORWARDED.labels(answer=str(status)).inc()
        retry_after = {"Retry-After": retry} if retry else None
        return web.Response(body=relayed, status=status, content_type=kind, headers=retry_after)

    @staticmethod
    def _standby_refusal() -> web.Response:
        REPORTS_REFUSED.labels(reason="standby").inc()
        headers = {"Retry-After": "1"}
        return web.json_response({"error": "this replica is a standby; try again"}, status=503, headers=headers)


@dataclass
class Servers:
    runners: list[web.AppRunner]
    reports: Reports | None = None

    async def cleanup(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        if self.reports is not None and self.reports.session is not None:
            await self.reports.session.close()


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port).start()  # noqa: S104 - served to the cluster network
    return runner


async def start_servers(settings: Settings, controller: Controller, elector: Elector | None = None) -> Servers:
    """The endpoints. A warm standby is alive and ready (its caches are filled): a Deployment's rollout waits for it,
    and a PodDisruptionBudget counts it."""
    reports = Reports(settings, controller, elector.report_target if elector is not None else lambda: None)
    register_phase_collector(controller.phases)

    def trouble() -> str | None:
        """Why this process should be restarted, or None."""
        if controller.stuck_starting():
            deadline = settings.ready_deadline_seconds
            ceiling = START_CEILING * deadline
            return f"caches not filled: no new object for {deadline:.0f} s, or {ceiling:.0f} s since start"
        if not controller.alive() or (elector is not None and not elector.alive()):
            return "reconcilers stopped"
        return None

    async def healthz(_: web.Request) -> web.Response:
        why = trouble()
        return web.Response(text="ok", status=200) if why is None else web.Response(text=why, status=500)

    async def readyz(_: web.Request) -> web.Response:
        if (why := trouble()) is not None:
            return web.Response(text=why, status=500)
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
    return Servers(runners, reports)
