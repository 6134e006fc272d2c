"""The buck's side of the live feed: an XPUB socket that knows who listens.

A buck decodes only what it must publish. Its XPUB socket passes up every
subscription (byte 1, then the topic prefix; ZMQ_XPUB_VERBOSE) and the last
unsubscription of a prefix (byte 0), also when its last subscriber
disconnects, so the publisher keeps exactly the prefixes that have at least
one subscriber. A stored frame whose environment no prefix can match is not
even decompressed: with nobody watching, the live feed costs one dict check
per frame. A
subscriber to a whole environment (``live.WHOLE``) gets the stored frame
itself, not decoded: watching everything costs the buck one send per frame.
Only for subscribers that name an app is the frame decoded, its rows grouped
by topic (``helios.wire.live``), and the groups some prefix matches encoded
and sent.

What a subscription costs, and how many there may be
-----------------------------------------------------
The cost of a stored frame must not grow with the number of subscriptions,
or one subscriber with 100,000 prefixes slows storing for everyone. So the
prefixes are kept in a dict, and a frame looks up its own topics' prefixes
there instead of scanning the subscriptions: for a topic ``t``, ``t[:n]``
for each length ``n`` that some subscribed prefix has (a sorted list of the
distinct lengths, cut at ``len(t)``). A topic is at most a few hundred bytes,
so that is a bounded number of lookups per topic, whatever the number of
prefixes; a prefix that ends in the middle of a field (``prod\0ss`` matches
app ``ssh`` and ``sshd``) is found the same way, as ZeroMQ would match it.

Subscriptions are capped, per peer (``live_max_subscriptions_per_peer``) and
in total (``live_max_subscriptions``). A peer is the key ZAP authenticated
(its name in the allow-list) with CURVE on, else the peer's IP address: one
key that opens 100 sockets is one peer. The XPUB socket runs in
ZMQ_XPUB_VERBOSE mode, so every subscription comes up with its peer, also
one to a prefix somebody else holds; an unsubscription comes up when the
last subscriber of a prefix leaves (also by disconnecting). A prefix is
charged to the peer whose subscription made it active, until nobody
subscribes to it. A subscription over a cap is ignored (the buck publishes
nothing for it; ZeroMQ may still deliver to that subscriber what is
published for others), counted in ``subscriptions_refused`` and logged at
most once per ``REFUSAL_LOG_S`` with how many were refused since; so is a
prefix longer than any topic (``MAX_PREFIX_BYTES``). libzmq keeps its own
trie of every subscription, refused ones included, for its filter: what
bounds that is the size of a subscription message (``UPSTREAM_MAX_BYTES``
in ``helios.wire.sockets``) and who may connect (CURVE's allow-list).

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

import bisect
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
MAX_SUBSCRIPTIONS = 100_000          # defaults of [buck] live_max_subscriptions
MAX_SUBSCRIPTIONS_PER_PEER = 20_000  # and live_max_subscriptions_per_peer
REFUSAL_LOG_S = 10.0   # refused subscriptions are logged at most this often
# Longer than any topic (environment <= 64 characters, app and host <= 255, UTF-8): such a
# prefix matches nothing, and would only cost memory.
MAX_PREFIX_BYTES = 4096


class Prefixes:
    """Subscribed topic prefixes, matched by looking up a topic's own
    prefixes (see the module docstring): ``matches(t)`` costs at most one
    dict lookup per distinct prefix length up to ``len(t)``, never a scan of
    the prefixes."""

    def __init__(self) -> None:
        self.owner: dict[bytes, str] = {}      # prefix -> the peer it is charged to
        self._lengths: Counter[int] = Counter()  # prefix length -> prefixes of that length
        self.lengths: list[int] = []            # the distinct lengths, sorted

    def __len__(self) -> int:
        return len(self.owner)

    def __contains__(self, prefix: bytes) -> bool:
        return prefix in self.owner

    def add(self, prefix: bytes, peer: str) -> None:
        self.owner[prefix] = peer
        n = len(prefix)
        if not self._lengths[n]:
            bisect.insort(self.lengths, n)
        self._lengths[n] += 1

    def remove(self, prefix: bytes) -> str | None:
        """Forget ``prefix``; returns the peer it was charged to (None: unknown)."""
        peer = self.owner.pop(prefix, None)
        if peer is not None:
            n = len(prefix)
            self._lengths[n] -= 1
            if not self._lengths[n]:
                del self._lengths[n]
                self.lengths.remove(n)
        return peer

    def matches(self, t: bytes) -> bool:
        """Does some prefix match topic ``t``?"""
        owner, size = self.owner, len(t)
        for n in self.lengths:
            if n > size:
                return False
            if t[:n] in owner:
                return True
        return False


class Publisher:
    def __init__(self, sock: zmq.Socket, buck_name: str, *, max_subscriptions: int = MAX_SUBSCRIPTIONS,
                 max_per_peer: int = MAX_SUBSCRIPTIONS_PER_PEER) -> None:
        self.sock = sock
        self.buck = buck_name
        self.incarnation = live.new_incarnation()
        # Topic-level prefixes and whole-batch ones (live.WHOLE ...) apart: each kind is matched
        # against its own kind of topic. "" (everything) is a topic-level prefix, as before.
        self.topics = Prefixes()
        self.wholes = Prefixes()
        # Environments (as bytes) -> topic-level prefixes that name something inside them
        # (longer than ENV\0): a frame of an environment with none, and no shorter prefix
        # that covers it, is not decoded.
        self.inside: Counter[bytes] = Counter()
        self.per_peer: Counter[str] = Counter()
        self.max_subscriptions = max_subscriptions
        self.max_per_peer = max_per_peer
        self.seq: dict[bytes, list[int]] = {}           # topic -> [next seq, events published]
        self.reports: dict[bytes, tuple[int, int]] = {}  # subscriber -> (messages, events) missed
        self.counts: Counter[str] = Counter()
        self._bad_logged = 0.0
        self._refusals_logged = -1e9
        self._refusals_unlogged = 0

    @property
    def subscriptions(self) -> int:
        """Distinct prefixes the buck publishes for."""
        return len(self.topics) + len(self.wholes)

    # --- upstream: subscriptions and drop reports ---

    def on_upstream(self, parts: list[bytes], peer: str | None = None) -> None:
        """One message read from the XPUB socket; ``peer`` is who sent it
        (the authenticated key's name, or the peer's address) when known."""
        first = parts[0] if parts else b""
        if len(parts) == 1 and first[:1] in (b"\x00", b"\x01"):
            if first[0] == 1:
                self.subscribe(first[1:], peer or "?")
            else:
                self.unsubscribe(first[1:])
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

    def subscribe(self, prefix: bytes, peer: str) -> None:
        kind = self.wholes if prefix[:1] == live.WHOLE else self.topics
        if prefix in kind:
            return  # somebody holds it already (XPUB_VERBOSE passes up every subscription)
        if len(prefix) > MAX_PREFIX_BYTES:
            self.refuse(prefix, peer, f"{MAX_PREFIX_BYTES} bytes, longer than any topic")
            return
        if self.subscriptions >= self.max_subscriptions:
            self.refuse(prefix, peer, f"the buck's limit of {self.max_subscriptions} (live_max_subscriptions)")
            return
        if self.per_peer[peer] >= self.max_per_peer:
            self.refuse(prefix, peer, f"the limit of {self.max_per_peer} per peer "
                                      "(live_max_subscriptions_per_peer)")
            return
        kind.add(prefix, peer)
        self.per_peer[peer] += 1
        if kind is self.topics:
            env, sep, rest = prefix.partition(live.SEP)
            if sep and rest:
                self.inside[env] += 1
        log.debug("Live subscriptions now: %d prefixes.", self.subscriptions)

    def unsubscribe(self, prefix: bytes) -> None:
        """The last subscriber of ``prefix`` left (ZeroMQ passes up only that one)."""
        kind = self.wholes if prefix[:1] == live.WHOLE else self.topics
        peer = kind.remove(prefix)
        if peer is None:
            return  # one that was refused
        self.per_peer[peer] -= 1
        if self.per_peer[peer] <= 0:
            del self.per_peer[peer]
        if kind is self.topics:
            env, sep, rest = prefix.partition(live.SEP)
            if sep and rest:
                self.inside[env] -= 1
                if self.inside[env] <= 0:
                    del self.inside[env]
        log.debug("Live subscriptions now: %d prefixes.", self.subscriptions)

    def refuse(self, prefix: bytes, peer: str, limit: str) -> None:
        self.counts["subscriptions_refused"] += 1
        now = time.monotonic()
        if now - self._refusals_logged < REFUSAL_LOG_S:
            self._refusals_unlogged += 1
            return
        more = (f" ({self._refusals_unlogged} more refused since the last report)"
                if self._refusals_unlogged else "")
        self._refusals_logged, self._refusals_unlogged = now, 0
        log.warning("Buck %s ignored a live subscription from %s to %r: over %s; nothing is published "
                    "for it%s (logged at most once per %g s).", self.buck, peer, prefix[:80], limit, more,
                    REFUSAL_LOG_S)

    # --- downstream: publishing stored frames ---

    def wanted(self, environment: str) -> bool | None:
        """True when some prefix matches every topic of this environment, False
        when only some topics of it may be wanted (each is then looked up), None
        when no subscriber can want any."""
        env = environment.encode()
        if self.topics.matches(env + live.SEP):
            return True
        return False if self.inside.get(env) else None

    def publish(self, header: codec.BatchHeader, frame: bytes) -> None:
        """Publish one stored frame to whoever subscribed to its topics."""
        if not self.topics.owner and not self.wholes.owner:
            self.counts["frames_skipped"] += 1
            return
        if self.wholes.owner:
            whole = live.whole_topic(header.environment)
            if self.wholes.matches(whole):
                # As stored, not decoded: watching a whole environment is nearly free.
                self.send_counted(whole, header.count, lambda meta: [whole, frame, msgpack.packb(tuple(meta))])
                self.counts["frames_whole"] += 1
        every = self.wanted(header.environment)
        if every is None:
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
            if not every and not self.topics.matches(t):
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
            "subscriptions": self.subscriptions,
            "subscriptions_refused": self.counts["subscriptions_refused"],
            "subscribing_peers": len(self.per_peer),
            "top_subscribing_peers": dict(self.per_peer.most_common(5)),  # who to look at first
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
