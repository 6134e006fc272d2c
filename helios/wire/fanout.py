"""Send each frame to N distinct bucks chosen at random among the connected.

A PUSH socket round-robins between its peers; it never duplicates. So each
buck gets a socket of its own, and a frame is sent on ``copies`` of them. The
sockets are made with ZMQ_IMMEDIATE (see ``helios.wire.sockets``): a
non-blocking send to a buck that is not connected, or whose queue is full,
fails at once, and the next buck in the shuffled order is tried. ZeroMQ
reconnects by itself, so a buck that comes back is simply chosen again.

Down or busy? A failed non-blocking send does not say which. A buck counts as
*alive* if a send to it succeeded in the last ``ALIVE_S`` seconds, and every
buck does during the first ``CONNECT_GRACE`` seconds (connections are
asynchronous: a buck that is up may not be connected yet). ``send`` waits up
to ``wait`` seconds for alive bucks to take a frame that found fewer than
``copies`` (backpressure from a busy buck), and never waits for a dead one: a
buck that is down must not slow the others.

Connections, for operators: a fanout made with ``monitor=True`` watches each
socket's connection events (zmq_socket_monitor), and ``watch()``, called from
the owner's housekeeping, counts them per buck (``connects``: the first one
and every reconnect; ``disconnects``) and logs each loss and return.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter

import zmq
from zmq.utils.monitor import recv_monitor_message

from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

CONNECT_GRACE = 2.0
ALIVE_S = 2.0
MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
# ZeroMQ gives up on a connection whose CURVE handshake a buck refused (its
# key is not on the allow-list); a monitored fanout connects again after this
# long, so a key added later (and the buck's SIGHUP) lets the sender in.
REFUSED_RETRY_S = 15.0


class Fanout:
    def __init__(self, factory: SocketFactory, endpoints: list[str], copies: int = 2, *, hwm: int = 1000,
                 monitor: bool = False) -> None:
        if not endpoints:
            raise ValueError("a fanout needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.copies = min(copies, len(self.endpoints))
        self.monitors: list[zmq.Socket] = []
        if monitor:
            made = [factory.make_monitored("sender", ep, MONITORED, hwm=hwm) for ep in self.endpoints]
            self.sockets = [s for s, _ in made]
            self.monitors = [m for _, m in made]
        else:
            self.sockets = [factory.make("sender", ep, hwm=hwm) for ep in self.endpoints]
        # Per endpoint: connects (the first and every reconnect), disconnects, connected now (0/1).
        self.connects: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.connected: dict[str, int] = dict.fromkeys(self.endpoints, 0)
        self.counts: Counter[str] = Counter()
        self.sent_to: Counter[str] = Counter()
        self.refused: dict[int, float] = {}  # socket index -> when to connect again (CURVE refusal)
        start = time.monotonic()
        self.grace_ends = start + CONNECT_GRACE
        self.last_ok = [start - ALIVE_S + CONNECT_GRACE] * len(self.sockets)

    def try_send(self, frame: bytes | list[bytes], skip: set[int] | None = None, copies: int | None = None) -> int:
        """One attempt: send to bucks that take it now until ``copies`` have
        it (never to those in ``skip``, which had it already; each buck that
        takes it is added there). Returns how many took it in this attempt."""
        parts = frame if isinstance(frame, list) else [frame]
        skip = set() if skip is None else skip
        want = self.copies if copies is None else copies
        order = [i for i in range(len(self.sockets)) if i not in skip]
        random.shuffle(order)
        done = 0
        now = time.monotonic()
        for i in order:
            if len(skip) >= want:
                break
            try:
                self.sockets[i].send_multipart(parts, zmq.NOBLOCK)
            except zmq.Again:
                continue
            self.sent_to[self.endpoints[i]] += 1
            self.last_ok[i] = now
            skip.add(i)
            done += 1
        return done

    def send_to(self, i: int, frame: bytes | list[bytes]) -> bool:
        """One non-blocking attempt at buck ``i`` only."""
        parts = frame if isinstance(frame, list) else [frame]
        try:
            self.sockets[i].send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.sent_to[self.endpoints[i]] += 1
        self.last_ok[i] = time.monotonic()
        return True

    def alive(self, exclude: set[int]) -> list[int]:
        now = time.monotonic()
        return [i for i, t in enumerate(self.last_ok) if i not in exclude and now - t < ALIVE_S]

    def send(self, frame: bytes | list[bytes], wait: float = 1.0, copies: int | None = None) -> int:
        """Send to ``copies`` bucks, waiting up to ``wait`` seconds for alive
        ones that are busy. Returns how many copies went out (0: no buck took it)."""
        want = self.copies if copies is None else copies
        sent: set[int] = set()
        self.try_send(frame, sent, want)
        # While the mesh is still connecting, a short copy waits out the grace.
        deadline = max(time.monotonic() + wait, self.grace_ends)
        while len(sent) < want:
            waiting = self.alive(sent)
            left = deadline - time.monotonic()
            if not waiting or left <= 0:
                break
            poller = zmq.Poller()
            for i in waiting:
                poller.register(self.sockets[i], zmq.POLLOUT)
            poller.poll(min(left, 0.05) * 1000)
            self.try_send(frame, sent, want)
        if sent:
            self.counts["batches"] += 1
            if len(sent) < want:
                self.counts["short_copies"] += 1
        else:
            self.counts["unsent"] += 1
        return len(sent)

    def send_until(self, frame: bytes | list[bytes], stopping: threading.Event | None = None,
                   timeout: float | None = None) -> int:
        """Send, waiting as long as no buck takes the frame (for callers that
        have nowhere else to keep it). Returns 0 only if ``stopping`` was set
        or ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            done = self.send(frame, wait=0.1)
            if done:
                return done
            if stopping is not None and stopping.is_set():
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            poller = zmq.Poller()
            for s in self.sockets:
                poller.register(s, zmq.POLLOUT)
            poller.poll(50)

    def watch(self) -> None:
        """Count the connection events that came since the last call (monitored
        fanouts only; from the thread that owns the sockets)."""
        for ep, mon in zip(self.endpoints, self.monitors):
            while True:
                try:
                    event = recv_monitor_message(mon, zmq.NOBLOCK)["event"]
                except zmq.Again:
                    break
                if event == zmq.EVENT_CONNECTED:
                    if self.connects[ep]:
                        log.info("Connected to buck %s again.", ep)
                    self.connects[ep] += 1
                    self.connected[ep] = 1
                elif event == zmq.EVENT_DISCONNECTED:
                    if self.refused.get(self.endpoints.index(ep)) is None:
                        log.warning("Lost the connection to buck %s; ZeroMQ reconnects by itself.", ep)
                    self.disconnects[ep] += 1
                    self.connected[ep] = 0
                elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    log.error("Buck %s refused this process's CURVE key (not on its allow-list?); trying again "
                              "in %g s.", ep, REFUSED_RETRY_S)
                    self.counts["refused"] += 1
                    self.refused[self.endpoints.index(ep)] = time.monotonic() + REFUSED_RETRY_S
        now = time.monotonic()
        for i, when in list(self.refused.items()):
            if now >= when:
                del self.refused[i]
                try:
                    self.sockets[i].disconnect(self.endpoints[i])
                except zmq.ZMQError:
                    pass  # already gone: ZeroMQ ended it
                self.sockets[i].connect(self.endpoints[i])

    def reconnects(self) -> dict[str, int]:
        """Per endpoint: connections made after the first one."""
        return {ep: max(self.connects[ep] - 1, 0) for ep in self.endpoints}

    def close(self, linger_ms: int | None = None) -> None:
        for s, mon in zip(self.sockets, self.monitors):
            s.disable_monitor()
            mon.close(linger=0)
        for s in self.sockets:
            s.close(linger=linger_ms)
