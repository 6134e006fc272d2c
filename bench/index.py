#!/usr/bin/env python3
"""Index benchmark: events/s into the embedded sqlite index, against what
SQLite FTS5 itself takes for the same layout, in the same run.

Run from the repository root::

    .venv/bin/python bench/index.py [--events 5000000] [--repeat 3] [--layouts trigram,trigram+words]

Input: ``--events`` realistic RFC 3164 lines (``helios.loadgen``), written
once to ``bench/out/index-input-N.log`` and parsed with ``helios.parse``
(time, host, app, severity) into Events, in chunks of ``--chunk`` events;
each (host, app) is a tailed file of its own (about 100), with growing
offsets and tailed-line ids. Only the loading is timed; making the next
chunk is not.

For each layout (``trigram``: the default, one FTS5 trigram table;
``trigram+words``: plus a unicode61 term table) and each repeat:

1. **FTS5 ceiling, 1 process** (``../shared/anchors/sqlite/fts5_limits.py``
   style): a plain table ``ev(id INTEGER PRIMARY KEY, t, host, app, msg)``
   and the same FTS5 table(s), WAL, synchronous=NORMAL, 200 MB cache,
   ``executemany`` in slices of 20,000 rows, one transaction per chunk.
2. **Helios, 1 process**: ``SqliteIndex.load`` per chunk (every Event
   field kept, ids deduplicated, one file per day and shard).
3. **FTS5 ceiling, 2 processes**: two processes, each inserting every other
   event into its own file; they start each chunk together (a barrier) and
   the chunk takes as long as the slower one.
4. **Helios, 2 processes**: ``SqliteIndex(workers=2).load`` per chunk (the
   parent splits by shard and hands each half to a loader process).

The ratio is Helios over the ceiling for the same layout and process count.
Peak RSS (VmHWM, reset per phase) of the loading processes, the files'
size, and query times on the 1-process index: a rare substring and a rare
word (limit 100), a common word and a common phrase (limit 100), each the
median of 5, beside the ceiling's own trigram lookup (AND of trigrams, LIKE
recheck) and a full-scan LIKE for the rare substring.

``--repeat N`` runs everything N times (odd repeats run the ceiling first,
even ones Helios first) and quotes medians and ranges. The markdown block at
the end is ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios import loadgen  # noqa: E402
from helios.index import parse_query  # noqa: E402
from helios.index.sqlite import SqliteIndex  # noqa: E402
from helios.model import Event, line_id, source_key  # noqa: E402
from helios.parse import Parser  # noqa: E402

OUT = ROOT / "bench" / "out"
ENV = "bench"
START = 1_767_225_600            # 2026-01-01T00:00:00Z: the input's first line
RAW_SLICE = 20_000
LAYOUTS = {
    "trigram": ["CREATE VIRTUAL TABLE x USING fts5(msg, content='', tokenize='trigram', detail='none')"],
    "trigram+words": ["CREATE VIRTUAL TABLE x USING fts5(msg, content='', detail='none')",
                      "CREATE VIRTUAL TABLE y USING fts5(msg, content='', tokenize='trigram', detail='none')"],
}


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ input

def input_file(events: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"index-input-{events}.log"
    meta = path.with_suffix(".json")
    try:
        known = json.loads(meta.read_text())
        if known["lines"] >= events and path.stat().st_size == known["bytes"]:
            return path
    except (OSError, ValueError, KeyError):
        pass
    log(f"writing {events:,} lines to {path} ...")
    lines = loadgen.write_file(path, events * 135, seed=7, start=START)
    while lines < events:                               # short lines: write more
        lines = loadgen.write_file(path, int(path.stat().st_size * events / lines * 1.02) + 4096, seed=7, start=START)
    meta.write_text(json.dumps({"lines": lines, "bytes": path.stat().st_size}))
    return path


def chunks(path: Path, events: int, size: int):
    """(lines, Columns) per chunk of ``size`` lines, ``events`` lines in all."""
    parser = Parser("rfc3164")
    now = (START + 86_400) * 10**9
    with open(path, "rb") as f:
        left = events
        while left > 0:
            lines = list(islice(f, min(size, left)))
            if not lines:
                break
            left -= len(lines)
            yield lines, parser.parse_chunk(b"".join(lines), now)


class Sources:
    """One tailed file per (host, app) of the input (about 100 files, as on a
    small fleet), each with its identity and growing offset: what the tailer
    gives the events, ids included."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], list] = {}

    def to_events(self, lines: list[bytes], cols) -> list[Event]:
        out = []
        now = time.time_ns()
        files = self.files
        for raw, msg, t, host, app, sev in zip(lines, cols.lines, cols.times, cols.hosts, cols.apps, cols.severities):
            f = files.get((host, app))
            if f is None:
                f = files[(host, app)] = [source_key(1, len(files), f"{host}/{app}".encode()),
                                          f"/var/log/{host}/{app}.log", 0]
            key, path, offset = f
            out.append(Event(line_id(key, offset), t, now, host, app, sev, path, offset, msg, None, key, ENV))
            f[2] = offset + len(raw)
        return out


