"""Lines to frames: the tailer's CPU work, in its own process or in workers.

A ``Job`` is what one batch was: chunks of lines read from files, with the
file offsets they commit. ``Encoder.encode`` turns a job into batch frames:
it parses every chunk into columns, zips the columns into event rows, and
encodes rows into frames of at most ``batch_events`` events. A frame's
header carries one environment, so rows are grouped by theirs first: the
tailer's, or a ``[[tailer.parse]]`` table's for its files, or a rule's for
the lines it matched (``helios.parsing.profiles``). It is pure
(chunks in, frames out), so it runs the same in the tailer's process or in a
worker.

``Workers`` spreads jobs over worker processes and hands results back in the
order the jobs were given, so the tailer spools frames, commits offsets and
sends batches in the order it read them, as if it had encoded them itself.
Parsing and encoding are about nine tenths of a tailer's CPU time; on two
cores, one reader and two encoders keep both busy. A worker that dies is
not a loss: its jobs are still held by the tailer, which encodes them itself
from then on and says so.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
import operator
import signal
import socket
import subprocess
import sys
import zoneinfo
from collections import deque
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection

import msgpack

from helios import codec
from helios.gctune import tune_gc
from helios.parsing.profiles import Profiles
from helios.tail.files import Chunk

log = logging.getLogger(__name__)


def tzinfo(name: str) -> datetime.tzinfo:
    if name == "local":
        return datetime.datetime.now().astimezone().tzinfo or datetime.timezone.utc
    if name == "UTC":
        return datetime.timezone.utc
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True)
class Settings:
    """What encoding needs to know; plain values, so it crosses to a worker."""

    environment: str
    host: str
    format: str
    app: str
    timezone: str
    batch_events: int
    parse: tuple = ()    # [[tailer.parse]] tables: per-path zone, rules (helios.parsing.profiles)
    containers: tuple = ()  # container log roots: their files' frames say input "container", the others "file"


@dataclass
class Job:
    """Chunks that will make one batch (or a few, if they hold more than
    ``batch_events`` lines), and the offsets they commit once spooled."""

    chunks: list[tuple[Chunk, int]] = field(default_factory=list)  # (chunk, received ns)
    commits: dict[bytes, int] = field(default_factory=dict)
    lines: int = 0       # newlines in the chunks: close enough to the events they make
    nbytes: int = 0
    opened: float = 0.0  # monotonic time of its first chunk

    def add(self, chunk: Chunk, received: int, opened: float) -> None:
        if not self.chunks:
            self.opened = opened
        self.chunks.append((chunk, received))
        self.commits[chunk.key] = chunk.end
        self.lines += len(chunk.messages) if chunk.messages is not None else chunk.data.count(b"\n")
        self.nbytes += len(chunk.data)


@dataclass
class Result:
    frames: list[bytes]
    lines: int
    line_bytes: int
    dropped: int = 0     # lines a drop rule matched (sent as one empty event per run)
    envs: list[str] = field(default_factory=list)   # each frame's environment
    sizes: list[int] = field(default_factory=list)  # each frame's events


class Encoder:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.profiles = Profiles(settings.format, settings.host, settings.app, settings.timezone, settings.parse)
        self.roots = tuple(settings.containers)    # (a list, once it crossed to a worker as JSON)

    def encode(self, chunks: list[tuple[Chunk, int]]) -> Result:
        groups: dict[tuple[str, str], tuple[list, list[int]]] = {}  # (environment, input kind) -> (rows, times)
        line_bytes = 0
        read = dropped = 0
        roots = self.roots
        for chunk, received in chunks:
            parser = self.profiles.parser(chunk.path)
            env = self.profiles.environment(chunk.path, self.s.environment)
            kind = "container" if roots and chunk.path.startswith(roots) else "file"   # the frames' input kind
            cols = parser.parse_chunk(chunk.data, received)
            moved = parser.environments      # lines a rule sends to another environment
            read += len(cols.lines)
            sizes = None
            if chunk.messages is None and parser.last_dropped:
                # Lines a [[tailer.parse]] drop matched: each run of them travels as one
                # empty event that says how many lines and bytes it stands for.
                dropped += len(parser.last_dropped)
                cols, sizes, keep = _collapse_drops(cols, parser.last_dropped)
                if moved:
                    moved = {k: moved[i] for k, i in enumerate(keep) if i in moved}
            if chunk.messages is None:
                lines = cols.lines
                # All in C: len, +1 and the running sum (a generator here costs 5% of the tailer).
                # Offsets count the lines as read; the messages lack a CRLF's "\r".
                offsets = list(itertools.accumulate(map(operator.add, sizes or map(len, lines), itertools.repeat(1)),
                                                    initial=chunk.offset))
                offsets.pop()
                messages, fields = cols.messages, cols.fields
            else:
                lines = messages = chunk.messages
                offsets, fields = chunk.offsets, chunk.fields
                if any(cols.fields):        # the tailer's markers (split, ...) and the parsed fields
                    fields = [_merged(mine, parsed) for mine, parsed in zip(fields, cols.fields)]
            # Ids travel empty: the codec derives them from the key and the offset.
            made = zip(itertools.repeat(b""), cols.times, itertools.repeat(received), cols.hosts, cols.apps,
                       cols.severities, itertools.repeat(chunk.path), offsets, messages, fields,
                       itertools.repeat(chunk.key))
            if not moved:
                rows, times = groups.setdefault((env, kind), ([], []))
                rows.extend(made)
                times.extend(cols.times)
            else:
                for k, row in enumerate(made):
                    rows, times = groups.setdefault((moved.get(k, env), kind), ([], []))
                    rows.append(row)
                    times.append(row[1])
            line_bytes += sum(map(len, lines))
        n = self.s.batch_events
        frames, envs, counts = [], [], []
        for (env, kind), (rows, times) in groups.items():
            for i in range(0, len(rows), n):
                frames.append(codec.encode_rows(env, self.s.host, rows[i:i + n], min(times[i:i + n]),
                                                max(times[i:i + n]), input=kind))
                envs.append(env)
                counts.append(len(rows[i:i + n]))
        return Result(frames, read, line_bytes, dropped, envs, counts)


def _collapse_drops(cols, drop: list[int]):
    """(Columns, each row's size in bytes as read, the line each row comes
    from) where each run of dropped lines is one row: an empty message
    with fields {"dropped": lines, "line_bytes": bytes of the run, the
    newlines between its lines included}, so that the audit still sees
    every byte of the file accounted for."""
    drop_set = set(drop)
    keep: list[int] = []
    stub: dict[int, dict] = {}
    start = None
    for i, line in enumerate(cols.lines):
        if i in drop_set:
            if start is not None and i - 1 in drop_set:
                stub[start]["dropped"] += 1
                stub[start]["line_bytes"] += 1 + len(line)
                continue
            start = i
            stub[i] = {"dropped": 1, "line_bytes": len(line)}
        keep.append(i)
    out = [[col[i] for i in keep] for col in cols]
    messages, fields = out[5], out[6]
    sizes = []
    for k, i in enumerate(keep):
        if i in stub:
            messages[k], fields[k] = b"", stub[i]
            sizes.append(stub[i]["line_bytes"])      # the run's bytes: the next row starts after it
        else:
            sizes.append(len(cols.lines[i]))
    return type(cols)(*out), sizes, keep


def _merged(mine: dict | None, parsed: dict | None) -> dict | None:
    if parsed is None:
        return mine
    return parsed if mine is None else {**parsed, **mine}


# --- workers ---

def _pack_chunks(chunks: list[tuple[Chunk, int]]) -> bytes:
    return msgpack.packb([(c.path, c.key, c.offset, c.end, c.data, c.messages, c.offsets, c.fields, r)
                          for c, r in chunks], use_bin_type=True)


def _unpack_chunks(data: bytes) -> list[tuple[Chunk, int]]:
    return [(Chunk(p, k, o, e, d, m, offs, f), r)
            for p, k, o, e, d, m, offs, f, r in msgpack.unpackb(data, raw=False, use_list=True)]


def _work(conn: Connection, settings: Settings) -> None:
    """A worker's life: jobs in, results out, in order, until the pipe closes."""
    encoder = Encoder(settings)
    tune_gc()
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        r = encoder.encode(_unpack_chunks(data))
        try:
            conn.send_bytes(msgpack.packb([r.frames, r.lines, r.line_bytes, r.dropped, r.envs, r.sizes],
                                          use_bin_type=True))
        except OSError:  # the tailer let go of this worker (it closed the pipe)
            return


