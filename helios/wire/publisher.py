"""The buck's side of the live feed: an XPUB socket that knows who listens.

A buck decodes only what it must publish. Its XPUB socket passes up every
subscription and unsubscription (byte 1 or 0, then the topic prefix), so the
publisher keeps the set of prefixes that have at least one subscriber
(libzmq passes up the first subscription to a prefix and the last
unsubscription, also when a subscriber disconnects, so a set is exact). A
stored frame whose environment no prefix can match is not even decompressed:
with nobody watching, the live feed costs one set lookup per frame. A
subscriber to a whole environment (``live.WHOLE``) gets the stored frame
itself, not decoded: watching everything costs the buck one send per frame.
Only for subscribers that name an app is the frame decoded, its rows grouped
by topic (``helios.wire.live``), and the groups some prefix matches encoded
and sent.

A slow or stuck subscriber never slows ingest or other subscribers
-----------------------------------------------------------------
Sends never block: each subscriber has its own queue of ``publish_hwm``
messages inside ZeroMQ, and what does not fit in a subscriber's queue is
dropped for that subscriber only (ZeroMQ's PUB semantics). The other
subscribers get everything, and ingest never waits.

What is counted, and what is not
--------------------------------
ZeroMQ drops silently and keeps no per-subscriber counter, so the buck
counts what it can observe, and subscribers count the rest:

- ``queue_full``: the socket is kept in ZMQ_XPUB_NODROP mode, where a
  non-blocking send fails (EAGAIN) when any subscriber the message is for has
  a full queue, and then reaches nobody. The publisher counts that, sends the
  message again in the lossy mode (so every subscriber with room gets it and
  only the full one misses it) and goes back to NODROP. After that lossy send
  libzmq parks the full subscriber's pipe until it has read some of its queue,
  so each run of drops to one subscriber is counted once, at its start: this
  counter says *that* and *how often* subscribers fell behind, not how much
  they lost.
- ``dropped_reported`` (messages and events): how much subscribers missed,
  exactly, as they report it. Every message carries a per-topic sequence
  number and event count (``live.Meta``); a subscriber that sees a gap knows
  how many events it missed, and the subscribers of ``helios.live.feed`` send
  their cumulative counts upstream on their XSUB socket once a second. The
  buck sums the latest report of each subscriber for its own incarnation. A
  subscriber that never reads again never reports (its drops show only in
  ``queue_full``); subscribers on plain SUB sockets (the web live tail) do not
  report; gaps from reconnects are reported too, though the buck did not drop
  them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import msgpack
import zmq

from helios import codec
from helios.errors import FrameError
from helios.wire import live

log = logging.getLogger(__name__)

MAX_TOPICS = 100_000   # per-topic sequence counters kept before starting afresh
MAX_REPORTERS = 1024   # subscribers whose drop reports are remembered


class Publisher:
    def __init__(self, sock: zmq.Socket, buck_name: str) -> None:
        self.sock = sock
        self.buck = buck_name
        self.incarnation = live.new_incarnation()
        self.subscriptions: set[bytes] = set()
        self.seq: dict[bytes, list[int]] = {}           # topic -> [next seq, events published]
        self.reports: dict[bytes, tuple[int, int]] = {}  # subscriber -> (messages, events) missed
        self.counts: Counter[str] = Counter()
        self._bad_logged = 0.0

    # --- upstream: subscriptions and drop reports ---

    def on_upstream(self, parts: list[bytes]) -> None:
        """One message read from the XPUB socket."""
        first = parts[0] if parts else b""
        if len(parts) == 1 and first[:1] in (b"\x00", b"\x01"):
            if first[0] == 1:
                self.subscriptions.add(first[1:])
            else:
                self.subscriptions.discard(first[1:])
            log.debug("Live subscriptions now: %d prefixes.", len(self.subscriptions))
            return
        try:
            subscriber, counts = live.read_report(parts)
        except FrameError:
            self.counts["bad_upstream"] += 1
            return
        mine = counts.get(self.incarnation)
        if mine is not None:
            if subscriber not in self.reports and len(self.reports) >= MAX_REPORTERS:
                self.reports.pop(next(iter(self.reports)))
            self.reports[subscriber] = mine

    # --- downstream: publishing stored frames ---

    def wanted(self, environment: str) -> list[bytes] | None:
        """The prefixes that may match topics of this environment, [] for
        all of them (a prefix of the environment's own prefix matches every
        topic in it), or None if no subscriber can want any."""
        env = environment.encode() + live.SEP
        out = []
        for p in self.subscriptions:
            if p[:1] == live.WHOLE:
                continue
            if env.startswith(p):
                return []
            if p.startswith(env):
                out.append(p)
        return out or None

    def publish(self, header: codec.BatchHeader, frame: bytes) -> None:
        """Publish one stored frame to whoever subscribed to its topics."""
        if not self.subscriptions:
            self.counts["frames_skipped"] += 1
            return
        whole = live.whole_topic(header.environment)
        if any(p[:1] == live.WHOLE and whole.startswith(p) for p in self.subscriptions):
            # As stored, not decoded: watching a whole environment is nearly free.
            self.send_counted(whole, header.count, lambda meta: [whole, frame, msgpack.packb(tuple(meta))])
            self.counts["frames_whole"] += 1
        wanted = self.wanted(header.environment)
        if wanted is None:
            self.counts["frames_skipped"] += 1
            return
        try:
            _, rows = codec.decode_rows(frame)
        except FrameError as exc:
            # Stored as it came (it passed check_frame), but its events are not readable.
            self.counts["frames_undecodable"] += 1
            now = time.monotonic()
            if now - self._bad_logged >= 1.0:
                self._bad_logged = now
                log.warning("Buck %s stored a frame whose events cannot be decoded, so they are not "
                            "published live: %s (%d such frames so far).",
                            self.buck, exc, self.counts["frames_undecodable"])
            return
        self.counts["frames_decoded"] += 1
        env, host = header.environment, header.host
        for t, group in live.group_rows(env, rows).items():
            if wanted and not any(t.startswith(p) for p in wanted):
                continue
            times = [r[1] for r in group]
            self.send_counted(t, len(group), lambda meta: live.message(env, host, group, min(times),
                                                                       max(times), t, meta))

    def send_counted(self, t: bytes, events: int, frames_for) -> None:
        """Send one message on topic ``t`` with its place in the topic's sequence."""
        state = self.seq.get(t)
        if state is None:
            if len(self.seq) >= MAX_TOPICS:
                # Start afresh under a new incarnation, so that no subscriber sees false gaps.
                self.seq.clear()
                self.incarnation = live.new_incarnation()
            state = self.seq[t] = [0, 0]
        meta = live.Meta(self.buck, self.incarnation, state[0], state[1])
        self.send(frames_for(meta), events)
        state[0] += 1
        state[1] += events

    def send(self, frames: list[bytes], events: int) -> None:
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            # A subscriber's queue is full: count it, and deliver to everyone with room.
            self.counts["queue_full"] += 1
            self.sock.setsockopt(zmq.XPUB_NODROP, 0)
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
            finally:
                self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        self.counts["messages"] += 1
        self.counts["events"] += events

    def stats(self) -> dict:
        return {
            "incarnation": self.incarnation,
            "subscriptions": len(self.subscriptions),
            "frames_skipped": self.counts["frames_skipped"],
            "frames_decoded": self.counts["frames_decoded"],
            "frames_whole": self.counts["frames_whole"],
            "frames_undecodable": self.counts["frames_undecodable"],
            "messages": self.counts["messages"],
            "events": self.counts["events"],
            "queue_full": self.counts["queue_full"],
            "dropped_reported_messages": sum(m for m, _ in self.reports.values()),
            "dropped_reported_events": sum(e for _, e in self.reports.values()),
            "reporting_subscribers": len(self.reports),
        }
