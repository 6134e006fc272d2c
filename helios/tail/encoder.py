"""Lines to frames: the tailer's CPU work, in its own process or in workers.

A ``Job`` is what one batch was: chunks of lines read from files, with the
file offsets they commit. ``Encoder.encode`` turns a job into batch frames:
it parses every chunk into columns and encodes the columns as they are
(``codec.encode_runs``) into frames of at most ``batch_events`` events. A frame's
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
import json
import logging
import signal
import subprocess
import sys
import zoneinfo
from collections import deque
from dataclasses import asdict, dataclass, field

import msgpack

from helios import codec
from helios.gctune import tune_gc
from helios.tail.files import Chunk
from helios.workerprocs import Pipe, close_workers, start_worker

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
    containers: tuple = ()  # container log roots: their files' frames say input "container" (and Job.containers')


@dataclass
class Job:
    """Chunks that will make one batch (or a few, if they hold more than
    ``batch_events`` lines), and the offsets they commit once spooled."""

    chunks: list[tuple[Chunk, int]] = field(default_factory=list)  # (chunk, received ns)
    commits: dict[bytes, int] = field(default_factory=dict)
    lines: int = 0       # newlines in the chunks: close enough to the events they make
    nbytes: int = 0
    opened: float = 0.0  # monotonic time of its first chunk
    # Contents the tailer found to be container logs outside the container roots (a Docker or
    # CRI first line, or a [[tailer.parse]] format): their frames say input "container" too.
    containers: set[bytes] = field(default_factory=set)

    def add(self, chunk: Chunk, received: int, opened: float, room: int | None = None,
            container: bool = False) -> Chunk | None:
        """Add a chunk; with ``room``, only its first ``room`` lines if it is
        a fast-path chunk of more: returns the rest (None if it all went in),
        for the next job. A job cut at ``batch_events`` lines makes one full
        frame, not a full one and a small one (each frame costs its spool
        record, two sends and the bucks' work on it, whatever its size)."""
        if not self.chunks:
            self.opened = opened
        rest = None
        if chunk.messages is not None:
            lines = len(chunk.messages)
        else:
            lines = chunk.lines if chunk.lines >= 0 else chunk.data.count(b"\n")
            if room is not None and 0 < room < lines:
                chunk, rest = _cut(chunk, room, lines)
                lines = room
        self.chunks.append((chunk, received))
        if container:
            self.containers.add(chunk.key)
        self.commits[chunk.key] = chunk.end
        self.lines += lines
        self.nbytes += len(chunk.data)
        return rest


def _cut(chunk: Chunk, n: int, lines: int) -> tuple[Chunk, Chunk | None]:
    """A fast-path chunk of ``lines`` lines as its first ``n`` lines and the
    rest: found from a guess by line length, then newline by newline."""
    data = chunk.data
    if chunk.end != chunk.offset + len(data):
        return chunk, None      # not plain lines from its offset on: left whole
    cut = data.find(b"\n", max(len(data) * n // lines - 1, 0)) + 1    # found: the last byte is one
    k = data.count(b"\n", 0, cut) if cut <= len(data) // 2 else lines - data.count(b"\n", cut)
    while k > n:
        cut = data.rfind(b"\n", 0, cut - 1) + 1
        k -= 1
    while k < n:
        cut = data.find(b"\n", cut) + 1
        k += 1
    return (Chunk(chunk.path, chunk.key, chunk.offset, chunk.offset + cut, data[:cut]),
            Chunk(chunk.path, chunk.key, chunk.offset + cut, chunk.end, data[cut:], lines=lines - n))


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
        # Imported here: the parsers compile their patterns on import (a tenth of a
        # second of CPU), which a tailer whose workers encode never needs itself.
        from helios.parsing.profiles import Profiles

        self.s = settings
        self.profiles = Profiles(settings.format, settings.host, settings.app, settings.timezone, settings.parse)
        self.roots = tuple(settings.containers)    # (a list, once it crossed to a worker as JSON)

    def encode(self, chunks: list[tuple[Chunk, int]], containers: set[bytes] | frozenset = frozenset()) -> Result:
        """Frames of ``chunks``; those of ``containers`` (content keys) and of
        files under the container roots say input "container", the others "file"."""
        groups: dict[tuple[str, str], list[tuple]] = {}  # (environment, input kind) -> runs (codec.encode_runs)
        line_bytes = 0
        read = dropped = 0
        roots = self.roots
        for chunk, received in chunks:
            parser = self.profiles.parser(chunk.path)
            env = self.profiles.environment(chunk.path, self.s.environment)
            kind = "container" if chunk.key in containers or roots and chunk.path.startswith(roots) else "file"
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
            if chunk.messages is None and sizes is None and not moved and not chunk.fields \
                    and not parser.masks and not parser.encoding \
                    and cols.messages == cols.lines and chunk.end == chunk.offset + len(chunk.data):
                # Plain lines, each message the line as read: they go as the chunk's bytes,
                # the first offset and the codec's split give every message and offset back.
                # (Not with masks: the parser's lines are masked, the chunk's bytes are not;
                # nor with another encoding, whose lines the parser decoded.)
                lines, offsets, messages, fields = cols.lines, chunk.offset, chunk.data, cols.fields
            elif chunk.messages is None:
                lines = cols.lines
                # Offsets count the lines as read; the messages lack a CRLF's "\r".
                offsets = codec.line_offsets(chunk.offset, sizes or map(len, lines))
                messages, fields = cols.messages, cols.fields
                if chunk.fields:            # fields for every line (a container's, from its path)
                    extra = chunk.fields[0]
                    fields = [{**(f or {}), **extra} for f in fields]
            else:
                lines = messages = chunk.messages
                offsets, fields = chunk.offsets, chunk.fields
                if parser.masks or parser.last_dropped:
                    messages, fields = _slow_edits(parser, messages, fields)
                    dropped += len(parser.last_dropped)
                if any(cols.fields):        # the tailer's markers (split, ...) and the parsed fields
                    fields = [_merged(mine, parsed) for mine, parsed in zip(fields, cols.fields)]
            # The parser's columns go out as they are: one run per file read
            # (ids travel empty: the codec derives them from the key and the offset).
            columns = (cols.times, cols.hosts, cols.apps, cols.severities, offsets, messages, fields)
            if not moved:
                groups.setdefault((env, kind), []).append((chunk.path, chunk.key, received, *columns))
            else:
                picks: dict[str, list[int]] = {}
                for k in range(len(offsets)):
                    picks.setdefault(moved.get(k, env), []).append(k)
                for to, ks in picks.items():
                    groups.setdefault((to, kind), []).append(
                        (chunk.path, chunk.key, received, *([col[k] for k in ks] for col in columns)))
            # Bytes of the lines as read, their newlines left out (of plain lines: all but the newlines).
            line_bytes += len(chunk.data) - len(lines) if sizes is None and chunk.messages is None \
                else sum(map(len, lines))
        frames, envs, counts = [], [], []
        for (env, kind), runs in groups.items():
            for part in _parts(runs, self.s.batch_events):
                frames.append(codec.encode_runs(env, self.s.host, part, min(min(r[3]) for r in part),
                                                max(max(r[3]) for r in part), input=kind))
                envs.append(env)
                counts.append(sum(len(r[3]) for r in part))
        return Result(frames, read, line_bytes, dropped, envs, counts)


def _parts(runs: list[tuple], n: int):
    """Runs in frames of at most ``n`` events: a run that crosses a
    frame's end is cut in two; empty runs are left out."""
    part: list[tuple] = []
    size = 0
    for run in runs:
        start, total = 0, len(run[3])
        while start < total:
            take = min(n - size, total - start)
            if take < total and type(run[7]) is int:    # a block cut in two: as columns
                run = run[:7] + codec.block_lines(0, run[7], run[8]) + run[9:]
            part.append(run if take == total else run[:3] + tuple(col[start:start + take] for col in run[3:]))
            size += take
            start += take
            if size >= n:
                yield part
                part, size = [], 0
    if part:
        yield part


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


def _slow_edits(parser, messages: list[bytes], fields: list) -> tuple[list[bytes], list]:
    """Masks and drops on events the tailer made (multi-line, joined
    container records, split or unterminated lines), whose messages are
    not the lines the parser read (it reads their first lines): each mask
    is applied to the whole message, so that no line of the event leaves
    the host unmasked; an event whose first line a drop matches leaves as
    an empty message that keeps its byte count (``line_bytes``) for the audit."""
    from helios.parse import _stars   # (here: the reader, which never parses, never imports the parsers)

    out = list(messages)
    for rx in parser.masks:
        out = [rx.sub(_stars, m) for m in out]
    if parser.last_dropped:
        fields = list(fields)
        for k in parser.last_dropped:
            f = dict(fields[k] or {})
            f.setdefault("line_bytes", len(messages[k]))
            fields[k] = f
            out[k] = b""
    return out, fields


def _merged(mine: dict | None, parsed: dict | None) -> dict | None:
    """An event's fields: the tailer's (``mine``) over the parsed ones. The
    parsed ``line_bytes`` is that of the event's first line only: the byte
    count of a multi-line event is its message's, or the tailer's own."""
    if parsed is None:
        return mine
    if "line_bytes" in parsed:
        parsed = {k: v for k, v in parsed.items() if k != "line_bytes"}
    return (parsed or None) if mine is None else {**parsed, **mine}


# --- workers ---

# A job crosses to a worker as one message (each chunk's path, key, offsets,
# slow-path lists and the size of its bytes), then each chunk's bytes as they
# are (``Pipe.send_raw``; see helios.workerprocs).


def _send_job(pipe: Pipe, chunks: list[tuple[Chunk, int]], containers: set[bytes] | frozenset = frozenset()) -> None:
    pipe.send(msgpack.packb([[(c.path, c.key, c.offset, c.end, len(c.data), c.messages, c.offsets, c.fields, r)
                              for c, r in chunks], list(containers)], use_bin_type=True))
    for c, _ in chunks:
        if c.data:
            pipe.send_raw(c.data)


def _recv_job(pipe: Pipe) -> tuple[list[tuple[Chunk, int]], set[bytes]]:
    """The next job's chunks and container keys (raises EOFError or OSError once the tailer let go)."""
    out = []
    chunks, containers = msgpack.unpackb(pipe.recv(), raw=False, use_list=True)
    for p, k, o, e, n, m, offs, f, r in chunks:
        out.append((Chunk(p, k, o, e, pipe.recv_exact(n), m, offs, f), r))
    return out, set(containers)


def _work(pipe: Pipe, settings: Settings) -> None:
    """A worker's life: jobs in, results out, in order, until the pipe closes."""
    encoder = Encoder(settings)
    tune_gc()
    while True:
        try:
            chunks, containers = _recv_job(pipe)
        except (EOFError, OSError):
            return
        r = encoder.encode(chunks, containers)
        try:
            pipe.send(msgpack.packb([r.frames, r.lines, r.line_bytes, r.dropped, r.envs, r.sizes],
                                    use_bin_type=True))
        except OSError:  # the tailer let go of this worker (it closed the pipe)
            return


def _start(settings: Settings) -> tuple[Pipe, subprocess.Popen]:
    return start_worker("helios.tail.encoder", json.dumps(asdict(settings)))


class Workers:
    """Jobs out to ``count`` worker processes in turn, results back in the
    order of the jobs. With ``count`` 0, or once a worker fails, jobs are
    encoded here."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self._encoder: Encoder | None = None
        # One job in flight per worker, never two: with two, this process could
        # block writing a job to a worker that is itself blocked writing a
        # result this process has not read yet (both socket buffers full: a
        # deadlock, seen with small batches). With one, a worker this process
        # writes to is always reading.
        self.depth = 1
        self.pending: deque[tuple[Job, Pipe | None, Result | None]] = deque()
        self.conns: list[Pipe] = []
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
    def encoder(self) -> Encoder:
        """This process's own encoder, made once needed (no worker, or one failed):
        with workers up, this process never imports the parsers."""
        if self._encoder is None:
            self._encoder = Encoder(self.settings)
        return self._encoder

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
            self.pending.append((job, None, self.encoder.encode(job.chunks, job.containers)))
            return done + self.ready()
        conn = self.conns[self.turn % len(self.conns)]
        self.turn += 1
        try:
            _send_job(conn, job.chunks, job.containers)
            self.pending.append((job, conn, None))
        except (OSError, ValueError) as exc:
            self._lost(conn, exc)
            self.pending.append((job, None, self.encoder.encode(job.chunks, job.containers)))
        return done + self.ready()

    def ready(self) -> list[tuple[Job, Result]]:
        """The results that are in, in order, without waiting."""
        done = []
        while self.pending:
            job, conn, result = self.pending[0]
            if result is None and not conn.ready():
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
                result = Result(*msgpack.unpackb(conn.recv(), raw=False))
            except (EOFError, OSError) as exc:
                self._lost(conn, exc)
                result = self.encoder.encode(job.chunks, job.containers)
        return job, result

    def _lost(self, conn: Pipe, exc: Exception) -> None:
        """A worker is gone: every job it held is encoded here, in order, and
        so is everything from now on (nothing was lost; the tailer is slower)."""
        log.error("A tailer encoder process failed (%s); the tailer encodes by itself from now on.",
                  exc or type(exc).__name__)
        self.close()
        self.pending = deque((j, None, r if r is not None else self.encoder.encode(j.chunks, j.containers))
                             for j, _, r in self.pending)

    def close(self) -> None:
        conns, procs = self.conns, self.procs
        self.conns, self.procs = [], []
        close_workers(conns, procs)


if __name__ == "__main__":
    # A worker: the tailer and its process group get SIGINT and SIGTERM; the
    # tailer decides when its workers are done, by closing their pipes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _work(Pipe.of_fd(int(sys.argv[1])), Settings(**json.loads(sys.argv[2])))

