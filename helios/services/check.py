"""``helios check``: a Nagios / monitoring-plugins check on the live feed.

It subscribes to every buck for ``seconds``, counts the events that match
its filter (each event once, whichever buck it came from), and compares the
count with the warning and critical ranges (``helios.live.plugin``). It
prints one status line with perfdata and returns the state as its exit code:

    HELIOS OK - 3 events in 10 s (app=sshd severity<=err) | 'events'=3;10;50;0; 'dropped'=0;;;0; 'bucks'=2;;;0;2

UNKNOWN (3) when no buck is reachable (or for bad arguments, see the CLI):
a check that cannot look must not say OK. When only some bucks are reachable
the count is still right (each event reaches two bucks), and the line says
which were not. ``dropped`` counts events the bucks dropped because this
check read too slowly (the other buck's copy may still have come).

Counting starts once every buck is connected (or the connect timeout
passed), so the window is ``seconds`` of live events. Reading a past window
from the bucks' stored buckets awaits the bucks' query protocol.
"""

from __future__ import annotations

import logging
import threading
import time

from helios.live.feed import Feed
from helios.live.plugin import UNKNOWN, Range, perfdata, state, status_line

log = logging.getLogger(__name__)

SERVICE = "HELIOS"


class Check:
    def __init__(self, feed: Feed, seconds: float, warning: Range | None, critical: Range | None,
                 *, connect_timeout: float = 2.0, label: str = "events") -> None:
        self.feed = feed
        self.seconds = seconds
        self.warning = warning
        self.critical = critical
        self.connect_timeout = connect_timeout
        self.label = label
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> tuple[int, str]:
        """Returns (exit code, status line)."""
        feed = self.feed
        try:
            connected = feed.wait_connected(self.connect_timeout)
            total = len(feed.endpoints)
            if connected == 0:
                return UNKNOWN, status_line(
                    SERVICE, UNKNOWN, f"no buck reachable within {self.connect_timeout:g} s "
                    f"({', '.join(feed.endpoints)})")
            count = 0
            ends = time.monotonic() + self.seconds
            while not self.stopping.is_set():
                left = ends - time.monotonic()
                if left <= 0:
                    break
                count += len(feed.poll(left))
            if self.stopping.is_set():
                return UNKNOWN, status_line(SERVICE, UNKNOWN, "interrupted before the end of its window")
            code = state(count, self.warning, self.critical)
            text = f"{count} events in {self.seconds:g} s ({feed.filter.describe()})"
            missing = feed.unreachable()
            if missing:
                text += f"; not reachable: {', '.join(missing)}"
            perf = [
                perfdata(self.label, count, self.warning, self.critical, minimum=0),
                perfdata("dropped", feed.dropped, minimum=0),
                perfdata("bucks", len(feed.connected), minimum=0, maximum=total),
            ]
            return code, status_line(SERVICE, code, text, perf)
        finally:
            feed.close()
