"""Send each frame to N distinct bucks chosen at random among the connected.

A PUSH socket round-robins between its peers; it never duplicates. So each
buck gets a socket of its own, and a frame is sent on ``copies`` of them. The
sockets are made with ZMQ_IMMEDIATE (see ``helios.wire.sockets``): a
non-blocking send to a buck that is not connected, or whose queue is full,
fails at once, and the next buck in the shuffled order is tried. ZeroMQ
reconnects by itself, so a buck that comes back is simply chosen again.

Connections are asynchronous: right after start, a buck that is up may not
be connected yet. For the first ``CONNECT_GRACE`` seconds a frame that found
fewer than ``copies`` bucks waits (within that grace) for more to connect, so
a mesh that starts together does not send its first batches to one buck only.
After that, a short copy never waits: a buck that is down must not slow the
others.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import zmq

from helios.wire.sockets import SocketFactory

CONNECT_GRACE = 2.0


class Fanout:
    def __init__(self, factory: SocketFactory, endpoints: list[str], copies: int = 2, *, hwm: int = 1000) -> None:
        if not endpoints:
            raise ValueError("a fanout needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.copies = min(copies, len(self.endpoints))
        self.sockets = [factory.make("sender", ep, hwm=hwm) for ep in self.endpoints]
        self.poller = zmq.Poller()
        for s in self.sockets:
            self.poller.register(s, zmq.POLLOUT)
        self.counts: Counter[str] = Counter()
        self.sent_to: Counter[str] = Counter()
        self.grace_ends = time.monotonic() + CONNECT_GRACE

    def try_send(self, frame: bytes | list[bytes], skip: set[int] | None = None) -> int:
        """One attempt: send to up to ``copies`` bucks that take it now
        (never to those in ``skip``, to which it went already; each buck
        that takes it is added there). Returns how many took it."""
        parts = frame if isinstance(frame, list) else [frame]
        skip = set() if skip is None else skip
        order = [i for i in range(len(self.sockets)) if i not in skip]
        random.shuffle(order)
        done = 0
        for i in order:
            if len(skip) >= self.copies:
                break
            try:
                self.sockets[i].send_multipart(parts, zmq.NOBLOCK)
            except zmq.Again:
                continue
            self.sent_to[self.endpoints[i]] += 1
            skip.add(i)
            done += 1
        return done

    def send(self, frame: bytes | list[bytes], stopping: threading.Event | None = None,
             timeout: float | None = None) -> int:
        """Send, waiting while no buck can take the frame. Returns the number
        of copies sent: ``copies`` normally, fewer while bucks are down, 0 only
        if ``stopping`` was set or ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sent: set[int] = set()
        while True:
            self.try_send(frame, sent)
            while sent and len(sent) < self.copies and time.monotonic() < self.grace_ends:
                self.poller.poll(10)
                self.try_send(frame, sent)
            if sent:
                self.counts["batches"] += 1
                if len(sent) < self.copies:
                    self.counts["short_copies"] += 1
                return len(sent)
            self.counts["waits"] += 1
            if stopping is not None and stopping.is_set():
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            self.poller.poll(50)

    def close(self, linger_ms: int | None = None) -> None:
        for s in self.sockets:
            s.close(linger=linger_ms)
