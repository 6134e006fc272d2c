"""The feed: one thread that reads the live feed of every buck and serves
every browser session.

It owns all its ZeroMQ sockets (they are not thread-safe): one SUB socket per
buck, so each buck's state and counts are its own, and a monitor socket per
SUB that tells when the connection to a buck comes up or goes down. ZeroMQ
reconnects by itself to a buck that went away (every second at most) and
re-sends the subscriptions, so a buck restart needs nothing from here except
showing it: the page gets each buck's state once a second.

Per turn: receive what arrived (a bounded number of messages per socket, so
one busy buck cannot starve the others), drop copies (``Dedup``) and stale
re-sends (``max_age``), count lines that come later than ``max_delay`` as
dropped for the pages that would have shown them (unless they were read
before this process subscribed to their topic: a spool re-send of lines
from before a page was opened is no line that page failed to keep up with), hold lines briefly to merge the bucks' streams in time
order (``Reorder``), hand the due lines to every session, and every
``flush_interval`` send each session its next batch. Nothing here blocks on a
browser: sending is a queue put, and a slow browser only makes its own
session drop lines (see ``sessions``).

Subscriptions follow the sessions: with no browser connected the web process
subscribes to nothing, so the bucks publish nothing for it.
"""

from __future__ import annotations

import functools
import logging
import operator
import threading
import time
from collections import Counter
from typing import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

from helios.errors import FrameError
from helios.model import now_ns
from helios.web.dedup import Dedup
from helios.web.lines import Line
from helios.web.reorder import Reorder
from helios.web.sessions import Batch, Hub, Session
from helios.wire import live
from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

DRAIN = 64            # messages taken from one buck per turn
MAX_BATCH_ROWS = 5000  # lines in one batch to a browser
STATUS_INTERVAL = 1.0

_STATES = {
    zmq.EVENT_CONNECTED: "connected",
    zmq.EVENT_DISCONNECTED: "down",
    zmq.EVENT_CONNECT_DELAYED: "connecting",
    zmq.EVENT_CONNECT_RETRIED: "down",
    zmq.EVENT_CLOSED: "down",
}
MONITOR_EVENTS = functools.reduce(operator.or_, _STATES)


class BuckLink:
    """One buck's SUB socket, its monitor, and what the page shows of it."""

    def __init__(self, endpoint: str, sock: zmq.Socket, monitor: zmq.Socket) -> None:
        self.endpoint = endpoint
        self.sock = sock
        self.monitor = monitor  # attached before the socket connected: no event missed
        self.state = "connecting"
        self.since = time.time()
        self.messages = 0
        self.events = 0
        self.bad = 0
        self.missed = 0  # events this feed missed (ZeroMQ dropped them for us), from live.Meta
        self.last_event = 0.0
        self.gaps = live.Gaps()

    def on_monitor(self) -> bool:
        """Read one monitor event; True if the state changed."""
        try:
            ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
        except zmq.Again:
            return False
        state = _STATES.get(ev["event"])
        if state is None or state == self.state:
            return False
        if state == "connecting" and self.state == "down":
            return False  # still down: a retry is under way
        old, self.state, self.since = self.state, state, time.time()
        if state == "connected":
            log.info("Connected to the live feed of the buck at %s.", self.endpoint)
        elif old == "connected":
            log.warning("Lost the live feed of the buck at %s; reconnecting.", self.endpoint)
        return True

    def status(self) -> dict:
        return {"endpoint": self.endpoint, "state": self.state, "since": self.since,
                "messages": self.messages, "events": self.events, "bad": self.bad,
                "missed": self.missed, "last_event": self.last_event}

SUBSCRIBE_SETTLE = 2.0  # seconds for a new subscription to reach every buck (see watched_since)


