"""Memory still allocated after an action (tracemalloc): the in-process memory benchmarks' one measure."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def traced(action: Callable[[], object]) -> int:
    """Bytes still allocated after `action` ran, its result kept until counted."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = action()
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - base
        del kept
        return size
    finally:
        tracemalloc.stop()
