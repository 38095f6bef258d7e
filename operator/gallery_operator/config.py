"""Operator settings, read once from GALLERY_OPERATOR_* environment variables; each is documented here."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gallery_operator import IMAGE
from gallery_operator.egress import endpoint_key, entry_problem, normalize_host, s3_endpoint_address
from gallery_operator.leadership import Timing

ENV_PREFIX = "GALLERY_OPERATOR_"


START_CEILING = 4
"""A start not ready after this many ready deadlines (READY_DEADLINE_SECONDS) is stuck, however many new objects its
first listings still bring."""


class Settings(BaseModel):
    """Every knob of the operator. The Helm chart sets them from values.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch (comma-separated); empty watches all namespaces (cluster-wide mode)."""
    max_active: Annotated[int, Field(ge=1)] = 20
    """Downloads running at once in the whole cluster; the rest wait in phase Queued."""
    max_active_per_namespace: Annotated[int, Field(ge=1)] = 5
    """Downloads running at once in one namespace."""
    worker_image: str = IMAGE
    """Image of the worker pods (the same image as the operator)."""
    worker_image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy of the worker container."""
    worker_cpu_request: str = "100m"
    """Default CPU request of a worker (a download's spec.resources overrides it)."""
    worker_memory_request: str = "128Mi"
    """Default memory request of a worker."""
    worker_memory_limit: str = "512Mi"
    """Default memory limit of a worker."""
    worker_scratch_limit: str = "2Gi"
    """sizeLimit of the worker's scratch emptyDir (engine caches, partial files before upload)."""
    report_url: str = "http://gallery-operator.gallery-operator.svc:8082/report"
    """URL workers post progress to (the operator's report endpoint, reached through its Service)."""
    report_port: Annotated[int, Field(ge=1, le=65535)] = 8082
    """Port of the report endpoint."""
    report_audience: str = "gallery-operator.dev"
    """Audience of the service-account token a worker presents; the API server refuses such tokens."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of the Prometheus /metrics endpoint (0 disables it)."""
    health_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    """Port of /healthz (liveness) and /readyz (readiness)."""
    job_ttl_seconds: Annotated[int, Field(ge=0)] = 3600
    active_deadline_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 24 * 3600
    """activeDeadlineSeconds of every worker and cleanup Job, and the most `spec.limits.activeDeadlineSeconds` may
    ask for (a larger value is capped to it): no run holds an admission slot for ever. Default one day."""
    """Finished Jobs and their pods are removed this long after they end; the status keeps the record."""
    concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    """Reconciles running at once."""
    subscription_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    """Subscription reconciles running at once, each with an API thread of its own: how many of a tick's run
    creations are in flight together."""
    resync_seconds: Annotated[float, Field(gt=0)] = 300.0
    """Period of the safety-net resync: spread over the period, it reconciles downloads whose downloads or Jobs
    changed since their last reconcile (a missed event), after all new work."""
    max_priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    """The highest `spec.priority` that counts between namespaces, unless the namespace's annotation
    `gallery-operator.dev/max-priority` (set by the platform team; tenants cannot edit namespaces) allows another:
    a tenant setting priority 1000 on everything cannot go before other namespaces. Within a namespace its own
    priorities order its downloads as written; among namespaces at equal effective priority, slots go round-robin."""
    queue_refresh_seconds: Annotated[float, Field(gt=0)] = 30.0
    """How often the queue positions shown in Queued downloads' status are refreshed."""
    queue_refresh_writes: Annotated[int, Field(ge=0)] = 50
    """At most this many Queued downloads get a new position per refresh, from the head of the queue: status
    writes stay bounded however many wait and however fast they start."""
    allow_private_networks: bool = False
    """Let workers reach private, loopback and link-local addresses (needed for in-cluster or test sites)."""
    allowed_domains: tuple[str, ...] = ()
    """If set, URLs must be on one of these domains (a domain also allows its subdomains)."""
    denied_domains: tuple[str, ...] = ()
    """URLs on these domains (and their subdomains) are refused."""
    s3_parts_in_flight: Annotated[int, Field(ge=1, le=32)] = 4
    """Parts of one file on their way into S3 at once (a part holds 8-9 MiB of the worker's memory). 4 uploads as
    fast as boto3's own 10 to an object store next door (docs/benchmarks.md); a bucket far away needs more to hide
    its latency, and the worker's memory limit room for them: the worker holds its own 60 MB, these parts, the part
    being filled and 16 MiB of the digest's queue (4 parts: about 145 MB at peak)."""
    s3_private_endpoints: tuple[str, ...] = ()
    """S3 endpoints (URLs such as `http://minio.storage.svc:9000`) that may be private addresses, for object stores
    inside the cluster. Any other `spec.target.s3.endpoint` must pass the egress rules like a download URL."""

    network_policy: bool = True
    """Keep a NetworkPolicy (`gallery-operator-workers`, see networkpolicy.py) around the worker and cleanup pods in
    every namespace with downloads, made before the first Job there and removed with the last download: egress only
    to the cluster's DNS, the report endpoint, the private S3 endpoints and public addresses; no ingress. Needs a
    CNI that enforces NetworkPolicies (on others it is inert)."""
    network_policy_ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = (80, 443)
    """TCP ports workers may reach on public addresses (comma-separated); empty allows every port (sites on other
    ports, such as test fixtures). DNS, the report endpoint and the private S3 endpoints are not limited by it."""
    dns_namespace: str = "kube-system"
    """Namespace of the cluster's DNS pods: workers may send DNS queries (port 53, UDP and TCP) to those pods only."""
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    """Labels of the cluster's DNS pods (`key=value,...`; CoreDNS keeps kube-dns's `k8s-app=kube-dns`)."""
    operator_namespace: str = "gallery-operator"
    """The operator's own namespace (workers reach its report port there)."""
    operator_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {
            "app.kubernetes.io/name": "gallery-operator",
            "app.kubernetes.io/component": "operator",
        }
    )
    """Labels of the operator's pods (`key=value,...`), for the NetworkPolicy's rule to the report endpoint."""
    s3_private_cidrs: tuple[str, ...] = ()
    """Addresses (CIDRs) workers may reach for the S3_PRIVATE_ENDPOINTS, on any port, when the NetworkPolicy is on.
    An endpoint written as an address is added by itself; one written as a name needs its addresses here: those
    the policy agent sees, i.e. the store's pods or hosts (a Service's cluster IP is translated before the check)."""

    ready_deadline_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    """A start whose caches are not filled, and whose first listings have brought no object for this long (counted from
    its start-up handler at the earliest), is stuck: from then on /healthz answers 500 (the liveness probe restarts the
    process) and the log says what the caches hold so far. A start whose listings still grow is slow, not stuck."""
    leader_election: bool = False
    """Run as one of several replicas: only the holder of the Lease below reconciles and writes; the others keep
    their caches filled and take over when it stops renewing (see leadership.py). Off: this replica leads alone."""
    lease_name: str = "gallery-operator"
    """Name of the leader election's Lease (coordination.k8s.io/v1), in the operator's namespace."""
    lease_duration_seconds: Annotated[int, Field(ge=2, le=300)] = 15
    """How long a standby waits after the last change it saw to the Lease before taking it (client-go's default)."""
    renew_deadline_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """A leader that has not renewed the Lease for this long stops writing at once and exits."""
    retry_period_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    """How often each replica reads the Lease, and the leader renews it."""
    leader_identity: str = ""
    """This replica's name in the Lease; the host name and a random suffix when empty."""
    peer_report_url: str = ""
    """Where the other replicas reach this replica's report endpoint (the chart: the pod's address and the report
    port). The leader records it on the Lease; a standby forwards the worker reports it receives there. Empty: a
    standby answers 503 and the worker posts again."""

    @field_validator(
        "namespaces",
        "allowed_domains",
        "denied_domains",
        "s3_private_endpoints",
        "network_policy_ports",
        "s3_private_cidrs",
        mode="before",
    )
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("dns_pod_labels", "operator_pod_labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        """`key=value,key=value` into a mapping; a selector that selects everything is refused."""
        if isinstance(value, str):
            pairs = [part.strip() for part in value.split(",") if part.strip()]
            if bad := [p for p in pairs if p.count("=") != 1 or not all(p.split("="))]:
                raise ValueError(f"not key=value: {', '.join(bad)}")
            value = dict(pair.split("=") for pair in pairs)
        if not value:
            raise ValueError("at least one label (an empty selector would select every pod)")
        return value

    @field_validator("s3_private_cidrs")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(str(ipaddress.ip_network(cidr, strict=False)) for cidr in value)
        except ValueError as error:
            raise ValueError(f"not an address range (CIDR): {error}") from error

    @model_validator(mode="after")
    def _private_stores_reachable(self) -> Settings:
        """With the NetworkPolicy on, every private S3 endpoint needs addresses the policy can let workers reach."""
        named = [e for e in self.s3_private_endpoints if s3_endpoint_address(e) is None]
        if self.network_policy and named and not self.s3_private_cidrs:
            raise ValueError(
                f"{ENV_PREFIX}S3_PRIVATE_CIDRS: the worker NetworkPolicy needs the addresses of {', '.join(named)} "
                f"(or set {ENV_PREFIX}NETWORK_POLICY=false)"
            )
        return self

    @model_validator(mode="after")
    def _election_timing(self) -> Settings:
        """The three durations keep two leaders apart only in this order (client-go checks the same)."""
        if self.leader_election and (problem := self.election_timing().problem()):
            raise ValueError(
                f"{ENV_PREFIX}RETRY_PERIOD_SECONDS, {ENV_PREFIX}RENEW_DEADLINE_SECONDS and "
                f"{ENV_PREFIX}LEASE_DURATION_SECONDS: {problem}"
            )
        return self

    def election_timing(self) -> Timing:
        return Timing(self.lease_duration_seconds, self.renew_deadline_seconds, self.retry_period_seconds)

    @field_validator("allowed_domains", "denied_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Entries that can never match a host are refused: a silently ignored entry would loosen the rules."""
        problems = [problem for entry in value if (problem := entry_problem(entry)) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return tuple(normalize_host(entry) for entry in value)

    @field_validator("s3_private_endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if bad := [e for e in value if not re.match(r"^https?://[^/\s]+/?$", e)]:
            raise ValueError(f"not an endpoint URL (scheme://host[:port]): {', '.join(bad)}")
        return tuple(endpoint_key(entry) for entry in value)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; a bad value raises ValueError naming the variable."""
    source = os.environ if environ is None else environ
    values = {key[len(ENV_PREFIX) :].lower(): value for key, value in source.items() if key.startswith(ENV_PREFIX)}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in error.errors()
        )
        raise ValueError(f"invalid operator settings: {problems}") from error
