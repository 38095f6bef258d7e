"""The only module that talks to the Kubernetes API (synchronous client; callers run it in threads)."""

from __future__ import annotations

import datetime
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from gallery_operator import API_GROUP, API_VERSION, KIND, PLURAL, SUBSCRIPTION_KIND, SUBSCRIPTION_PLURAL

log = logging.getLogger(__name__)


def _configuration() -> client.Configuration:
    """In-cluster credentials when running in a pod, the kubeconfig otherwise."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    return configuration


CALL_TIMEOUT = (10.0, 60.0)
"""Connect and read timeouts (seconds) of every call of the shared client that sets none: a call on a connection that
died without a reset fails (its reconcile is retried) instead of holding its thread, and its reconciler, for ever."""


@functools.cache
def api() -> client.ApiClient:
    """One shared client for the reconciles; no call of it waits for ever (CALL_TIMEOUT)."""
    configuration = _configuration()
    configuration.connection_pool_maxsize = 64
    shared = client.ApiClient(configuration)
    request = shared.rest_client.request

    def bounded(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        bound = CALL_TIMEOUT if _request_timeout is None else _request_timeout  # a caller's own timeout stands
        return request(*args, _request_timeout=bound, **kwargs)

    shared.rest_client.request = bounded
    return shared


@functools.cache
def lease_api() -> client.ApiClient:
    """The leader election's own client: its own connections (a busy reconcile pool never delays a renewal) and no
    retries inside a call (a call's timeout is the time left before the renew deadline)."""
    configuration = _configuration()
    configuration.retries = False
    return client.ApiClient(configuration)


def core() -> client.CoreV1Api:
    return _cached(client.CoreV1Api)


def batch() -> client.BatchV1Api:
    return _cached(client.BatchV1Api)


def custom() -> client.CustomObjectsApi:
    return _cached(client.CustomObjectsApi)


def authentication() -> client.AuthenticationV1Api:
    return _cached(client.AuthenticationV1Api)


@functools.cache
def _cached(kind: Any) -> Any:
    """One instance of each API group object: building them per call cost measurable time under load."""
    return kind(api())


def forget_clients() -> None:
    """Drop the API objects built so far: the next call builds them on what `api()` gives then (a test that points
    `api` at another cluster)."""
    _cached.cache_clear()


def warm_up() -> None:
    """Build the client and its API objects now: the kubernetes package imports its API and model modules lazily,
    which otherwise happens inside the first reconciles, under load, with threads contending for import locks."""
    for build in (core, batch, custom, authentication):
        build()


def _send(method: str, path: str, body: Any, content_type: str = "application/json") -> int:
    """One request on the shared client's connection pool and credentials, without the generated method layer.

    The generated methods validate every argument with pydantic and walk the body to sanitize it: on the hot path
    (a Job, a status patch and an Event per download) that was an eighth of the operator's CPU. Raises
    ApiException for any answer outside 2xx, as the generated methods do."""
    shared = api()
    headers = {**shared.default_headers, "Accept": "application/json", "Content-Type": content_type}
    shared.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
    response = shared.rest_client.request(method, shared.configuration.host + path, headers=headers, body=body)
    answer = response.read()  # the whole answer, so the connection goes back to the pool
    if not 200 <= response.status <= 299:
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else None
        raise ApiException.from_response(http_resp=response, body=text, data=None)  # says why, e.g. a 422
    return int(response.status)


def _exchange(method: str, path: str, body: Any, timeout: float) -> dict[str, Any]:
    """One request of the leader election like `_send`, on its own client, bounded by `timeout` seconds, answering
    the API server's JSON."""
    shared = lease_api()
    headers = {**shared.default_headers, "Accept": "application/json", "Content-Type": "application/json"}
    shared.update_params_for_auth(headers, None, ["BearerToken"], path, method, body)
    url = shared.configuration.host + path
    response = shared.rest_client.request(method, url, headers=headers, body=body, _request_timeout=timeout)
    answer = response.read()
    if not 200 <= response.status <= 299:
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else None
        raise ApiException.from_response(http_resp=response, body=text, data=None)
    result: dict[str, Any] = json.loads(answer)
    return result


def _leases(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


def read_lease(namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
    """The Lease, or None when there is none."""
    found: dict[str, Any] | None = _ignore((404,), _exchange, "GET", f"{_leases(namespace)}/{name}", None, timeout)
    return found


def create_lease(namespace: str, name: str, lease: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """Create the Lease (`lease`: its spec and annotations); None when one of that name exists already (another
    replica was first)."""
    meta = {"name": name, "annotations": lease["annotations"]}
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": lease["spec"]}
    created: dict[str, Any] | None = _ignore((409,), _exchange, "POST", _leases(namespace), body, timeout)
    return created


def replace_lease(
    namespace: str, name: str, lease: dict[str, Any], resource_version: str, timeout: float
) -> dict[str, Any] | None:
    """Replace the Lease's spec and annotations if it is still at `resource_version`; None when it changed meanwhile
    (409)."""
    meta = {"name": name, "namespace": namespace, "resourceVersion": resource_version}
    meta["annotations"] = lease["annotations"]
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": lease["spec"]}
    replaced: dict[str, Any] | None = _ignore((409,), _exchange, "PUT", f"{_leases(namespace)}/{name}", body, timeout)
    return replaced


def follow_lease(namespace: str, name: str, changed: Callable[[dict[str, Any]], None]) -> None:
    """Watch the one Lease for ever (a field selector on its name, which RBAC limited to that name allows) and call
    `changed(body)` with every version of it the watch shows (a plain dict, as a read answers); a broken watch is
    followed again after a second."""
    shared = lease_api()
    coordination = client.CoordinationV1Api(shared)
    while True:
        try:
            stream = watch.Watch().stream(
                coordination.list_namespaced_lease,
                namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=300,
                _request_timeout=330,
            )
            for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    changed(shared.sanitize_for_serialization(event["object"]))
        except Exception as error:  # the loop's own reads stand in meanwhile
            log.debug("the Lease's watch broke: %r", error)
            time.sleep(1)


def _ignore(statuses: tuple[int, ...], call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ApiException as error:
        if error.status in statuses:
            return None
        raise


def error_message(error: ApiException) -> str:
    """The API server's own words for a refusal (its Status message), or the HTTP reason."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def create_job(job: dict[str, Any]) -> bool:
    """Create the Job; an existing Job of the same name counts as success. True if this call created it."""
    path = f"/apis/batch/v1/namespaces/{job['metadata']['namespace']}/jobs"
    created = _ignore((409,), _send, "POST", path, job)
    return created is not None


def namespace_terminating(error: ApiException) -> bool:
    """The API server refused to create something because its namespace is being deleted."""
    return error.status == 403 and "NamespaceTerminating" in (error.body or "")


def keep_network_policy(policy: dict[str, Any]) -> None:
    """Create the NetworkPolicy, or replace one of its name whole (a tenant's edit is undone, fields added too).
    In a namespace being deleted nothing is done: the API server creates no pod there any more (so none needs the
    wall), and retrying would keep the namespace's downloads, and so its deletion, waiting."""
    meta = policy["metadata"]
    path = f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/networkpolicies"
    try:
        if _ignore((409,), _send, "POST", path, policy) is None:
            _send("PUT", f"{path}/{meta['name']}", policy)
    except ApiException as error:
        if not namespace_terminating(error):
            raise


def delete_network_policy(namespace: str, name: str) -> None:
    """Delete a NetworkPolicy; an absent one is fine."""
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"
    _ignore((404,), _send, "DELETE", path, None)


def create_pvc(pvc: dict[str, Any]) -> None:
    _ignore((409,), core().create_namespaced_persistent_volume_claim, pvc["metadata"]["namespace"], pvc)


def delete_job(namespace: str, name: str) -> None:
    """Delete a Job and (in the background) its pods; an absent Job is fine."""
    _ignore((404,), batch().delete_namespaced_job, name, namespace, propagation_policy="Background")


def set_job_suspended(namespace: str, name: str, suspended: bool) -> None:
    _ignore((404,), batch().patch_namespaced_job, name, namespace, {"spec": {"suspend": suspended}})


def patch_status(namespace: str, name: str, patch: dict[str, Any]) -> None:
    """Merge-patch the status subresource; a download deleted meanwhile is fine."""
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
    _ignore((404,), _send, "PATCH", path, {"status": patch}, "application/merge-patch+json")


def termination_messages(namespace: str, job_name: str, job_uid: str) -> list[tuple[str, str, str]]:
    """(start time, pod uid, termination message) of the worker container of each pod the Job controls whose
    container ended, oldest first; the message is empty when the container left none (it was killed). The label
    only narrows the list, the controller reference (by the Job's uid) decides."""
    pods = core().list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    ends = []
    for pod in pods:
        if not any(o.controller and o.kind == "Job" and o.uid == job_uid for o in pod.metadata.owner_references or []):
            continue
        for container in pod.status.container_statuses or []:
            terminated = container.state.terminated if container.state else None
            if terminated is not None:
                started = terminated.started_at.isoformat() if terminated.started_at else ""
                ends.append((started, str(pod.metadata.uid or ""), terminated.message or ""))
    return sorted(ends)


def review_token(token: str, audience: str) -> dict[str, Any] | None:
    """TokenReview: the authenticated user (name, extra) of a bound token for ``audience``, or None."""
    review = authentication().create_token_review({"spec": {"token": token, "audiences": [audience]}})
    status = review.status
    if not status or not status.authenticated or audience not in (status.audiences or []):
        return None
    return {"username": status.user.username, "extra": dict(status.user.extra or {})}


def _read(read: Any, name: str, namespace: str) -> dict[str, Any] | None:
    """An object as a plain dict, or None when it is absent."""
    found = _ignore((404,), read, name, namespace)
    if found is None:
        return None
    plain: dict[str, Any] = api().sanitize_for_serialization(found)
    return plain


def read_pod(namespace: str, name: str) -> dict[str, Any] | None:
    """A pod as a plain dict, or None."""
    return _read(core().read_namespaced_pod, name, namespace)


class ObjectRef(Protocol):
    """What an Event names: a download (its snapshot will do)."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> str: ...


def post_event(reference: ObjectRef, kind: str, reason: str, message: str, involved: str = KIND) -> None:
    """A core/v1 Event on the download (or the ``involved`` kind), as `kubectl describe` shows them; failing to post
    is only logged."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "metadata": {"generateName": f"{reference.name}.", "namespace": reference.namespace},
        "involvedObject": {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": involved,
            "name": reference.name,
            "namespace": reference.namespace,
            "uid": reference.uid,
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": "gallery-operator"},
        "reportingComponent": "gallery-operator.dev/operator",
        "reportingInstance": os.environ.get("HOSTNAME", "gallery-operator"),
    }
    try:
        _send("POST", f"/api/v1/namespaces/{reference.namespace}/events", event)
    except ApiException as error:
        log.warning("cannot post event %s on %s/%s: %s", reason, reference.namespace, reference.name, error)


def read_job(namespace: str, name: str) -> dict[str, Any] | None:
    """A Job as a plain dict, or None."""
    return _read(batch().read_namespaced_job, name, namespace)


def job_bodies(namespace: str, selector: str) -> list[dict[str, Any]]:
    """The Jobs the label selector finds, as plain dicts (whoever owns them)."""
    jobs = batch().list_namespaced_job(namespace, label_selector=selector).items
    return [api().sanitize_for_serialization(job) for job in jobs]


def list_jobs(namespace: str, selector: str, owner_uid: str) -> list[str]:
    """Names of the Jobs the label selector finds that the object ``owner_uid`` controls (labels only narrow)."""
    jobs = batch().list_namespaced_job(namespace, label_selector=selector).items
    return [
        j.metadata.name
        for j in jobs
        if any(o.controller and o.uid == owner_uid for o in j.metadata.owner_references or [])
    ]


def count_pods(namespace: str, selector: str, fields: str = "") -> int:
    """Pods in the namespace with these labels (and, when given, these fields)."""
    return len(core().list_namespaced_pod(namespace, label_selector=selector, field_selector=fields).items)


def set_finalizers(namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
    """Replace the download's finalizers, only if it has not changed since ``resource_version`` (else 409)."""
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
    _ignore(
        (404,),
        custom().patch_namespaced_custom_object,
        API_GROUP,
        API_VERSION,
        namespace,
        PLURAL,
        name,
        patch,
        _preload_content=False,
    )


# -- GallerySubscription (subscriptions.py): its runs are GalleryDownloads it creates and deletes ----------------


def create_download(body: dict[str, Any]) -> bool:
    """Create a GalleryDownload (a subscription's run); one of the same name counts as success. True if created."""
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{body['metadata']['namespace']}/{PLURAL}"
    return _ignore((409,), _send, "POST", path, body) is not None


def delete_download(namespace: str, name: str, foreground: bool) -> None:
    """Delete a GalleryDownload; one already gone is fine. ``foreground``: it stays until its Job and pods are gone."""
    options = {"propagationPolicy": "Foreground" if foreground else "Background"}
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
    _ignore((404,), _send, "DELETE", path, options)


def patch_subscription_status(namespace: str, name: str, patch: dict[str, Any]) -> None:
    """Merge-patch a subscription's status subresource; one deleted meanwhile is fine."""
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{SUBSCRIPTION_PLURAL}/{name}/status"
    _ignore((404,), _send, "PATCH", path, {"status": patch}, "application/merge-patch+json")


def set_subscription_finalizers(namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
    """Replace a subscription's finalizers, only if it has not changed since ``resource_version`` (else 409)."""
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
    path = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{SUBSCRIPTION_PLURAL}/{name}"
    _ignore((404,), _send, "PATCH", path, patch, "application/merge-patch+json")


def post_subscription_event(reference: ObjectRef, kind: str, reason: str, message: str) -> None:
    post_event(reference, kind, reason, message, involved=SUBSCRIPTION_KIND)
