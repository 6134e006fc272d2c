"""Drop the second copy of an event, in bounded memory.

Every event reaches two bucks, so a subscriber of all bucks receives it
twice, usually milliseconds apart. Ids are kept in two generations of sets:
a new id goes into ``current``; every ``window`` seconds ``current`` becomes
``previous`` and the old ``previous`` is forgotten. An id is so remembered
for between ``window`` and twice ``window`` seconds, and memory holds at most
``max_ids`` ids: when ``current`` reaches half of that, it turns over early
(counted in ``early_turns``: the window is then shorter than asked).

A copy that arrives after its id was forgotten would be shown twice, so the
subscriber also skips events that Helios first read (``received``) more than
``window`` seconds ago: those are not live but re-sent (a tailer's spool
re-sends whole buckets after their boundary). See ``is_late``.
"""

from __future__ import annotations

import time


class Dedup:
    def __init__(self, window: float = 10.0, max_ids: int = 1_000_000) -> None:
        self.window = window
        self.max_ids = max(2, max_ids)
        self.current: set[bytes] = set()
        self.previous: set[bytes] = set()
        self.turned: float | None = None  # set by the first id seen
        self.early_turns = 0

    def seen(self, event_id: bytes, now: float | None = None) -> bool:
        """True if this id was seen within the window (a copy); else remember it."""
        now = time.monotonic() if now is None else now
        if self.turned is None:
            self.turned = now
        elif now - self.turned >= self.window:
            self.turn(now)
        if event_id in self.current or event_id in self.previous:
            return True
        if len(self.current) >= self.max_ids // 2:
            self.early_turns += 1
            self.turn(now)
        self.current.add(event_id)
        return False

    def turn(self, now: float) -> None:
        self.previous, self.current = self.current, set()
        self.turned = now

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)


def is_late(received_ns: int, window: float, now_ns: int | None = None) -> bool:
    """Whether an event first read at ``received_ns`` is older than the window."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return now_ns - received_ns > window * 1e9
