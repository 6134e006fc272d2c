"""One browser's view of the live feed: its filter, its queue, and the lines
dropped so that it keeps up instead of falling behind.

A browser may be slower than the mesh (a busy laptop, a background tab, a
filter that passes 10,000 lines/s). log.io and frontail keep sending, and
the page falls minutes behind. Here every line a session takes waits in a
bounded queue, and a line is dropped (and counted) instead of sent when

- it has waited ``max_lag`` seconds (the browser has not acknowledged the
  batches it already has: it acknowledges a batch once it has rendered it,
  and a session never has more than ``INFLIGHT`` unacknowledged batches), or
- the session's rate limit (``rate`` lines/s) would be exceeded for longer
  than ``max_lag`` (the queue holds at most ``rate * max_lag`` lines).

The next batch carries the count of lines dropped since the last one, and the
page shows "N lines dropped to keep up". So what the page shows is never more
than about ``max_lag`` behind, whatever the rate.

A session of an account limited to some environments (``helios.web.auth``)
has them in ``allowed``; every filter it gets, the first one included, goes
through ``restricted``, which makes the filter name only allowed
environments. The feed hands a session only what its filter's matcher
passes, so such a session never holds a line of another environment,
whatever its browser sends.

Threads: the feed thread dispatches lines and takes batches; socket.io
handler threads add and remove sessions, change filters and acknowledge
batches. ``Hub.lock`` guards the set of sessions. Only the feed thread
touches a session's queue: a new filter is left in ``wanted`` (one atomic
assignment) and the feed thread switches to it before its next look at the
session. The in-flight count has its own lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

from helios.errors import FilterError
from helios.web.filters import Filter
from helios.web.lines import Line

INFLIGHT = 2  # unacknowledged batches a session may have; more waits (and may drop)


@dataclass
class Batch:
    rows: list
    dropped: int


@dataclass
class Session:
    sid: str
    rate: int
    max_lag: float
    filter: Filter = field(default_factory=Filter)
    allowed: frozenset[str] | None = None  # environments this session may see; None: all
    login: str = ""  # the login that opened it (helios.web.auth), to close it at logout
    wanted: Filter | None = None  # the filter the browser asked for last
    match: Callable[[Line], bool] | None = None
    queue: deque = field(default_factory=deque)  # (arrival, Line)
    dropped_pending: int = 0   # dropped since the last batch sent
    dropped_total: int = 0
    sent_lines: int = 0
    sent_batches: int = 0
    acked_batches: int = 0
    tokens: float = 0.0
    last_refill: float | None = None
    _ack_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def capacity(self) -> int:
        return max(1, int(self.rate * self.max_lag))

    @property
    def inflight(self) -> int:
        return self.sent_batches - self.acked_batches

    def __post_init__(self) -> None:
        self.filter = restricted(self.filter, self.allowed)
        self.wanted = self.filter
        self.match = self.filter.matcher()

    def apply_filter(self) -> None:
        """Feed thread: switch to a new filter, if one came; lines queued
        under the old one are not what the page wants any more."""
        f = self.wanted
        if f is not self.filter:
            self.filter, self.match = f, f.matcher()
            self.queue.clear()

    def offer(self, lines: list[Line], now: float) -> None:
        self.apply_filter()
        match, queue = self.match, self.queue
        for line in lines:
            if match(line):
                queue.append((now, line))
        over = len(queue) - self.capacity
        if over > 0:
            for _ in range(over):
                queue.popleft()
            self.drop(over)

    def drop(self, n: int) -> None:
        self.dropped_pending += n
        self.dropped_total += n

    def take(self, now: float, max_rows: int) -> Batch | None:
        """The next batch to send, or None (nothing to send, or the browser
        still has ``INFLIGHT`` batches to render)."""
        self.apply_filter()
        queue, oldest = self.queue, now - self.max_lag
        stale = 0
        while queue and queue[0][0] < oldest:
            queue.popleft()
            stale += 1
        if stale:
            self.drop(stale)
        if self.inflight >= INFLIGHT:
            return None
        if self.last_refill is None:
            self.tokens = float(min(self.rate, max_rows))
        else:
            self.tokens = min(float(self.rate), self.tokens + self.rate * (now - self.last_refill))
        self.last_refill = now
        n = min(len(queue), int(self.tokens), max_rows)
        if n == 0 and not self.dropped_pending:
            return None
        rows = [queue.popleft()[1].row() for _ in range(n)]
        self.tokens -= n
        batch = Batch(rows, self.dropped_pending)
        self.dropped_pending = 0
        self.sent_lines += n
        with self._ack_lock:
            self.sent_batches += 1
        return batch

    def acked(self) -> None:
        with self._ack_lock:
            if self.acked_batches < self.sent_batches:
                self.acked_batches += 1

    def stats(self) -> dict:
        return {"sent": self.sent_lines, "dropped": self.dropped_total, "queued": len(self.queue),
                "inflight": self.inflight, "filter": self.filter.describe()}


class Hub:
    """Every connected browser's session; what the feed needs to serve them."""

    def __init__(self, rate: int, max_lag: float) -> None:
        self.rate = rate
        self.max_lag = max_lag
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.version = 0  # bumped when the set of wanted topics may have changed

    def add(self, sid: str, allowed: frozenset[str] | None = None, login: str = "") -> Session:
        s = Session(sid, self.rate, self.max_lag, allowed=allowed, login=login)
        with self.lock:
            self.sessions[sid] = s
            self.version += 1
        return s

    def remove(self, sid: str) -> None:
        with self.lock:
            if self.sessions.pop(sid, None) is not None:
                self.version += 1

    def set_filter(self, sid: str, f: Filter) -> bool:
        """Give a session a new filter (restricted to its environments: raises
        FilterError if it asks only for others). False if there is no such session."""
        with self.lock:
            s = self.sessions.get(sid)
            if s is None:
                return False
            s.wanted = restricted(f, s.allowed)
            self.version += 1
        return True

    def get(self, sid: str) -> Session | None:
        with self.lock:
            return self.sessions.get(sid)

    def snapshot(self) -> list[Session]:
        with self.lock:
            return list(self.sessions.values())

    def prefixes(self) -> set[bytes]:
        """Every live topic prefix some session needs (none: nobody watches)."""
        out: set[bytes] = set()
        for s in self.snapshot():
            out.update(s.wanted.prefixes())
        if b"" in out:
            return {b""}
        return out

    def drop(self, lines: list[Line]) -> None:
        """Lines no page gets (they came too late): each page whose filter
        passes them is told they were dropped."""
        for s in self.snapshot():
            s.apply_filter()
            match = s.match
            n = sum(1 for line in lines if match(line))
            if n:
                s.drop(n)

    def dispatch(self, lines: list[Line], now: float) -> None:
        if lines:
            for s in self.snapshot():
                s.offer(lines, now)


def restricted(f: Filter, allowed: frozenset[str] | None) -> Filter:
    """``f`` for a session that may see only ``allowed`` environments (None:
    all): a filter naming no environment gets every allowed one; one naming
    an environment not allowed is refused (FilterError), so the page says so
    instead of silently showing less than asked."""
    if allowed is None:
        return f
    if not f.environments:
        return replace(f, environments=allowed)
    others = f.environments - allowed
    if others:
        raise FilterError(f"environment: you may not see {', '.join(sorted(others))} "
                          f"(you may see {', '.join(sorted(allowed))})")
    return f
