"""A local node agent: registers a Node, binds pending Pods to it and runs their containers as processes.

It stands in for kubelet + container runtime on machines without a container engine. The image is
ignored; each container's command runs from the project's Python environment inside a private mount
namespace, with the pod's volumes bound at their mountPaths. What it honours: command/args with
$(VAR) expansion, env (value, secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), envFrom,
volumes (persistentVolumeClaim as a per-claim folder, emptyDir, secret, configMap, downwardAPI,
projected with a TokenRequest service-account token, hostPath), subPath, readOnly mounts,
readOnlyRootFilesystem, workingDir, the termination message file, init containers, restartPolicy,
activeDeadlineSeconds, exit codes in container statuses and phase, and deletion (SIGTERM, grace,
SIGKILL). What it does not: images, runAsUser (processes keep the agent's user), resource limits,
probes, networking (pods share the host's loopback).

Usage: ``python -m tests.cluster.nodeagent --kubeconfig K --root DIR --api-port P``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests import REPO_ROOT
from tests.cluster import procs
from tests.cluster.nodelogs import serve_logs

log = logging.getLogger("nodeagent")

PODEXEC = Path(__file__).resolve().parent / "podexec.py"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
TERMINATION_MESSAGE_LIMIT = 4096
NODE_CAPACITY = {"cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "50Gi"}
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NotReady(Exception):
    """A pod cannot start yet (a missing Secret, ConfigMap or claim); retried like kubelet does."""


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known names are replaced, $$ escapes, unknown refs stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, text)


class PodRunner:
    """Runs one pod to completion (or deletion) on a thread that stays alive while its processes do."""

    def __init__(self, agent: NodeAgent, pod: dict[str, Any]) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.folder = agent.root / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.stopping = threading.Event()
        self.grace = 30.0
        self.lock = threading.Lock()
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.restart_counts: dict[str, int] = {}
        self.started_at = now()
        self.deadline_exceeded = False
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    # -- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def kill(self, grace: float) -> None:
        """Stop the pod's processes: SIGTERM now, SIGKILL after ``grace`` seconds (done on the pod thread)."""
        self.grace = grace
        self.stopping.set()
        with self.lock:
            for process in self.running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)

    # -- the pod's life --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._live()
        except Exception:
            log.exception("pod %s/%s: agent error", self.namespace, self.name)
            with contextlib.suppress(Exception):
                self._patch_status({"phase": "Failed", "reason": "NodeAgentError", "message": "see node agent log"})
        finally:
            self.agent.forget(self.uid)

    def _live(self) -> None:
        spec = self.pod["spec"]
        volumes = self._prepare_volumes_until_ready()
        if volumes is None:
            return
        deadline = spec.get("activeDeadlineSeconds")
        self.deadline_at = time.monotonic() + deadline if deadline else None
        policy = spec.get("restartPolicy", "Always")

        for container in spec.get("initContainers", []):
            self._patch_status(self._pod_status("Pending", initialized=False))
            while True:
                code = self._run_container(container, volumes, init=True)
                if code == 0 or self.stopping.is_set() or policy == "Never":
                    break
                self.restart_counts[container["name"]] = self.restart_counts.get(container["name"], 0) + 1
            if code != 0:
                self._finish("Failed")
                return

        containers = spec["containers"]
        workers = [threading.Thread(target=self._supervise, args=(c, volumes, policy), daemon=True) for c in containers]
        # Container processes must be spawned by a thread that outlives them (PDEATHSIG is per thread),
        # so each supervisor thread spawns and waits for its own container.
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        codes = [self.statuses[c["name"]]["state"]["terminated"]["exitCode"] for c in containers]
        self._finish("Succeeded" if all(code == 0 for code in codes) and not self.deadline_exceeded else "Failed")

    def _supervise(self, container: dict[str, Any], volumes: dict[str, Path], policy: str) -> None:
        while True:
            code = self._run_container(container, volumes, init=False)
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart or self.stopping.is_set():
                return
            self.restart_counts[container["name"]] = self.restart_counts.get(container["name"], 0) + 1
            backoff = min(10.0, 0.5 * 2 ** self.restart_counts[container["name"]])
            if self.stopping.wait(backoff):
                return

    def _finish(self, phase: str) -> None:
        status = self._pod_status(phase)
        if self.deadline_exceeded:
            status |= {
                "reason": "DeadlineExceeded",
                "message": "Pod was active on the node longer than the specified deadline",
            }
        self._patch_status(status)
        log.info("pod %s/%s finished: %s", self.namespace, self.name, phase)

    # -- containers --------------------------------------------------------------------------------

    def _run_container(self, container: dict[str, Any], volumes: dict[str, Path], init: bool) -> int:
        name = container["name"]
        if self.stopping.is_set():
            self._record_terminated(name, 137, "Killed", "", now())
            return 137
        env = self._environment(container)
        argv = [expand(part, env) for part in (container.get("command") or []) + (container.get("args") or [])]
        if not argv:
            self._record_terminated(name, 128, "ContainerCannotRun", "no command: images are not run here", now())
            return 128
        log_path = self.folder / f"{name}.log"
        termination = self.folder / f"{name}.termination-log"
        termination.write_bytes(b"")
        mounts = self._mounts(container, volumes, termination)
        security = container.get("securityContext") or {}
        spec_path = self.folder / f"{name}.exec.json"
        spec_path.write_text(
            json.dumps(
                {
                    "mounts": mounts,
                    "readOnlyRootFilesystem": bool(security.get("readOnlyRootFilesystem")),
                    "workingDir": container.get("workingDir"),
                    "argv": argv,
                    "keepVisible": [sys.prefix, str(REPO_ROOT)],
                }
            )
        )
        started = now()
        with self.lock:
            process = procs.spawn([sys.executable, str(PODEXEC), str(spec_path)], log_path, env=env)
            self.running[name] = process
        self.statuses[name] = self._container_status(container, {"running": {"startedAt": started}}, ready=True)
        if not init:
            try:
                self._patch_status(self._pod_status("Running"))
            except Exception:
                log.exception("pod %s/%s: cannot report Running", self.namespace, self.name)
        code = self._wait(process)
        with self.lock:
            self.running.pop(name, None)
        message = termination.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
        if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = log_path.read_bytes()[-2048:].decode(errors="replace")
        reason = "Completed" if code == 0 else "Error"
        if self.deadline_exceeded:
            reason = "DeadlineExceeded"
        self._record_terminated(name, code, reason, message, started, container)
        if init:
            self._patch_status(self._pod_status("Pending", initialized=code == 0))
        return code

    def _wait(self, process: subprocess.Popen[bytes]) -> int:
        """Wait for the process, enforcing activeDeadlineSeconds and the deletion grace period."""
        kill_at: float | None = None
        while True:
            try:
                code = process.wait(0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            moment = time.monotonic()
            if self.deadline_at is not None and moment >= self.deadline_at and not self.deadline_exceeded:
                self.deadline_exceeded = True
                self.kill(grace=self.grace)
            if self.stopping.is_set() and kill_at is None:
                kill_at = moment + self.grace
            if kill_at is not None and moment >= kill_at:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # children the container left behind
        return 128 - code if code < 0 else code  # a signal -N becomes 128+N, as runtimes report it

    def _record_terminated(
        self,
        name: str,
        code: int,
        reason: str,
        message: str,
        started: str,
        container: dict[str, Any] | None = None,
    ) -> None:
        terminated = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()}
        if message:
            terminated["message"] = message
        spec = container or {"name": name, "image": ""}
        self.statuses[name] = self._container_status(spec, {"terminated": terminated}, ready=False)

    def _container_status(self, container: dict[str, Any], state: dict[str, Any], ready: bool) -> dict[str, Any]:
        name = container["name"]
        return {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "containerID": f"local://{self.uid}/{name}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": self.restart_counts.get(name, 0),
            "state": state,
        }

    # -- status ----------------------------------------------------------------------------------

    def _pod_status(self, phase: str, initialized: bool = True) -> dict[str, Any]:
        running = phase == "Running"
        containers = self.pod["spec"]["containers"]
        statuses = [
            self.statuses.get(c["name"])
            or self._container_status(c, {"waiting": {"reason": "PodInitializing"}}, ready=False)
            for c in containers
        ]
        ready = running and all(s["ready"] for s in statuses)
        ready_reason = None if ready else ("PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady")

        def condition(kind: str, value: bool, reason: str | None = None) -> dict[str, Any]:
            item = {"type": kind, "status": "True" if value else "False", "lastTransitionTime": now()}
            if reason and not value:
                item["reason"] = reason
            return item

        return {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.started_at,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", initialized, "ContainersNotInitialized"),
                condition("ContainersReady", ready, ready_reason),
                condition("Ready", ready, ready_reason),
            ],
            "containerStatuses": statuses,
        }

    def _patch_status(self, status: dict[str, Any]) -> None:
        try:
            self.agent.core.patch_namespaced_pod_status(self.name, self.namespace, {"status": status})
        except ApiException as error:
            if error.status != 404:
                raise

    # -- environment and volumes ----------------------------------------------------------------------

    def _field(self, path: str) -> str:
        meta = self.pod["metadata"]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
        values: dict[str, str] = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.agent.node_name,
            "spec.serviceAccountName": str(self.pod["spec"].get("serviceAccountName", "default")),
            "status.hostIP": "127.0.0.1",
            "status.podIP": "127.0.0.1",
            "status.podIPs": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }
        if path not in values:
            raise NotReady(f"unsupported fieldRef {path}")
        return values[path]

    def _resource(self, container: dict[str, Any], ref: dict[str, Any]) -> str:
        kind, _, resource = ref["resource"].partition(".")
        value = ((container.get("resources") or {}).get(kind) or {}).get(resource) or NODE_CAPACITY.get(resource, "0")
        return str(value)

    def _key_ref(self, kind: str, ref: dict[str, Any]) -> str | None:
        data = self.agent.read_data(kind, self.namespace, ref["name"], optional=bool(ref.get("optional")))
        if data is None:
            return None
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise NotReady(f"{kind} {ref['name']} has no key {ref['key']}")
        return data[ref["key"]].decode(errors="replace")

    def _environment(self, container: dict[str, Any]) -> dict[str, str]:
        api_port = str(self.agent.api_port)
        env: dict[str, str] = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": self.name,
            "HOME": "/",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": api_port,
            "KUBERNETES_SERVICE_PORT_HTTPS": api_port,
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{api_port}",
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("secretRef", "configMapRef"):
                if kind in source:
                    ref = source[kind]
                    data = self.agent.read_data(kind[:-3], self.namespace, ref["name"], bool(ref.get("optional")))
                    for key, raw in (data or {}).items():
                        env[prefix + key] = raw.decode(errors="replace")
        for item in container.get("env") or []:
            value: str | None
            if "valueFrom" not in item:
                value = expand(item.get("value", ""), env)
            else:
                source = item["valueFrom"]
                if "secretKeyRef" in source:
                    value = self._key_ref("secret", source["secretKeyRef"])
                elif "configMapKeyRef" in source:
                    value = self._key_ref("configMap", source["configMapKeyRef"])
                elif "fieldRef" in source:
                    value = self._field(source["fieldRef"]["fieldPath"])
                elif "resourceFieldRef" in source:
                    value = self._resource(container, source["resourceFieldRef"])
                else:
                    raise NotReady(f"unsupported valueFrom in env {item['name']}")
            if value is not None:
                env[item["name"]] = value
        return env

    def _prepare_volumes_until_ready(self) -> dict[str, Path] | None:
        """Materialise volumes, retrying while a referenced object is missing; None if the pod was deleted."""
        self.folder.mkdir(parents=True, exist_ok=True)
        reported = ""
        while not self.stopping.is_set():
            try:
                volumes = {v["name"]: self._volume(v) for v in self.pod["spec"].get("volumes") or []}
                # Env sources must exist too before kubelet starts a container.
                for container in self.pod["spec"]["containers"]:
                    self._environment(container)
                return volumes
            except NotReady as reason:
                if str(reason) != reported:
                    reported = str(reason)
                    log.info("pod %s/%s waiting: %s", self.namespace, self.name, reason)
                    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": reported}}
                    self.statuses = {
                        c["name"]: self._container_status(c, waiting, ready=False)
                        for c in self.pod["spec"]["containers"]
                    }
                    self._patch_status(self._pod_status("Pending"))
                    self.statuses = {}
                self.stopping.wait(1.0)
        return None

    def _write_files(self, folder: Path, files: dict[str, bytes], mode: int) -> None:
        for relative, content in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(mode)

    def _projected_files(self, kind: str, source: dict[str, Any]) -> dict[str, bytes]:
        name = source.get("name") or source.get("secretName") or ""
        optional = bool(source.get("optional"))
        data = self.agent.read_data(kind, self.namespace, name, optional)
        if data is None:
            return {}
        items = source.get("items")
        if not items:
            return dict(data)
        files: dict[str, bytes] = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise NotReady(f"{kind} {name} has no key {item['key']}")
            files[item["path"]] = data[item["key"]]
        return files

    def _downward_files(self, source: dict[str, Any]) -> dict[str, bytes]:
        return {item["path"]: self._field(item["fieldRef"]["fieldPath"]).encode() for item in source.get("items", [])}

    def _volume(self, volume: dict[str, Any]) -> Path:
        folder: Path = self.folder / "volumes" / str(volume["name"])
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if not self.agent.claim_exists(self.namespace, claim):
                raise NotReady(f"persistentvolumeclaim {claim} not found")
            return self.agent.claim_folder(self.namespace, claim)
        if "hostPath" in volume:
            path = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") in ("DirectoryOrCreate",):
                path.mkdir(parents=True, exist_ok=True)
            return path
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        if "emptyDir" in volume:
            folder.chmod(0o777)
        elif "secret" in volume:
            source = volume["secret"]
            self._write_files(folder, self._projected_files("secret", source), source.get("defaultMode", 0o644))
        elif "configMap" in volume:
            source = volume["configMap"]
            self._write_files(folder, self._projected_files("configMap", source), source.get("defaultMode", 0o644))
        elif "downwardAPI" in volume:
            source = volume["downwardAPI"]
            self._write_files(folder, self._downward_files(source), source.get("defaultMode", 0o644))
        elif "projected" in volume:
            projected = volume["projected"]
            files: dict[str, bytes] = {}
            for source in projected.get("sources", []):
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    files[token["path"]] = self.agent.request_token(self.pod, token).encode()
                elif "secret" in source:
                    files |= self._projected_files("secret", source["secret"])
                elif "configMap" in source:
                    files |= self._projected_files("configMap", source["configMap"])
                elif "downwardAPI" in source:
                    files |= self._downward_files(source["downwardAPI"])
            self._write_files(folder, files, projected.get("defaultMode", 0o644))
        else:
            raise NotReady(f"unsupported volume type in {volume['name']}")
        return folder

    def _mounts(self, container: dict[str, Any], volumes: dict[str, Path], termination: Path) -> list[dict[str, Any]]:
        mounts = []
        for mount in container.get("volumeMounts") or []:
            source = volumes[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                source.mkdir(parents=True, exist_ok=True)
            mounts.append(
                {"source": str(source), "target": mount["mountPath"], "readOnly": bool(mount.get("readOnly"))}
            )
        path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        mounts.append({"source": str(termination), "target": path, "readOnly": False})
        return mounts


class NodeAgent:
    """Registers the node, binds pending pods to it and runs the pods bound to it."""

    def __init__(self, api: client.ApiClient, node_name: str, root: Path, api_port: int) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.node_name = node_name
        self.root = root
        self.api_port = api_port
        self.runners: dict[str, PodRunner] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.logs_port = 0  # the kubelet port the API server reads container logs from (0: none)

    # -- shared helpers for runners ----------------------------------------------------------------

    def claim_folder(self, namespace: str, claim: str) -> Path:
        folder = self.root / "claims" / namespace / claim
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        return folder

    def claim_exists(self, namespace: str, claim: str) -> bool:
        try:
            self.core.read_namespaced_persistent_volume_claim(claim, namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def read_data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, bytes] | None:
        """A Secret's or ConfigMap's data as bytes; None when missing and optional."""
        try:
            if kind == "secret":
                secret = self.core.read_namespaced_secret(name, namespace)
                return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
            config_map = self.core.read_namespaced_config_map(name, namespace)
            data = {k: v.encode() for k, v in (config_map.data or {}).items()}
            data |= {k: base64.b64decode(v) for k, v in (config_map.binary_data or {}).items()}
            return data
        except ApiException as error:
            if error.status != 404:
                raise
            if optional:
                return None
            raise NotReady(f"{kind} {name} not found") from error

    def request_token(self, pod: dict[str, Any], token: dict[str, Any]) -> str:
        """A bound service-account token from the TokenRequest API, as kubelet obtains it."""
        spec: dict[str, Any] = {
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
            "expirationSeconds": token.get("expirationSeconds", 3607),
        }
        if token.get("audience"):
            spec["audiences"] = [token["audience"]]
        account = pod["spec"].get("serviceAccountName") or "default"
        try:
            result = self.core.create_namespaced_service_account_token(
                account, pod["metadata"]["namespace"], {"spec": spec}
            )
        except ApiException as error:
            if error.status == 404:
                raise NotReady(f"serviceaccount {account} not found") from error
            raise
        return str(result.status.token)

    def forget(self, uid: str) -> None:
        with self.lock:
            self.runners.pop(uid, None)

    # -- node -------------------------------------------------------------------------------------

    def register(self) -> None:
        body = {
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node.kubernetes.io/instance-type": "local-process",
                },
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as error:
            if error.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        stamp = now()

        def condition(kind: str, value: str, reason: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": value,
                "reason": reason,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }

        status = {
            "capacity": NODE_CAPACITY,
            "allocatable": NODE_CAPACITY,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.logs_port}},
            "conditions": [
                condition("Ready", "True", "KubeletReady"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "nodeInfo": {
                "machineID": "local",
                "systemUUID": "local",
                "bootID": "local",
                "kernelVersion": os.uname().release,
                "osImage": "gallery-operator local node agent",
                "containerRuntimeVersion": "local-process://1",
                "kubeletVersion": "v1.34.4",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.core.patch_node_status(self.node_name, {"status": status})

    # -- watches ----------------------------------------------------------------------------------

    def _watch(self, field_selector: str, handle: Callable[[str, dict[str, Any]], None]) -> None:
        """List then watch pods matching ``field_selector`` forever, re-listing after any interruption."""
        while not self.stopped.is_set():
            try:
                listing = self.api.sanitize_for_serialization(
                    self.core.list_pod_for_all_namespaces(field_selector=field_selector)
                )
                for pod in listing["items"]:
                    handle("ADDED", pod)
                for event in self._stream(field_selector, listing["metadata"]["resourceVersion"]):
                    handle(event["type"], event["raw_object"])
            except Exception as error:
                if not self.stopped.is_set():
                    log.warning("watch %s interrupted: %s", field_selector, error)
                    self.stopped.wait(0.5)

    def _stream(self, field_selector: str, version: str) -> Iterator[dict[str, Any]]:
        watcher = watch.Watch()
        for event in watcher.stream(
            self.core.list_pod_for_all_namespaces,
            field_selector=field_selector,
            resource_version=version,
            timeout_seconds=300,
            allow_watch_bookmarks=True,
        ):
            if event["type"] == "ERROR":
                raise RuntimeError(f"watch error: {event['raw_object']}")
            if event["type"] != "BOOKMARK":
                yield event

    def schedule(self, kind: str, pod: dict[str, Any]) -> None:
        """Bind a pending pod to this node (the node agent doubles as a one-node scheduler)."""
        spec = pod["spec"]
        meta = pod["metadata"]
        if kind == "DELETED" or spec.get("nodeName") or meta.get("deletionTimestamp"):
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        if spec.get("schedulingGates"):
            return
        node_labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"}
        if any(node_labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            # The generated client fails to decode a Binding response, so skip decoding it.
            self.core.create_namespaced_binding(meta["namespace"], binding, _preload_content=False)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def run_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            runner = self.runners.get(uid)
        if kind == "DELETED":
            if runner:
                runner.kill(grace=0)
            return
        if meta.get("deletionTimestamp"):
            if runner:
                runner.kill(grace=float(meta.get("deletionGracePeriodSeconds") or 0))
                threading.Thread(target=self._delete_when_stopped, args=(runner,), daemon=True).start()
            else:
                self._delete_now(meta["namespace"], meta["name"], uid)
            return
        if runner or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        runner = PodRunner(self, pod)
        with self.lock:
            self.runners[uid] = runner
        log.info("pod %s/%s: starting", meta["namespace"], meta["name"])
        runner.start()

    def _delete_when_stopped(self, runner: PodRunner) -> None:
        runner.thread.join()
        self._delete_now(runner.namespace, runner.name, runner.uid)

    def _delete_now(self, namespace: str, name: str, uid: str) -> None:
        """The final deletion kubelet performs once the containers are gone."""
        try:
            self.core.delete_namespaced_pod(
                name, namespace, body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def log_file(self, namespace: str, pod: str, container: str) -> Path | None:
        """The output file of a container of a pod this agent ran (the newest pod of that name), or None."""
        if any("/" in part or part.startswith(".") or "*" in part for part in (namespace, pod, container)):
            return None
        folders = sorted((self.root / "pods").glob(f"{namespace}_{pod}_*"), key=lambda f: f.stat().st_mtime)
        return folders[-1] / f"{container}.log" if folders else None

    def serve_logs(self, cert: Path, key: Path, client_ca: Path) -> None:
        self.logs_port = serve_logs(self.log_file, cert, key, client_ca).server_port

    def run(self) -> None:
        self.register()
        threads = [
            threading.Thread(target=self._watch, args=("spec.nodeName=", self.schedule), daemon=True),
            threading.Thread(target=self._watch, args=(f"spec.nodeName={self.node_name}", self.run_pod), daemon=True),
        ]
        for thread in threads:
            thread.start()
        while not self.stopped.wait(10):
            try:
                self.heartbeat()
            except Exception as error:
                log.warning("heartbeat failed: %s", error)

    def shutdown(self) -> None:
        self.stopped.set()
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.kill(grace=2)
        for runner in runners:
            runner.thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--node-name", default="gallery-node")
    parser.add_argument("--api-port", required=True, type=int)
    parser.add_argument("--logs-tls", nargs=3, type=Path, metavar=("CERT", "KEY", "CLIENT_CA"), help="serve logs")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    configuration = client.Configuration()
    config.load_kube_config(options.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    agent = NodeAgent(client.ApiClient(configuration), options.node_name, options.root, options.api_port)
    if options.logs_tls:
        agent.serve_logs(*options.logs_tls)

    def on_signal(*_: object) -> None:
        agent.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run()


if __name__ == "__main__":
    main()
