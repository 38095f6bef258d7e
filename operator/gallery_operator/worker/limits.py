"""The run's limits (spec.limits): items and bytes stored, bytes in flight, and how long one item may take.
Crossing one stops the run, once, with the reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gallery_operator.api.spec import Limits as LimitsSpec
from gallery_operator.api.spec import quantity_bytes


class Limits:
    """The counts a limit is checked against; ``on_stop`` is told the reason when the run stops."""

    def __init__(self, spec: LimitsSpec, on_stop: Callable[[str], None]) -> None:
        self.spec = spec
        self.on_stop = on_stop
        self.max_bytes = quantity_bytes(spec.max_bytes) if spec.max_bytes else None
        self.lock = threading.Lock()
        self.items_done = 0
        self.bytes_done = 0
        self.bytes_in_flight = 0  # of files still being written
        self.stop_reason: str | None = None

    def stored(self, size: int, in_flight: int = 0) -> None:
        """An item of ``size`` bytes is stored; the ``in_flight`` bytes it had counted leave that count in the same
        step, so that no other item's check sees them in neither count (and passes maxBytes in that window)."""
        with self.lock:
            self.items_done += 1
            self.bytes_done += size
            self.bytes_in_flight -= in_flight
        self._check()

    def skipped(self) -> None:
        """An item found stored earlier: it counts as an item, its bytes not again."""
        with self.lock:
            self.items_done += 1
        self._check()

    def count(self, size: int) -> bool:
        """Bytes of an unfinished file arrived (or, negative, left the count); True when the run must stop."""
        with self.lock:
            self.bytes_in_flight += size
            total = self.bytes_done + self.bytes_in_flight
        if self.max_bytes and total > self.max_bytes:
            self.stop(f"limits.maxBytes reached ({self.max_bytes} bytes; the file in progress was not kept)")
        return self.should_stop()

    def overdue(self, started: float) -> str | None:
        """Why an item downloading since ``started`` (time.monotonic) must stop, or None; stops the run when so."""
        seconds = self.spec.max_item_seconds
        if time.monotonic() - started <= seconds:
            return None
        why = f"limits.maxItemSeconds reached: an item took longer than {seconds}s (an endless stream?); not kept"
        self.stop(why)  # like the other limits, it ends the run (the item in progress is not kept)
        return why

    def room(self) -> int | None:
        """How many more items may be stored or skipped before maxItems (None: no item limit)."""
        if not self.spec.max_items:
            return None
        with self.lock:
            return max(0, self.spec.max_items - self.items_done)

    def should_stop(self) -> bool:
        return self.stop_reason is not None

    def _check(self) -> None:
        if self.spec.max_items and self.items_done >= self.spec.max_items:
            self.stop(f"limits.maxItems reached ({self.spec.max_items} items)")
        elif self.max_bytes and self.bytes_done >= self.max_bytes:
            self.stop(f"limits.maxBytes reached ({self.bytes_done} bytes)")

    def stop(self, reason: str) -> None:
        """The run stops for ``reason`` (the first reason only)."""
        with self.lock:
            if self.stop_reason is not None:
                return
            self.stop_reason = reason
        self.on_stop(reason)
