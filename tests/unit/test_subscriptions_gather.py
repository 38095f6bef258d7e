"""The subscriptions' gather: a subscription's runs are the GalleryDownloads its uid controls in its own namespace.
A download in another namespace that names the subscription's uid as its controller (any tenant can write an owner
reference) is no run of it: it is neither adopted (which would block every tick under Forbid) nor deleted (the
deletion would name a download of the subscription's namespace)."""

from __future__ import annotations

import asyncio
from typing import Any

from gallery_operator.subscription_plan import FINALIZER, RunSnapshot, SubscriptionSnapshot
from gallery_operator.subscriptions import Subscriptions

TEMPLATE = {"urls": ["https://example.org/g"], "target": {"pvc": {"claimName": "media"}}}


class Recording:
    """The facade, recording each call (a unit test of the gather and apply; the real one is proven in e2e)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def create_download(self, body: dict[str, Any]) -> bool:
        self.calls.append(("create", (body["metadata"]["namespace"], body["metadata"]["name"])))
        return True

    async def delete_download(self, namespace: str, name: str, foreground: bool) -> None:
        self.calls.append(("delete", (namespace, name)))

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("status", name))

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str) -> None:
        self.calls.append(("finalizers", tuple(finalizers)))

    async def post_event(self, reference: Any, kind: str, reason: str, message: str) -> None:
        self.calls.append(("event", reason))


def subscription(**changes: Any) -> SubscriptionSnapshot:
    body = {
        "metadata": {
            "namespace": "team-a",
            "name": "sub",
            "uid": "uid-sub",
            "generation": 1,
            "creationTimestamp": "2026-11-22T09:00:00Z",
            "finalizers": [FINALIZER],
            **changes,
        },
        "spec": {"interval": "1h", "jitter": "0s", "deletionPolicy": "Delete", "downloadTemplate": TEMPLATE},
    }
    return SubscriptionSnapshot.of(body)


def foreign_run() -> RunSnapshot:
    """A download in team-b, named like a download of team-a, claiming team-a's subscription as its controller."""
    return RunSnapshot.of(
        {
            "metadata": {
                "namespace": "team-b",
                "name": "victim",
                "ownerReferences": [{"kind": "GallerySubscription", "uid": "uid-sub", "controller": True}],
            },
            "spec": {},
            "status": {},
        }
    )


def reconcile(snapshot: SubscriptionSnapshot) -> list[tuple[str, Any]]:
    facade = Recording()
    loop = Subscriptions({snapshot.key: [snapshot]}, {"uid-sub": [foreign_run()]}, facade)

    async def once() -> None:
        await loop.reconcile(snapshot.key)
        await loop.stop()

    asyncio.run(once())
    return facade.calls


def test_a_foreign_download_is_not_deleted_when_the_subscription_goes() -> None:
    calls = reconcile(subscription(deletionTimestamp="2026-11-22T12:00:00Z"))
    assert ("delete", ("team-a", "victim")) not in calls, calls
    assert ("create", ("team-a", "sub-cleanup")) in calls  # no run of its own is left: the library goes


def test_a_foreign_download_does_not_block_the_subscriptions_ticks() -> None:
    calls = reconcile(subscription())
    created = [what for call, what in calls if call == "create"]
    assert len(created) == 1 and created[0][0] == "team-a" and created[0][1].startswith("sub-2026"), calls
    assert ("event", "RunSkipped") not in calls