def to_raw_rows(cols, first_rowid: int, part: int | None = None) -> list[tuple]:
    rows = [(first_rowid + i, t, h, a, m.decode("utf-8", "replace"))
            for i, (m, t, h, a) in enumerate(zip(cols.lines, cols.times, cols.hosts, cols.apps))]
    return rows if part is None else rows[part::2]


# ------------------------------------------------------------------ resources

def reset_peak(pid: int | str = "self") -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb(pid: int | str = "self") -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_mb(path: Path) -> float:
    if path.is_file():
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


# ------------------------------------------------------------------ the FTS5 ceiling

def raw_open(path: Path, layout: str, automerge: int | None = None) -> tuple[sqlite3.Connection, list[str]]:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-200000")
    db.execute("CREATE TABLE ev(id INTEGER PRIMARY KEY, t INTEGER, host TEXT, app TEXT, msg TEXT)")
    names = []
    for ddl in LAYOUTS[layout]:
        db.execute(ddl)
        names.append(ddl.split()[3])
        if automerge is not None:
            db.execute(f"INSERT INTO {names[-1]}({names[-1]}, rank) VALUES('automerge', {automerge})")
    return db, names


def raw_insert(db: sqlite3.Connection, names: list[str], rows: list[tuple]) -> tuple[float, float]:
    """Insert as fts5_limits.py does; (wall, CPU) seconds."""
    t, c = time.perf_counter(), time.process_time()
    with db:
        for k in range(0, len(rows), RAW_SLICE):
            part = rows[k:k + RAW_SLICE]
            db.executemany("INSERT INTO ev VALUES (?,?,?,?,?)", part)
            for name in names:
                db.executemany(f"INSERT INTO {name}(rowid, msg) VALUES (?,?)", [(r[0], r[4]) for r in part])
    return time.perf_counter() - t, time.process_time() - c


def raw_one(path: Path, events: int, chunk: int, layout: str, work: Path, automerge: int | None = None) -> dict:
    db_path = work / ("raw.db" if automerge is None else f"raw-am{automerge}.db")
    db, names = raw_open(db_path, layout, automerge)
    reset_peak()
    elapsed, cpu, rowid = 0.0, 0.0, 1
    for _, cols in chunks(path, events, chunk):
        rows = to_raw_rows(cols, rowid)
        rowid += len(rows)
        wall, c = raw_insert(db, names, rows)
        elapsed, cpu = elapsed + wall, cpu + c
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"eps": events / elapsed, "seconds": elapsed, "cpu_us": cpu / events * 1e6, "rss_mb": peak_mb(),
            "mb": dir_mb(db_path)}


def _raw_worker(part: int, path: str, events: int, chunk: int, layout: str, work: str, barrier, results) -> None:
    db, names = raw_open(Path(work) / f"raw{part}.db", layout)
    reset_peak()
    times, cpu, rowid = [], 0.0, 1
    for _, cols in chunks(Path(path), events, chunk):
        rows = to_raw_rows(cols, rowid, part)
        rowid += len(cols.lines)
        barrier.wait()                  # both start the chunk together
        wall, c = raw_insert(db, names, rows)
        times.append(wall)
        cpu += c
        barrier.wait()                  # and neither makes its next chunk while the other inserts
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    results.put((part, times, cpu, peak_mb()))


def raw_two(path: Path, events: int, chunk: int, layout: str, work: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_raw_worker, args=(k, str(path), events, chunk, layout, str(work), barrier, results))
             for k in range(2)]
    for p in procs:
        p.start()
    got = {k: (times, cpu, rss) for k, times, cpu, rss in (results.get() for _ in procs)}
    for p in procs:
        p.join()
    elapsed = sum(max(a, b) for a, b in zip(got[0][0], got[1][0]))
    return {"eps": events / elapsed, "seconds": elapsed, "cpu_us": (got[0][1] + got[1][1]) / events * 1e6,
            "rss_mb": max(got[0][2], got[1][2]), "mb": dir_mb(work / "raw0.db") + dir_mb(work / "raw1.db")}


