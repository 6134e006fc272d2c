"""``helios graphite``: live event counts, written to carbon every interval.

It subscribes to every buck (``helios.live.feed``: each event counted once),
counts events per environment, app, severity and host, and at the end of
each interval writes one data point per series in carbon's plaintext
protocol, ``PATH VALUE TIMESTAMP\\n``::

    PREFIX.events.ENVIRONMENT.APP.SEVERITY.HOST  COUNT  INTERVAL_START

Graphite sums and groups by wildcards, so one series per combination is
enough: ``sumSeries(helios.events.prod.*.err.*)`` is every error in prod,
``sumSeries(helios.events.prod.sshd.*.*)`` everything sshd said.

- Intervals are aligned to the clock (multiples of ``interval`` seconds since
  the epoch) and stamped with their start, and an event counts in the
  interval in which it arrived. Make ``interval`` the finest resolution of
  carbon's storage schema for ``PREFIX.*``: carbon keeps the last value
  written for a slot, so a coarser schema would keep one interval's count in
  place of their sum (or give carbon an aggregation rule that sums).
- A series that had events is written as 0 in the intervals after, until it
  has been quiet for ``forget_after`` intervals, so that graphs show zeros,
  not gaps, and sums over time stay right.
- Names become path components: every character but ``A-Z a-z 0-9 _ -`` turns
  into ``_`` (dots would split the path), an empty name is ``_``, severity is
  its syslog name or ``unknown``.
- The bridge's own health, per interval: ``PREFIX.bridge.events`` (counted),
  ``PREFIX.bridge.dropped`` (events the bucks dropped because the bridge fell
  behind), ``PREFIX.bridge.series``, ``PREFIX.bridge.buffered`` (lines
  waiting for carbon).
- When carbon cannot be reached, lines wait in a buffer of ``max_buffer``
  lines (oldest dropped first, counted and logged) and go with the next
  successful connection; a send never waits more than ``SEND_TIMEOUT``.
- On SIGTERM or Ctrl-C the interval in progress is written too, with what it
  counted so far.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections import Counter, deque

from helios.live.feed import Feed
from helios.model import severity_name

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def component(name: str) -> str:
    """A name as one graphite path component."""
    return _UNSAFE.sub("_", name) or "_"


def series(environment: str, app: str, severity: int | None, host: str) -> str:
    sev = "unknown" if severity is None else severity_name(severity)
    return ".".join((component(environment), component(app), sev, component(host)))


class Carbon:
    """A plaintext-protocol connection to carbon with a bounded buffer."""

    def __init__(self, address: str, max_buffer: int) -> None:
        host, _, port = address.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.buffer: deque[bytes] = deque(maxlen=max_buffer)
        self.sock: socket.socket | None = None
        self.lost = 0
        self.sent = 0
        self._down_logged = False

    def send(self, lines: list[bytes]) -> bool:
        """Queue the lines and send everything queued; False if carbon could not take it now."""
        room = self.buffer.maxlen - len(self.buffer)
        if len(lines) > room:
            self.lost += len(lines) - room
            log.error("Carbon at %s:%d is unreachable and the buffer is full: %d metric lines dropped.",
                      *self.address, len(lines) - room)
        self.buffer.extend(lines)
        if not self.buffer:
            return True
        try:
            if self.sock is None:
                self.sock = socket.create_connection(self.address, timeout=SEND_TIMEOUT)
            data = b"".join(self.buffer)
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            if not self._down_logged:
                log.warning("Cannot send to carbon at %s:%d (%s); keeping %d lines to send later.",
                            *self.address, exc, len(self.buffer))
                self._down_logged = True
            return False
        if self._down_logged:
            log.info("Carbon at %s:%d takes metrics again.", *self.address)
            self._down_logged = False
        self.sent += len(self.buffer)
        self.buffer.clear()
        return True

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class Bridge:
    def __init__(self, feed: Feed, cfg, *, connect_timeout: float = 2.0) -> None:
        self.feed = feed
        self.cfg = cfg
        self.prefix = cfg.prefix
        self.interval = cfg.interval
        self.carbon = Carbon(cfg.carbon, cfg.max_buffer)
        self.connect_timeout = connect_timeout
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.last_seen: dict[str, int] = {}  # series -> last interval start with events
        self.total = 0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        feed, interval = self.feed, self.interval
        log.info("Graphite bridge counts live events from %s every %d s into carbon at %s:%d as %s.events.*",
                 ", ".join(feed.endpoints), interval, *self.carbon.address, self.prefix)
        try:
            if feed.wait_connected(self.connect_timeout) < len(feed.endpoints):
                log.warning("Connected to %d of %d bucks; still trying %s.", len(feed.connected),
                            len(feed.endpoints), ", ".join(feed.unreachable()))
            start = int(time.time()) // interval * interval
            dropped_before = feed.dropped
            while not self.stopping.is_set():
                left = start + interval - time.time()
                if left <= 0:
                    dropped = feed.dropped
                    self.flush(start, dropped - dropped_before)
                    dropped_before = dropped
                    start = int(time.time()) // interval * interval
                    continue
                self.count(feed.poll(min(left, 0.5)))
            self.flush(start, feed.dropped - dropped_before)
        finally:
            feed.close()
            self.carbon.close()
            log.info("Graphite bridge stopped: %d events counted, %d metric lines sent, %d lost.",
                     self.total, self.carbon.sent, self.carbon.lost)

    def count(self, events) -> None:
        counts = self.counts
        for e in events:
            key = series(e.environment, e.app, e.severity, e.host)
            if key not in counts and len(counts) >= self.cfg.max_series:
                key = "other"
            counts[key] += 1
        self.total += len(events)

    def lines(self, start: int, dropped: int) -> list[bytes]:
        """The data points of the interval that began at ``start``."""
        events = self.prefix + ".events."
        out = []
        for key, n in self.counts.items():
            self.last_seen[key] = start
            out.append(f"{events}{key} {n} {start}\n".encode())
        horizon = start - self.cfg.forget_after * self.interval
        for key, seen in list(self.last_seen.items()):
            if seen < horizon:
                del self.last_seen[key]
            elif key not in self.counts:
                out.append(f"{events}{key} 0 {start}\n".encode())
        bridge = self.prefix + ".bridge."
        for name, value in (("events", sum(self.counts.values())), ("dropped", dropped),
                            ("series", len(self.counts)), ("buffered", len(self.carbon.buffer))):
            out.append(f"{bridge}{name} {value} {start}\n".encode())
        return out

    def flush(self, start: int, dropped: int) -> None:
        lines = self.lines(start, dropped)
        self.counts = Counter()
        self.carbon.send(lines)
