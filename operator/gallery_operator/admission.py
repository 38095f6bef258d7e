"""Admission: which waiting downloads may start, under a global cap and a per-namespace cap, by priority then age,
fair between namespaces.

The state is kept incrementally, so that adding, removing, re-prioritising or admitting one download costs
O(log n) and nothing here ever walks every download:

- every waiting download, in queue order (a sorted list: its index is the download's queue position);
- per namespace, its waiting downloads in queue order;
- the *heads*: the first waiting download of every namespace that has room under its cap. The next download to
  start is the first head, so a namespace at its cap never blocks the namespaces behind it;
- fairness between namespaces, since tenants set their own priorities: between namespaces a priority counts only up
  to the namespace's *ceiling* (the platform team's `gallery-operator.dev/max-priority` annotation on the namespace,
  else the operator's default), and among heads of equal effective priority the namespace served longest ago goes
  first (round-robin), so a tenant with priority 1000 on everything, or with more downloads, cannot starve the
  others. Within a namespace its own priorities order its downloads as written;
- occupancy per namespace: worker Jobs the watch shows Pending or Running, plus *grants* (slots handed to a
  download whose Job the watch has not shown yet). A namespace counts towards the global cap with at most its own
  cap, so Jobs a tenant makes for its own downloads cannot starve other namespaces.

Pure: no I/O, no clock. The controller feeds it watch events and reconcile results and enqueues the downloads
`pump` grants a slot to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sortedcontainers import SortedList

from gallery_operator.keys import Key

JobKey = tuple[str, str]
"""A worker Job by (namespace, Job name)."""
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000
CEILING_ANNOTATION = "gallery-operator.dev/max-priority"


def priority_ceiling(annotations: Mapping[str, str]) -> int | None:
    """The ceiling a namespace's annotation sets (clamped to the priority range), or None when it sets none or
    one that is not a whole number (the operator's default applies then)."""
    value = annotations.get(CEILING_ANNOTATION)
    try:
        return None if value is None else max(MIN_PRIORITY, min(MAX_PRIORITY, int(value.strip())))
    except ValueError:
        return None


@dataclass(frozen=True, order=True, slots=True)
class Candidate:
    """A download that wants to start. Ordering is queue order: priority first, then age, then place."""

    sort_key: tuple[int, str, str, str]
    job: str
    """The name of the Job the download's current run would get (its grant is for that Job)."""

    @classmethod
    def of(cls, namespace: str, name: str, priority: int, created: str, job: str) -> Candidate:
        return cls((-priority, created, namespace, name), job)

    @property
    def namespace(self) -> str:
        return self.sort_key[2]

    @property
    def key(self) -> Key:
        return Key(self.sort_key[2], self.sort_key[3])


Entry = tuple[int, Candidate]
"""A download in the queue of all namespaces: (minus its effective priority, the download)."""


@dataclass(frozen=True)
class Granted:
    """The download holds a slot for its Job; `launched` once that Job was created (the watch may not show it yet)."""

    launched: bool = False


@dataclass(frozen=True)
class Waiting:
    """The download waits for a slot, at this place in the queue."""

    position: int


Slot = Granted | Waiting | None
"""Admission's answer for one download: a slot, a place in the queue, or nothing (it wants no slot)."""

Head = tuple[int, int, str, Candidate]
"""A namespace's first download among the heads: (minus its effective priority, when the namespace was last served,
its age, the download)."""


class Admission:
    def __init__(self, max_active: int, max_active_per_namespace: int, default_ceiling: int = MAX_PRIORITY) -> None:
        self.max_active = max_active
        self.cap = max_active_per_namespace
        self.default_ceiling = default_ceiling
        self._ceilings: dict[str, int] = {}
        """Namespaces whose annotation sets their own ceiling."""
        self._waiting: SortedList[Entry] = SortedList()
        self._entries: dict[Key, Entry] = {}
        self._candidates: dict[Key, Candidate] = {}
        self._per_namespace: dict[str, SortedList[Candidate]] = {}
        self._heads: SortedList[Head] = SortedList()
        self._head_of: dict[str, Head] = {}
        self._served: dict[str, int] = {}
        """Per namespace: the turn it was last granted a slot (0: never). Kept while the namespace is idle too (one
        number per namespace), so that emptying its queue does not put a namespace at the front again."""
        self._turn = 0
        self._jobs: dict[JobKey, bool] = {}
        """(namespace, Job name) -> whether that worker Job is active, for every worker Job the watch shows."""
        self._occupied: Counter[str] = Counter()
        """Per namespace: active worker Jobs plus grants whose Job the watch has not shown yet."""
        self._total = 0
        """Sum over namespaces of min(occupied, cap): what counts against the global cap."""
        self._grants: dict[Key, str] = {}
        """Download -> the Job it was granted a slot for, until the watch shows that Job."""
        self._granted_jobs: dict[JobKey, Key] = {}
        """(namespace, Job name) -> the download holding a grant for it."""
        self._launched: set[Key] = set()
        """Downloads whose granted Job was created (the watch has not shown it yet)."""

    # -- what the caller asks --------------------------------------------------------------------------

    def position(self, key: Key) -> int | None:
        """1-based queue position of a waiting download (O(log n)); None when it is not waiting."""
        entry = self._entries.get(key)
        return None if entry is None else self._waiting.index(entry) + 1

    def grant(self, key: Key) -> str | None:
        """The Job a download holds a slot for, while the watch has not shown that Job yet."""
        return self._grants.get(key)

    def grants(self) -> Mapping[Key, str]:
        """Every download holding a slot whose Job the watch has not shown yet, with that Job (read-only)."""
        return MappingProxyType(self._grants)

    def served(self) -> Mapping[str, int]:
        """Per namespace, the turn it was last granted a slot (read-only)."""
        return MappingProxyType(self._served)

    def launched(self, key: Key) -> bool:
        """True once the granted Job was created: a reconcile before the watch shows it must not create it again."""
        return key in self._launched

    def launch(self, key: Key) -> None:
        if key in self._grants:
            self._launched.add(key)

    def waiting(self) -> int:
        return len(self._waiting)

    def in_order(self, limit: int) -> list[Key]:
        """The first `limit` waiting downloads, in queue order."""
        return [c.key for _, c in self._waiting.islice(0, limit)]

    def effective_priority(self, candidate: Candidate) -> int:
        """The priority that counts between namespaces: the download's, at most its namespace's ceiling."""
        return min(-candidate.sort_key[0], self._ceilings.get(candidate.namespace, self.default_ceiling))

    def set_ceiling(self, namespace: str, ceiling: int | None) -> None:
        """The namespace's annotation set (or removed: None) its ceiling; its waiting downloads move: O(k log n)."""
        if self._ceilings.get(namespace) == ceiling:
            return
        queue = list(self._per_namespace.get(namespace, ()))
        for candidate in queue:
            self._waiting.remove(self._entries.pop(candidate.key))
        if ceiling is None:
            self._ceilings.pop(namespace, None)
        else:
            self._ceilings[namespace] = ceiling
        for candidate in queue:
            self._enter(candidate)
        self._refresh_head(namespace)

    def active(self, namespace: str) -> int:
        """Slots the namespace holds (active Jobs and grants), for tests and metrics."""
        return self._occupied[namespace]

    # -- what the caller tells -------------------------------------------------------------------------

    def ask(self, key: Key, candidate: Candidate | None) -> tuple[Slot, list[Key]]:
        """Admission's answer for a download that wants a slot for `candidate`'s Job (None: it wants none, and
        gives back what it held): its slot or its place, and the other downloads granted a slot meanwhile."""
        if candidate is None:
            return None, self.pump() if self.withdraw(key) else []
        if self.grant(key) == candidate.job:
            return Granted(self.launched(key)), []
        self.offer(candidate)
        granted = self.pump()
        if key in granted:
            return Granted(), [k for k in granted if k != key]
        return Waiting(self.position(key) or 1), granted

    def offer(self, candidate: Candidate) -> None:
        """The download waits for a slot (again, or with a new priority or run): O(log n)."""
        key = candidate.key
        if self._candidates.get(key) == candidate:
            return
        self.withdraw(key)
        self._candidates[key] = candidate
        self._enter(candidate)
        self._per_namespace.setdefault(candidate.namespace, SortedList()).add(candidate)
        self._refresh_head(candidate.namespace)

    def withdraw(self, key: Key) -> bool:
        """The download no longer waits (it has its Job, finished, was suspended or deleted), and gives back a slot
        it was granted and has not used. True when it was waiting or held a slot."""
        candidate = self._candidates.pop(key, None)
        if candidate is not None:
            self._waiting.remove(self._entries.pop(key))
            queue = self._per_namespace[candidate.namespace]
            queue.remove(candidate)
            if not queue:
                del self._per_namespace[candidate.namespace]
            self._refresh_head(candidate.namespace)
        job = self._grants.pop(key, None)
        self._launched.discard(key)
        if job is not None:
            del self._granted_jobs[(key.namespace, job)]
            self._occupy(key.namespace, -1)
        return candidate is not None or job is not None

    def observe_job(self, namespace: str, name: str, active: bool, gone: bool) -> None:
        """A watch event of a worker Job (one a download controls)."""
        job = (namespace, name)
        holder = self._granted_jobs.pop(job, None)
        if holder is not None:
            del self._grants[holder]  # its slot is the Job's now
            self._launched.discard(holder)
            self._occupy(namespace, -1)
        was = self._jobs.pop(job, False)
        if not gone:
            self._jobs[job] = active
        now = active and not gone
        if was != now:
            self._occupy(namespace, 1 if now else -1)

    def pump(self) -> list[Key]:
        """Grant every slot there is room for, in queue order; the downloads granted one (O(log n) each)."""
        granted = []
        while self._heads and self._total < self.max_active:
            head = self._heads[0][-1]
            self.withdraw(head.key)
            self._turn += 1
            self._served[head.namespace] = self._turn
            self._grants[head.key] = head.job
            self._granted_jobs[(head.namespace, head.job)] = head.key
            self._occupy(head.namespace, 1)
            granted.append(head.key)
        return granted

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _enter(self, candidate: Candidate) -> None:
        entry = (-self.effective_priority(candidate), candidate)
        self._entries[candidate.key] = entry
        self._waiting.add(entry)

    def _occupy(self, namespace: str, delta: int) -> None:
        before = self._occupied[namespace]
        after = before + delta
        if after:
            self._occupied[namespace] = after
        else:
            del self._occupied[namespace]
        self._total += min(after, self.cap) - min(before, self.cap)
        self._refresh_head(namespace)

    def _refresh_head(self, namespace: str) -> None:
        """Keep the namespace's first waiting download among the heads exactly while the namespace has room."""
        old = self._head_of.pop(namespace, None)
        if old is not None:
            self._heads.remove(old)
        queue = self._per_namespace.get(namespace)
        if queue and self._occupied[namespace] < self.cap:
            first = queue[0]
            head = (-self.effective_priority(first), self._served.get(namespace, 0), first.sort_key[1], first)
            self._head_of[namespace] = head
            self._heads.add(head)


def seeded(
    max_active: int,
    max_active_per_namespace: int,
    jobs: Iterable[tuple[str, str, bool]],
    waiting: Iterable[Candidate],
    default_ceiling: int = MAX_PRIORITY,
    ceilings: Mapping[str, int] | None = None,
) -> Admission:
    """The admission state after a (re)start, from the caches: every worker Job (namespace, name, active),
    every download that waits and the namespaces' ceilings. Filled before the first grant, so that the Jobs still
    running count and the queue order holds from the first admission on."""
    admission = Admission(max_active, max_active_per_namespace, default_ceiling)
    for namespace, ceiling in (ceilings or {}).items():
        admission.set_ceiling(namespace, ceiling)
    for namespace, name, active in jobs:
        admission.observe_job(namespace, name, active, gone=False)
    for candidate in waiting:
        admission.offer(candidate)
    return admission
