"""Pure builders: names, labels and the Job (plus the PVC from a template) for one download run."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from gallery_operator import API_GROUP, API_VERSION, KIND
from gallery_operator.api.spec import quantity_value
from gallery_operator.config import Settings
from gallery_operator.egress import endpoint_key
from gallery_operator.workerconfig import (
    CONFIG_ENV,
    COOKIES_FILE,
    COOKIES_MOUNT,
    DATA_MOUNT,
    EXIT_PERMANENT,
    PASSWORD_ENV,
    SCRATCH_MOUNT,
    TOKEN_ENVS,
    TOKEN_FILE,
    TOKEN_MOUNT,
    USERNAME_ENV,
    Egress,
    PvcStorage,
    S3Storage,
    WorkerConfig,
)

if TYPE_CHECKING:  # download.py imports this module for spec_problem; here a Download is only an annotation
    from gallery_operator.download import Download

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_DOWNLOAD = f"{API_GROUP}/download"
LABEL_DOWNLOAD_UID = f"{API_GROUP}/download-uid"
LABEL_RUN = f"{API_GROUP}/run"
MANAGED_BY = "gallery-operator"
WORKER_CONTAINER = "worker"
MAX_NAME = 63
WORKER_UID = 65532


def run_id(download: Download) -> str:
    """A deterministic id of what a run downloads: the same spec, the same Job name; a change, a new one."""
    return download.run_id


def label_value(text: str) -> str:
    """A label value (63 characters at most); long names keep a prefix and gain a hash to stay unique."""
    if len(text) <= MAX_NAME:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: MAX_NAME - 9].rstrip('-.')}-{digest}"


def job_name(download: Download) -> str:
    """`<name>-<run id>`, trimmed so the Job name (also a pod label value) fits in 63 characters."""
    suffix = f"-{run_id(download)}"
    return download.name[: MAX_NAME - len(suffix)].rstrip("-.") + suffix


def pvc_template_name(download: Download) -> str:
    return download.name[: 253 - len("-data")] + "-data"


def download_labels(download: Download) -> dict[str, str]:
    """Labels on everything the operator creates for a download (selectors and `kubectl get -l` use them)."""
    return {
        LABEL_NAME: "gallery-operator",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_DOWNLOAD: label_value(download.name),
        LABEL_DOWNLOAD_UID: download.uid,
    }


def owner_reference(download: Download) -> dict[str, Any]:
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": download.name,
        "uid": download.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_reference(metadata: Mapping[str, Any], kind: str, api_group: str) -> Mapping[str, Any] | None:
    """The object's controller owner reference when it is of this kind and API group, else None. An object is
    identified by who controls it (a uid no tenant can choose), never by labels that anyone could copy."""
    for owner in metadata.get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == kind:
            group = str(owner.get("apiVersion") or "").rpartition("/")[0]
            if group == api_group:
                return cast(Mapping[str, Any], owner)
    return None


def owning_download_uid(job_metadata: Mapping[str, Any]) -> str | None:
    """The uid of the GalleryDownload that controls a Job, or None for a Job the operator must leave alone."""
    owner = controller_reference(job_metadata, KIND, API_GROUP)
    return str(owner["uid"]) if owner is not None and owner.get("uid") else None


def s3_prefix(download: Download) -> str:
    """Where a download's objects live: always under `<namespace>/`, so no spec can name a key in another
    namespace's space (and deletionPolicy Delete removes only the download's own namespace's objects). The
    default is `<namespace>/<name>`; `spec.target.s3.prefix` p gives `<namespace>/p`."""
    assert download.spec.target.s3 is not None
    return f"{download.namespace}/{download.spec.target.s3.prefix or download.name}"


def storage_for(download: Download, settings: Settings) -> PvcStorage | S3Storage:
    target = download.spec.target
    if target.s3 is not None:
        s3 = target.s3
        return S3Storage(
            bucket=s3.bucket,
            prefix=s3_prefix(download),
            endpoint=s3.endpoint,
            private_endpoint=s3.endpoint is not None and endpoint_key(s3.endpoint) in settings.s3_private_endpoints,
            region=s3.region,
            force_path_style=s3.force_path_style,
            parts_in_flight=settings.s3_parts_in_flight,
        )
    assert target.pvc is not None
    claim = target.pvc.claim_name or pvc_template_name(download)
    return PvcStorage(location=f"pvc://{claim}/{_sub_path(download)}")


def _sub_path(download: Download) -> str:
    assert download.spec.target.pvc is not None
    return download.spec.target.pvc.sub_path or download.name


def egress_rules(settings: Settings) -> Egress:
    """The operator's egress settings as the rules the worker enforces (and the operator checks first)."""
    return Egress(
        allow_private_networks=settings.allow_private_networks,
        allowed_domains=list(settings.allowed_domains),
        denied_domains=list(settings.denied_domains),
    )


