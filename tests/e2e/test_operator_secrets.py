"""Secrets stay secret through the operator: what a hostile site echoes reaches no status, Event, log or message."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from gallery_harness.localoperator import OperatorProcess
from gallery_harness.site import Handler
from tests.component.hostile_secrets import API_KEY, COOKIE, PASSWORD, REDIRECTS
from tests.conftest import Cluster
from tests.e2e.conftest import Downloads, pvc_spec
from tests.secrets_check import leaks

SECRETS = (COOKIE, PASSWORD, API_KEY)


@pytest.fixture
def planted() -> Iterator[None]:
    Handler.planted = [PASSWORD, API_KEY]
    yield
    Handler.planted = []


def test_secrets_echoed_by_a_site_reach_no_status_event_log_or_message(
    cluster: Cluster, downloads: Downloads, operator: OperatorProcess, site: str, planted: None
) -> None:
    """The pod gets a cookie, a login and an API key from Secrets; the site sends them back in redirects, titles and
    names, in every encoding. Nothing the operator writes (status, Events, its log) nor the pod's termination
    message or log gives any of them away."""
    core = client.CoreV1Api(cluster.api)
    host = site.split("//", 1)[1].rsplit(":", 1)[0]
    cookies = f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\tleak\t{COOKIE}\n"
    data = {"cookies.txt": cookies, "user": "someone", "password": PASSWORD, "key": API_KEY}
    core.create_namespaced_secret(
        downloads.namespace,
        {"metadata": {"name": "login"}, "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}},
    )
    auth = {
        "cookiesSecret": {"name": "login", "key": "cookies.txt"},
        "usernameSecret": {"name": "login", "key": "user"},
        "passwordSecret": {"name": "login", "key": "password"},
        "tokens": {"apiKey": {"name": "login", "key": "key"}},
    }
    urls = [f"{site}/{page}" for page in ("leak/page.html", "leak/redirect/3.jpg", *REDIRECTS)]
    downloads.create("echo", pvc_spec(urls, engine="gallery-dl", auth=auth))
    status = downloads.wait_phase("echo", {"Succeeded", "Failed"}, timeout=180)
    # The hostile content was taken: items stored, the redirects failed and were reported.
    assert status["progress"]["itemsDone"] >= 1 and len(status["failures"]) >= 3, status
    outputs = {"download": json.dumps(downloads.get("echo"))}
    events = core.list_namespaced_event(downloads.namespace).items
    outputs["events"] = json.dumps([e.message for e in events])
    outputs["operator log"] = operator.log.read_text(errors="replace")
    pods = core.list_namespaced_pod(downloads.namespace).items
    outputs["pods"] = json.dumps(client.ApiClient().sanitize_for_serialization(pods))
    if cluster.local is not None:
        for log in (cluster.local.workdir / "node" / "pods").glob(f"{downloads.namespace}_*/*.log"):
            outputs[log.parent.name] = log.read_text(errors="replace")
        assert len(outputs) > 4, "the worker pod's log was not found"
    found = {where: leaks(text, SECRETS) for where, text in outputs.items()}
    assert not any(found.values()), {where: secrets for where, secrets in found.items() if secrets}
