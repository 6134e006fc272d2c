"""Re-send closed spool buckets a slice at a time.

A spool bucket can hold a minute of a busy host (a gigabyte and more). It
goes to one buck as a run of messages of at most ``Spool.message_bytes``,
over sockets of their own whose high-water mark is ``RESEND_HWM`` messages,
so the tailer never holds more than a few MiB of re-sends in flight, and
``step`` sends only what those sockets take at once: the read loop goes on
between slices. A bucket sticks to the buck it started with while that buck
takes it; if it stops taking it for ``STALL_S`` seconds, the rest goes to
another (messages are whole frames, so a bucket split over two bucks is
still every frame once, at least).

``tick`` is the whole policy, shared by every service that spools (the
tailer, the relay): each closed bucket is re-sent once after its window
(plus its jitter), and once more before the spool prunes it. The services
keep how often each bucket was sent (``sent``) in their own state file, so a
restart neither forgets nor repeats a re-send.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Iterator

from helios.errors import HeliosError
from helios.wire.fanout import Fanout
from helios.wire.sockets import SocketFactory

log = logging.getLogger(__name__)

RESEND_HWM = 2
STALL_S = 5.0


class Job:
    def __init__(self, rel: str, path: Path, messages: Iterator[list[bytes]], final: bool) -> None:
        self.rel, self.path, self.messages, self.final = rel, path, messages, final
        self.pending: list[bytes] | None = None
        self.buck: int | None = None
        self.last_progress = time.monotonic()


class Resender:
    def __init__(self, factory: SocketFactory, bucks: list[str], spool) -> None:
        self.fanout = Fanout(factory, bucks, copies=1, hwm=RESEND_HWM)
        self.spool = spool
        self.jobs: deque[Job] = deque()
        self.queued: set[str] = set()

    def add(self, rel: str, path: Path, final: bool = False) -> None:
        if rel not in self.queued:
            self.queued.add(rel)
            self.jobs.append(Job(rel, path, self.spool.messages(path), final))

    def busy(self) -> bool:
        return bool(self.jobs)

    def step(self, max_messages: int = 16) -> list[Job]:
        """Send what the sockets take now (at most ``max_messages``); return
        the jobs that finished."""
        done = []
        sent = 0
        while self.jobs and sent < max_messages:
            job = self.jobs[0]
            try:
                if job.pending is None:
                    job.pending = next(job.messages, None)
            except HeliosError as exc:
                log.error("Cannot read spool bucket %s: %s.", job.path, exc)
                job.pending = None
            if job.pending is None:
                self.jobs.popleft()
                self.queued.discard(job.rel)
                done.append(job)
                continue
            if not self.offer(job):
                break
            job.pending = None
            sent += 1
        return done

    def offer(self, job: Job) -> bool:
        now = time.monotonic()
        if job.buck is not None:
            if self.fanout.send_to(job.buck, job.pending):
                job.last_progress = now
                return True
            if now - job.last_progress < STALL_S:
                return False
        taken: set[int] = set()
        if self.fanout.try_send(job.pending, taken, copies=1):
            job.buck = next(iter(taken))
            job.last_progress = now
            return True
        return False

    def tick(self, sent: dict[str, int], now: float) -> int:
        """Queue each closed spool bucket for one re-send after its window, and
        once more before the spool prunes it; send a slice of the queue.
        ``sent`` (bucket relpath -> times sent) is updated; returns how many
        buckets were re-sent whole in this call."""
        spool = self.spool
        resent = 0
        for job in self.step():
            sent[job.rel] = sent.get(job.rel, 0) + 1
            resent += 1
            if job.final:
                spool.delete(job.rel, job.path, never_sent=False)
                sent.pop(job.rel, None)
        buckets = spool.buckets()
        for name, path, _ in buckets:
            rel = name.relpath()
            if sent.get(rel, 0) == 0 and spool.due(name, now):
                self.add(rel, path)
        for name, path in spool.to_prune(now, buckets):
            rel = name.relpath()
            if self.fanout.alive(set()):
                self.add(rel, path, final=True)
            elif rel not in self.queued:
                spool.delete(rel, path, never_sent=sent.get(rel, 0) == 0)
                sent.pop(rel, None)
        return resent

    def close(self) -> None:
        self.fanout.close(linger_ms=0)
