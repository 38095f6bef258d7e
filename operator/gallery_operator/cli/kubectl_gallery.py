"""`kubectl gallery`: a kubectl plugin for GalleryDownloads (console script `kubectl-gallery`).

    kubectl gallery catalogue NAME [-o table|json]   the download's full catalogue
    kubectl gallery status NAME                      phase, progress, queue position and failures
    kubectl gallery sync NAME                        ask for a GallerySubscription run now

It acts as the user: their kubeconfig, context, namespace and RBAC, nothing of the operator's. The catalogue of an
S3 target is read with the download's own credentials Secret (or the user's ambient S3 identity when the download
names none); the catalogue of a claim is read by a short-lived pod that mounts the claim read-only under the
restricted Pod Security profile, and that the plugin removes in every case (also on Ctrl-C and SIGTERM).
Where the catalogue lives comes from the download's spec, not from the status a worker reported.

It imports the API models and the pure builders (jobs.py: the claim of a template, the S3 prefix), never the
operator's runtime (kopf, the controller, the engines).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from gallery_operator import API_GROUP, API_VERSION, IMAGE, PLURAL
from gallery_operator.api.spec import S3Target, describe_validation, parse_spec
from gallery_operator.api.status import MAX_FAILURES
from gallery_operator.download import Download
from gallery_operator.jobs import pvc_template_name, s3_prefix
from gallery_operator.workerconfig import CATALOGUE_DIR, CATALOGUE_FILE, catalogue_record

SUBSCRIPTIONS = "gallerysubscriptions"
REQUESTED_AT = f"{API_GROUP}/requested-at"
READER_LABEL = f"{API_GROUP}/catalogue-reader"
READER_CONTAINER = "catalogue"
READER_UID = 65532
# The reader pod ends by itself this long after it starts, even if the plugin was killed without a chance to
# remove it (SIGKILL); the plugin removes it long before in every other case.
READER_DEADLINE_SECONDS = 600


class PluginError(Exception):
    """A problem to show the user in one line (exit status 1)."""


@dataclass(frozen=True)
class Kube:
    api: client.ApiClient
    namespace: str

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)


CALL_TIMEOUT = (10.0, 30.0)
"""Connect and read timeouts (seconds) of every API call the plugin makes: none waits for ever on a connection that
died without a reset, so the reader pod's removal and a noted Ctrl-C always come."""


def bounded(api: client.ApiClient) -> client.ApiClient:
    request = api.rest_client.request

    def with_timeout(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return request(*args, _request_timeout=CALL_TIMEOUT if _request_timeout is None else _request_timeout, **kwargs)

    api.rest_client.request = with_timeout
    return api


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
    """A client as the user's kubeconfig says, in the namespace given or the context's (else `default`)."""
    try:
        api = bounded(config.new_client_from_config(config_file=kubeconfig, context=context))
        if namespace is None:
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = active
            if context is not None:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                chosen = next(c for c in contexts if c["name"] == context)
            namespace = chosen.get("context", {}).get("namespace") or "default"
    except (config.ConfigException, OSError, StopIteration) as error:
        raise PluginError(f"cannot load the kubeconfig: {error}") from error
    return Kube(api, namespace)


def refused(error: ApiException, verb: str, what: str, namespace: str) -> PluginError:
    """The user's view of an API error: a missing right names the verb and resource to ask for."""
    if error.status == 403:
        return PluginError(
            f"you may not {verb} {what} in namespace {namespace} (RBAC); ask for `{verb}` on {what} there"
        )
    if error.status == 401:
        return PluginError("the API server does not accept your credentials (kubeconfig): log in again")
    return PluginError(f"cannot {verb} {what} in namespace {namespace}: {error.status} {error.reason}")


@contextlib.contextmanager
def api_call(verb: str, what: str, namespace: str, missing: str | None = None) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        if error.status == 404 and missing is not None:
            raise PluginError(missing) from error
        raise refused(error, verb, what, namespace) from error
    except urllib3.exceptions.HTTPError as error:  # refused, reset or timed out (CALL_TIMEOUT), after the retries
        raise PluginError(
            f"cannot {verb} {what} in namespace {namespace}: the API server did not answer: {error}"
        ) from error


def read_download(kube: Kube, name: str) -> dict[str, Any]:
    with api_call(
        "get", "gallerydownloads", kube.namespace, f"gallerydownload {name!r} not found in namespace {kube.namespace}"
    ):
        download: dict[str, Any] = kube.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, kube.namespace, PLURAL, name
        )
    return download