class Feed:
    """See the module docstring. ``send(session, batch)`` delivers a batch to
    a browser; ``broadcast(status)`` tells every browser the state of things."""

    def __init__(self, cfg, hub: Hub, send: Callable[[Session, Batch], None],
                 broadcast: Callable[[dict], None], factory: SocketFactory | None = None) -> None:
        self.cfg = cfg
        self.hub = hub
        self.send = send
        self.broadcast = broadcast
        self.factory = factory or SocketFactory()
        self.dedup = Dedup(cfg.dedup_window, cfg.dedup_max)
        self.reorder = Reorder(cfg.reorder_delay)
        self.counts: Counter[str] = Counter()
        self.stopping = threading.Event()
        self.links: list[BuckLink] = []
        self._status_lock = threading.Lock()
        self._status: dict = {"bucks": [], "counts": {}}
        self._bad_logged = 0.0
        # Wall time (ns) this process last subscribed to a topic more: a late
        # line read before it was no page's line yet (see _receive).
        self.watched_since = now_ns()
        self.thread = threading.Thread(target=self.run, name="live-feed", daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def status(self) -> dict:
        """The latest status (for /api/status and new pages); thread-safe."""
        with self._status_lock:
            return self._status

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # a dead feed is a dead live tail: say so loudly
            log.exception("The live feed thread died; the page will show no new lines.")
            raise

    def _run(self) -> None:
        self.links = [BuckLink(ep, *self.factory.make_monitored("subscriber", ep, MONITOR_EVENTS))
                      for ep in self.cfg.bucks_pub]
        poller = zmq.Poller()
        by_sock: dict[zmq.Socket, BuckLink] = {}
        for link in self.links:
            poller.register(link.sock, zmq.POLLIN)
            poller.register(link.monitor, zmq.POLLIN)
            by_sock[link.sock] = by_sock[link.monitor] = link
        subscribed: set[bytes] = set()
        seen_version = -1
        next_flush = next_status = 0.0
        self._publish_status()
        self.ready.set()
        try:
            while not self.stopping.is_set():
                if self.hub.version != seen_version:
                    seen_version = self.hub.version
                    subscribed = self._subscribe(subscribed, set(live.subscriptions(self.hub.prefixes())))
                now = time.monotonic()
                due = self.reorder.next_due()
                wait = min(next_flush, next_status, due if due is not None else now + 0.1) - now
                for sock, _ in poller.poll(max(0, min(100, int(wait * 1000) + 1))):
                    link = by_sock[sock]
                    if sock is link.monitor:
                        while link.on_monitor():
                            next_status = 0.0  # show the change at once
                    else:
                        self._receive(link)
                now = time.monotonic()
                self.hub.dispatch(self.reorder.release(now), now)
                if now >= next_flush:
                    self._flush(now)
                    next_flush = now + self.cfg.flush_interval
                if now >= next_status:
                    self.dedup.expire(now)
                    self.broadcast(self._publish_status())
                    next_status = now + STATUS_INTERVAL
        finally:
            for link in self.links:
                link.sock.disable_monitor()
                link.monitor.close(linger=0)
                link.sock.close(linger=0)

    def _subscribe(self, current: set[bytes], wanted: set[bytes]) -> set[bytes]:
        if wanted - current:
            # The bucks hear of it a moment later; what they read meanwhile comes only by re-send.
            self.watched_since = now_ns() + int(SUBSCRIBE_SETTLE * 1e9)
        for link in self.links:
            for p in wanted - current:
                link.sock.setsockopt(zmq.SUBSCRIBE, p)
            for p in current - wanted:
                link.sock.setsockopt(zmq.UNSUBSCRIBE, p)
        if wanted != current:
            # A topic no longer subscribed to (no page wants it) may be read by
            # others meanwhile (helios subscribe, check): its sequence moves on
            # without us, which is no gap of any page. Only topics under a
            # prefix held throughout keep their place.
            kept = tuple(current & wanted)
            for link in self.links:
                link.gaps.forget(lambda t: t.startswith(kept))
            shown = ", ".join(repr(p.replace(live.SEP, b"/").replace(live.WHOLE, b"(whole batches) ")
                                   .decode(errors="replace")) for p in sorted(wanted))
            log.info("Live topics subscribed: %s.", shown or "none (no browser is watching)")
        return wanted

    def _receive(self, link: BuckLink) -> None:
        now = time.monotonic()
        dedup, max_chars, fresh = self.dedup, self.cfg.max_line_chars, []
        # Not live: first read longer ago than max_age, or than the dedup
        # remembers (it could be a copy we no longer recognise).
        limit = dedup.horizon(now)
        if self.cfg.max_age:
            limit = min(limit, self.cfg.max_age)
        wall = now_ns()
        oldest = wall - int(limit * 1e9)
        # Live but late: the mesh (or this process) is behind. Shown late, such a
        # line would keep the page behind too; it is counted as dropped instead.
        late_before = wall - int(self.cfg.max_delay * 1e9) if self.cfg.max_delay else None
        # ... unless it was read before a page asked for its topic: then it is
        # a re-send (a spool window sent again soon after a page was opened,
        # as with the demo's 10 s windows), not a line a page fell behind on.
        unwatched_before = self.watched_since
        late = []
        for _ in range(DRAIN):
            try:
                frames = link.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            link.messages += 1
            try:
                events, meta = live.read_message(frames)
            except FrameError as exc:
                link.bad += 1
                self.counts["bad_messages"] += 1
                self._log_bad(link, exc)
                continue
            link.events += len(events)
            if meta is not None:
                # Missed on this buck's feed; the other buck's copy may still have come.
                link.missed += link.gaps.see(frames[0], meta, len(events))
            self.counts["received"] += len(events)
            for e in events:
                if not dedup.first_time(e.id, now):
                    continue
                if e.received < oldest:
                    self.counts["too_old"] += 1
                    continue
                if late_before is not None and e.received < late_before:
                    if e.received < unwatched_before:
                        self.counts["before_watched"] += 1
                    else:
                        late.append(Line.of(e, max_chars))
                    continue
                fresh.append(Line.of(e, max_chars))
        if fresh or late:
            link.last_event = time.time()
            self.counts["unique"] += len(fresh) + len(late)
        if fresh:
            self.reorder.add(fresh, now)
        if late:
            self.counts["late"] += len(late)
            self.hub.drop(late)

    def _log_bad(self, link: BuckLink, exc: FrameError) -> None:
        now = time.monotonic()
        if now - self._bad_logged >= 1.0:
            self._bad_logged = now
            log.warning("Dropped a bad live message from %s (%d so far): %s.", link.endpoint, link.bad, exc)

    def _flush(self, now: float) -> None:
        for s in self.hub.snapshot():
            batch = s.take(now, MAX_BATCH_ROWS)
            if batch is not None:
                self.counts["sent"] += len(batch.rows)
                self.counts["dropped"] += batch.dropped
                self.send(s, batch)

    def _publish_status(self) -> dict:
        counts = dict(self.counts, duplicates=self.dedup.duplicates, held=len(self.reorder),
                      sessions=len(self.hub.sessions))
        status = {"bucks": [link.status() for link in self.links], "counts": counts, "time": time.time()}
        with self._status_lock:
            self._status = status
        return status