# ------------------------------------------------------------------ helios

def helios_load(path: Path, events: int, chunk: int, layout: str, work: Path, workers: int) -> dict:
    name = f"helios-w{workers}"
    shutil.rmtree(work / name, ignore_errors=True)
    index = SqliteIndex(work, name, term_index=layout == "trigram+words", workers=workers)
    index.start_workers()
    reset_peak()
    for pid in index.worker_pids():
        reset_peak(pid)
    elapsed, cpu, new = 0.0, 0.0, 0
    pids = index.worker_pids()
    sources = Sources()
    for lines, cols in chunks(path, events, chunk):
        evs = sources.to_events(lines, cols)
        w0 = sum(cpu_seconds(pid) for pid in pids)
        t, c = time.perf_counter(), time.process_time()
        new += index.load(ENV, evs)
        elapsed += time.perf_counter() - t
        cpu += time.process_time() - c + sum(cpu_seconds(pid) for pid in pids) - w0
    rss = max([peak_mb()] + [peak_mb(pid) for pid in pids])
    index.close()
    if new != events:
        raise SystemExit(f"helios loaded {new:,} new events of {events:,}: the input has duplicate ids?")
    return {"eps": events / elapsed, "seconds": elapsed, "cpu_us": cpu / events * 1e6, "rss_mb": rss,
            "mb": dir_mb(work / name), "index": name}


# ------------------------------------------------------------------ queries

