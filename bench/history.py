#!/usr/bin/env python3
"""History benchmark: build a history index from 1 million archived events
(folder archive, sqlite index) and query it, against the no-index baseline
and SQLite FTS5's own ceiling, in the same run.

Run from the repository root::

    .venv/bin/python bench/history.py [--events 1000000] [--repeat 3]

Input: ``--events`` realistic RFC 3164 lines (``helios.loadgen``, as
``bench/index.py`` makes them: about 2,000 a second, so one 60 s window
holds about 120,000), parsed into Events with tailed-line ids and packed
into a folder archive one object per window, as the porter archives them
(``[porter] archive_level``, 19). The archive is kept under
``bench/out/history-archive-N/`` and reused by later runs; so are the
baseline's files.

Each repeat:

1. **Build**: a history request for the whole range, built by
   ``helios.history.serve.build_request`` (what ``helios history serve``
   runs: plan the windows, read and unpack each object on a reader thread,
   load into ``helios-history-ID`` through the sqlite index's 2 loader
   processes, the windows read meanwhile together with the next, progress
   in the request store), with the collector tuned as the command tunes it.
   Timed from the claim to ready; events/s is events loaded over that time.
2. **FTS5 ceiling** (``../shared/anchors/sqlite/fts5_limits.py``, imported:
   its synthetic rows, its trigram contentless ``detail=none`` layout, 2
   processes on separate files, 500,000 rows): rows/s. The build's ratio to
   it says what the rest of the path costs.
3. **The index's load alone**: the same events, unpacked beforehand, loaded
   by ``SqliteIndex(workers=2).load`` in loads of up to 200,000 events (``TOGETHER``)
   (whole windows, as the build groups them): the build's ratio to
   it is what reading and unpacking the archive add (they run on a thread
   beside the loads).
4. **Substring query**: a rare needle (a 12-hex-digit id from the middle of
   the input) over the built index, every hit, median of 5; beside it the
   baseline: ``zstd -dc`` of the same events' lines, one zstd -19 file per
   window (as the archive keeps them), piped through ``grep -F``, median of
   3. Both must find the same lines. Also a common phrase, first 100 hits
   (what the search page asks for).

Medians (and ranges) over the repeats; the markdown block at the end is
ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from helios import config  # noqa: E402
from helios.archive import format as fmt  # noqa: E402
from helios.archive.store import FolderArchive, key_for  # noqa: E402
from helios.gctune import tune_gc  # noqa: E402
from helios.history import places  # noqa: E402
from helios.history.serve import build_request  # noqa: E402
from helios.index.batches import TOGETHER  # noqa: E402
from helios.index.query import Query, parse_query  # noqa: E402
from helios.store.layout import window_start  # noqa: E402

import index as index_bench  # noqa: E402  (bench/index.py: the same input and parsing)

OUT = ROOT / "bench" / "out"
ENV = index_bench.ENV
NS = 1_000_000_000
WIDTH = 60
ANCHOR = ROOT.parent / "shared" / "anchors" / "sqlite" / "fts5_limits.py"
ANCHOR_ROWS = 500_000
TRIGRAM = "substring index: trigram, contentless, detail=none"


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ input: the archive and the baseline files

def _pack_one(args) -> tuple[str, int]:
    root, start, events, level = args
    data = fmt.pack(events, environment=ENV, level=level)
    key = key_for(ENV, start * NS, WIDTH)
    FolderArchive(root).put(key, data)
    return key, len(events)


def make_archive(events_n: int, level: int) -> tuple[Path, Path, dict]:
    """The folder archive of the input (one object per window) and the
    baseline's zstd files of the same lines; made once, then reused."""
    base = OUT / f"history-archive-{events_n}-l{level}"
    meta_path = base / "meta.json"
    if meta_path.exists():
        return base / "archive", base / "zst", json.loads(meta_path.read_text())
    shutil.rmtree(base, ignore_errors=True)
    (base / "zst").mkdir(parents=True)
    path = index_bench.input_file(events_n)
    windows: dict[int, list] = {}
    offset = 0
    for lines, cols in index_bench.chunks(path, events_n, 100_000):
        events, offset = index_bench.to_events(lines, cols, offset)
        for e in events:
            windows.setdefault(window_start(e.time, WIDTH), []).append(e)
    log(f"packing {events_n:,} events into {len(windows)} archive objects (zstd level {level}) ...")
    jobs = [(str(base / "archive"), start, evs, level) for start, evs in sorted(windows.items())]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        done = pool.map(_pack_one, jobs)
    for start, evs in sorted(windows.items()):
        raw = base / "zst" / f"{start}.log"
        raw.write_bytes(b"".join(e.message + b"\n" for e in evs))
        subprocess.run(["zstd", "-q", f"-{level}", "--rm", "-f", str(raw), "-o", str(raw) + ".zst"], check=True)
    first = min(windows)
    meta = {"events": sum(n for _, n in done), "windows": len(windows), "start": first,
            "end": max(windows) + WIDTH, "needle": index_bench.rare_needle(path, events_n)}
    meta_path.write_text(json.dumps(meta))
    return base / "archive", base / "zst", meta


