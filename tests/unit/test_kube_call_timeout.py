"""No API call of the operator's shared client waits for ever: against a server that takes the connection and never
answers (as a connection that died without a reset looks), the call fails, so its reconcile is retried, instead of
holding its thread and its reconciler for ever. Before, the client's calls had no timeout at all."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes.config import kube_config

from gallery_operator import kube
from tests.unit.conftest import SilentApi


@pytest.fixture
def silent_cluster(silent_api: SilentApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shared client built from a kubeconfig naming a silent API server."""
    # (the kubernetes package reads $KUBECONFIG once, at import)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(silent_api.kubeconfig))
    monkeypatch.setattr(kube, "CALL_TIMEOUT", (1.0, 1.0))
    kube.api.cache_clear()
    kube.forget_clients()
    yield
    kube.api.cache_clear()
    kube.forget_clients()


@pytest.mark.parametrize("call", ["generated", "direct"])
def test_a_call_to_a_server_that_never_answers_fails_instead_of_waiting_for_ever(
    silent_cluster: None, call: str
) -> None:
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            if call == "generated":  # through the kubernetes package's generated methods
                outcome.append(kube.read_pod("ns", "pod"))
            else:  # kube._send, the hot path's own request (status patches, Jobs, Events)
                kube.patch_subscription_status("ns", "sub", {"phase": "x"})
                outcome.append("answered")
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)  # the old client would still be waiting here, and for ever
    assert not thread.is_alive(), "the call is still waiting for the server"
    [error] = outcome
    assert isinstance(error, Exception)
    assert "timed out" in repr(error).lower()