def worker_config(download: Download, settings: Settings, egress: Egress | None = None) -> WorkerConfig:
    """The worker's configuration; ``egress`` is the namespace's rules when they are tighter than the operator's."""
    return WorkerConfig(
        namespace=download.namespace,
        name=download.name,
        uid=download.uid,
        run=run_id(download),
        spec=download.spec,
        storage=storage_for(download, settings),
        egress=egress if egress is not None else egress_rules(settings),
        report_url=settings.report_url or None,
    )


def _resources(download: Download, settings: Settings) -> dict[str, Any]:
    requests = {"cpu": settings.worker_cpu_request, "memory": settings.worker_memory_request}
    limits = {"memory": settings.worker_memory_limit}
    requests |= download.spec.resources.requests.amounts()
    limits |= download.spec.resources.limits.amounts()
    return {"requests": requests, "limits": limits}


def active_deadline(download: Download, settings: Settings) -> int:
    """The run's wall-clock limit: the spec's, capped by the operator's, which is also the default."""
    asked = download.spec.limits.active_deadline_seconds
    return min(asked, settings.active_deadline_seconds) if asked else settings.active_deadline_seconds


MAX_CONFIG_BYTES = 120 * 1024
"""The worker's configuration travels in one environment variable, and Linux takes at most 128 KiB in one."""