# ------------------------------------------------------------------ the build

def build_once(archive: Path, work: Path, meta: dict) -> dict:
    cfg = config.load(None, {"porter.archive_dir": str(archive), "porter.bucks": ["tcp://127.0.0.1:9"],
                             "porter.timeout": 0.05, "porter.archive_age": 0.0, "history.dir": str(work),
                             "history.load_workers": 2, "history.margin": 0.0})
    store = places.store(cfg)
    r, _ = store.submit(ENV, meta["start"] * NS, meta["end"] * NS, "sqlite", expiry=86400)
    if r.state != "queued":
        r = store.retry(r.id) if r.state in ("failed", "expired") else r
    t = time.perf_counter()
    claimed = store.claim("bench", lease=600)
    state = build_request(cfg, store, claimed, "bench", threading.Event())
    seconds = time.perf_counter() - t
    done = store.get(r.id)
    store.close()
    if state != "ready":
        raise SystemExit(f"the build ended {state}: {done.reason}")
    return {"seconds": seconds, "events": done.events_loaded, "eps": done.events_loaded / seconds,
            "bytes": done.bytes_read, "id": r.id, "index": done.index_name,
            "mb": sum(p.stat().st_size for p in (work / "indexes").rglob("*") if p.is_file()) / 1e6}


def load_alone(archive: Path, work: Path) -> float:
    """Events/s of the sqlite index's own load (2 loader processes) of the
    same events, already unpacked in memory: what the build would be if
    reading the archive cost nothing."""
    from helios import archive as archive_mod
    from helios.index.sqlite import SqliteIndex

    folder = FolderArchive(archive)
    windows = [archive_mod.load(folder, k) for k in folder.list()]
    # In loads of up to TOGETHER events, as the build makes them when its reader is ahead.
    loads, part = [], []
    for events in windows:
        part = part + events
        if len(part) >= TOGETHER:
            loads.append(part)
            part = []
    loads += [part] if part else []
    index = SqliteIndex(work / "alone", "helios-load-alone", workers=2)
    index.start_workers()
    t = time.perf_counter()
    n = sum(index.load(ENV, events) for events in loads)
    seconds = time.perf_counter() - t
    index.close()
    shutil.rmtree(work / "alone", ignore_errors=True)
    return n / seconds


# ------------------------------------------------------------------ the FTS5 ceiling (the anchor script)

