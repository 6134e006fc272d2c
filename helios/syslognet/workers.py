"""Syslog reads to frames in worker processes, results back in read order.

The relay's thread reads the sockets and cuts each read into messages
(``framing.Deframer``, a few C calls per read); parsing and encoding them
(``events.Framer``) is nine tenths of the rest of its work. ``Pool`` hands
each read's messages to one of ``count`` worker processes in turn and gives
the frames back in the order the reads were given, so the relay spools and
sends them as if it had made them itself, while the next read is taken. It is
the tailer's pattern (``helios.tail.encoder.Workers``), with a syslog job:
(input kind, block, messages, peer or peers, truncated indexes, received
ns). The block is a read's run of newline-framed messages, still uncut
(``Deframer.feed_raw``): the worker cuts it, so the relay makes no object
per message at all in the common case (and when the block has no empty
line, no CR and no line over the size limit, the parser's cut is the only
one: ``Framer.frames_of_block``); the messages are those the relay cut
itself (octet counting, a stream's end, UDP), which come after the block. A
result is (frames, problems of the block: reason -> count). On the pipe a
job is its small parts (msgpack), then the block as it is; a result is the
frames' counts and the problems, then each frame as it is: nothing big is
copied into a msgpack buffer.

One job in flight per worker, never two: with two, the relay could block
writing a job to a worker that is itself blocked writing a result the relay
has not read yet (both socket buffers full: a deadlock). So at most
``count`` reads are between the socket and the spool; while every worker is
busy, ``submit`` waits for the oldest, the relay reads nothing meanwhile, and
TCP's back-pressure works as before.

A worker that dies loses nothing: the pool still holds the messages of every
job it gave out, frames them itself, in order, and from then on frames every
job itself (and says so once). So does an unexpected error in the pool
itself (a bug): it is logged, the workers are let go, and the relay never
crashes on it.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from collections import deque

import msgpack

from helios.gctune import tune_gc
from helios.syslognet.events import Framer
from helios.syslognet.framing import split_block
from helios.workerprocs import Pipe, close_workers, start_worker

log = logging.getLogger(__name__)

Job = tuple   # (kind, block, messages, peers: str | list[str], truncated: list[int], now_ns)
Result = tuple  # ([(frame, events, message bytes)], {reason: count})


class Pool:
    def __init__(self, environment: str, host: str, timezone: str, max_size: int, count: int) -> None:
        self.args = [environment, host, timezone, max_size]
        self.framer = _Framer(*self.args)
        # [job, worker's pipe (None once its frames are in), frames], oldest first
        self.pending: deque[list] = deque()
        self.busy: dict[int, list] = {}      # a worker's pipe fd -> its job in flight
        self.out: list[tuple[Job, Result]] = []   # results in order, taken from pending, not yet returned
        self.conns: list[Pipe] = []
        self.procs: list[subprocess.Popen] = []
        for _ in range(count):
            try:
                conn, proc = _start(self.args)
            except OSError as exc:
                log.error("Cannot start a syslog framing process (%s); the relay frames syslog by itself.", exc)
                self.close()
                break
            self.conns.append(conn)
            self.procs.append(proc)

    def fds(self) -> list[int]:
        """The workers' pipes, for the relay's poll (readable: a result is in)."""
        return [c.fileno() for c in self.conns]

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def submit(self, job: Job) -> list[tuple[Job, Result]]:
        """Give out a job; returns the results that are in (in order),
        waiting for the oldest when every worker is busy."""
        try:
            self._submit(job)
        except Exception as exc:   # a bug here must not lose a read: frame here, as when a worker dies
            self._fail(exc, job)
        return self.ready()

    def _submit(self, job: Job) -> None:
        # Wait for the oldest job while every worker is busy, or while the
        # results held behind it (taken out of order) fill the window.
        while self.conns and (len(self.busy) >= len(self.conns) or len(self.pending) >= 2 * len(self.conns)):
            oldest = self._oldest_busy()
            if oldest is None:
                break
            self._receive(oldest)
            self._take_ready()
        conn = next((c for c in self.conns if c.fileno() not in self.busy), None)
        entry = [job, conn, None]
        if conn is None:
            entry[2] = self._frame(job)
        else:
            try:
                kind, block, messages, peers, truncated, now_ns = job
                # The block goes as it is (packing it would copy it, and grow a buffer to its size on the way).
                conn.send(msgpack.packb((kind, messages, peers, truncated, now_ns), use_bin_type=True))
                conn.send(block)
                self.busy[conn.fileno()] = entry
            except (OSError, ValueError) as exc:
                entry[1:] = [None, self._frame(job)]
                self._lost(exc)
        self.pending.append(entry)

    def collect(self, fd: int) -> list[tuple[Job, Result]]:
        """The worker on ``fd`` has its result: take it; returns the results
        that are then in order."""
        try:
            entry = self.busy.get(fd)
            if entry is not None:
                self._receive(entry)
            elif fd in self.fds():
                self._lost(EOFError("its pipe closed"))   # readable with no job out: the worker ended
        except Exception as exc:
            self._fail(exc)
        return self.ready()

    def ready(self) -> list[tuple[Job, Result]]:
        """The results that are in, in order, without waiting."""
        self._take_ready()
        done, self.out = self.out, []
        return done

    def _take_ready(self) -> None:
        while self.pending and self.pending[0][2] is not None:
            job, _, frames = self.pending.popleft()
            self.out.append((job, frames))

    def drain(self) -> list[tuple[Job, Result]]:
        """Every result still to come, in order (waits for them)."""
        try:
            while self.busy:
                oldest = self._oldest_busy()
                if oldest is None:
                    break
                self._receive(oldest)
        except Exception as exc:
            self._fail(exc)
        if any(e[2] is None for e in self.pending):
            self._fail(RuntimeError("a job was out with no worker on it"))
        return self.ready()

    def _oldest_busy(self) -> list | None:
        return next((e for e in self.pending if e[2] is None), None)

    def _receive(self, entry: list) -> None:
        conn = entry[1]
        try:
            sizes, problems = msgpack.unpackb(conn.recv(), raw=False)
            frames = ([(conn.recv(), n, nbytes) for n, nbytes in sizes], problems)
        except (EOFError, OSError, ValueError) as exc:
            self._lost(exc)
            return
        self.busy.pop(conn.fileno(), None)
        entry[1:] = [None, frames]

    def _frame(self, job: Job) -> Result:
        return self.framer.run(job)

    def _lost(self, exc: BaseException) -> None:
        """A worker is gone: the jobs still out are framed here, in order,
        and so is everything from now on (nothing is lost; the relay is slower)."""
        if self.conns:
            log.error("A syslog framing process failed (%s); the relay frames syslog by itself from now on.",
                      exc or type(exc).__name__)
        self.close()
        for entry in self.busy.values():
            entry[1:] = [None, self._frame(entry[0])]
        self.busy.clear()

    def _fail(self, exc: BaseException, job: Job | None = None) -> None:
        """An unexpected error in the pool: give up the workers and frame
        here every job still out (and ``job``, if it was not given out yet),
        in order, as when a worker dies."""
        log.exception("The syslog framing pool failed (%s: %s); the relay frames syslog by itself from now on.",
                      type(exc).__name__, exc)
        self.close()
        self.busy.clear()
        for entry in self.pending:
            if entry[2] is None:
                entry[1:] = [None, self._frame(entry[0])]
        if job is not None and not any(e[0] is job for e in self.pending):
            self.pending.append([job, None, self._frame(job)])

    def close(self) -> None:
        conns, procs = self.conns, self.procs
        self.conns, self.procs = [], []
        close_workers(conns, procs)


class _Framer:
    """A job to its result, in a worker or in the relay."""

    def __init__(self, environment: str, host: str, timezone: str, max_size: int) -> None:
        self.framer = Framer(environment, host, timezone)
        self.max_size = max_size

    def run(self, job: Job) -> Result:
        kind, block, messages, peers, truncated, now_ns = job
        if block and not messages and isinstance(peers, str) and b"\r" not in block:
            # The common case: the parser's cut of the block is the only one.
            frames = self.framer.frames_of_block(block, peers, f"syslog/{kind}", now_ns, self.max_size)
            if frames is not None:
                return frames, {}
        messages, truncated, problems = cut_job(block, messages, truncated, self.max_size)
        return self.framer.frames(messages, peers, f"syslog/{kind}", now_ns, truncated), problems


def cut_job(block: bytes, messages: list[bytes], truncated: list[int], max_size: int):
    """A job's messages, all cut: (messages, indexes of the truncated ones,
    problems of the block)."""
    if not block:
        return messages, truncated, {}
    first, cut, problems, _ = split_block(block, max_size)
    if messages:
        return first + messages, cut + [len(first) + i for i in truncated], problems
    return first, cut, problems


def _work(conn: Pipe, args: list) -> None:
    """A worker's life: jobs in, frames out, in order, until the pipe closes."""
    framer = _Framer(*args)
    tune_gc()
    while True:
        try:
            data = conn.recv()
        except (EOFError, OSError):
            return
        kind, messages, peers, truncated, now_ns = msgpack.unpackb(data, raw=False)
        try:
            block = conn.recv()
        except (EOFError, OSError):
            return
        result = framer.run((kind, block, messages, peers, truncated, now_ns))
        frames, problems = result
        try:
            conn.send(msgpack.packb(([(n, nbytes) for _, n, nbytes in frames], problems), use_bin_type=True))
            for frame, _, _ in frames:
                conn.send(frame)
        except OSError:   # the relay let go of this worker (it closed the pipe)
            return


def _start(args: list[str]) -> tuple[Pipe, subprocess.Popen]:
    return start_worker("helios.syslognet.workers", json.dumps(args))


if __name__ == "__main__":
    # The relay and its process group get SIGINT and SIGTERM; the relay
    # decides when its workers are done, by closing their pipes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _work(Pipe.of_fd(int(sys.argv[1])), json.loads(sys.argv[2]))
