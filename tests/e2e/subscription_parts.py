"""Subscriptions driven through the API as a user would: the client, a download template on the fixture site, the
downloads a subscription left, and the shared schedules; for the subscription tests and their RBAC test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from gallery_harness.procs import wait_until
from gallery_operator import API_GROUP, API_VERSION, PLURAL, SUBSCRIPTION_PLURAL


@dataclass
class Subscriptions:
    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "GallerySubscription",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, SUBSCRIPTION_PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, SUBSCRIPTION_PLURAL, name
        )
        return result

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, SUBSCRIPTION_PLURAL, name, body
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, SUBSCRIPTION_PLURAL, name)

    def runs(self, name: str) -> list[dict[str, Any]]:
        """The GalleryDownloads the subscription controls."""
        uid = self.get(name)["metadata"]["uid"]
        listed = self.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, self.namespace, PLURAL)["items"]
        return [
            d
            for d in listed
            if any(o.get("uid") == uid and o.get("controller") for o in d["metadata"].get("ownerReferences", []))
        ]

    def recorded(self, name: str, outcome: str) -> dict[str, Any]:
        """The status once its run records hold one with ``outcome``."""

        def seen() -> bool:
            return any(r["outcome"] == outcome for r in self.status(name).get("runs", []))

        wait_until(seen, 120, f"a record {outcome} of {name}", interval=0.5)
        return self.status(name)

    def ended(self, name: str, count: int) -> list[dict[str, Any]]:
        """The run records once ``count`` runs have ended (newest first)."""
        done = {"Succeeded", "PartiallySucceeded", "Failed"}

        def enough() -> bool:
            return sum(r["outcome"] in done for r in self.status(name).get("runs", [])) >= count

        wait_until(enough, 180, f"{count} ended runs of {name}", interval=0.5)
        return [r for r in self.status(name)["runs"] if r["outcome"] in done]


def template(site: str) -> dict[str, Any]:
    return {"urls": [f"{site}/gallery/"], "target": {"pvc": {"claimName": "media"}}, "options": {"retries": 0}}


def remaining(subscriptions: Subscriptions) -> set[str]:
    """Names of the GalleryDownloads left in the namespace."""
    listed = subscriptions.custom.list_namespaced_custom_object(API_GROUP, API_VERSION, subscriptions.namespace, PLURAL)
    return {d["metadata"]["name"] for d in listed["items"]}


def annotated(value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {"gallery-operator.dev/requested-at": value}}}


YEARLY = {"schedule": "0 0 1 1 *", "timeZone": "Europe/Berlin"}
"""A schedule that does not tick during a test: only requests make runs."""