def parsed(body: dict[str, Any]) -> Download:
    """The download with its spec parsed by the API models (the operator's own reading of where files go)."""
    meta = body["metadata"]
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as error:
        raise PluginError(f"the download's spec is not valid: {describe_validation(error)}") from error
    return Download(meta["namespace"], meta["name"], meta.get("uid", ""), meta.get("generation", 0), "", spec)


# -- catalogue -------------------------------------------------------------------------------------


def catalogue_lines(kube: Kube, name: str, image: str, timeout: float) -> list[dict[str, Any]]:
    download = parsed(read_download(kube, name))
    target = download.spec.target
    if target.s3 is not None:
        text = read_s3(kube, target.s3, s3_prefix(download))
    else:
        assert target.pvc is not None
        claim = target.pvc.claim_name or pvc_template_name(download)
        text = read_claim(kube, name, claim, target.pvc.sub_path or name, image, timeout)
    lines = [line for line in text.split("\n") if line.strip()]
    records = [record for line in lines if (record := catalogue_record(line)) is not None]
    if len(records) < len(lines):  # as the worker reads it: a line cut short by a killed pod, or edited by hand
        print(
            f"kubectl-gallery: skipped {len(lines) - len(records)} catalogue lines that hold no record", file=sys.stderr
        )
    return records


def secret_value(kube: Kube, secret: str, key: str) -> str:
    import base64  # noqa: PLC0415 - only the S3 path needs it

    with api_call("get", "secrets", kube.namespace, f"the credentials Secret {secret!r} does not exist"):
        data = kube.core.read_namespaced_secret(secret, kube.namespace).data or {}
    if key not in data:
        raise PluginError(f"the credentials Secret {secret!r} has no key {key!r}")
    return base64.b64decode(data[key]).decode()


