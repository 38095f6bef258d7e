"""Pure admission: which waiting downloads may start, given global and per-namespace caps and priorities."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Candidate:
    """A download that wants to start. Ordering is queue order: priority first, then age, then name."""

    sort_key: tuple[int, str, str, str]
    namespace: str
    name: str

    @classmethod
    def of(cls, namespace: str, name: str, priority: int, created: str) -> Candidate:
        return cls((-priority, created, namespace, name), namespace, name)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Decision:
    admitted: frozenset[tuple[str, str]]
    positions: Mapping[tuple[str, str], int]
    """1-based queue position of every candidate that must keep waiting."""


def admit(
    candidates: Iterable[Candidate],
    active_by_namespace: Mapping[str, int],
    max_active: int,
    max_active_per_namespace: int,
) -> Decision:
    """Walk the queue in order and admit while both caps have room.

    A candidate blocked only by its namespace's cap does not block candidates of other namespaces behind it.
    """
    active = Counter(active_by_namespace)
    total = sum(active.values())
    admitted: set[tuple[str, str]] = set()
    positions: dict[tuple[str, str], int] = {}
    for candidate in sorted(candidates):
        if total < max_active and active[candidate.namespace] < max_active_per_namespace:
            admitted.add(candidate.key)
            active[candidate.namespace] += 1
            total += 1
        else:
            positions[candidate.key] = len(positions) + 1
    return Decision(frozenset(admitted), positions)
