#!/usr/bin/env python3
"""sortalog: "Why sort logged events by time?" and "Longer wait, better sort!"

Run from the repository root::

    .venv/bin/python bench/analyses/sortalog.py [--quick] [--out docs/analyses]

It runs the real mesh on this machine and writes ``OUT/sortalog.md`` with
its figures under ``OUT/sortalog/``:

1. **Load.** Two bucks (``helios buck``), ``--tailers`` tailer processes
   (``helios tailer``, spool on, each batch to both bucks) and
   ``--clients`` client processes (``helios.client.Recorder`` over ZeroMQ).
   A *source* is one stream of events with its own clock: a log file
   written by a simulated host (each file its own host name, clock skew,
   rate and write pattern; several files share one tailer process, since
   fifty tailer processes would not fit on two cores beside the rest), or
   one simulated host inside a client process. Clock skews: most within
   milliseconds, some hundreds of milliseconds, a few seconds to two
   minutes. Rates are bursty: a quiet rate plus bursts of hundreds of lines
   a second; a quarter of the files are block-buffered (written every 0.5 to
   5 s, as stdio and log4j buffers do) and some stamp lines up to 50 ms
   before writing them (threads racing for the file).
2. **Arrival at a buck.** While the load runs, the size of every bucket
   file of both bucks is sampled every 20 ms; a record's arrival time is the
   first sample that saw the file reach its end. Each buck's records, in
   file order, are its arrival order (spool re-sends included; "first
   copies" drops an event's later copies at that buck). The *mesh* order is
   the first arrival of each event at either buck.
3. **At the porter.** ``helios porter once`` indexes and archives every
   window (``--grace 0``, after the bucks closed them); the archive objects,
   read back in window order, are the order the porter hands on.
4. **Sort buffers.** For W in 0, 0.1, 1, 5, 30, 60, 300 s a sort buffer holds
   each event W seconds after its arrival, then releases it together with
   every buffered event of a smaller time, in time order (W = 0: no
   buffer). An event is *in place* when nothing released before it has a
   later time. Also the tumbling sort of whole arrival windows, which is
   what the porter does.
5. **What sorting buys**, on the porter's windows: the archive object of each
   window (``helios.archive.format``) with its events in time order (what
   ``pack`` writes) against the same events in arrival order; building a
   sqlite history index (``helios.index``) from them in either order; and
   substring queries on the two indexes. Plus the real history build
   (``helios.history.builder.fill``) from the porter's archive.

``--quick`` (under 3 minutes on 2 cores) shortens the load and uses 10-s
windows; the report has the same shape.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reporting  # noqa: E402
from reporting import ROOT, Report, fmt_int, fmt_pct, log, median  # noqa: E402

sys.path.insert(0, str(ROOT))
from helios import codec, loadgen  # noqa: E402
from helios.model import INVENTORY_APP  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordReader  # noqa: E402
from helios.wire.ports import free_endpoint  # noqa: E402

ENV = "sortalog"
NS = 1_000_000_000
WAITS = (0, 0.1, 1, 5, 30, 60, 300)
GRACE = 2.0  # the [porter] grace this analysis recommends (see the conclusion)
GOOD_CLOCK = 1.0  # sources whose clock is off by less than this many seconds have a "good clock"
GOOD_LABEL = f"mesh, sources with good clocks (skew < {GOOD_CLOCK:g} s)"
BUILDS = 3  # history index builds per order (medians)
QUERY_RUNS = 5  # runs of each query (medians; --quick: 3)
POLL = 0.02
PROFILES = {
    "full": dict(duration=240, window=60, spool_window=60, jitter=10.0, files=48, tailers=4, clients=2,
                 client_sources=6, rate=0.6, packed_windows=8),
    "quick": dict(duration=30, window=10, spool_window=10, jitter=2.0, files=48, tailers=4, clients=2,
                  client_sources=6, rate=0.6, packed_windows=8),
}


# --------------------------------------------------------------------------- the sources

class Source:
    """One stream of events with its own clock, rate and write pattern."""

    def __init__(self, rng: random.Random, name: str, rate_scale: float, file: bool) -> None:
        self.name = name
        u = rng.random()
        # Clock skew: NTP-synced hosts within milliseconds, some off by hundreds
        # of milliseconds, a few by seconds, and a rare one by minutes.
        if u < 0.62:
            self.skew = rng.gauss(0, 0.005)
        elif u < 0.88:
            self.skew = rng.gauss(0, 0.3)
        elif u < 0.97:
            self.skew = rng.choice((-1, 1)) * rng.uniform(1, 10)
        else:
            self.skew = rng.choice((-1, 1)) * rng.uniform(30, 120)
        self.quiet = rate_scale * math.exp(rng.uniform(math.log(0.5), math.log(20)))
        self.burst_every = rng.uniform(10, 60)        # mean seconds between bursts
        self.burst_rate = rate_scale * rng.uniform(100, 800)
        self.burst_len = (0.2, 3.0)
        self.flush_every = rng.uniform(0.5, 5) if file and rng.random() < 0.25 else 0.0
        self.stamp_jitter = rng.uniform(0, 0.05) if rng.random() < 0.3 else 0.0
        self.burst_until = 0.0
        self.owed = 0.0
        self.buf: list[str] = []
        self.next_flush = 0.0

    def describe(self) -> dict:
        return {"name": self.name, "skew_s": round(self.skew, 4), "quiet_per_s": round(self.quiet, 2),
                "burst_per_s": round(self.burst_rate), "flush_every_s": round(self.flush_every, 2),
                "stamp_jitter_s": round(self.stamp_jitter, 3)}

    def due(self, rng: random.Random, now: float, dt: float) -> int:
        if now >= self.burst_until and rng.random() < dt / self.burst_every:
            self.burst_until = now + rng.uniform(*self.burst_len)
        rate = self.burst_rate if now < self.burst_until else self.quiet
        self.owed += rate * dt
        n = int(self.owed)
        if rng.random() < self.owed - n:
            n += 1
        self.owed -= n
        return n

    def stamp(self, rng: random.Random, t: float) -> float:
        return t + self.skew - (rng.uniform(0, self.stamp_jitter) if self.stamp_jitter else 0.0)


def body(rng: random.Random, t: float) -> tuple[str, str]:
    """(app, message) of a realistic line (``helios.loadgen``'s templates)."""
    line = loadgen.rfc3164_line(rng, t)[16:-1]     # drop "Mmm dd hh:mm:ss " and the newline
    rest = line.split(" ", 1)[1]                    # drop its host
    return rest.split("[", 1)[0].split(":", 1)[0], rest


def iso(t: float) -> str:
    s = math.floor(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{int((t - s) * 1e6):06d}Z"


def sources(seed: int, n: int, prefix: str, rate_scale: float, file: bool) -> list[Source]:
    rng = random.Random(seed)
    return [Source(rng, f"{prefix}{i:02d}", rate_scale, file) for i in range(n)]


def ticks(duration: float, step: float = 0.005):
    """(now, dt) every ``step`` seconds for ``duration`` seconds."""
    end = time.time() + duration
    last = time.time()
    while True:
        time.sleep(step)
        now = time.time()
        if now >= end:
            return
        yield now, now - last
        last = now


def run_writer(a) -> None:
    """Role: append lines to the files of every tailer directory."""
    srcs = sources(a.seed, a.files, "h", a.rate, file=True)
    rng = random.Random(a.seed + 1)
    outs = []
    for i, s in enumerate(srcs):
        path = Path(a.dir) / f"t{i % a.tailers}" / f"{s.name}.log"
        outs.append(open(path, "a", buffering=1 << 20))
    lines = 0
    for now, dt in ticks(a.duration):
        for s, out in zip(srcs, outs):
            n = s.due(rng, now, dt)
            for k in range(n):
                t = s.stamp(rng, now - dt + (k + 1) * dt / n)
                app, msg = body(rng, t)
                s.buf.append(f"<134>1 {iso(t)} {s.name} {app} - - - {msg}\n")
            if s.buf and now >= s.next_flush:
                out.write("".join(s.buf))
                out.flush()
                lines += len(s.buf)
                s.buf.clear()
                s.next_flush = now + s.flush_every
    for s, out in zip(srcs, outs):
        out.write("".join(s.buf))
        lines += len(s.buf)
        out.close()
    print(json.dumps({"lines": lines}), flush=True)


def run_client(a) -> None:
    """Role: record events of ``--sources`` simulated hosts with the client library."""
    from helios.client import Recorder

    srcs = sources(a.seed, a.sources, f"c{a.index}-", a.rate, file=False)
    rng = random.Random(a.seed + 1)
    rec = Recorder(bucks=tuple(a.bucks), copies=2, environment=ENV, app="client", queue_size=200_000)
    n_sent = 0
    for now, dt in ticks(a.duration):
        for s in srcs:
            n = s.due(rng, now, dt)
            for k in range(n):
                t = s.stamp(rng, now - dt + (k + 1) * dt / n)
                app, msg = body(rng, t)
                rec.record({"time": t, "host": s.name, "app": app, "message": msg})
            n_sent += n
    rec.flush(60)
    stats = rec.stats()
    rec.close()
    print(json.dumps({"events": n_sent, "stats": stats}, default=str), flush=True)


# --------------------------------------------------------------------------- running the mesh

class SizeLog:
    """Samples the size of every bucket file of some bucks: a record's
    arrival is the first sample that saw its file reach the record's end."""

    def __init__(self, data_dirs: dict[str, Path]) -> None:
        self.dirs = data_dirs
        self.samples: dict[Path, tuple[list[float], list[int]]] = {}
        self._known: dict[str, list[Path]] = {b: [] for b in data_dirs}
        self._listed = 0.0

    def sample(self) -> None:
        now = time.time()
        if now - self._listed > 0.25:
            for b, d in self.dirs.items():
                self._known[b] = [p for _, p in layout.list_buckets(layout.buckets_root(d), ENV)]
            self._listed = now
        for paths in self._known.values():
            for p in paths:
                try:
                    size = p.stat().st_size
                except FileNotFoundError:
                    continue
                ts, sizes = self.samples.setdefault(p, ([], []))
                if not sizes or size != sizes[-1]:
                    ts.append(now)
                    sizes.append(size)

    def run_for(self, seconds: float, procs=()) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.sample()
            time.sleep(POLL)

    def arrival(self, path: Path, end_offset: int) -> float:
        ts, sizes = self.samples.get(path, ([], []))
        i = bisect.bisect_left(sizes, end_offset)
        return ts[i] if i < len(ts) else float("nan")


def buck_arrivals(name: str, data_dir: Path, sizes: SizeLog) -> dict:
    """Every event copy a buck stored, in arrival order: arrays of arrival
    (s), event time (ns) and id, and the source of each."""
    arr, times, ids, kinds, hosts = [], [], [], [], []
    for bname, path in layout.list_buckets(layout.buckets_root(data_dir), ENV):
        reader = RecordReader(path)
        for frame in reader:
            a = sizes.arrival(path, reader.stats.end)
            _, events = codec.decode(frame)
            for e in events:
                arr.append(a)
                times.append(e.time)
                ids.append(e.id)
                kinds.append(e.offset is not None)
                hosts.append(e.host)
    a = np.array(arr, dtype=float)
    if np.isnan(a).any():
        log(f"buck {name}: {int(np.isnan(a).sum())} events appended after sampling stopped; "
            "they take the last sample's time")
        a = np.where(np.isnan(a), np.nanmax(a), a)
    return {"arrival": a, "time": np.array(times, dtype=np.int64), "id": ids, "tailed": np.array(kinds),
            "host": np.array(hosts)}


def first_copies(stream: dict) -> dict:
    seen: set = set()
    keep = []
    for i, x in enumerate(stream["id"]):
        if x not in seen:
            seen.add(x)
            keep.append(i)
    k = np.array(keep, dtype=np.int64)
    return {"arrival": stream["arrival"][k], "time": stream["time"][k], "id": [stream["id"][i] for i in keep],
            "tailed": stream["tailed"][k], "host": stream["host"][k]}


def merge_streams(a: dict, b: dict) -> dict:
    """The first arrival of each event at either buck, in arrival order."""
    arrival = np.concatenate([a["arrival"], b["arrival"]])
    order = np.argsort(arrival, kind="stable")
    both = {"arrival": arrival[order], "time": np.concatenate([a["time"], b["time"]])[order],
            "tailed": np.concatenate([a["tailed"], b["tailed"]])[order],
            "host": np.concatenate([a["host"], b["host"]])[order]}
    ids = a["id"] + b["id"]
    both["id"] = [ids[i] for i in order]
    return first_copies(both)


# --------------------------------------------------------------------------- the measures

def in_order(times) -> np.ndarray:
    """Which events of a stream form its longest run in time order (a
    longest non-decreasing subsequence): the others are the fewest events
    that must move to put the stream in order."""
    times = list(times)
    n = len(times)
    tails: list = []
    tail_at: list[int] = []
    parent = [-1] * n
    right = bisect.bisect_right
    for i, t in enumerate(times):
        k = right(tails, t)
        if k == len(tails):
            tails.append(t)
            tail_at.append(i)
        else:
            tails[k] = t
            tail_at[k] = i
        parent[i] = tail_at[k - 1] if k else -1
    mask = np.zeros(n, dtype=bool)
    j = tail_at[-1] if tail_at else -1
    while j >= 0:
        mask[j] = True
        j = parent[j]
    return mask


def sorted_share(times) -> float:
    """The share of events in their place: the longest run in time order over all."""
    times = list(times)
    tails: list = []
    right = bisect.bisect_right
    for t in times:
        k = right(tails, t)
        if k == len(tails):
            tails.append(t)
        else:
            tails[k] = t
    return len(tails) / len(times) if times else 1.0


def displacement(times: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each event off the in-order run: how far (s) its time lies from
    the time of the last in-order event before it (positive: it is late,
    negative: early, as from a clock ahead)."""
    n = len(times)
    if not n or mask.all():
        return np.zeros(0)
    pos = np.where(mask, np.arange(n), -1)
    anchor = np.maximum.accumulate(pos)
    anchor[anchor < 0] = np.argmax(mask)          # before the first in-order event: that one
    off = ~mask
    return (times[anchor[off]] - times[off]) / NS


def delay(stream: dict) -> np.ndarray:
    """Arrival minus event time, s (negative for clocks ahead)."""
    return stream["arrival"] - stream["time"] / NS


def buffered(arrival: np.ndarray, times: np.ndarray, wait: float) -> list:
    """The event times in the order a sort buffer of ``wait`` seconds releases
    them (see the module docstring); ``wait`` 0 is the stream as it is."""
    if wait <= 0:
        return times.tolist()
    n = len(times)
    t = times.tolist()
    arr = arrival.tolist()
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop
    released = [False] * n
    out: list = []
    emit = out.append
    rel = 0
    for i in range(n):
        limit = arr[i] - wait
        while rel < i and arr[rel] <= limit:
            if not released[rel]:
                key = (t[rel], rel)
                while heap and heap[0] <= key:
                    ti, j = pop(heap)
                    released[j] = True
                    emit(ti)
            rel += 1
        push(heap, (t[i], i))
    while heap:
        emit(pop(heap)[0])
    return out


def in_place(arrival: np.ndarray, times: np.ndarray, wait: float) -> float:
    """The share of events a sort buffer of ``wait`` seconds puts in their place."""
    return sorted_share(buffered(arrival, times, wait))


def tumbling(arrival: np.ndarray, times: np.ndarray, width: float) -> float:
    """The share in place when each arrival window of ``width`` s is sorted
    whole and handed on after the one before (what the porter does)."""
    if not len(times):
        return 1.0
    win = np.floor(arrival / width)
    order = np.lexsort((times, win))
    return sorted_share(times[order].tolist())


def close_lag(sizes: "SizeLog", width: int) -> dict:
    """How long after a window's end its bucket file still grew (s), over
    every bucket file: what the porter's grace must cover on one clock."""
    lags = []
    for path, (ts, _) in sizes.samples.items():
        try:
            name = layout.parse_bucket_path(path.parent.parent.parent, path)
        except ValueError:
            continue
        lags.append(ts[-1] - name.end)
    lags = [x for x in lags if not math.isnan(x)]
    return {"windows": len(lags), "max_s": max(lags, default=0.0),
            "after_end": sum(1 for x in lags if x > 0)}


def quantiles(x: np.ndarray, qs=(0.5, 0.9, 0.99, 0.999, 1.0)) -> list[float]:
    return [float(np.quantile(x, q)) if len(x) else 0.0 for q in qs]


def secs(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) < 1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


# --------------------------------------------------------------------------- what sorting buys

def archive_windows(archive_dir: Path) -> list[tuple[str, list]]:
    from helios.archive import FolderArchive, load

    arch = FolderArchive(archive_dir)
    return [(key, load(arch, key)) for key in sorted(arch.list(f"{ENV}/"))]


ORDERS = ("time order", "arrival order", "source, then time")


def compression(windows: list[tuple[str, list]], rank: dict) -> dict:
    """Archive bytes of each window's events in time order (``pack``: what
    the archive holds), in arrival order and grouped by source then time
    (``pack_as_given``), and the time each pack took."""
    from helios.archive import format as fmt

    out = {"raw": 0, "events": 0, "bytes": dict.fromkeys(ORDERS, 0), "seconds": dict.fromkeys(ORDERS, 0.0)}
    for _, events in windows:
        given = {"arrival order": sorted(events, key=lambda e: rank[e.id]),
                 "source, then time": sorted(events, key=lambda e: (e.host, e.app, e.source, e.source_id, e.time,
                                                                     e.offset or 0, e.id))}
        for order in ORDERS:
            t0 = time.perf_counter()
            if order == "time order":
                data = fmt.pack(events, environment=ENV)
            else:
                data = fmt.pack_as_given(given[order], environment=ENV)
            out["seconds"][order] += time.perf_counter() - t0
            out["bytes"][order] += len(data)
            if order != "time order" and fmt.unpack(data) != given[order]:
                raise SystemExit(f"an object packed in {order} does not read back as written")
        out["raw"] += sum(len(e.message) + 1 for e in events)
        out["events"] += len(events)
    return out


def build_index(where: Path, name: str, windows: list[list]) -> tuple[float, object]:
    """Load each window's events, as given, into a fresh sqlite index (one
    loader process, like a history build); seconds taken."""
    from helios.index import open_index

    index = open_index("sqlite", str(where), name=name, workers=1)
    t0 = time.perf_counter()
    for events in windows:
        if events:
            index.load(ENV, events)
    return time.perf_counter() - t0, index


def history_fill(archive_dir: Path, where: Path, start: int, end: int) -> tuple[float, int]:
    """The real history build: ``plan`` the windows from the archive and
    ``fill`` a fresh sqlite index; (seconds, events loaded)."""
    from helios.archive import FolderArchive
    from helios.history import builder, sources as hsources
    from helios.index import open_index

    arch = FolderArchive(archive_dir)
    windows, _ = hsources.plan(ENV, start, end, archive=arch, qc=None, bucks=[], margin=0)
    index = open_index("sqlite", str(where), name="helios-history-fill", workers=1)
    t0 = time.perf_counter()
    counts = builder.fill(index, ENV, start, end, windows, open_sources=lambda: (arch, None, lambda: None))
    took = time.perf_counter() - t0
    index.close()
    return took, counts.events_loaded


def query_times(index, needles: list[tuple[str, str]], start: int, end: int, repeat: int) -> dict:
    from helios.index import parse_query

    out = {}
    for label, text in needles:
        q = parse_query(text, environment=ENV, start=start, end=end, limit=1000)
        runs, hits = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            hits = index.count(q) if label.endswith("count") else len(index.search(q))
            runs.append(time.perf_counter() - t0)
        out[label] = {"seconds": median(runs), "hits": hits}
    return out


# --------------------------------------------------------------------------- the run

def run_mesh(a, prof: dict, work: Path) -> dict:
    logs = work / "logs"
    logs.mkdir(parents=True)
    ingest = {b: free_endpoint() for b in "ab"}
    query = {b: free_endpoint() for b in "ab"}
    data = {b: work / f"buck-{b}" for b in "ab"}

    def start_bucks() -> list:
        procs = [reporting.helios(["buck", "--name", f"sortalog-{b}", "--ingest", ingest[b], "--publish", "",
                                   "--query", query[b], "--data-dir", str(data[b]), "--window",
                                   str(prof["window"]), "--stats-interval", "1"], logs / f"buck-{b}.out")
                 for b in "ab"]
        reporting.wait_for(lambda: all((data[b] / "stats.json").exists() for b in "ab"), 30, "the bucks")
        return procs

    bucks = start_bucks()
    files = work / "files"
    srcs = sources(a.seed, prof["files"], "h", prof["rate"], file=True)
    for i, s in enumerate(srcs):
        d = files / f"t{i % prof['tailers']}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{s.name}.log").touch()
    tailers = []
    for k in range(prof["tailers"]):
        tailers.append(reporting.helios(
            ["tailer", "--path", str(files / f"t{k}" / "*.log"), "--buck", ingest["a"], "--buck", ingest["b"],
             "--env", ENV, "--host", f"tailer-{k}", "--format", "rfc5424", "--start-at", "beginning",
             "--state-dir", str(work / f"tailer-{k}"), "--spool-window", str(prof["spool_window"]),
             "--resend-jitter", str(prof["jitter"])], logs / f"tailer-{k}.out"))
    time.sleep(2.0)  # the tailers open their files and connect
    sizes = SizeLog(data)
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--duration", str(prof["duration"]), "--rate", str(prof["rate"])]
    load = [subprocess.Popen([*me, "--role", "writer", "--dir", str(files), "--files", str(prof["files"]),
                              "--tailers", str(prof["tailers"]), "--seed", str(a.seed), *common],
                             stdout=subprocess.PIPE, stderr=open(logs / "writer.err", "wb"), cwd=ROOT)]
    for c in range(prof["clients"]):
        load.append(subprocess.Popen([*me, "--role", "client", "--index", str(c), "--sources",
                                      str(prof["client_sources"]), "--seed", str(a.seed + 100 + c), *common,
                                      "--bucks", ingest["a"], ingest["b"]],
                                     stdout=subprocess.PIPE, stderr=open(logs / f"client-{c}.err", "wb"), cwd=ROOT))
    log(f"load: {prof['files']} files in {prof['tailers']} tailer processes and {prof['clients']} client "
        f"processes of {prof['client_sources']} sources each, for {prof['duration']} s")
    t_load = time.time()
    while any(p.poll() is None for p in load):
        sizes.sample()
        time.sleep(POLL)
    results = [json.loads(p.stdout.read() or b"{}") for p in load]
    if any(p.returncode for p in load):
        raise SystemExit(f"a load process failed; see {logs}")
    written = results[0].get("lines", 0)
    recorded = sum(r.get("events", 0) for r in results[1:])
    # The last spool bucket closes at its window's end and is re-sent within the jitter.
    sw = prof["spool_window"]
    drain = (sw - time.time() % sw) + prof["jitter"] + 3
    log(f"load done in {time.time() - t_load:.0f} s ({written:,} lines, {recorded:,} client events); "
        f"waiting {drain:.0f} s for the last spool re-sends")
    sizes.run_for(drain)
    reporting.stop(tailers)
    sizes.run_for(1.0)
    reporting.stop(bucks)
    # Restarted bucks hold no writer open: every window that has ended is closed.
    wait = prof["window"] - time.time() % prof["window"] + 0.5
    time.sleep(wait)
    bucks = start_bucks()
    try:
        t0 = time.perf_counter()
        p = reporting.helios(["porter", "once", "--query", query["a"], "--query", query["b"], "--state-dir",
                              str(work / "porter"), "--index-dir", str(work / "index"), "--archive-dir",
                              str(work / "archive"), "--grace", "0", "--archive-age", "0", "--prune-age", "1e12",
                              "--workers", "1", "--timeout", "60"], logs / "porter.out")
        if p.wait() != 0:
            raise SystemExit(f"helios porter once failed; see {logs / 'porter.out'}")
        porter_s = time.perf_counter() - t0
    finally:
        reporting.stop(bucks)
    status = json.loads((work / "porter" / "status.json").read_text())
    run = {"data": {b: str(p) for b, p in data.items()}, "written": written, "recorded": recorded,
           "porter_s": porter_s, "porter_status": status, "sources": [s.describe() for s in srcs]
           + [s.describe() for c in range(prof["clients"])
              for s in sources(a.seed + 100 + c, prof["client_sources"], f"c{c}-", prof["rate"], False)],
           "samples": {str(p): v for p, v in sizes.samples.items()}}
    (work / "run.json").write_text(json.dumps(run))
    return run


def load_run(work: Path) -> dict:
    """What ``run_mesh`` left in ``work`` (to analyse a run again: ``--reuse``)."""
    run = json.loads((work / "run.json").read_text())
    sizes = SizeLog({})
    sizes.samples = {Path(p): (ts, ss) for p, (ts, ss) in run.pop("samples").items()}
    run["sizes"] = sizes
    run["data"] = {b: Path(p) for b, p in run["data"].items()}
    return run


def analyse(a, prof: dict, work: Path, run: dict, rep: Report) -> None:
    sizes = run["sizes"]
    log("reading what the bucks stored")
    bucks = {b: buck_arrivals(b, run["data"][b], sizes) for b in "ab"}
    firsts = {b: first_copies(s) for b, s in bucks.items()}
    mesh = merge_streams(firsts["a"], firsts["b"])
    windows = archive_windows(work / "archive")
    porter_times = np.array([e.time for _, evs in windows for e in evs], dtype=np.int64)
    n = len(mesh["time"])
    n_porter = len(porter_times)
    # The tailers' inventory records are archived but not indexed (helios.index.base.searchable).
    n_inventory = sum(e.app == INVENTORY_APP for _, evs in windows for e in evs)
    good = {s["name"] for s in run["sources"] if abs(s["skew_s"]) < GOOD_CLOCK}
    keep = np.isin(mesh["host"], sorted(good))
    mesh_good = {"arrival": mesh["arrival"][keep], "time": mesh["time"][keep]}
    streams = {
        "buck a, every copy": bucks["a"], "buck a, first copies": firsts["a"],
        "buck b, every copy": bucks["b"], "buck b, first copies": firsts["b"],
        "mesh (first arrival at either buck)": mesh,
        GOOD_LABEL: mesh_good,
    }
    rep.data["counts"] = {"lines_written": run["written"], "client_events": run["recorded"],
                          "distinct_events_at_bucks": n, "events_archived": n_porter,
                          "inventory_archived": n_inventory,
                          "copies": {b: len(s["time"]) for b, s in bucks.items()}}
    sources_n = len(run["sources"])
    rep.data["sources"] = run["sources"]

    # --- disorder on arrival
    log("measuring disorder")
    rows = []
    moved_of = {}
    porter_label = "porter (its windows in order, each sorted)"
    for label, st in list(streams.items()) + [(porter_label, {"time": porter_times})]:
        mask = in_order(st["time"].tolist())
        moved = displacement(st["time"], mask)
        moved_of[label] = moved
        share = float(1 - mask.mean()) if len(mask) else 0.0
        q = quantiles(np.abs(moved))
        rows.append([label, fmt_int(len(mask)), fmt_pct(share, 3),
                     fmt_pct(float(np.mean(moved < 0)) if len(moved) else 0.0, 1), *[secs(x) for x in q]])
        rep.data.setdefault("disorder", {})[label] = {
            "events": len(mask), "out_of_order": share,
            "early_share_of_moved": float(np.mean(moved < 0)) if len(moved) else 0.0,
            "displacement_quantiles_s": q}
    d = delay(mesh)
    dq = quantiles(d, (0.001, 0.01, 0.5, 0.99, 0.999))
    rep.data["delay_quantiles_s"] = dq
    rep.data["close_lag_s"] = close_lag(sizes, prof["window"])

    # --- sort buffers
    log("simulating sort buffers")
    curves = {}
    for label in ("buck a, every copy", "buck a, first copies", "mesh (first arrival at either buck)", GOOD_LABEL):
        st = streams[label]
        curves[label] = [in_place(st["arrival"], st["time"], w) for w in WAITS]
    tumble = tumbling(mesh["arrival"], mesh["time"], prof["window"])
    rep.data["in_place"] = {k: dict(zip(map(str, WAITS), v)) for k, v in curves.items()}
    rep.data["tumbling_window"] = {"width_s": prof["window"], "in_place": tumble}
    porter_in_place = sorted_share(porter_times.tolist())
    rep.data["porter_in_place"] = porter_in_place
    good_times = [e.time for _, evs in windows for e in evs if e.host in good]
    rep.data["porter_in_place_good_clocks"] = sorted_share(good_times)

    # --- what sorting buys
    log("packing the porter's windows sorted and unsorted")
    rank = {x: i for i, x in enumerate(mesh["id"])}
    missing = sum(1 for _, evs in windows for e in evs if e.id not in rank)
    if missing:
        raise SystemExit(f"{missing} archived events were not seen at the bucks")
    # zstd -19 is slow: at most ``packed_windows`` windows, spread over the run, are packed three ways.
    step = max(1, -(-len(windows) // prof["packed_windows"]))
    comp = compression(windows[::step], rank)
    comp["windows"] = len(windows[::step])
    comp["windows_total"] = len(windows)
    rep.data["compression"] = comp
    log("building history indexes sorted and unsorted")
    idx_dir = work / "history"
    shutil.rmtree(idx_dir, ignore_errors=True)
    sorted_windows = [evs for _, evs in windows]
    unsorted_windows = [sorted(evs, key=lambda e: rank[e.id]) for evs in sorted_windows]
    # Builds alternate between the orders, each into a fresh index; medians.
    builds: dict[str, list[float]] = {"sorted": [], "unsorted": []}
    last: dict = {}
    for r in range(BUILDS):
        for order, wins in (("sorted", sorted_windows), ("unsorted", unsorted_windows))[::1 if r % 2 else -1]:
            took, ix = build_index(idx_dir, f"helios-history-{order}-{r}", wins)
            builds[order].append(took)
            if order in last:
                last[order].close()
            last[order] = ix
    ix_sorted, ix_unsorted = last["sorted"], last["unsorted"]
    t_sorted, t_unsorted = median(builds["sorted"]), median(builds["unsorted"])
    start = int(porter_times.min()) if n_porter else 0
    end = int(porter_times.max()) + 1 if n_porter else 1
    fill_s, fill_n = history_fill(work / "archive", idx_dir, start, end)
    rep.data["history"] = {"sorted_s": t_sorted, "unsorted_s": t_unsorted, "events": n_porter, "runs": builds,
                           "fill_s": fill_s, "fill_events": fill_n}
    # Needles: a rare one (one event's hex value), a common phrase, and a
    # phrase within one minute in the middle of the run.
    sample = sorted_windows[len(sorted_windows) // 2] if sorted_windows else []
    rare = next((tok for e in sample for tok in e.message.split() if len(tok) == 12
                 and all(c in b"0123456789abcdef" for c in tok)), b"00deadbeef00").decode()
    mid = (start + end) // 2
    needles = [("rare substring", f'"{rare}"'), ("common phrase", '"payment declined"'),
               ("common phrase, count", '"Failed password"')]
    repeat = 3 if a.quick else QUERY_RUNS
    q_sorted = query_times(ix_sorted, needles, start, end, repeat)
    q_unsorted = query_times(ix_unsorted, needles, start, end, repeat)
    minute = [("phrase in one minute", '"session closed"')]
    q_sorted.update(query_times(ix_sorted, minute, mid - 30 * NS, mid + 30 * NS, repeat))
    q_unsorted.update(query_times(ix_unsorted, minute, mid - 30 * NS, mid + 30 * NS, repeat))
    rep.data["queries"] = {"sorted": q_sorted, "unsorted": q_unsorted}
    ix_sorted.close()
    ix_unsorted.close()

    write_report(a, prof, run, rep, streams, moved_of, curves, tumble, porter_in_place, comp, d, dq, rows,
                 sources_n, q_sorted, q_unsorted)


def write_report(a, prof, run, rep, streams, moved_of, curves, tumble, porter_in_place, comp, d, dq, rows,
                 sources_n, q_sorted, q_unsorted) -> None:
    import matplotlib.pyplot as plt

    c = rep.data["counts"]
    h = rep.data["history"]
    lag = rep.data["close_lag_s"]
    rep.text(
        "*Why sort logged events by time, and how long to wait before sorting?* This report is written by "
        "`bench/analyses/sortalog.py`; every figure below comes from the run it describes.",
        "## Command",
        f"```\n{reporting.command_line()}\n```",
        reporting.provenance(),
        "## What ran",
        f"Two bucks (`helios buck`, {prof['window']}-s windows), {prof['tailers']} tailer processes "
        f"(`helios tailer`: spool on, {prof['spool_window']}-s spool buckets re-sent within "
        f"{prof['jitter']:g} s, each batch to both bucks) following {prof['files']} files, and "
        f"{prof['clients']} client processes (`helios.client.Recorder` over ZeroMQ, each batch to both "
        f"bucks) recording for {prof['client_sources']} simulated hosts each: **{sources_n} sources** for "
        f"{prof['duration']:g} s. A *source* is one stream with its own clock: a file written by one "
        "simulated host (its own host name, clock skew, rate and write pattern; twelve files share a tailer "
        "process because fifty tailer processes do not fit on two cores beside the bucks), or one "
        "simulated host inside a client process. Skews (drawn per source): 62 % within a few ms, 26 % "
        "about 0.3 s, 9 % 1 to 10 s, 3 % 30 to 120 s, ahead or behind. Rates: a quiet rate of 0.5 to 20 "
        "lines/s plus bursts of 100 to 800 lines/s lasting 0.2 to 3 s every 10 to 60 s on average; a "
        "quarter of the files are block-buffered (written every 0.5 to 5 s) and 30 % of the sources stamp "
        "lines up to 50 ms before writing them (threads racing for a file). Every source and its settings "
        f"are in `{rep.name}/results.json`.",
        f"They wrote {c['lines_written']:,} lines and recorded {c['client_events']:,} client events; the bucks "
        f"hold {c['distinct_events_at_bucks']:,} distinct events ({c['copies']['a']:,} copies in buck a, "
        f"{c['copies']['b']:,} in buck b: both live copies, plus the spool re-sends), and the porter "
        f"(`helios porter once`, {run['porter_s']:.0f} s) indexed and archived {c['events_archived']:,}.",
        "Arrival times: every bucket file's size was sampled every 20 ms during the run; a record arrived "
        "at the first sample that saw its end, so arrival times are good to about 20 ms (finer waits than "
        "that cannot be told apart).",
        "## How out of order events arrive",
        "*Out of order* is the share of events off the stream's longest run in time order: the fewest "
        "events that must be moved to sort it (one host whose clock is a minute ahead thus counts as its "
        "own events, not as everyone else's). An event that must move is *late* (its time lies behind the "
        "in-order event before it) or *early* (ahead of it: a clock that runs ahead); its displacement is "
        "that distance in time. Quantiles are over the events that must move.",
    )
    rep.table(["stream", "events", "out of order", "of which early", "displacement p50", "p90", "p99",
               "p99.9", "max"], rows)
    rep.text(
        f"Delay from event time to first arrival at a buck (negative: the source's clock is ahead): "
        f"p0.1 {secs(dq[0])}, p1 {secs(dq[1])}, median {secs(dq[2])}, p99 {secs(dq[3])}, "
        f"p99.9 {secs(dq[4])}. Its spread is mostly the clock skews; the transport adds tens of ms, a "
        f"buffered file up to its flush interval, and a spool re-send up to a spool window.",
        f"Bucket files stopped growing at most {secs(lag['max_s'])} after their window's end "
        f"({lag['after_end']} of {lag['windows']} files grew at all after it): a buck files a batch by "
        "the time it arrives, on its own clock.",
    )
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for label, moved in moved_of.items():
        x = np.sort(np.abs(moved))
        if len(x):
            n_all = rep.data["disorder"][label]["events"]
            ax[0].plot(x, (len(x) - np.arange(len(x))) / n_all, label=label)
    ax[0].set_xscale("log")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("displacement (s)")
    ax[0].set_ylabel("share of all events displaced this far or more")
    ax[0].set_title("Out of order on arrival")
    ax[0].legend(fontsize=7)
    ax[0].grid(True, which="both", alpha=0.3)
    ds = np.sort(d)
    ax[1].plot(ds, np.arange(len(ds)) / max(1, len(ds)))
    ax[1].set_xscale("symlog", linthresh=0.01)
    ticks = [-100, -1, -0.01, 0, 0.01, 1, 100]
    ax[1].set_xticks(ticks)
    ax[1].set_xticklabels([f"{t:g}" for t in ticks])
    ax[1].set_xlabel("first arrival - event time (s)")
    ax[1].set_ylabel("share of events")
    ax[1].set_title("Delay to first arrival (clock skew included)")
    ax[1].grid(True, which="both", alpha=0.3)
    rep.figure(fig, "disorder", "Left: how far out-of-order events are displaced, per stream. Right: the "
               "delay from event time to first arrival at a buck.")

    rep.text("## Longer wait, better sort",
             "A sort buffer of W seconds holds each event W seconds after its arrival, then releases it with "
             "every buffered event of an earlier time, in time order. Share of events in their place (as "
             "above: on the longest run in time order) in what it releases, and events out of place per "
             "million:")
    rows2 = []
    for label, ys in curves.items():
        rows2.append([label] + [fmt_pct(y, 3) for y in ys])
        rows2.append(["  out of place per million"] + [fmt_int((1 - y) * 1e6) for y in ys])
    rep.table(["stream"] + [f"W = {w:g} s" for w in WAITS], rows2)
    rep.text(f"Sorting each {prof['window']}-s arrival window whole and handing the windows on in order (the "
             f"porter's way) puts {fmt_pct(tumble, 3)} of the mesh's events in place; the porter's real "
             f"output, its archive objects read in window order, has {fmt_pct(porter_in_place, 3)} in place.")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [max(w, 0.01) for w in WAITS]
    for label, ys in curves.items():
        ax.plot(xs, [max(1 - y, 1e-7) for y in ys], marker="o", label=label)
    ax.axhline(max(1 - porter_in_place, 1e-7), color="gray", ls="--",
               label=f"porter: {prof['window']}-s windows, each sorted")
    ax.axhline(max(1 - rep.data["porter_in_place_good_clocks"], 1e-7), color="gray", ls=":",
               label="porter, sources with good clocks")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(["0"] + [f"{w:g}" for w in WAITS[1:]])
    ax.set_xlabel("sort buffer W (s)")
    ax.set_ylabel("share of events out of place")
    ax.set_title("Longer wait, better sort")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    rep.figure(fig, "longer-wait-better-sort", "Longer wait, better sort: the share of events a sort "
               "buffer of W seconds leaves out of place (log scale; 1e-7 stands for none).")

    b = comp["bytes"]
    secs_ = comp["seconds"]
    rep.text("## What sorting buys",
             "Each window the porter archived, packed by `helios.archive.format` in three orders: time order "
             "(`pack`, what the archive holds), arrival order, and grouped by source then time "
             "(`pack_as_given`); the same windows loaded into a fresh sqlite index (one loader process, as a "
             "history build loads) in time and in arrival order; and substring queries on the two indexes "
             f"(median of {3 if a.quick else 5} runs, at most 1000 hits fetched).")
    which = (f"all {comp['windows_total']} windows" if comp["windows"] == comp["windows_total"] else
             f"{comp['windows']} of the {comp['windows_total']} windows, spread over the run (zstd -19 is slow)")
    rep.text(f"Archive objects: {which}, {comp['events']:,} events.")
    rep.table(["archive objects", "bytes", "raw lines / object", "pack s"],
              [[o, fmt_int(b[o]), f"{comp['raw'] / b[o]:.2f}", f"{secs_[o]:.2f}"] for o in ORDERS],
              align="lrrr")
    rep.table(["index", "time order", "arrival order", "time / arrival"], [
        ["history index build, s", f"{h['sorted_s']:.2f}", f"{h['unsorted_s']:.2f}",
         f"{h['sorted_s'] / h['unsorted_s']:.2f}"],
        ["history index build, events/s", fmt_int(h["events"] / h["sorted_s"]),
         fmt_int(h["events"] / h["unsorted_s"]), ""],
    ] + [[f"query: {k} ({q_sorted[k]['hits']:,} hits), ms", f"{q_sorted[k]['seconds'] * 1e3:.1f}",
          f"{q_unsorted[k]['seconds'] * 1e3:.1f}", f"{q_sorted[k]['seconds'] / q_unsorted[k]['seconds']:.2f}"]
         for k in q_sorted], align="lrrr")
    rep.text(f"The real history build (`helios.history.builder.fill` over the porter's archive) loaded "
             f"{h['fill_events']:,} events in {h['fill_s']:.2f} s "
             f"({fmt_int(h['fill_events'] / h['fill_s'] if h['fill_s'] else 0)} events/s).")
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
    ax[0].bar([o.replace(", ", ",\n") for o in ORDERS], [b[o] / 1e6 for o in ORDERS], color=["C0", "C1", "C2"])
    ax[0].set_ylabel("archive MB")
    ax[0].tick_params(axis="x", labelsize=8)
    ax[1].bar(["time order", "arrival order"], [h["events"] / h["sorted_s"], h["events"] / h["unsorted_s"]],
              color=["C0", "C1"])
    ax[1].set_ylabel("history index build, events/s")
    keys = list(q_sorted)
    x = np.arange(len(keys))
    ax[2].bar(x - 0.2, [q_sorted[k]["seconds"] * 1e3 for k in keys], 0.4, label="time order")
    ax[2].bar(x + 0.2, [q_unsorted[k]["seconds"] * 1e3 for k in keys], 0.4, label="arrival order")
    ax[2].set_xticks(x)
    ax[2].set_xticklabels([k.replace(", ", "\n").replace(" in ", "\nin ") for k in keys], fontsize=7)
    ax[2].set_ylabel("query ms")
    ax[2].legend(fontsize=7)
    rep.figure(fig, "sorting-buys", "What sorting buys: archive size in three orders, history index build "
               "speed and query time in time order against arrival order.")
    conclusion(prof, rep, curves, tumble, porter_in_place, comp, h, q_sorted, q_unsorted)


def faster(ratio: float) -> str:
    """A time ratio in words; within 15 % is not told apart on a shared machine."""
    if ratio < 0.85:
        return "faster"
    if ratio > 1.15:
        return "slower"
    return "no difference beyond the noise"


def conclusion(prof, rep, curves, tumble, porter_in_place, comp, h, q_sorted, q_unsorted) -> None:
    """The conclusion, from the figures (so a run that disagrees says so)."""
    mesh = dict(zip(WAITS, curves["mesh (first arrival at either buck)"]))
    good = dict(zip(WAITS, curves[GOOD_LABEL]))
    buck_all = dict(zip(WAITS, curves["buck a, every copy"]))
    w_good = next((w for w in WAITS if good[w] >= 0.9999), None)
    porter_good = rep.data["porter_in_place_good_clocks"]
    like = max((w for w in WAITS if good[w] <= porter_good + 1e-9), default=0)
    beyond = next((w for w in WAITS if good[w] > porter_good + 1e-9), None)
    bad = [s for s in rep.data.get("sources", []) if abs(s["skew_s"]) >= GOOD_CLOCK]
    worst = max((abs(s["skew_s"]) for s in bad), default=0.0)
    b = comp["bytes"]
    time_vs_arrival = b["time order"] / b["arrival order"]
    by_source = b["source, then time"] / b["time order"]
    build = h["sorted_s"] / h["unsorted_s"]
    ranged = [k for k in q_sorted if "count" not in k]
    qratio = median(q_sorted[k]["seconds"] / q_unsorted[k]["seconds"] for k in ranged)
    lag = rep.data["close_lag_s"]
    rep.data["conclusion"] = {"wait_for_99_99_good": w_good, "porter_good": porter_good,
                              "time_vs_arrival_bytes": time_vs_arrival, "source_vs_time_bytes": by_source,
                              "build_sorted_over_unsorted": build, "query_sorted_over_unsorted": qratio,
                              "grace_s": GRACE}
    rep.text(
        "## Conclusion",
        f"- **Longer wait, better sort, as long as the clocks are good.** On arrival, {fmt_pct(1 - good[0], 1)} "
        "of the events of sources with good clocks are out of place (batches of many sources interleave, "
        "block-buffered files arrive seconds late, threads stamp lines a few ms before writing them); a sort "
        + (f"buffer of {w_good:g} s puts {fmt_pct(good[w_good], 3)} of them in place. " if w_good is not None
           else "buffer of any length tried leaves some out of place. ")
        + f"Over all sources a wait of 5 s puts {fmt_pct(mesh[5], 1)} in place, 60 s {fmt_pct(mesh[60], 1)} and "
        f"300 s {fmt_pct(mesh[300], 1)}: {len(bad)} of the sources have clocks off by a second or more "
        f"(up to {worst:.0f} s), and an event stamped by a clock off by more than the wait is out of place "
        "whatever the buffer. Its time is wrong anyway; only the source's NTP can fix it.",
        f"- **The porter's sort is the one that counts, and grace adds nothing to it.** The porter sorts each "
        f"{prof['window']}-s arrival window whole and hands the windows on in order: "
        f"{fmt_pct(porter_good, 3)} of the good-clock events end up in place ({fmt_pct(porter_in_place, 2)} of "
        f"all), " + (f"better than a {like:g}-s sort buffer and not as well as a {beyond:g}-s one" if beyond is not None
                     else f"as well as a {like:g}-s sort buffer") + ", without holding anything back beyond the "
        "window it must wait for anyway; what it misses are late events that arrived just after a window's end "
        "and went into the next one (the index orders them by time anyway, and the next window's archive object "
        "holds them, sorted within it). It loads a window only once every buck reports it closed, and a buck files each "
        "batch by the time it arrives, on its own clock, so a window stops growing at its end (here: at most "
        f"{secs(lag['max_s'])} after it, the sampling's resolution). An event that arrives late lands in a "
        "later window whatever the porter waits, so a longer grace delays the index without putting a single "
        "event in a better place: `[porter] grace` has only to cover the porter's and the bucks' clocks "
        "disagreeing, and an NTP step. Its default becomes "
        f"**{GRACE:g} s** (was 10 s).",
        f"- **Bucks should not sort.** A buck's stream with the spool re-sends is {fmt_pct(1 - buck_all[0], 1)} out "
        "of place; a sort buffer there would hold the live feed back by its wait, and the porter sorts every "
        "window before anything reaches the index or the archive anyway. Downstream, sorting buys less than "
        f"one would think: the archive in time order is {time_vs_arrival:.3f}x the size of the same events in "
        "arrival order (" + ("a batch is one source's consecutive lines, and interleaving sources by time costs "
                             "zstd context; " if time_vs_arrival > 1 else "")
        + f"grouped by source then time it would be {by_source:.3f}x of time order), building a history index "
        f"from time order takes {build:.2f}x the time of arrival order ({faster(build)}; median of {BUILDS} builds "
        f"each), and queries with a time range and a limit take {qratio:.2f}x the time on a time-ordered index "
        f"({faster(qratio)}; median over the queries of {QUERY_RUNS} runs each, milliseconds on a shared "
        "machine). The archive keeps time order for its contract: objects are deterministic "
        "(two porters write the same bytes), are cut by time with a binary search (history builds keep only "
        "their range) and merge in one pass.",
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run (under 3 minutes) with the same report")
    ap.add_argument("--out", type=Path, default=reporting.DEFAULT_OUT, help="where the report goes [docs/analyses]")
    ap.add_argument("--work", type=Path, help="working directory (default: a fresh temporary one, removed after)")
    ap.add_argument("--duration", type=float, help="seconds of load (default: the profile's)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--reuse", action="store_true", help="analyse the run already in --work again")
    # Roles of the child processes this script starts.
    ap.add_argument("--role", choices=("writer", "client"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--files", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tailers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sources", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--bucks", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "writer":
        run_writer(a)
        return 0
    if a.role == "client":
        run_client(a)
        return 0

    prof = dict(PROFILES["quick" if a.quick else "full"])
    if a.duration:
        prof["duration"] = a.duration
    work = a.work or Path(tempfile.mkdtemp(prefix="sortalog-"))
    if a.work and work.exists() and not a.reuse:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        rep = Report("sortalog", a.out, "sortalog: why sort logged events by time, and how long to wait")
        run = load_run(work) if a.reuse else (run_mesh(a, prof, work) and load_run(work))
        analyse(a, prof, work, run, rep)
        rep.data["profile"] = prof
        rep.data["sources"] = run["sources"]
        rep.data["seconds"] = time.time() - t0
        path = rep.write()
        log(f"wrote {path} in {time.time() - t0:.0f} s")
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