def read_s3(kube: Kube, target: S3Target, prefix: str) -> str:
    import boto3  # noqa: PLC0415 - imported when a catalogue is on S3
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    key_id = secret = None
    if target.credentials_secret is not None:
        ref = target.credentials_secret
        key_id = secret_value(kube, ref.name, ref.access_key_id_key)
        secret = secret_value(kube, ref.name, ref.secret_access_key_key)
    addressing: Literal["path", "auto"] = "path" if target.force_path_style else "auto"
    s3 = boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region or "us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": addressing}),
    )
    key = f"{prefix}/{CATALOGUE_DIR}/{CATALOGUE_FILE}"
    try:
        body = s3.get_object(Bucket=target.bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            raise PluginError(f"no catalogue at s3://{target.bucket}/{key} (nothing stored yet?)") from error
        raise PluginError(f"cannot read s3://{target.bucket}/{key}: {code or error}") from error
    except BotoCoreError as error:
        raise PluginError(f"cannot read s3://{target.bucket}/{key}: {error}") from error
    return bytes(body).decode(errors="replace")  # a line cut inside a character is skipped as any cut line


def reader_pod(pod: str, download: str, claim: str, folder: str, image: str) -> dict[str, Any]:
    """A pod that prints the catalogue and ends: the claim read-only, restricted Pod Security, no API token."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "labels": {"app.kubernetes.io/name": "kubectl-gallery", READER_LABEL: download[:63].rstrip("-_.")},
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": READER_DEADLINE_SECONDS,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": READER_UID,
                "runAsGroup": READER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": READER_CONTAINER,
                    "image": image,
                    "command": ["cat", f"/catalogue/{CATALOGUE_FILE}"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                    "volumeMounts": [
                        {
                            "name": "data",
                            "mountPath": "/catalogue",
                            "subPath": f"{folder}/{CATALOGUE_DIR}",
                            "readOnly": True,
                        }
                    ],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def interrupts_noted(left_behind: str) -> Iterator[threading.Event]:
    """Ctrl-C, SIGTERM and SIGHUP are noted while the reader pod exists and acted on between API calls, never inside
    one. An interrupt raised at an arbitrary point of the HTTP client can leave its connection pool's lock held, and
    the call that removes the pod would then wait for ever; every call is bounded (CALL_TIMEOUT), so a noted
    interrupt is acted on within one call's time. A second interrupt ends the plugin at once, saying what it leaves
    (``left_behind``)."""
    asked = threading.Event()

    def note(*_: object) -> None:
        if asked.is_set():
            os.write(2, f"kubectl-gallery: interrupted again; {left_behind}\n".encode())
            os._exit(130)
        asked.set()

    previous = {s: signal.signal(s, note) for s in STOP_SIGNALS}
    try:
        yield asked
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def stop_if_asked(asked: threading.Event) -> None:
    if asked.is_set():
        raise KeyboardInterrupt


def read_claim(kube: Kube, name: str, claim: str, folder: str, image: str, timeout: float) -> str:
    # The name is chosen here, not by the API server (generateName), so the pod can be removed even when the call
    # that creates it fails on the wire (a timeout) after the API server has stored it.
    pod = f"gallery-catalogue-{name[:30].rstrip('-.')}-{secrets.token_hex(4)}"
    left = f"the reader pod {pod} may be left: kubectl -n {kube.namespace} delete pod {pod}"
    with interrupts_noted(left) as asked:
        try:
            kube.core.create_namespaced_pod(kube.namespace, reader_pod(pod, name, claim, folder, image))
        except ApiException as error:
            raise refused(error, "create", "pods", kube.namespace) from error  # nothing was created
        except BaseException:
            remove_pod(kube, pod)  # the creation may have reached the API server
            raise
        try:
            phase = wait_for_end(kube, pod, timeout, asked)
            with api_call("get", "pods/log", kube.namespace):
                log = str(kube.core.read_namespaced_pod_log(pod, kube.namespace, container=READER_CONTAINER))
            stop_if_asked(asked)
            if phase != "Succeeded":
                where = f"pvc://{claim}/{folder}/{CATALOGUE_DIR}/{CATALOGUE_FILE}"
                raise PluginError(f"cannot read {where} (nothing stored yet?): {log.strip()[-300:]}")
            return log
        finally:
            remove_pod(kube, pod)


def wait_for_end(kube: Kube, pod: str, timeout: float, asked: threading.Event) -> str:
    deadline = time.monotonic() + timeout
    while True:
        stop_if_asked(asked)
        with api_call("get", "pods", kube.namespace):
            status = kube.core.read_namespaced_pod(pod, kube.namespace).status
        stop_if_asked(asked)
        if status.phase in ("Succeeded", "Failed"):
            return str(status.phase)
        if time.monotonic() > deadline:
            reason = next((c.message for c in status.conditions or [] if c.status != "True" and c.message), "")
            raise PluginError(f"the reader pod {pod} did not finish in {timeout:.0f}s (phase {status.phase}) {reason}")
        asked.wait(0.5)


def remove_pod(kube: Kube, pod: str) -> None:
    """Delete the reader pod now (called with interrupts noted, so none lands inside the call)."""
    try:
        kube.core.delete_namespaced_pod(pod, kube.namespace, grace_period_seconds=0)
    except (ApiException, OSError, urllib3.exceptions.HTTPError) as error:
        if getattr(error, "status", None) != 404:
            said = f"{error.status} {error.reason}" if isinstance(error, ApiException) else shown(error)
            print(
                f"kubectl-gallery: could not remove the reader pod {pod}: {said};"
                f" remove it with: kubectl -n {kube.namespace} delete pod {pod}",
                file=sys.stderr,
            )


def shown(value: object) -> str:
    """Text from a site or a worker, safe on a terminal: controls, format characters (bidirectional overrides) and
    line separators become visible escapes, so no name, URL or message can move the cursor or rewrite the screen."""
    return "".join(
        (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        else c
        for c in str(value)
    )


def human_bytes(size: float) -> str:
    for unit in ("B", "Ki", "Mi", "Gi", "Ti"):
        if size < 1024 or unit == "Ti":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


def table(rows: list[list[str]], out: TextIO) -> None:
    rows = [[shown(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def print_catalogue(records: list[dict[str, Any]], output: str, out: TextIO) -> None:
    if output == "json":
        for record in records:
            # ASCII escapes: JSON leaves C1 controls and bidirectional overrides raw otherwise.
            out.write(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
        return
    rows = [["PATH", "SIZE", "TYPE", "SHA256", "SOURCE"]]
    rows += [
        [
            str(r.get("path", "")),
            human_bytes(int(r.get("size") or 0)),
            str(r.get("contentType") or ""),
            str(r.get("sha256", ""))[:12],
            str(r.get("sourceUrl") or ""),
        ]
        for r in records
    ]
    table(rows, out)


# -- status and sync ------------------------------------------------------------------------------------


def ago(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        then = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{stamp} ({seconds // size}{unit} ago)"
    return f"{stamp} ({max(seconds, 0)}s ago)"


def describe(download: dict[str, Any]) -> list[str]:
    return [shown(line) for line in _describe(download)]


def _describe(download: dict[str, Any]) -> list[str]:
    status = download.get("status") or {}
    meta = download["metadata"]
    progress = status.get("progress") or {}
    done, total = progress.get("itemsDone", 0), progress.get("itemsTotal")
    lines = [
        f"Name:       {meta['namespace']}/{meta['name']}",
        f"Phase:      {status.get('phase', 'Pending')}",
        f"Progress:   {done}{f'/{total}' if total is not None else ''} items, "
        f"{human_bytes(progress.get('bytesDone', 0))}, {progress.get('itemsFailed', 0)} failed",
    ]
    if status.get("phase") == "Queued":
        position = status.get("queuePosition")
        lines.append(f"Queue:      position {position if position else 'unknown'}, since {ago(status.get('queuedAt'))}")
    if status.get("jobName"):
        lines.append(f"Job:        {status['jobName']} (pods started: {status.get('attempts', 0)})")
    for label, key in (("Started:", "startedAt"), ("Finished:", "finishedAt")):
        if status.get(key):
            lines.append(f"{label:<11} {ago(status[key])}")
    catalogue = status.get("catalogue") or {}
    if catalogue.get("items"):
        read_by = catalogue.get("jobName")
        earlier = f", as run {read_by} read it" if read_by and read_by != status.get("jobName") else ""
        lines.append(
            f"Catalogue:  {catalogue['items']} items, {human_bytes(catalogue.get('bytes', 0))}{earlier}"
            f" (kubectl gallery catalogue {meta['name']})"
        )
    for condition in status.get("conditions") or []:
        if condition["status"] == "True" or condition["type"] == "Ready":
            message = f": {condition['message']}" if condition.get("message") else ""
            lines.append(f"{condition['type'] + ':':<11} {condition['status']} {condition['reason']}{message}")
    failures = status.get("failures") or []
    if failures:
        kept = f" (the most recent; status keeps {MAX_FAILURES})" if len(failures) >= MAX_FAILURES else ""
        lines.append(f"Failures:   {len(failures)}{kept}")
        for failure in failures:
            where = f" {failure['url']}" if failure.get("url") else ""
            lines.append(f"  {failure['reason']}{where}: {failure.get('message', '')}")
    return lines


def sync(kube: Kube, name: str) -> str:
    """Request a run: any new annotation value does, so the stamp has microseconds (two requests within one second
    are two runs)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"metadata": {"annotations": {REQUESTED_AT: stamp}}}
    try:
        kube.custom.patch_namespaced_custom_object(API_GROUP, API_VERSION, kube.namespace, SUBSCRIPTIONS, name, patch)
    except ApiException as error:
        if error.status == 404:
            kind_missing = "NotFound" not in str(error.body) or '"name"' not in str(error.body)
            raise PluginError(
                "this cluster has no GallerySubscription kind (install an operator version with subscriptions)"
                if kind_missing
                else f"gallerysubscription {name!r} not found in namespace {kube.namespace}"
            ) from error
        raise refused(error, "patch", "gallerysubscriptions", kube.namespace) from error
    return stamp


