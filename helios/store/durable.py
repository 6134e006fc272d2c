"""Every fsync Helios makes goes through ``fsync`` here, so that its latency
can be watched (``helios.metrics`` observes it as ``helios_fsync_seconds``).

An fsync costs milliseconds, so timing it costs nothing that matters; with
nobody watching (no metrics endpoint), it is a plain ``os.fsync``.
"""

from __future__ import annotations

import os
import time
from typing import Callable

# Called with the seconds each fsync took. A process runs one service, so one
# list serves it; ``helios.metrics`` adds to it when it serves an endpoint.
observers: list[Callable[[float], None]] = []


def fsync(fd: int) -> None:
    if not observers:
        os.fsync(fd)
        return
    start = time.perf_counter()
    try:
        os.fsync(fd)
    finally:
        took = time.perf_counter() - start
        for observe in observers:
            observe(took)
