#!/usr/bin/env python3
"""Search at scale: queries on 20 million events in the recent sqlite index,
against ``rg`` over the raw files and ``zstd -dc | rg`` over compressed
copies, in the same run.

Run from the repository root::

    .venv/bin/python bench/search.py [--events 20000000] [--hours 48] [--reuse] [--runs 5] [--terms 5]

Input (built once; ``--reuse`` keeps it under ``bench/out/search-N-Hh/``
between runs, since building 20 M events takes a long while on 2 shared
cores): ``--events`` RFC 3164 lines over ``--hours`` hours ending at a fixed
time, with a priority (a realistic severity mix, a facility per daemon),
the 13 hosts and 9 daemons of ``helios.loadgen`` and its message templates
(ids, addresses, numbers that vary). A generator process writes the raw
lines, one file per host (``raw/HOST.log``), and hands them in chunks to
the main process, which parses them with ``helios.parse`` and loads them with
``SqliteIndex.load`` (``--workers`` loader processes, the porter's path;
the next chunk is parsed while they load one),
each (host, app) a tailed file with growing offsets and tailed-line ids.
Then each raw file is compressed with ``zstd -3`` (``zst/HOST.log.zst``).

Queries (each kind with ``--terms`` distinct terms picked from the input,
each term run ``--runs`` times after a first, cold-ish run on fresh
connections; the OS page cache is not dropped, so "cold" means SQLite's own
cache only):

- **word, last hour**: a 12-hex id seen in the last hour (one hit), limit 100;
- **substring, 24 h**: ``from 203.0.B.C port P`` or ``/api/v1/orders/N?``
  taken from a line of the last 24 h, limit 100;
- **host + sev + word, 24 h**: ``host:H sev:warning USER``, limit 100;
- **histogram, 24 h**: counts per 5 minutes, by severity, over 24 h ending
  at different hours (``SqliteIndex.histogram``);
- **top 10 apps, 24 h**: the same way (``SqliteIndex.top``).

p50 and p95 are over the warm runs of all terms of a kind. ``rg`` (Debian's
ripgrep) runs the same selective queries over the raw files (``-w -i`` for a
word, ``-F`` for a substring, a regex on the priority and host for host +
sev + word; it cannot skip by time, which is the point) and ``zstd -dc |
rg`` over the compressed copies, each once per term; the ratios are rg's
median over the index's p50 and p95. Also the index's bytes per raw byte.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Full

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios import loadgen  # noqa: E402
from helios.index import parse_query  # noqa: E402
from helios.index.sqlite import SqliteIndex  # noqa: E402
from helios.model import Event, line_id, source_key  # noqa: E402
from helios.parse import Parser  # noqa: E402

OUT = ROOT / "bench" / "out"
ENV = "bench"
END = 1_767_873_600             # 2026-01-08T12:00:00Z (midday: 24 h span two day files, as they would)
NS = 1_000_000_000
HOUR = 3600 * NS
FORMAT = 1                      # of the cached input; bump when the generator changes
RG = "/usr/bin/rg"
ZSTD = "/usr/bin/zstd"
# A facility per daemon (RFC 5424 numbers), and a severity mix of a quiet fleet.
FACILITY = {"sshd": 10, "CRON": 9, "kernel": 0, "nginx": 3, "postfix/smtp": 2, "systemd": 3, "app": 1}
SEVERITY_MIX = [(7, 40), (6, 700), (5, 100), (4, 80), (3, 50), (2, 20), (1, 6), (0, 4)]
SEV_TABLE = [s for s, w in SEVERITY_MIX for _ in range(w)]     # 1000 entries


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ input

def _lines(rng: random.Random, t0: float, step: float, first: int, count: int) -> list[tuple[str, bytes]]:
    """(host, line) for lines first .. first + count - 1 (faster than loadgen's, same text)."""
    templates, users, hosts = loadgen.TEMPLATES, loadgen.USERS, loadgen.HOSTS
    out = []
    stamp_of: dict[int, str] = {}
    for i in range(first, first + count):
        t = t0 + i * step
        sec = int(t)
        stamp = stamp_of.get(sec)
        if stamp is None:
            tm = time.gmtime(sec)
            stamp = stamp_of[sec] = (f"{loadgen.MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
                                     f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}")
        bits = rng.getrandbits(160)
        app, msg = templates[bits % 9]
        bits >>= 4
        v = dict(pid=100 + (bits & 0xFFFF) % 64900, user=users[(bits >> 16) & 7], a=(bits >> 19) & 255,
                 b=(bits >> 27) & 255, c=1 + ((bits >> 35) & 255) % 254, port=1024 + ((bits >> 43) & 0xFFFF) % 64512,
                 hex=f"{(bits >> 59) & 0xFFFFFFFFFFFF:012x}", n=1 + ((bits >> 107) & 0xFFFFFF) % 10_000_000)
        host = hosts[((bits >> 131) & 0xFF) % len(hosts)]
        name = app.split("[")[0]
        sev = 3 if name == "app" else SEV_TABLE[((bits >> 139) & 0x3FF) % 1000]
        pri = FACILITY.get(name, 3) * 8 + sev
        out.append((host, f"<{pri}>{stamp} {host} {app.format(**v)}: {msg.format(**v)}\n".encode()))
    return out


def _generate(base: str, events: int, hours: int, chunk: int, queue) -> None:
    """The generator process: raw files per host, and chunks of lines to the queue."""
    rng = random.Random(21)
    t0 = END - hours * 3600
    step = hours * 3600 / events
    files = {h: open(Path(base) / "raw" / f"{h}.log", "wb") for h in loadgen.HOSTS}
    for first in range(0, events, chunk):
        pairs = _lines(rng, t0, step, first, min(chunk, events - first))
        per_host: dict[str, list[bytes]] = {}
        for host, line in pairs:
            per_host.setdefault(host, []).append(line)
        for host, lines in per_host.items():
            files[host].write(b"".join(lines))
        if not _put(queue, b"".join(line for _, line in pairs)):
            return
    for f in files.values():
        f.close()
    _put(queue, None)


def _put(queue, item) -> bool:
    """Put, unless the main process is gone (killed: then this one ends too)."""
    parent = os.getppid()
    while True:
        try:
            queue.put(item, timeout=2)
            return True
        except Full:
            if os.getppid() != parent or parent == 1:
                return False


class Sources:
    """One tailed file per (host, app), each with its identity and growing offset."""

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


def build(base: Path, events: int, hours: int, chunk: int, workers: int) -> dict:
    shutil.rmtree(base, ignore_errors=True)
    (base / "raw").mkdir(parents=True)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(maxsize=3)
    gen = ctx.Process(target=_generate, args=(str(base), events, hours, chunk, queue))
    gen.start()
    index = SqliteIndex(base, "index", workers=workers)
    index.start_workers()
    parser = Parser("rfc3164")
    now = (END + 86_400) * NS
    sources = Sources()
    t = time.perf_counter()
    loaded = new = 0
    wait_s = 0.0
    # The next chunk is parsed while the loader processes work on this one
    # (a thread: the load call waits on their pipes, without the GIL), so
    # they are not idle while this process parses.
    pending = None
    with ThreadPoolExecutor(1) as pool:
        while True:
            data = queue.get()
            evs = None
            if data is not None:
                evs = sources.to_events(data.splitlines(keepends=True), parser.parse_chunk(data, now))
            if pending is not None:
                t1 = time.perf_counter()
                new += pending.result()
                wait_s += time.perf_counter() - t1
                pending = None
                if loaded % (chunk * 8) == 0 or loaded == events:
                    took = time.perf_counter() - t
                    log(f"build: {loaded:,} events loaded, {loaded / took:,.0f}/s "
                        f"(waiting on the loaders {wait_s / took:.0%} of the time)")
            if evs is None:
                break
            pending = pool.submit(index.load, ENV, evs)
            loaded += len(evs)
    gen.join()
    index.close()
    took = time.perf_counter() - t
    if new != events:
        raise SystemExit(f"the index took {new:,} new events of {events:,}")
    log(f"build: {events:,} events in {took:.0f} s; compressing the raw files (zstd -3) ...")
    (base / "zst").mkdir()
    raws = sorted((base / "raw").glob("*.log"))
    subprocess.run([ZSTD, "-q", "-3", "-T2", "--output-dir-flat", str(base / "zst"), *map(str, raws)], check=True)
    meta = {"format": FORMAT, "events": events, "hours": hours, "build_seconds": took,
            "wait_seconds": wait_s, "raw_bytes": sum(p.stat().st_size for p in raws),
            "zst_bytes": sum(p.stat().st_size for p in (base / "zst").glob("*.zst"))}
    (base / "meta.json").write_text(json.dumps(meta))
    return meta


# ------------------------------------------------------------------ the query terms

def pick_terms(base: Path, hours: int, k: int) -> dict:
    """Terms of each kind, read from lines of the raw files (in time order per host)."""
    rng = random.Random(5)
    parser = Parser("rfc3164")
    now = (END + 86_400) * NS
    samples = []
    for raw in sorted((base / "raw").glob("*.log")):
        size = raw.stat().st_size
        with open(raw, "rb") as f:
            for frac in [i / 400 for i in range(400)]:
                f.seek(int(size * frac))
                f.readline()
                line = f.readline()
                if line:
                    samples.append(line.rstrip(b"\n"))
    cols = parser.parse_chunk(b"\n".join(samples) + b"\n", now)
    rows = list(zip(cols.lines, cols.times, cols.hosts))
    end = END * NS
    last_hour = [r for r in rows if r[1] >= end - HOUR]
    last_day = [r for r in rows if r[1] >= end - 24 * HOUR]
    hexes = [m.group().decode() for line, _, _ in last_hour
             for m in [re.search(rb"(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])", line)] if m]
    subs = [m.group().decode() for line, _, _ in last_day
            for m in [re.search(rb"from 203\.0\.\d+\.\d+ port \d+|/api/v1/orders/\d+\?", line)] if m]
    hosts = sorted({h for _, _, h in rows})
    if len(hexes) < k or len(subs) < k:
        raise SystemExit(f"too few sample lines to pick {k} terms from ({len(hexes)} ids, {len(subs)} substrings)")
    return {
        "word": rng.sample(hexes, k),
        "substring": rng.sample(subs, k),
        "host_sev_word": [(rng.choice(hosts), rng.choice(loadgen.USERS[1:])) for _ in range(k)],
    }


# ------------------------------------------------------------------ the index's side

def _files(base: Path, start: int, end: int) -> list[Path]:
    first = datetime.datetime.fromtimestamp(start // NS, datetime.timezone.utc).date()
    last = datetime.datetime.fromtimestamp((end - 1) // NS, datetime.timezone.utc).date()
    out = []
    for day in sorted((base / "index" / ENV).iterdir()):
        if first.isoformat() <= day.name <= last.isoformat():
            out += sorted(day.glob("*.db"))
    return out


class Aggregates:
    """Histogram and top values through ``SqliteIndex.histogram`` and ``top``
    (fresh connections each, as the searches)."""

    def __init__(self, base: Path) -> None:
        self.index = SqliteIndex(base, "index")

    def _q(self, start: int, end: int):
        return parse_query("", environment=ENV, start=start, end=end, limit=None)

    def histogram(self, start: int, end: int, width: int) -> list:
        return self.index.histogram(self._q(start, end), width)

    def top(self, column: str, start: int, end: int, n: int = 10) -> list:
        return self.index.top(self._q(start, end), column, n)

    def close(self) -> None:
        self.index.close()


def index_queries(base: Path, terms: dict, runs: int, aggregates: bool = True) -> dict:
    end = END * NS
    kinds = {
        "word, last hour": [(t, dict(text=t, start=end - HOUR)) for t in terms["word"]],
        "substring, 24 h": [(s, dict(text=f'"{s}"', start=end - 24 * HOUR)) for s in terms["substring"]],
        "host + sev + word, 24 h": [(f"host:{h} sev:warning {u}", dict(text=f"host:{h} sev:warning {u}",
                                                                       start=end - 24 * HOUR))
                                    for h, u in terms["host_sev_word"]],
    }
    out = {}
    for kind, items in kinds.items():
        cold, warm, hits = [], [], []
        for label, spec in items:
            q = parse_query(spec["text"], environment=ENV, start=spec["start"], end=end, limit=100)
            index = SqliteIndex(base, "index")          # fresh connections: SQLite's cache is cold
            t = time.perf_counter()
            got = index.search(q)
            cold.append(time.perf_counter() - t)
            for _ in range(runs):
                t = time.perf_counter()
                index.search(q)
                warm.append(time.perf_counter() - t)
            index.close()
            hits.append(len(got))
        out[kind] = {"cold": cold, "warm": warm, "hits": hits, "terms": [label for label, _ in items]}
        log(f"index: {kind}: p50 {ms(pct(warm, 50))}, p95 {ms(pct(warm, 95))}, cold max {ms(max(cold))}; hits {hits}")
    # Aggregates: 24 h ending at a different hour each time (so no answer is the previous one).
    for kind, fn in (("histogram 5 min x sev, 24 h", lambda a, s, e: a.histogram(s, e, 300 * NS)),
                     ("top 10 apps, 24 h", lambda a, s, e: a.top("app", s, e))) if aggregates else ():
        cold, warm = [], []
        for k in range(len(terms["word"])):
            e = end - k * HOUR
            agg = Aggregates(base)
            t = time.perf_counter()
            fn(agg, e - 24 * HOUR, e)
            cold.append(time.perf_counter() - t)
            for _ in range(runs):
                t = time.perf_counter()
                fn(agg, e - 24 * HOUR, e)
                warm.append(time.perf_counter() - t)
            agg.close()
        out[kind] = {"cold": cold, "warm": warm}
        log(f"index: {kind}: p50 {ms(pct(warm, 50))}, p95 {ms(pct(warm, 95))}, cold max {ms(max(cold))}")
    return out


# ------------------------------------------------------------------ rg

def _sev_regex(worst: int) -> str:
    pris = sorted({f * 8 + s for f in set(FACILITY.values()) for s in range(worst + 1)})
    return "(" + "|".join(map(str, pris)) + ")"


def rg_patterns(terms: dict) -> dict:
    return {
        "word, last hour": [["-w", "-i", "-e", t] for t in terms["word"]],
        "substring, 24 h": [["-F", "-e", s] for s in terms["substring"]],
        "host + sev + word, 24 h": [["-i", "-e", rf"^<{_sev_regex(4)}>\S+ +\d+ \S+ {re.escape(h)} .*\b{u}\b"]
                                    for h, u in terms["host_sev_word"]],
    }


def rg_queries(base: Path, terms: dict) -> dict:
    raws = sorted(map(str, (base / "raw").glob("*.log")))
    zsts = sorted(map(str, (base / "zst").glob("*.zst")))
    out = {}
    for kind, patterns in rg_patterns(terms).items():
        raw_s, zst_s, hits = [], [], []
        for p in patterns:
            t = time.perf_counter()
            r = subprocess.run([RG, "--no-filename", "--no-messages", *p, *raws], capture_output=True)
            raw_s.append(time.perf_counter() - t)
            hits.append(r.stdout.count(b"\n"))
            t = time.perf_counter()
            subprocess.run(f"{ZSTD} -dcq {' '.join(zsts)} | {RG} --no-messages {' '.join(map(_sh, p))} >/dev/null",
                           shell=True)
            zst_s.append(time.perf_counter() - t)
        out[kind] = {"raw": raw_s, "zst": zst_s, "hits": hits}
        log(f"rg: {kind}: raw median {ms(statistics.median(raw_s))}, zstd -dc | rg median "
            f"{ms(statistics.median(zst_s))}; lines {hits}")
    return out


def _sh(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


# ------------------------------------------------------------------ report

def pct(xs: list[float], p: int) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def ms(s: float) -> str:
    return f"{s * 1000:,.1f} ms" if s < 10 else f"{s:,.1f} s"


def report(meta: dict, idx: dict, rg: dict, index_bytes: int, args) -> None:
    log("")
    log(f"Command: `.venv/bin/python bench/search.py {' '.join(sys.argv[1:])}` ({datetime.date.today()}, "
        f"{os.cpu_count()} shared cores, SQLite {sqlite3.sqlite_version})")
    log(f"{meta['events']:,} events over {meta['hours']} h, {meta['raw_bytes'] / 1e9:.2f} GB of raw lines "
        f"({meta['zst_bytes'] / 1e9:.2f} GB as zstd -3); index {index_bytes / 1e9:.2f} GB = "
        f"{index_bytes / meta['raw_bytes']:.2f} bytes per raw byte; built in {meta['build_seconds']:.0f} s "
        f"({meta['events'] / meta['build_seconds']:,.0f} events/s)")
    log(f"{args.terms} terms per kind, each {args.runs} warm runs after a cold-ish one; limit 100")
    log("")
    log("| query | index p50 | p95 | cold-ish max | hits | rg raw (median) | zstd -dc \\| rg | rg / index p50 "
        "| rg / index p95 | p95 < 500 ms | >= 10x rg |")
    log("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, r in idx.items():
        p50, p95 = pct(r["warm"], 50), pct(r["warm"], 95)
        cells = [kind, ms(p50), ms(p95), ms(max(r["cold"])), ",".join(map(str, r.get("hits", []))) or "-"]
        if kind in rg:
            raw, zst = statistics.median(rg[kind]["raw"]), statistics.median(rg[kind]["zst"])
            cells += [ms(raw), ms(zst), f"{raw / p50:,.0f}x", f"{raw / p95:,.0f}x", "yes" if p95 < 0.5 else "NO",
                      "yes" if raw / p95 >= 10 else "NO"]
        else:
            cells += ["-", "-", "-", "-", "yes" if p95 < 0.5 else "NO", "-"]
        log("| " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000_000, help="events in the index (default 20,000,000)")
    ap.add_argument("--hours", type=int, default=48, help="hours the events span, ending at a fixed time")
    ap.add_argument("--reuse", action="store_true", help="reuse the input and index built by an earlier run")
    ap.add_argument("--build-only", action="store_true", help="build (or check) the input, run no query")
    ap.add_argument("--runs", type=int, default=5, help="warm runs per term (default 5)")
    ap.add_argument("--terms", type=int, default=5, help="distinct terms per query kind (default 5)")
    ap.add_argument("--no-aggregates", action="store_true", help="leave out the histogram and top-apps queries")
    ap.add_argument("--chunk", type=int, default=250_000, help="events per load call")
    ap.add_argument("--workers", type=int, default=2, help="index loader processes")
    args = ap.parse_args()
    base = OUT / f"search-{args.events}-{args.hours}h"
    meta = None
    if args.reuse:
        try:
            meta = json.loads((base / "meta.json").read_text())
            if meta.get("format") != FORMAT:
                meta = None
        except (OSError, ValueError):
            meta = None
        if meta:
            log(f"reusing {base.relative_to(ROOT)} ({meta['events']:,} events)")
    if meta is None:
        meta = build(base, args.events, args.hours, args.chunk, args.workers)
    if args.build_only:
        return 0
    index_bytes = sum(p.stat().st_size for p in (base / "index").rglob("*") if p.is_file())
    # Open every file once, untimed: an index built by an older Helios is
    # brought up to date here (see SqliteIndex._open), not in a timed query.
    t = time.perf_counter()
    with SqliteIndex(base, "index") as index:
        index.search(parse_query('"never-in-any-line-qzj"', environment=ENV, start=0, end=2**62, limit=1))
    log(f"opened every index file in {time.perf_counter() - t:.1f} s")
    terms = pick_terms(base, args.hours, args.terms)
    log(f"terms: {json.dumps(terms)}")
    idx = index_queries(base, terms, args.runs, not args.no_aggregates)
    rg = rg_queries(base, terms)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"search-{stamp}.json").write_text(json.dumps({"meta": meta, "terms": terms, "index": idx, "rg": rg,
                                                          "index_bytes": index_bytes}, indent=1))
    report(meta, idx, rg, index_bytes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