# -- command line --------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl gallery", description=__doc__.split("\n\n")[0])
    top.add_argument("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    top.add_argument("--context", help="the kubeconfig context (default: the current one)")
    top.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    commands = top.add_subparsers(dest="command", required=True)
    catalogue = commands.add_parser("catalogue", help="print a download's full catalogue")
    catalogue.add_argument("name")
    catalogue.add_argument("-o", "--output", choices=["table", "json"], default="table", help="json: JSON lines")
    catalogue.add_argument("--image", default=IMAGE, help="image of the reader pod (a claim target)")
    catalogue.add_argument("--timeout", type=float, default=120, help="seconds to wait for the reader pod")
    status = commands.add_parser("status", help="phase, progress, queue position and failures of a download")
    status.add_argument("name")
    subscription = commands.add_parser("sync", help="ask for a run of a GallerySubscription now")
    subscription.add_argument("name")
    return top


def run(argv: list[str], out: TextIO) -> int:
    args = parser().parse_args(argv)
    kube = connect(args.kubeconfig, args.context, args.namespace)
    commands: dict[str, Callable[[], object]] = {
        "catalogue": lambda: print_catalogue(
            catalogue_lines(kube, args.name, args.image, args.timeout), args.output, out
        ),
        "status": lambda: out.write("\n".join(describe(read_download(kube, args.name))) + "\n"),
        "sync": lambda: out.write(
            f"gallerysubscription {args.name}: run requested ({REQUESTED_AT}={sync(kube, args.name)})\n"
        ),
    }
    commands[args.command]()
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv, sys.stdout)
    except PluginError as error:
        print(f"kubectl-gallery: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kubectl-gallery: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