def timed(fn, n: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, result


def rare_needle(path: Path, events: int) -> str:
    with open(path, "rb") as f:
        for line in islice(f, events // 2, None):
            m = re.search(rb"\b[0-9a-f]{12}\b", line)
            if m:
                return m.group().decode()
    return "payment"


def queries(work: Path, index_name: str, layout: str, needle: str) -> dict:
    index = SqliteIndex(work, index_name)
    span = dict(environment=ENV, start=0, end=2**62, limit=100)
    out = {}
    for label, text in (("rare substring", f'"{needle}"'), ("rare word", needle), ("common word", "session"),
                        ("common phrase", '"Failed password"')):
        ms, hits = timed(lambda: index.search(parse_query(text, **span)))
        out[label] = {"ms": ms, "hits": len(hits)}
    index.close()
    db = sqlite3.connect(work / "raw.db")
    table = "x" if layout == "trigram" else "y"
    tris = " AND ".join(f'"{needle[i:i + 3]}"' for i in range(len(needle) - 2))
    out["ceiling trigram lookup"] = {"ms": timed(lambda: db.execute(
        f"SELECT count(*) FROM ev WHERE id IN (SELECT rowid FROM {table} WHERE {table} MATCH ?) AND msg LIKE ?",
        (tris, f"%{needle}%")).fetchone())[0]}
    out["ceiling full-scan LIKE"] = {"ms": timed(lambda: db.execute("SELECT count(*) FROM ev WHERE msg LIKE ?",
                                                                    (f"%{needle}%",)).fetchone(), n=3)[0]}
    db.close()
    return out


# ------------------------------------------------------------------ report

def code_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "helios", "bench/index.py"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fmt_range(xs, f) -> str:
    if len(xs) == 1 or len({f(x) for x in xs}) == 1:
        return f(xs[0])
    return f"{f(statistics.median(xs))} ({f(min(xs))} – {f(max(xs))})"


def report(runs: list[dict], args, needle: str) -> str:
    k = lambda x: f"{x:,.0f}"  # noqa: E731
    r2 = lambda x: f"{x:.2f}"  # noqa: E731
    f1 = lambda x: f"{x:.1f}"  # noqa: E731
    lines = [f"`{' '.join(['.venv/bin/python', 'bench/index.py'] + sys.argv[1:])}` — {datetime.date.today()}, "
             f"commit {code_revision()}, {os.cpu_count()} cores (shared), SQLite {sqlite3.sqlite_version}, "
             f"{args.events:,} events in chunks of {args.chunk:,}, {len(runs)} repeat(s): median (min – max)", ""]
    lines += ["| layout | processes | FTS5 ceiling, rows/s | Helios, events/s | **ratio** | CPU µs/event: ceiling "
              "| Helios | CPU ratio | Helios peak RSS, MB | Helios MB on disk | ceiling MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for layout in args.layouts:
        for procs in (1, 2):
            rows = [r[layout][procs] for r in runs]
            lines.append(f"| {layout} | {procs} | {fmt_range([x['raw']['eps'] for x in rows], k)} "
                         f"| {fmt_range([x['helios']['eps'] for x in rows], k)} "
                         f"| **{fmt_range([x['helios']['eps'] / x['raw']['eps'] for x in rows], r2)}** "
                         f"| {fmt_range([x['raw']['cpu_us'] for x in rows], f1)} "
                         f"| {fmt_range([x['helios']['cpu_us'] for x in rows], f1)} "
                         f"| {fmt_range([x['raw']['cpu_us'] / x['helios']['cpu_us'] for x in rows], r2)} "
                         f"| {fmt_range([x['helios']['rss_mb'] for x in rows], k)} "
                         f"| {fmt_range([x['helios']['mb'] for x in rows], k)} "
                         f"| {fmt_range([x['raw']['mb'] for x in rows], k)} |")
    lines += ["", "The same ceiling with FTS5 automerge=16 (as Helios sets it), 1 process:", "",
              "| layout | ceiling (automerge=16), rows/s | Helios / it | CPU µs/event | CPU ratio |",
              "|---|---|---|---|---|"]
    for layout in args.layouts:
        rows = [r[layout][1] for r in runs]
        lines.append(f"| {layout} | {fmt_range([x['raw16']['eps'] for x in rows], k)} "
                     f"| {fmt_range([x['helios']['eps'] / x['raw16']['eps'] for x in rows], r2)} "
                     f"| {fmt_range([x['raw16']['cpu_us'] for x in rows], f1)} "
                     f"| {fmt_range([x['raw16']['cpu_us'] / x['helios']['cpu_us'] for x in rows], r2)} |")
    lines += ["", f"Queries over all {args.events:,} events (the 1-process index; limit 100; median of 5 runs; "
              f"rare needle `{needle}`), ms:", ""]
    labels = list(runs[0][args.layouts[0]]["queries"])
    lines += ["| query | " + " | ".join(args.layouts) + " |", "|---|" + "---|" * len(args.layouts)]
    for label in labels:
        cells = []
        for layout in args.layouts:
            qs = [r[layout]["queries"][label] for r in runs]
            hits = f" ({qs[0]['hits']} hits)" if "hits" in qs[0] else ""
            cells.append(fmt_range([q["ms"] for q in qs], f1) + hits)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=5_000_000, help="events to load (default 5,000,000)")
    ap.add_argument("--chunk", type=int, default=250_000, help="events per load call (default 250,000)")
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times; quote medians")
    ap.add_argument("--layouts", default="trigram,trigram+words",
                    help="comma-separated: trigram, trigram+words (default both)")
    ap.add_argument("--workdir", help="where the databases go (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    args.layouts = [x for x in args.layouts.split(",") if x]
    for layout in args.layouts:
        if layout not in LAYOUTS:
            ap.error(f"unknown layout {layout!r}: use {', '.join(LAYOUTS)}")
    path = input_file(args.events)
    needle = rare_needle(path, args.events)
    runs = []
    for rep in range(args.repeat):
        run: dict = {}
        for layout in args.layouts:
            work = Path(args.workdir or tempfile.mkdtemp(prefix="helios-bench-index-"))
            work.mkdir(parents=True, exist_ok=True)
            res: dict = {1: {}, 2: {}}
            phases = {
                1: [("raw", lambda: raw_one(path, args.events, args.chunk, layout, work)),
                    ("raw16", lambda: raw_one(path, args.events, args.chunk, layout, work, automerge=16)),
                    ("helios", lambda: helios_load(path, args.events, args.chunk, layout, work, 1))],
                2: [("raw", lambda: raw_two(path, args.events, args.chunk, layout, work)),
                    ("helios", lambda: helios_load(path, args.events, args.chunk, layout, work, 2))],
            }
            for procs in (1, 2):
                steps = phases[procs] if rep % 2 == 0 else phases[procs][::-1]
                for what, fn in steps:
                    log(f"repeat {rep + 1}/{args.repeat}, {layout}, {procs} process(es): {what} ...")
                    res[procs][what] = r = fn()
                    log(f"  {r['eps']:,.0f}/s, {r['cpu_us']:.1f} CPU µs/event, peak RSS {r['rss_mb']:,.0f} MB, "
                        f"{r['mb']:,.0f} MB on disk")
                log(f"  ratio {res[procs]['helios']['eps'] / res[procs]['raw']['eps']:.2f}")
            res["queries"] = queries(work, res[1]["helios"]["index"], layout, needle)
            log("  queries: " + ", ".join(f"{k} {v['ms']:.1f} ms" for k, v in res["queries"].items()))
            run[layout] = res
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
        runs.append(run)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"index-{stamp}.json").write_text(json.dumps(runs, indent=1, default=str))
    print("\n" + report(runs, args, needle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
