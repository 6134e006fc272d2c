#!/usr/bin/env python3
"""What the mesh analyses (``bench/analyses/``) share: real helios processes
that can be killed with -9 and started again, a steady writer of numbered
lines, a reader of what the bucks stored, the power-loss model, plots.

Counting by line number
-----------------------
Every line the writer appends says ``k=FILE seq=N t=NS`` (``t`` is when it
was written, ns since the epoch), and every event a client records says the
same in its message. What was appended is read back from the files at the
end, so "lost" and "duplicated" are counted against the truth, whatever the
processes said about themselves: an appended line with no copy in any buck
is lost; a line stored under two different event ids is a duplicate that
deduplication by id cannot remove (the porter's dedup is by id).

The power-loss model
--------------------
A buck started with ``ledger=True`` runs through ``fsync-ledger`` (below):
``helios.store.durable.fsync``, the one function every fsync of Helios goes
through, is wrapped so that after each fsync returns, the file's device,
inode and size are appended to a ledger file. A power cut is then: kill -9,
and every bucket file cut back to the last size the ledger has for its inode
(to nothing when it was never fsynced). That is the strict model: it assumes
the kernel wrote back nothing on its own. Linux does write dirty pages back
after ``vm.dirty_expire_centisecs`` (30 s by default) plus up to one
``dirty_writeback_centisecs`` (5 s) on its own, so a real power cut loses at
most what was written in the last ~35 s before it (and nothing earlier) that
no fsync covered; for runs shorter than that, the two models agree.

Helper processes (``python bench/_mesh.py COMMAND ...``)::

    write          numbered lines at a steady rate into one file per tailer
    record         numbered events at a steady rate through helios.client (HTTP)
    forward        a buck's whole-batch live feed into other bucks (a replica)
    fsync-ledger   a helios command whose fsyncs are written to a ledger
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from ingest import Proc, code_revision, cpu_name, helios_cmd, loadavg, read_stats  # noqa: E402

from helios import codec  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordReader  # noqa: E402
from helios.wire.ports import free_endpoint  # noqa: E402

MESH = Path(__file__).resolve()
LINE = re.compile(rb"k=(\d+) seq=(\d+) t=(\d+)")


def say(msg: str) -> None:
    print(msg, flush=True)


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------ processes


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` that runs now (the tailer's encoders, the
    index loaders of the porter)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(c) for c in f.read().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


class Service:
    """A process that can be stopped, killed with -9 (a crash) and started
    again with the same arguments; each life logs to NAME.LIFE.log."""

    def __init__(self, name: str, cmd: list[str], work: Path) -> None:
        self.name, self.cmd, self.work = name, cmd, work
        self.proc: Proc | None = None
        self.lives = 0

    def start(self) -> "Service":
        self.lives += 1
        self.proc = Proc(f"{self.name}.{self.lives}", self.cmd, self.work)
        return self

    @property
    def pid(self) -> int:
        return self.proc.p.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.p.poll() is None

    def check(self) -> None:
        if self.proc is not None:
            self.proc.check_alive()

    def kill9(self) -> None:
        """SIGKILL the process alone, as a crash would. Its children (which
        we started through it) are given 2 s to notice and exit, then killed."""
        if not self.alive():
            return
        kids = children(self.pid)
        self.proc.p.send_signal(signal.SIGKILL)
        self.proc.p.wait()
        self.proc._log.close()
        deadline = time.monotonic() + 2.0
        for kid in kids:
            while time.monotonic() < deadline and os.path.exists(f"/proc/{kid}"):
                time.sleep(0.02)
            try:
                os.kill(kid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is not None and not self.proc._log.closed:
            self.proc.terminate()
            self.proc.wait(30)

    def usage(self) -> dict:
        return self.proc.usage()


def _ephemeral() -> tuple[int, int]:
    try:
        lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_handed: set[tuple[str, int]] = set()  # never the same port twice in one run


def listen_endpoint(host: str) -> str:
    """A free port on ``host`` below the ephemeral range: a buck started
    again on it must not find it taken by the local end of some connection
    (to a 127.0.0.x address, a connection's local end is that address too),
    which an OS-assigned port can be."""
    import random
    import socket

    lo = _ephemeral()[0]
    for _ in range(200):
        port = random.randrange(max(1024, lo - 12000), lo)
        if (host, port) in _handed:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed.add((host, port))
        return f"tcp://{host}:{port}"
    return free_endpoint(host)


class Buck(Service):
    """A buck on ``host`` (a loopback address), with its endpoints chosen once,
    so that a restart binds the same ones and its senders reconnect by themselves."""

    def __init__(self, work: Path, name: str, host: str = "127.0.0.1", *, fsync: bool = False,
                 window: int = 60, http: bool = False, durability: str | None = None,
                 ledger: bool = False, env: str | None = None) -> None:
        self.host = host
        self.ingest, self.publish, self.query = (listen_endpoint(host) for _ in range(3))
        self.data = work / name
        args = ["buck", "--name", name, "--ingest", self.ingest, "--publish", self.publish,
                "--query", self.query, "--data-dir", str(self.data), "--stats-interval", "0.2",
                "--window", str(window), "--fsync" if fsync else "--no-fsync"]
        self.http_url = None
        if http:
            port = int(listen_endpoint(host).rsplit(":", 1)[1])
            self.http_url = f"http://{host}:{port}"
            args += ["--http", f"{host}:{port}"]
            if env:
                args += ["--http-env", env]
        if durability:
            args += ["--durability", durability]
        self.ledger = work / f"{name}.fsyncs" if ledger else None
        cmd = ledger_cmd(self.ledger, args) if ledger else helios_cmd(*args)
        super().__init__(name, cmd, work)

    def start(self, wait: bool = True) -> "Buck":
        super().start()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        pid = self.pid

        def ready():
            self.check()
            s = read_stats(self.data)
            return s is not None and s.get("pid") == pid and (not self.http_url or s.get("http"))
        wait_until(ready, timeout, f"{self.name} to start", 0.02)

    def stats(self) -> dict:
        return read_stats(self.data) or {}

    def power_cut(self) -> dict:
        """kill -9, then cut every bucket file back to its last fsynced size
        (see the module docstring). Returns what was cut."""
        assert self.ledger is not None, "a power cut needs a buck started with ledger=True"
        self.kill9()
        return self.cut_unsynced()

    def cut_unsynced(self) -> dict:
        """Cut every bucket file back to its last fsynced size (the buck is dead)."""
        assert not self.alive()
        synced = read_ledger(self.ledger)
        cut = {"files": 0, "bytes": 0, "never_synced": 0}
        for _, path in layout.list_buckets(layout.buckets_root(self.data)):
            st = path.stat()
            keep = synced.get((st.st_dev, st.st_ino), 0)
            if st.st_size > keep:
                with open(path, "r+b") as f:
                    f.truncate(keep)
                cut["files"] += 1
                cut["bytes"] += st.st_size - keep
                cut["never_synced"] += keep == 0
        return cut


def bucket_files(b: Buck) -> list[tuple[int, float]]:
    """(size, mtime) of each bucket file of a buck."""
    out = []
    for _, path in layout.list_buckets(layout.buckets_root(b.data)):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append((st.st_size, st.st_mtime))
    return out


def start_burst(work: Path, source: Path, n: int, make_tailer, connected: int) -> list[Service]:
    """``n`` tailers, each started on a file that does not exist yet and
    given it (a hard link to ``source``) only once it is connected to
    ``connected`` bucks: the burst is timed from its first stored event, and
    no tailer has read ahead while it was still connecting.
    ``make_tailer(i, path)`` returns the tailer's Service (not started)."""
    paths = [work / f"burst-{i}.log" for i in range(n)]
    tailers = [make_tailer(i, path).start() for i, path in enumerate(paths)]

    def ready():
        for t in tailers:
            t.check()
        return all((read_stats(work / f"state-{i}") or {}).get("bucks_connected", 0) >= connected
                   for i in range(n))
    try:
        wait_until(ready, 60, "the tailers to connect")
        for path in paths:
            os.link(source, path)
    except BaseException:
        for t in tailers:  # the caller never gets them: stop them here
            t.stop()
        raise
    return tailers


def burst(bucks: list[Buck], want: int, procs: list[Service], stall: float = 3.0,
          complete=None, timeout: float = 600) -> dict:
    """Wait while a burst is stored: until the bucks' stats count ``want``
    events, or their count stopped moving for ``stall`` seconds once
    ``complete(counts)`` holds. The first store is seen by polling the bucket
    files every 10 ms and the last is the newest bucket file's mtime, so the
    interval is exact to ~10 ms (stats.json is written only every 0.2 s)."""
    t_first = None
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while True:
        for s in procs:
            s.check()
        if t_first is None:
            if any(size for b in bucks for size, _ in bucket_files(b)):
                t_first = time.time()
            elif time.monotonic() > deadline:
                raise RuntimeError(f"nothing stored after {timeout:.0f} s")
            time.sleep(0.01)
            continue
        counts = [b.stats().get("events", 0) for b in bucks]
        n = sum(counts)
        now = time.monotonic()
        if n >= want:
            break
        if n != last:
            last, since = n, now
        elif now - since > stall and (complete is None or complete(counts)):
            break
        if now > deadline:
            raise RuntimeError(f"{n:,} of {want:,} copies stored after {timeout:.0f} s")
        time.sleep(0.05)
    time.sleep(0.3)  # the last stats.json
    counts = [b.stats().get("events", 0) for b in bucks]
    t_done = max(mtime for b in bucks for _, mtime in bucket_files(b))
    return {"t_first": t_first, "t_done": t_done, "seconds": t_done - t_first, "counts": counts,
            "t_done_each": [max((mt for _, mt in bucket_files(b)), default=None) for b in bucks]}


def ledger_cmd(ledger: Path, args: list[str]) -> list[str]:
    return [sys.executable, str(MESH), "fsync-ledger", str(ledger), "--log-level", "warning", *args]


def read_ledger(path: Path) -> dict[tuple[int, int], int]:
    """(device, inode) -> the largest size an fsync covered."""
    out: dict[tuple[int, int], int] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            key = (int(parts[0]), int(parts[1]))
            out[key] = max(out.get(key, 0), int(parts[2]))
    return out


def tailer_cmd(paths: list[Path], bucks: list[str], state: Path, *, env: str, host: str, copies: int = 2,
               spool: bool = True, spool_window: int = 2, jitter: float = 1.0, encoders: int | None = None,
               extra: tuple[str, ...] = ()) -> list[str]:
    """A tailer that reads its files from the beginning. A small spool window
    (2 s, instead of 60) compresses the time a spool re-send takes, so that
    re-sends happen inside a run of seconds; delays that wait for a re-send
    scale with the window."""
    args = ["tailer", "--env", env, "--host", host, "--start-at", "beginning", "--state-dir", str(state),
            "--copies", str(copies), "--spool" if spool else "--no-spool"]
    for p in paths:
        args += ["--path", str(p)]
    for b in bucks:
        args += ["--buck", b]
    if spool:
        args += ["--spool-window", str(spool_window), "--resend-jitter", str(jitter)]
    if encoders is not None:
        args += ["--encoders", str(encoders)]
    return helios_cmd(*args, *extra)


def helper(work: Path, name: str, *args: str) -> Service:
    """One of this module's helper processes (see the module docstring)."""
    return Service(name, [sys.executable, str(MESH), *args], work)


# ------------------------------------------------------------------ what was appended and stored


def appended(files: list[Path]) -> dict[tuple[int, int], int]:
    """(k, seq) -> append time (ns) of every line in the writer's files."""
    out: dict[tuple[int, int], int] = {}
    for path in files:
        with open(path, "rb") as f:
            for line in f:
                m = LINE.search(line)
                if m:
                    out[(int(m[1]), int(m[2]))] = int(m[3])
    return out


def recorded(out_file: Path) -> dict[tuple[int, int], int]:
    """(k, seq) -> record time (ns) of every event the ``record`` helper recorded."""
    data = json.loads(out_file.read_text())
    return {(data["k"], seq): t for seq, t in enumerate(data["times"])}


class Tally:
    """Copies of each numbered event in a set of stores, and whether any was
    stored under a second id (a duplicate dedup by id cannot remove)."""

    def __init__(self) -> None:
        self.copies: dict[tuple[int, int], int] = {}
        self.first_id: dict[tuple[int, int], bytes] = {}
        self.two_ids: set[tuple[int, int]] = set()
        self.unparsed = 0

    def add_rows(self, rows) -> None:
        copies, first_id = self.copies, self.first_id
        for row in rows:
            msg = row[8]
            m = LINE.search(msg if isinstance(msg, bytes) else str(msg).encode())
            if not m:
                self.unparsed += 1
                continue
            key = (int(m[1]), int(m[2]))
            copies[key] = copies.get(key, 0) + 1
            seen = first_id.setdefault(key, row[0])
            if seen != row[0]:
                self.two_ids.add(key)

    def add_event(self, event) -> None:
        self.add_rows([event])

    def verdict(self, truth: dict) -> dict:
        """Lost and duplicated of ``truth`` (what was appended or recorded)."""
        n = len(truth)
        lost = sum(1 for k in truth if k not in self.copies)
        dup = len(self.two_ids & truth.keys())
        stored = sum(c for k, c in self.copies.items() if k in truth)
        return {"events": n, "lost": lost, "dup": dup, "lost_ppm": lost / n * 1e6 if n else 0.0,
                "dup_ppm": dup / n * 1e6 if n else 0.0, "copies_per_event": stored / n if n else 0.0,
                "lost_keys": sorted(k for k in truth if k not in self.copies)[:20]}


def scan_bucks(data_dirs: list[Path], env: str) -> Tally:
    """Every copy of every event the bucks hold now, read from their files."""
    tally = Tally()
    for d in data_dirs:
        root = layout.buckets_root(d)
        if not (root / env).exists():
            continue
        for _, path in layout.list_buckets(root, env):
            for frame in RecordReader(path):
                tally.add_rows(codec.decode_rows(frame)[1])
    return tally


class Watcher(threading.Thread):
    """Reads what lands in the bucks' files as it lands (every ``interval``
    seconds), and notes when each numbered event was first stored anywhere
    and when ``want`` bucks held it. Its times are late by up to one
    interval plus the read itself (~20-40 ms)."""

    def __init__(self, data_dirs: list[Path], env: str, want: int = 1, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.dirs, self.env, self.want, self.interval = data_dirs, env, want, interval
        self.first: dict[tuple[int, int], float] = {}
        self.all: dict[tuple[int, int], float] = {}
        self.held: dict[tuple[int, int], int] = {}  # bitmask of the bucks seen holding it
        self.offsets: dict[Path, int] = {}
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.poll()
                self.stopping.wait(self.interval)
            self.poll()
        except BaseException as exc:  # reported by the harness, never silent
            self.error = exc

    def poll(self) -> None:
        for i, d in enumerate(self.dirs):
            root = layout.buckets_root(d) / self.env
            if not root.exists():
                continue
            bit = 1 << i
            for _, path in layout.list_buckets(layout.buckets_root(d), self.env):
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                start = self.offsets.get(path, 0)
                if size < start:
                    start = 0  # cut back (a power cut): read it again
                if size == start:
                    continue
                reader = RecordReader(path, start)
                for frame in reader:
                    now = time.time()
                    self.note(codec.decode_rows(frame)[1], bit, now)
                self.offsets[path] = reader.stats.end

    def note(self, rows, bit: int, now: float) -> None:
        first, held, want = self.first, self.held, self.want
        for row in rows:
            msg = row[8]
            m = LINE.search(msg if isinstance(msg, bytes) else str(msg).encode())
            if not m:
                continue
            key = (int(m[1]), int(m[2]))
            if key not in first:
                first[key] = now
            h = held.get(key, 0) | bit
            held[key] = h
            if key not in self.all and h.bit_count() >= want:
                self.all[key] = now

    def total(self) -> int:
        return len(self.first)

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        if self.error is not None:
            raise self.error


def delays(truth: dict, seen: dict) -> list[float]:
    """Seconds from append to ``seen`` of every event that was seen."""
    return [seen[k] - t / 1e9 for k, t in truth.items() if k in seen]


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def recovery(truth: dict, seen: dict, kills: list[float], end: float, within: float) -> list[float]:
    """For each fault at time ``kills[i]``: seconds until events appended from
    then on were stored within ``within`` seconds again (for good, until the
    next fault or ``end``); 0 when none was late. An event never stored is late.
    Events appended in the last ``2 * within`` before the next fault are left
    out: they can be late because of that fault, not this one."""
    out = []
    bounds = [*(t - 2 * within for t in kills[1:]), end]
    for t_k, t_next in zip(kills, bounds):
        last_late = None
        for key, t_ns in truth.items():
            t = t_ns / 1e9
            if t_k <= t < t_next:
                s = seen.get(key)
                if s is None or s - t > within:
                    last_late = t if last_late is None else max(last_late, t)
        out.append(0.0 if last_late is None else last_late - t_k)
    return out


# ------------------------------------------------------------------ reports


def table(headers: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return out


def fmt(v, spec: str = ",.0f", none: str = "-") -> str:
    return none if v is None else format(v, spec)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def machine() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "loadavg_start": loadavg(), "revision": code_revision(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "dirty_expire_s": _sysctl("vm/dirty_expire_centisecs", 100),
            "dirty_writeback_s": _sysctl("vm/dirty_writeback_centisecs", 100)}


def _sysctl(name: str, scale: float):
    try:
        return int(Path("/proc/sys", name).read_text()) / scale
    except (OSError, ValueError):
        return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ helper processes


def stamp_of(t: float) -> bytes:
    return time.strftime("%b %e %H:%M:%S", time.gmtime(t)).encode()


def cmd_write(a) -> None:
    """Append ``rate`` lines/s to each file for ``duration`` seconds, in small
    writes every 10 ms; each line says which file (k), its number and when it
    was written. SIGTERM stops it early."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    files = [Path(p) for p in a.files]
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for p in files]
    pad = b"x" * max(0, a.line_bytes - 80)
    written = [0] * len(files)
    start = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= a.duration:
            break
        due = int(a.rate * elapsed)
        now = time.time()
        t = time.time_ns()
        stamp = stamp_of(now)
        for k, fd in enumerate(fds):
            n = due - written[k]
            if n > 0:
                head = stamp + b" host%d app[%d]: k=%d seq=" % (a.first_k + k, k, a.first_k + k)
                os.write(fd, b"".join(b"%s%d t=%d %s\n" % (head, s, t, pad) for s in range(written[k], due)))
                written[k] = due
        stop.wait(0.01)
    for fd in fds:
        os.close(fd)


def cmd_record(a) -> None:
    """Record ``rate`` events/s through helios.client for ``duration`` seconds,
    then flush; write every record time and the recorder's stats to ``out``."""
    import logging

    from helios.client import Recorder

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = dict(bucks=a.bucks, environment=a.env, host="client", app="duralog", queue_size=1_000_000,
                    retry_for=a.retry_for, timeout=a.timeout, flush_timeout=0)
    if a.durability:
        settings["durability"] = a.durability
    rec = Recorder(**settings)
    times: list[int] = []
    start = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= a.duration:
            break
        due = int(a.rate * elapsed)
        while len(times) < due:
            t = time.time_ns()
            rec.record(message="k=%d seq=%d t=%d" % (a.k, len(times), t))
            times.append(t)
        stop.wait(0.01)
    flushed = rec.flush(timeout=a.flush)
    stats = rec.stats()
    rec.close(timeout=0)
    Path(a.out).write_text(json.dumps({"k": a.k, "times": times, "flushed": flushed, "stats": stats}, default=str))


def cmd_forward(a) -> None:
    """A replica feed: take the primary's whole-batch live stream (every
    stored frame, as stored) and PUSH each frame to every replica's ingest.
    A replica that is down misses what is sent meanwhile (the sender sockets
    are IMMEDIATE, as a tailer's are): asynchronous replication, no catch-up."""
    import zmq

    from helios.wire import live
    from helios.wire.sockets import SocketFactory

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    factory = SocketFactory()
    sub = factory.make("subscriber", a.source)
    sub.setsockopt(zmq.SUBSCRIBE, live.WHOLE)
    outs = [factory.make("sender", ep) for ep in a.to]
    counts = {"frames": 0, "missed": 0}
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    next_write = 0.0
    while not stop.is_set():
        if poller.poll(100):
            frames = sub.recv_multipart()
            counts["frames"] += 1
            for s in outs:
                try:
                    s.send(frames[1], zmq.NOBLOCK)
                except zmq.Again:
                    counts["missed"] += 1
        if time.monotonic() >= next_write and a.stats:
            Path(a.stats).write_text(json.dumps(counts))
            next_write = time.monotonic() + 1.0
    for s in [sub, *outs]:
        s.close(linger=0)


def cmd_fsync_ledger(argv: list[str]) -> None:
    """Run ``helios ARGS`` with every fsync recorded: (device, inode, size
    once the fsync returned), one line each, appended to LEDGER. The buck's
    loop is the only writer of its bucket files, so the size read right after
    an fsync returns is exactly what that fsync made durable."""
    ledger, args = argv[0], argv[1:]
    from helios.store import durable

    out = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    real = durable.fsync

    def fsync(fd: int) -> None:
        real(fd)
        st = os.fstat(fd)
        os.write(out, b"%d %d %d\n" % (st.st_dev, st.st_ino, st.st_size))

    durable.fsync = fsync
    sys.argv = ["helios", *args]
    from helios.cli import main

    main()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "fsync-ledger":
        cmd_fsync_ledger(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("files", nargs="+")
    w.add_argument("--rate", type=float, required=True, help="lines/s per file")
    w.add_argument("--duration", type=float, required=True)
    w.add_argument("--line-bytes", type=int, default=120)
    w.add_argument("--first-k", type=int, default=0)
    r = sub.add_parser("record")
    r.add_argument("--bucks", nargs="+", required=True)
    r.add_argument("--durability", default="")
    r.add_argument("--rate", type=float, required=True)
    r.add_argument("--duration", type=float, required=True)
    r.add_argument("--env", default="duralog")
    r.add_argument("--k", type=int, default=0)
    r.add_argument("--retry-for", type=float, default=120.0)
    r.add_argument("--timeout", type=float, default=2.0)
    r.add_argument("--flush", type=float, default=60.0)
    r.add_argument("--out", required=True)
    f = sub.add_parser("forward")
    f.add_argument("--from", dest="source", required=True)
    f.add_argument("--to", nargs="+", required=True)
    f.add_argument("--stats", default="")
    a = ap.parse_args()
    {"write": cmd_write, "record": cmd_record, "forward": cmd_forward}[a.cmd](a)


if __name__ == "__main__":
    main()