def _start(settings: Settings) -> tuple[Connection, subprocess.Popen]:
    """A worker process, talking over a socket pair. A plain subprocess, not
    multiprocessing's: its spawn would import the tailer's ``__main__`` again,
    and a fork of a process with a ZeroMQ context is not safe."""
    mine, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "helios.tail.encoder", str(theirs.fileno()),
                                 json.dumps(asdict(settings))], pass_fds=(theirs.fileno(),),
                                stdin=subprocess.DEVNULL)
    finally:
        theirs.close()
    return Connection(mine.detach()), proc


class Workers:
    """Jobs out to ``count`` worker processes in turn, results back in the
    order of the jobs. With ``count`` 0, or once a worker fails, jobs are
    encoded here."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.encoder = Encoder(settings)
        # One job in flight per worker, never two: with two, this process could
        # block writing a job to a worker that is itself blocked writing a
        # result this process has not read yet (both socket buffers full: a
        # deadlock, seen with small batches). With one, a worker this process
        # writes to is always reading.
        self.depth = 1
        self.pending: deque[tuple[Job, Connection | None, Result | None]] = deque()
        self.conns: list[Connection] = []
        self.procs: list[subprocess.Popen] = []
        self.turn = 0
        for _ in range(count):
            try:
                conn, proc = _start(settings)
            except OSError as exc:
                log.error("Cannot start a tailer encoder process (%s); the tailer encodes by itself.", exc)
                self.close()
                break
            self.conns.append(conn)
            self.procs.append(proc)

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def submit(self, job: Job) -> list[tuple[Job, Result]]:
        """Give out a job; returns the results that had to be taken to make
        room for it (in order), often none."""
        done: list[tuple[Job, Result]] = []
        while self.conns and len(self.pending) >= self.depth * len(self.conns):
            done.append(self._take_oldest())
        if not self.conns:  # none started, or one failed
            self.pending.append((job, None, self.encoder.encode(job.chunks)))
            return done + self.ready()
        conn = self.conns[self.turn % len(self.conns)]
        self.turn += 1
        try:
            conn.send_bytes(_pack_chunks(job.chunks))
            self.pending.append((job, conn, None))
        except (OSError, ValueError) as exc:
            self._lost(conn, exc)
            self.pending.append((job, None, self.encoder.encode(job.chunks)))
        return done + self.ready()

    def ready(self) -> list[tuple[Job, Result]]:
        """The results that are in, in order, without waiting."""
        done = []
        while self.pending:
            job, conn, result = self.pending[0]
            if result is None and not conn.poll(0):
                break
            done.append(self._take_oldest())
        return done

    def drain(self) -> list[tuple[Job, Result]]:
        """Every result still to come, in order (waits for them)."""
        return [self._take_oldest() for _ in range(len(self.pending))]

    def _take_oldest(self) -> tuple[Job, Result]:
        job, conn, result = self.pending.popleft()
        if result is None:
            try:
                result = Result(*msgpack.unpackb(conn.recv_bytes(), raw=False))
            except (EOFError, OSError) as exc:
                self._lost(conn, exc)
                result = self.encoder.encode(job.chunks)
        return job, result

    def _lost(self, conn: Connection, exc: Exception) -> None:
        """A worker is gone: every job it held is encoded here, in order, and
        so is everything from now on (nothing was lost; the tailer is slower)."""
        log.error("A tailer encoder process failed (%s); the tailer encodes by itself from now on.",
                  exc or type(exc).__name__)
        self.close()
        self.pending = deque((j, None, r if r is not None else self.encoder.encode(j.chunks))
                             for j, _, r in self.pending)

    def close(self) -> None:
        conns, procs = self.conns, self.procs
        self.conns, self.procs = [], []
        for conn in conns:
            conn.close()
        for p in procs:
            try:
                p.wait(timeout=2)  # the closed pipe ends it
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    # A worker: the tailer and its process group get SIGINT and SIGTERM; the
    # tailer decides when its workers are done, by closing their pipes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _work(Connection(int(sys.argv[1])), Settings(**json.loads(sys.argv[2])))