def anchor_two(work: Path) -> float:
    """Rows/s of two processes into two files, trigram contentless detail=none (fts5_limits.py)."""
    spec = importlib.util.spec_from_file_location("fts5_limits", ANCHOR)
    sys.argv = [str(ANCHOR), str(ANCHOR_ROWS), str(work)]   # it reads N and WORK at import
    anchor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(anchor)
    ddl = anchor.LAYOUTS[TRIGRAM]
    ctx = multiprocessing.get_context("fork")
    q, start = ctx.Queue(), ctx.Barrier(2)
    ps = [ctx.Process(target=anchor.worker, args=(str(work / f"par{i}.db"), ddl, ANCHOR_ROWS // 2, i + 7, q, start))
          for i in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return ANCHOR_ROWS / max(q.get(), q.get())


# ------------------------------------------------------------------ queries

def median_ms(fn, n: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def queries(work: Path, meta: dict, zst: Path, build: dict) -> dict:
    from helios.index.base import open_index

    index = open_index("sqlite", str(work / "indexes"), build["index"])
    needle = meta["needle"]
    span = dict(environment=ENV, start=meta["start"] * NS, end=meta["end"] * NS)
    q = Query(substrings=(needle,), limit=None, **span)
    idx_ms, hits = median_ms(lambda: index.search(q), 5)
    common_ms, common = median_ms(lambda: index.search(parse_query('"Failed password"', limit=100, **span)), 5)
    index.close()
    files = " ".join(str(p) for p in sorted(zst.glob("*.zst")))
    cmd = f"zstd -dc {files} | grep -F '{needle}'"
    grep_ms, out = median_ms(lambda: subprocess.run(cmd, shell=True, capture_output=True).stdout, 3)
    grep_lines = out.splitlines()
    if sorted(e.message for e in hits) != sorted(grep_lines):
        raise SystemExit(f"the index found {len(hits)} line(s) for {needle!r}, zstd | grep {len(grep_lines)}")
    return {"needle": needle, "hits": len(hits), "index_ms": idx_ms, "grep_ms": grep_ms,
            "speedup": grep_ms / idx_ms, "common_ms": common_ms, "common_hits": len(common)}


# ------------------------------------------------------------------ report

def med(xs):
    return statistics.median(xs)


def rng(xs, f) -> str:
    return f"{f(med(xs))} ({f(min(xs))}..{f(max(xs))})" if len(xs) > 1 else f(xs[0])


def report(runs: list[dict], meta: dict, args) -> str:
    b = [r["build"] for r in runs]
    qs = [r["query"] for r in runs]
    eps = [x["eps"] for x in b]
    anchors = [r["anchor"] for r in runs]
    ratios = [r["build"]["eps"] / r["anchor"] for r in runs]
    n = f"{meta['events']:,}"
    lines = [
        f"Command: `.venv/bin/python bench/history.py --events {args.events} --repeat {args.repeat}`; "
        f"{n} events in {meta['windows']} archive objects (folder, zstd level {args.level}); "
        f"{len(runs)} run(s), medians (range).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| history build, {n} archived events -> sqlite index (2 loader processes) | "
        f"{rng([x['seconds'] for x in b], lambda v: f'{v:.1f} s')} |",
        f"| build rate (goal >= 100,000 events/s) | {rng(eps, lambda v: f'{v:,.0f} events/s')} |",
        f"| FTS5 ceiling, same layout, 2 processes (fts5_limits.py, {ANCHOR_ROWS:,} rows) | "
        f"{rng(anchors, lambda v: f'{v:,.0f} rows/s')} |",
        f"| build / ceiling | {rng(ratios, lambda v: f'{v:.2f}')} |",
        f"| the sqlite index's load alone, same events already in memory (2 loader processes) | "
        f"{rng([r['alone'] for r in runs], lambda v: f'{v:,.0f} events/s')} |",
        f"| build / load alone (what reading and unpacking the archive adds) | "
        f"{rng([r['build']['eps'] / r['alone'] for r in runs], lambda v: f'{v:.2f}')} |",
        f"| index size | {med([x['mb'] for x in b]):.0f} MB for {med([x['bytes'] for x in b]) / 1e6:.1f} MB archived |",
        f"| rare substring `{qs[0]['needle']}` ({qs[0]['hits']} hit(s)), every hit, history index | "
        f"{rng([x['index_ms'] for x in qs], lambda v: f'{v:.1f} ms')} |",
        f"| the same, `zstd -dc` of the lines (zstd -{args.level}, a file per window) \\| `grep -F` | "
        f"{rng([x['grep_ms'] for x in qs], lambda v: f'{v:.0f} ms')} |",
        f"| index over zstd\\|grep (goal >= 10x) | {rng([x['speedup'] for x in qs], lambda v: f'{v:.0f}x')} |",
        f"| common phrase `\"Failed password\"`, first 100 hits | "
        f"{rng([x['common_ms'] for x in qs], lambda v: f'{v:.1f} ms')} |",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="archived events (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; medians are quoted (default 3)")
    ap.add_argument("--level", type=int, default=19, help="zstd level of the archive (default 19, the porter's)")
    ap.add_argument("--workdir", help="where the indexes go (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    archive, zst, meta = make_archive(args.events, args.level)
    tune_gc()       # as `helios history serve` does before it builds
    log(f"input: {meta['events']:,} events in {meta['windows']} windows; needle {meta['needle']!r}")
    top = Path(args.workdir or tempfile.mkdtemp(prefix="helios-bench-history-"))
    runs = []
    try:
        for i in range(args.repeat):
            work = top / f"run{i}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            # Alternate which goes first, so neither always meets a warm (or a tired) machine.
            order = ("build", "anchor", "alone") if i % 2 == 0 else ("alone", "anchor", "build")
            run: dict = {}
            for part in order:
                if part == "build":
                    run["build"] = build_once(archive, work, meta)
                    log(f"run {i + 1}: build {run['build']['seconds']:.1f} s, {run['build']['eps']:,.0f} events/s")
                elif part == "alone":
                    run["alone"] = load_alone(archive, work)
                    log(f"run {i + 1}: the index's load alone (events in memory) {run['alone']:,.0f} events/s")
                else:
                    (work / "anchor").mkdir()
                    run["anchor"] = anchor_two(work / "anchor")
                    log(f"run {i + 1}: FTS5 ceiling (2 processes) {run['anchor']:,.0f} rows/s")
            run["query"] = queries(work, meta, zst, run["build"])
            q = run["query"]
            log(f"run {i + 1}: rare substring {q['index_ms']:.1f} ms vs zstd|grep {q['grep_ms']:.0f} ms "
                f"({q['speedup']:.0f}x); common phrase (100) {q['common_ms']:.1f} ms")
            runs.append(run)
            shutil.rmtree(work / "anchor", ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(top, ignore_errors=True)
    log("")
    log(report(runs, meta, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
