"""The Job builder: names, labels, hardening, Secrets by reference only."""

from __future__ import annotations

import json
from typing import Any

from gallery_operator.jobs import (
    LABEL_DOWNLOAD,
    LABEL_DOWNLOAD_UID,
    LABEL_RUN,
    MAX_CONFIG_BYTES,
    build_job,
    build_pvc,
    job_name,
    run_id,
    spec_problem,
)
from gallery_operator.worker import options
from gallery_operator.workerconfig import CONFIG_ENV, WorkerConfig
from tests.unit.builders import JOB_SETTINGS, download

SETTINGS = JOB_SETTINGS


def container(job: dict[str, Any]) -> dict[str, Any]:
    workers: list[dict[str, Any]] = job["spec"]["template"]["spec"]["containers"]
    assert len(workers) == 1
    return workers[0]


def test_job_name_is_deterministic_and_changes_with_what_is_downloaded() -> None:
    base = download()
    assert job_name(base) == job_name(download())
    assert job_name(base) != job_name(download(urls=["https://example.org/g/2"]))
    assert job_name(base) != job_name(download(uid="uid-2"))  # a re-created download starts afresh
    # Fields that do not change the files leave the run alone.
    assert job_name(base) == job_name(download(priority=50, suspend=True, deletionPolicy="Delete"))


def test_long_names_fit_label_limits() -> None:
    long = download(name="a" * 250)
    job = build_job(long, SETTINGS)
    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["name"].endswith(run_id(long))
    assert all(len(v) <= 63 for v in job["metadata"]["labels"].values())
    assert job["metadata"]["labels"][LABEL_DOWNLOAD] != download(name="a" * 251).name[:63]


