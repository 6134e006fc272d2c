"""Gathering queued windows into one index load.

The porter and history builds read windows faster than the index loads
them when they are behind. FTS5 indexes one big transaction for less CPU per
event than several small ones (100,000 events in one took about 20 % less
than two of 50,000, measured while building this), so whatever is queued
behind a load when it starts goes in with it, up to ``TOGETHER`` events. A
reader that is not ahead still sees each window loaded as soon as it is read.
"""

from __future__ import annotations

import queue
from typing import Callable, TypeVar

__all__ = ["TOGETHER", "gather"]

TOGETHER = 200_000      # events per load worth gathering (two loader processes: 100,000 each)

T = TypeVar("T")


def gather(first: T, q: queue.Queue, size: Callable[[T], int], *, limit: int = TOGETHER,
           last: Callable[[T], bool] = lambda item: False) -> list[T]:
    """``first`` and the items ``q`` holds right now behind it, until their
    sizes reach ``limit``, the queue is empty, or an item for which ``last``
    is true (a marker, or one that cannot join: it ends the list)."""
    items = [first]
    total = 0 if last(first) else size(first)
    while total < limit and not last(items[-1]):
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        items.append(item)
        if not last(item):
            total += size(item)
    return items
