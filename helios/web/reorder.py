"""Merge the streams of several bucks in time order, within a short delay.

Each buck publishes in the order it stored batches, and two bucks interleave
differently, so lines reach the web process a little out of order. Every
line is held for at most ``delay`` seconds after it arrived; lines are
released in event-time order.

How: a heap by event time holds the lines, and a queue by arrival notes each
line's time. When a line has waited ``delay``, every line with an event time
up to its own is released with it (a later arrival with an earlier time is
put before it). So a line waits at most ``delay``, and lines that arrived
within ``delay`` of each other come out sorted. A line that arrives later
than that with an older time is released as soon as it has waited its turn:
out of order, but never held back and never lost.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Iterable

from helios.web.lines import Line


class Reorder:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._heap: list[tuple[int, int, Line]] = []
        self._arrivals: deque[tuple[float, int]] = deque()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, lines: Iterable[Line], now: float) -> None:
        heap, arrivals, seq = self._heap, self._arrivals, self._seq
        for line in lines:
            heapq.heappush(heap, (line.time, next(seq), line))
            arrivals.append((now, line.time))

    def release(self, now: float) -> list[Line]:
        """The lines due by ``now``, in event-time order."""
        arrivals, cutoff = self._arrivals, now - self.delay
        watermark = None
        while arrivals and arrivals[0][0] <= cutoff:
            t = arrivals.popleft()[1]
            if watermark is None or t > watermark:
                watermark = t
        if watermark is None:
            return []
        heap, out = self._heap, []
        while heap and heap[0][0] <= watermark:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_due(self) -> float | None:
        """Arrival time plus delay of the oldest line held, if any."""
        return self._arrivals[0][0] + self.delay if self._arrivals else None