def spec_problem(download: Download, settings: Settings) -> str | None:
    """Why a spec the schema admits still cannot run as a worker Job (named by its field), or None."""
    resources = _resources(download, settings)
    for name, request in resources["requests"].items():
        limit = resources["limits"].get(name)
        if limit is not None and quantity_value(request) > quantity_value(limit):
            ours = name in download.spec.resources.limits.amounts()
            where = "spec.resources.limits" if ours else "the operator's default limit; set spec.resources.limits"
            return f"spec.resources.requests.{name}: {request} is more than the limit {limit} ({where}.{name})"
    size = len(worker_config(download, settings).model_dump_json(by_alias=True, exclude_none=True).encode())
    if size > MAX_CONFIG_BYTES:
        return (
            f"spec.urls: the worker's configuration would take {size} bytes, at most {MAX_CONFIG_BYTES} fit one "
            "environment variable; split the URLs over several downloads"
        )
    return None


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _credentials(
    download: Download,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Env, volumes and mounts that bring the referenced Secrets into the pod (never their values)."""
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    auth = download.spec.auth
    if auth and auth.cookies_secret:
        items = [{"key": auth.cookies_secret.key, "path": COOKIES_FILE}]
        volumes.append(
            {
                "name": "cookies",
                "secret": {"secretName": auth.cookies_secret.name, "items": items, "defaultMode": 0o440},
            }
        )
        mounts.append({"name": "cookies", "mountPath": COOKIES_MOUNT, "readOnly": True})
    if auth and auth.username_secret and auth.password_secret:
        env.append(_secret_env(USERNAME_ENV, auth.username_secret.name, auth.username_secret.key))
        env.append(_secret_env(PASSWORD_ENV, auth.password_secret.name, auth.password_secret.key))
    tokens = auth.tokens if auth else None
    for name, env_name in TOKEN_ENVS.items():
        ref = getattr(tokens, name, None) if tokens else None
        if ref is not None:
            env.append(_secret_env(env_name, ref.name, ref.key))
    s3 = download.spec.target.s3
    if s3 and s3.credentials_secret:
        ref = s3.credentials_secret
        env.append(_secret_env("AWS_ACCESS_KEY_ID", ref.name, ref.access_key_id_key))
        env.append(_secret_env("AWS_SECRET_ACCESS_KEY", ref.name, ref.secret_access_key_key))
    return env, volumes, mounts


def build_job(download: Download, settings: Settings, egress: Egress | None = None) -> dict[str, Any]:
    """The Job of the download's current run: one worker pod, hardened, retried up to spec.backoffLimit."""
    labels = download_labels(download) | {LABEL_COMPONENT: "worker", LABEL_RUN: run_id(download)}
    return _worker_job(download, settings, job_name(download), labels, [], download.spec.backoff_limit, egress)


def cleanup_job_name(download: Download) -> str:
    suffix = f"-cleanup-{hashlib.sha256(download.uid.encode()).hexdigest()[:6]}"
    return download.name[: MAX_NAME - len(suffix)].rstrip("-.") + suffix


def build_cleanup_job(download: Download, settings: Settings) -> dict[str, Any]:
    """The Job that removes a download's files under deletionPolicy Delete (the worker in --cleanup mode)."""
    labels = download_labels(download) | {LABEL_COMPONENT: "cleanup"}
    return _worker_job(download, settings, cleanup_job_name(download), labels, ["--cleanup"], 2)


def _worker_job(
    download: Download,
    settings: Settings,
    name: str,
    labels: dict[str, str],
    args: list[str],
    backoff_limit: int,
    egress: Egress | None = None,
) -> dict[str, Any]:
    spec = download.spec
    config = worker_config(download, settings, egress)
    env = [
        {"name": CONFIG_ENV, "value": config.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "HOME", "value": SCRATCH_MOUNT},
        {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH_MOUNT}/cache"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    secret_env, volumes, mounts = _credentials(download)
    env += secret_env
    volumes += [
        {"name": "scratch", "emptyDir": {"sizeLimit": settings.worker_scratch_limit}},
        {
            "name": "report-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": settings.report_audience,
                            "expirationSeconds": 3600,
                            "path": TOKEN_FILE,
                        }
                    }
                ]
            },
        },
    ]
    mounts += [
        {"name": "scratch", "mountPath": SCRATCH_MOUNT},
        {"name": "report-token", "mountPath": TOKEN_MOUNT, "readOnly": True},
    ]
    if spec.target.pvc is not None:
        claim = spec.target.pvc.claim_name or pvc_template_name(download)
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "data", "mountPath": DATA_MOUNT, "subPath": _sub_path(download)})
    container = {
        "name": WORKER_CONTAINER,
        "image": settings.worker_image,
        "imagePullPolicy": settings.worker_image_pull_policy,
        "command": ["python", "-m", "gallery_operator.worker"],
        "args": args,
        "env": env,
        "volumeMounts": mounts,
        "resources": _resources(download, settings),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "ttlSecondsAfterFinished": settings.job_ttl_seconds,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": WORKER_CONTAINER,
                        "operator": "In",
                        "values": [EXIT_PERMANENT],
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": WORKER_UID,
                    "runAsGroup": WORKER_UID,
                    "fsGroup": WORKER_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": volumes,
            },
        },
    }
    job_spec["activeDeadlineSeconds"] = active_deadline(download, settings)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": download.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(download)],
        },
        "spec": job_spec,
    }


def build_pvc(download: Download) -> dict[str, Any] | None:
    """The claim from spec.target.pvc.template, or None; owned by the download only under policy Delete."""
    pvc = download.spec.target.pvc
    if pvc is None or pvc.template is None:
        return None
    metadata: dict[str, Any] = {
        "name": pvc_template_name(download),
        "namespace": download.namespace,
        "labels": download_labels(download) | {LABEL_COMPONENT: "data"},
    }
    if download.spec.deletion_policy == "Delete":
        metadata["ownerReferences"] = [owner_reference(download)]
    spec: dict[str, Any] = {
        "accessModes": list(pvc.template.access_modes),
        "resources": {"requests": {"storage": pvc.template.size}},
    }
    if pvc.template.storage_class_name:
        spec["storageClassName"] = pvc.template.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}
