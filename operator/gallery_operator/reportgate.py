"""The report endpoint's gate before any TokenReview: a cheap look at the unverified token, and budgets per source.

A made-up token used to cost a TokenReview, and all of them shared one budget: a flood from any pod locked real
workers out. Now a token is reviewed only when its unverified claims could be a worker's: the operator's
audience, not expired, bound to a pod (the `kubernetes.io` claim) in a namespace where a current run's worker Job
lives, with a pod name of that Job's shape (the Job controller names its pods `<job name>-<5 characters>`).
Nothing here is trusted: the signature is not checked, so a forger can pass this filter; the TokenReview stays
the authority. What a forger who passes it can spend is bounded per source: per client address and per claimed
namespace, each well below the global budget, so one source's flood leaves room for everyone else.

Pure: no I/O; the clock is passed in.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

GENERATED_PREFIX_LENGTH = 58
"""The API server's name generator keeps at most 58 characters of a generateName and adds 5 random ones."""
GENERATED_SUFFIX = re.compile(r"[a-z0-9]{5}")

Refusal = Literal["malformed-token", "wrong-audience", "expired", "no-pod-claim", "unexpected-pod"]


@dataclass(frozen=True)
class Claimed:
    """What an unverified token says about its holder: a pod (namespace, name, uid)."""

    namespace: str
    pod: str
    uid: str


def worker_pod_prefix(job_name: str) -> str:
    """The part of every pod name the Job controller gives this Job's pods (generateName `<job name>-`)."""
    return f"{job_name}-"[:GENERATED_PREFIX_LENGTH]


def pod_prefix_of(pod_name: str) -> str | None:
    """The generateName part of a pod name the API server generated, or None when the name cannot be one."""
    prefix, suffix = pod_name[:-5], pod_name[-5:]
    return prefix if prefix and GENERATED_SUFFIX.fullmatch(suffix) else None


def _payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # deep nesting, in a few kilobytes, exhausts the parser
        return None
    return claims if isinstance(claims, dict) else None


def precheck(token: str, audience: str, now: float, expects_pod: Callable[[str, str], bool]) -> Claimed | Refusal:
    """The pod an unverified token claims, or why it cannot be a worker's token (a metric label).

    ``now`` is Unix time; ``expects_pod(namespace, pod name)`` says whether a current run's worker Job in that
    namespace would have a pod of that name."""
    claims = _payload(token)
    if claims is None:
        return "malformed-token"
    audiences = claims.get("aud")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or audience not in audiences:
        return "wrong-audience"
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires <= now:
        return "expired"
    bound = claims.get("kubernetes.io")
    pod = bound.get("pod") if isinstance(bound, dict) else None
    namespace = bound.get("namespace") if isinstance(bound, dict) else None
    fields = (namespace, pod.get("name"), pod.get("uid")) if isinstance(pod, dict) else ()
    if not fields or not all(isinstance(v, str) and v for v in fields):
        return "no-pod-claim"
    claimed = Claimed(*(str(v) for v in fields))
    if not expects_pod(claimed.namespace, claimed.pod):
        return "unexpected-pod"
    return claimed


@dataclass
class Window:
    """At most `per_second` starts in any second and `at_once` running: one budget."""

    per_second: int
    at_once: int
    started: deque[float] = field(default_factory=deque)
    running: int = 0

    def room(self, now: float) -> bool:
        while self.started and self.started[0] <= now - 1.0:
            self.started.popleft()
        return len(self.started) < self.per_second and self.running < self.at_once

    def take(self, now: float) -> None:
        self.started.append(now)
        self.running += 1

    def give_back(self) -> None:
        self.running -= 1

    def idle(self, now: float) -> bool:
        return self.running == 0 and self.room(now) and not self.started


@dataclass
class SourceBudgets:
    """Budgets of TokenReviews per client address and per claimed namespace. A review starts only when both
    sources have room (else the caller answers 429 at once: nothing waits, so a flood holds no memory)."""

    address_per_second: int = 5
    address_at_once: int = 1
    namespace_per_second: int = 20
    namespace_at_once: int = 2
    max_sources: int = 10_000
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)

    def _window(self, source: tuple[str, str]) -> Window:
        window = self.windows.get(source)
        if window is None:
            if source[0] == "address":
                window = Window(self.address_per_second, self.address_at_once)
            else:
                window = Window(self.namespace_per_second, self.namespace_at_once)
            self.windows[source] = window
        return window

    def try_take(self, address: str, namespace: str, now: float) -> bool:
        """Take one review from both budgets; False (nothing taken) when either has no room."""
        if len(self.windows) >= self.max_sources:
            self._forget_idle(now)
        pair = (self._window(("address", address)), self._window(("namespace", namespace)))
        if not all(w.room(now) for w in pair):
            return False
        for window in pair:
            window.take(now)
        return True

    def give_back(self, address: str, namespace: str) -> None:
        for source in (("address", address), ("namespace", namespace)):
            window = self.windows.get(source)
            if window is not None:
                window.give_back()

    def _forget_idle(self, now: float) -> None:
        for source in [s for s, w in self.windows.items() if w.idle(now)]:
            del self.windows[source]
