"""The live feed of every buck, as one stream of new, matching events.

One XSUB socket per buck (``listener`` role): it subscribes with the
filter's prefixes, and ZeroMQ reconnects it by itself when a buck goes away
and comes back. ``poll`` reads what arrived from every buck, drops what the
filter does not want (prefixes can be wider than the filter), the second copy
of each event (``Dedup``) and events that are not live any more
(``dedup.is_late``), and returns the rest in arrival order.

It also counts what it missed: each message's ``Meta`` feeds ``live.Gaps``,
and once a second, when that count has grown, the cumulative counts are sent
upstream to every buck as a drop report (``live.report``), so that the buck
shows them in its stats.json. That is why the socket is an XSUB: a SUB
cannot send.

Which bucks are connected is known from each socket's monitor (ZMTP handshake
done, or disconnected), for ``wait_connected`` (the check's UNKNOWN when no
buck is reachable) and for the status of the tools.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter

import zmq
from zmq.utils.monitor import recv_monitor_message

from helios.errors import FrameError, ServiceError
from helios.live.dedup import Dedup, is_late
from helios.live.filter import Filter
from helios.model import Event
from helios.wire import live
from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

DRAIN = 512            # messages read from one buck per poll before the next buck's turn
REPORT_INTERVAL = 1.0  # seconds between drop reports upstream
QUIET_MS = 2           # a burst of messages is over when none came for this long...
BURST_MAX = 0.05       # ... or after this many seconds
_UP = getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", zmq.EVENT_CONNECTED)


class Feed:
    def __init__(self, endpoints: list[str], flt: Filter | None = None, *, dedup_window: float = 10.0,
                 dedup_max: int = 1_000_000, rcvhwm: int = 10_000,
                 factory: SocketFactory | None = None) -> None:
        if not endpoints:
            raise ServiceError("no buck live feed endpoint to connect to")
        self.endpoints = list(endpoints)
        self.filter = flt or Filter()
        self.window = dedup_window
        self.dedup = Dedup(dedup_window, dedup_max)
        self.gaps = live.Gaps()
        self.counts: Counter[str] = Counter()
        self.subscriber_id = os.urandom(8).hex().encode()
        self._reported = 0
        self._next_report = time.monotonic() + REPORT_INTERVAL
        self._bad_logged = 0.0
        self._pending: list[Event] = []  # read while waiting for connections
        factory = factory or SocketFactory()
        self.sockets: list[zmq.Socket] = []
        self.monitors: dict[zmq.Socket, int] = {}  # monitor socket -> index of its buck
        self.connected: set[int] = set()
        self.poller = zmq.Poller()
        prefixes = live.subscriptions(self.filter.prefixes())
        try:
            for i, ep in enumerate(self.endpoints):
                sock, mon = factory.make_monitored("listener", ep, _UP | zmq.EVENT_DISCONNECTED, hwm=rcvhwm)
                self.sockets.append(sock)
                self.monitors[mon] = i
                # XSUB keeps its subscriptions and sends them again on every reconnect.
                for p in prefixes:
                    sock.send(b"\x01" + p)
                self.poller.register(sock, zmq.POLLIN)
                self.poller.register(mon, zmq.POLLIN)
        except BaseException:
            self.close()
            raise

    # --- connections ---

    def _read_monitors(self) -> None:
        for mon, i in self.monitors.items():
            while True:
                try:
                    event = recv_monitor_message(mon, zmq.NOBLOCK)["event"]
                except zmq.Again:
                    break
                if event == _UP:
                    if i not in self.connected:
                        log.info("Connected to the live feed of %s.", self.endpoints[i])
                    self.connected.add(i)
                elif event == zmq.EVENT_DISCONNECTED:
                    if i in self.connected:
                        log.warning("Lost the live feed of %s; reconnecting.", self.endpoints[i])
                    self.connected.discard(i)

    def wait_connected(self, timeout: float) -> int:
        """Wait until every buck is connected or ``timeout`` passes; returns
        how many are. Events that arrive meanwhile are kept for ``poll``."""
        deadline = time.monotonic() + timeout
        while True:
            self._read_monitors()
            remaining = deadline - time.monotonic()
            if len(self.connected) == len(self.sockets) or remaining <= 0:
                return len(self.connected)
            # poll() returns what was pending plus what came: keep it all for later.
            self._pending = self.poll(min(remaining, 0.05))

    def unreachable(self) -> list[str]:
        return [ep for i, ep in enumerate(self.endpoints) if i not in self.connected]

    # --- events ---

    def poll(self, timeout: float) -> list[Event]:
        """New matching events that arrived within ``timeout`` seconds.

        Returns once a burst is over: a buck publishes a stored batch as one
        message per topic, back to back, so after the first message this
        reads on until no more came for ``QUIET_MS`` (or ``BURST_MAX``
        passed), and a caller gets a batch's messages together."""
        out, self._pending = self._pending, []
        wait = 0 if out else max(0, int(timeout * 1000))
        burst_ends = None
        while True:
            ready = dict(self.poller.poll(wait))
            if not ready:
                break
            now_ns = time.time_ns()
            now = time.monotonic()
            got = 0
            for sock in self.sockets:
                if sock not in ready:
                    continue
                for _ in range(DRAIN):
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._take(frames, out, now, now_ns)
                    got += 1
            if any(m in ready for m in self.monitors):
                self._read_monitors()
            if got:
                burst_ends = burst_ends or now + BURST_MAX
            elif not out:
                break  # only connection news
            if burst_ends is not None and now >= burst_ends:
                break
            wait = QUIET_MS
        now = time.monotonic()
        if now >= self._next_report:
            self._report(now)
        return out

    def _take(self, frames: list[bytes], out: list[Event], now: float, now_ns: int) -> None:
        try:
            events, meta = live.read_message(frames)
        except FrameError as exc:
            self.counts["bad_messages"] += 1
            if now - self._bad_logged >= 1.0:
                self._bad_logged = now
                log.warning("Skipped a live message that cannot be read: %s.", exc)
            return
        self.counts["messages"] += 1
        if meta is not None:
            self.gaps.see(frames[0], meta, len(events))
        match, seen, window = self.filter.match, self.dedup.seen, self.window
        for e in events:
            if not match(e):
                self.counts["filtered"] += 1
            elif seen(e.id, now):
                self.counts["duplicates"] += 1
            elif is_late(e.received, window, now_ns):
                self.counts["late"] += 1
            else:
                out.append(e)
        self.counts["events"] += len(events)

    def _report(self, now: float) -> None:
        self._next_report = now + REPORT_INTERVAL
        total = self.gaps.total_events
        if total == self._reported:
            return
        frames = live.report(self.subscriber_id, self.gaps)
        for sock in self.sockets:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                pass  # that buck is away; the next report carries the same totals
        self._reported = total
        log.warning("The bucks dropped %d events for this subscriber so far (%s): it reads too slowly.",
                    total, ", ".join(f"{b} {n}" for b, n in sorted(self.gaps.by_buck().items())))

    @property
    def dropped(self) -> int:
        """Events the bucks dropped for this subscriber (some may have come
        from the other buck all the same)."""
        return self.gaps.total_events

    def close(self) -> None:
        for sock in self.sockets:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
        for mon in self.monitors:
            mon.close(linger=0)
        for sock in self.sockets:
            sock.close(linger=0)
        self.sockets, self.monitors = [], {}
