"""Drop the second copy of an event: every event reaches two bucks, and the
web process hears both.

The copies of one event arrive within milliseconds of each other (both bucks
publish as soon as they stored the batch), so a short window is enough: an
id is remembered for ``window`` seconds and at most ``max_ids`` ids are kept,
whichever is smaller. Memory stays bounded however fast events come; at the
price that, past ``max_ids`` per ``window``, a copy that arrives later than
``max_ids`` other events may be shown twice.
"""

from __future__ import annotations

from collections import deque


class Dedup:
    def __init__(self, window: float, max_ids: int) -> None:
        self.window = window
        self.max_ids = max_ids
        self._seen: set[bytes] = set()
        self._order: deque[tuple[float, bytes]] = deque()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, event_id: bytes, now: float) -> bool:
        """True the first time an id is seen within the window; False for a copy."""
        if event_id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(event_id)
        self._order.append((now, event_id))
        if len(self._order) > self.max_ids:
            self._seen.discard(self._order.popleft()[1])
        return True

    def horizon(self, now: float) -> float:
        """How many seconds back a copy is still recognised: the window, or
        less when ``max_ids`` ids arrived within it. An event first read
        longer ago than this may be a copy we forgot (a spool re-send), so
        the feed does not show it as live."""
        if len(self._order) >= self.max_ids:
            return max(0.0, min(self.window, now - self._order[0][0]))
        return self.window

    def expire(self, now: float) -> None:
        """Forget ids older than the window (called now and then, not per event)."""
        order, seen, oldest = self._order, self._seen, now - self.window
        while order and order[0][0] < oldest:
            seen.discard(order.popleft()[1])