def test_job_is_owned_labelled_and_hardened() -> None:
    item = download(backoffLimit=4, limits={"activeDeadlineSeconds": 600})
    job = build_job(item, SETTINGS)
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "GalleryDownload",
        "cats",
        "uid-1",
        True,
    )
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_DOWNLOAD_UID] == "uid-1"
    assert labels[LABEL_RUN] == run_id(item)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (4, 600, 120)
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    worker = container(job)
    assert worker["image"] == "example.org/gallery-operator:test"
    assert worker["command"] == ["python", "-m", "gallery_operator.worker"]
    assert worker["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m for m in worker["volumeMounts"]}
    assert mounts["/data"]["subPath"] == "cats"
    assert "/tmp" in mounts
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["onExitCodes"]["values"] == [2]


def test_worker_config_travels_in_env_without_secret_values() -> None:
    item = download(
        auth={
            "cookiesSecret": {"name": "site-cookies", "key": "cookies.txt"},
            "usernameSecret": {"name": "login", "key": "user"},
            "passwordSecret": {"name": "login", "key": "pass"},
        }
    )
    worker = container(build_job(item, SETTINGS))
    env = {e["name"]: e for e in worker["env"]}
    config = WorkerConfig.model_validate_json(env[CONFIG_ENV]["value"])
    assert config.spec == item.spec
    assert config.run == run_id(item)
    assert env["GALLERY_AUTH_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "login", "key": "pass"}
    volumes = {v["name"]: v for v in build_job(item, SETTINGS)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["cookies"]["secret"]["secretName"] == "site-cookies"
    assert "value" not in env["GALLERY_AUTH_USERNAME"]


def test_s3_target_uses_the_credentials_secret_and_a_default_prefix() -> None:
    item = download(target={"s3": {"bucket": "media", "credentialsSecret": {"name": "s3-keys"}}})
    job = build_job(item, SETTINGS)
    env = {e["name"]: e for e in container(job)["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-keys",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    storage = json.loads(env[CONFIG_ENV]["value"])["storage"]
    assert storage == {
        "kind": "s3",
        "bucket": "media",
        "prefix": "ns/cats",
        "forcePathStyle": False,
        "privateEndpoint": False,
        "partsInFlight": 4,
    }
    assert all(v["name"] != "data" for v in job["spec"]["template"]["spec"]["volumes"])
    wider = build_job(item, SETTINGS.model_copy(update={"s3_parts_in_flight": 10}))
    config = next(e for e in container(wider)["env"] if e["name"] == CONFIG_ENV)
    assert json.loads(config["value"])["storage"]["partsInFlight"] == 10


def test_pvc_template_is_owned_only_under_delete_policy() -> None:
    template = {"pvc": {"template": {"size": "5Gi", "storageClassName": "fast"}}}
    kept = build_pvc(download(target=template))
    dropped = build_pvc(download(target=template, deletionPolicy="Delete"))
    assert kept is not None and dropped is not None
    assert "ownerReferences" not in kept["metadata"]
    assert dropped["metadata"]["ownerReferences"][0]["name"] == "cats"
    assert kept["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert kept["spec"]["storageClassName"] == "fast"
    assert build_pvc(download()) is None
    job = build_job(download(target=template), SETTINGS)
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["cats-data"]


def test_spec_resources_override_operator_defaults() -> None:
    item = download(resources={"limits": {"memory": "1Gi"}, "requests": {"cpu": "250m"}})
    resources = container(build_job(item, SETTINGS))["resources"]
    assert resources == {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def test_specs_the_schema_admits_but_a_job_cannot_take_are_named() -> None:
    """A memory request above the operator's default limit would be refused by the API server on every retry."""
    above = download(resources={"requests": {"memory": "1Gi"}})
    problem = spec_problem(above, SETTINGS)
    assert problem is not None and problem.startswith("spec.resources.requests.memory: 1Gi is more than the limit")
    assert "the operator's default limit" in problem
    assert (
        spec_problem(download(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}), SETTINGS) is None
    )
    cpu = download(resources={"requests": {"cpu": "1500m"}, "limits": {"cpu": "1"}})
    assert (
        spec_problem(cpu, SETTINGS)
        == "spec.resources.requests.cpu: 1500m is more than the limit 1 (spec.resources.limits.cpu)"
    )
    multibyte = download(urls=[f"https://example.org/{n}/" + "\U0001f600" * 1500 for n in range(21)])
    problem = spec_problem(multibyte, SETTINGS)
    assert problem is not None and problem.startswith("spec.urls: the worker's configuration would take")


def test_a_spec_at_the_schema_maxima_builds_a_job_within_the_limits() -> None:
    urls = [f"https://example.org/{n:03}/" + "a" * (32768 // 100 - 24) for n in range(100)]
    item = download(
        urls=urls, target={"s3": {"bucket": "b" * 63, "prefix": "p" * 512, "endpoint": "https://" + "e" * 2000}}
    )
    assert spec_problem(item, SETTINGS) is None
    env = {e["name"]: e for e in container(build_job(item, SETTINGS))["env"]}
    assert len(env[CONFIG_ENV]["value"].encode()) <= MAX_CONFIG_BYTES


def test_site_tokens_reach_the_worker_only_as_secret_references() -> None:
    tokens = {"refreshToken": {"name": "pixiv", "key": "token"}, "videoPassword": {"name": "vimeo", "key": "pw"}}
    job = build_job(download(auth={"tokens": tokens}), SETTINGS)
    env = {e["name"]: e for e in container(job)["env"]}
    assert env["GALLERY_AUTH_REFRESH_TOKEN"] == {
        "name": "GALLERY_AUTH_REFRESH_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "pixiv", "key": "token"}},
    }
    assert env["GALLERY_AUTH_VIDEO_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "vimeo", "key": "pw"}
    creds = options.Credentials(tokens=(("refresh_token", "r"), ("video_password", "v")))
    assert creds.engine_tokens("gallery-dl") == {"refresh-token": "r"}
    assert creds.engine_tokens("yt-dlp") == {"videopassword": "v"}
