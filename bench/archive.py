#!/usr/bin/env python3
"""Archive benchmark: pack and unpack speed, and size against zstd -19 of the same raw lines.

Run from the repository root::

    .venv/bin/python bench/archive.py [--events 5000000] [--window 3600] [--repeat 3]

What it measures, every repeat, in one process:

1. Input: ``--events`` synthetic RFC 3164 lines from ``helios.loadgen``
   (seed 1, 2,000 lines a second of log time), cached under ``bench/out/``,
   made into events as the tailer makes them: parsed in 4 MiB chunks by
   ``helios.parse.Parser("auto")``, one file (derived ids, consecutive
   offsets), a receive time per chunk. Plus every loghub sample in
   ``../shared/data/loghub/`` when it is there, each file one object.
2. Pack: the synthetic events are cut into windows of ``--window`` seconds
   (as the porter archives them) and each window is packed into one object
   (``helios.archive.format.pack``, zstd level 19); events/s over all windows.
3. Unpack: every object back to events (checked equal to what was packed on
   the first repeat); events/s.
4. The comparison, same run: ``zstd -19`` of the same raw lines (the messages
   joined by newlines, in their file order, as one file), with the zstd CLI
   single-threaded (``-T1``) when it is installed, else the ``zstandard``
   module at level 19; which one is printed. Ratio = archive bytes / zstd
   bytes (below 1: the archive is smaller).
5. CPU seconds of pack and unpack (``time.process_time``) and of the zstd
   process (``RUSAGE_CHILDREN``): on a shared machine they move much less
   than wall time.
6. Peak RSS (VmHWM) of the process during pack and during unpack, reset
   before each (``/proc/self/clear_refs``), with the events already in memory
   (their resident size before packing is printed too).

``--repeat N``: medians and ranges. The markdown block at the end is ready
for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

from helios import loadgen  # noqa: E402
from helios.archive import format as fmt  # noqa: E402
from helios.model import Event, line_id, source_key  # noqa: E402
from helios.parse import Parser  # noqa: E402
from helios.store.layout import window_start  # noqa: E402

OUT = ROOT / "bench" / "out"
LOGHUB = ROOT.parent / "shared" / "data" / "loghub"
MB = 1_000_000
MIB = 1 << 20
START = 1_700_000_000  # log time of the first synthetic line (2023-11-14)


def log(msg: str) -> None:
    print(msg, flush=True)


def proc_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


# --- input ----------------------------------------------------------------------

def synthetic_file(n: int) -> Path:
    """n RFC 3164 lines, made once and cached."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"archive-input-{n}.log"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("bytes") == path.stat().st_size:
        return path
    rng = random.Random(1)
    t0 = time.perf_counter()
    with open(path.with_suffix(".tmp"), "w", encoding="ascii") as out:
        for i in range(0, n, 10_000):
            out.write("".join(loadgen.rfc3164_line(rng, START + (i + j) / 2000) for j in range(min(10_000, n - i))))
    os.replace(path.with_suffix(".tmp"), path)
    meta.write_text(json.dumps({"bytes": path.stat().st_size, "lines": n, "seed": 1}))
    log(f"input: wrote {path.relative_to(ROOT)} ({path.stat().st_size / MB:.0f} MB) "
        f"in {time.perf_counter() - t0:.0f} s")
    return path


def tailer_events(path: Path, environment: str, chunk: int = 4 * MIB) -> list[Event]:
    """Events as the tailer makes them from a file read from its start."""
    parser = Parser("auto", default_host="bench-host")
    key = source_key(os.stat(path).st_dev, os.stat(path).st_ino, path.read_bytes()[:64])
    events: list[Event] = []
    offset = 0
    received = START * 1_000_000_000
    with open(path, "rb") as f:
        rest = b""
        while True:
            data = f.read(chunk)
            buf = rest + data
            cut = buf.rfind(b"\n") + 1 if data else len(buf)
            whole, rest = buf[:cut], buf[cut:]
            if whole:
                received += 1_000_000
                cols = parser.parse_chunk(whole, received)
                offsets = list(itertools.accumulate((len(m) + 1 for m in cols.lines), initial=offset))
                offset = offsets.pop()
                events.extend(Event(line_id(key, off), t, received, h, a, s, str(path), off, m, None, key, environment)
                              for m, t, h, a, s, off in zip(cols.lines, cols.times, cols.hosts, cols.apps,
                                                            cols.severities, offsets))
            if not data:
                return events


def windows(events: list[Event], width: int) -> list[list[Event]]:
    out: dict[int, list[Event]] = {}
    for e in events:
        out.setdefault(window_start(e.time, width), []).append(e)
    return [out[k] for k in sorted(out)]


# --- the comparison ---------------------------------------------------------------

def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def zstd19(raw: bytes, scratch: Path) -> tuple[int, float, float, str]:
    """(compressed bytes, seconds, CPU seconds, which tool) of zstd -19 on ``raw``."""
    exe = shutil.which("zstd")
    if exe:
        src = scratch / "raw-lines.txt"
        src.write_bytes(raw)
        version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
        t0, c0 = time.perf_counter(), children_cpu()
        p = subprocess.run([exe, "-19", "-T1", "-q", "-c", str(src)], stdout=subprocess.PIPE, check=True)
        took, cpu = time.perf_counter() - t0, children_cpu() - c0
        src.unlink()
        return len(p.stdout), took, cpu, f"zstd CLI -19 -T1 ({version})"
    t0, c0 = time.perf_counter(), time.process_time()
    size = len(zstandard.ZstdCompressor(level=19).compress(raw))
    return size, time.perf_counter() - t0, time.process_time() - c0, \
        f"zstandard {zstandard.__version__} module, level 19"


# --- one run ----------------------------------------------------------------------

def measure(name: str, groups: list[list[Event]], check: bool, scratch: Path, version: int) -> dict:
    n = sum(map(len, groups))
    rss_before = proc_kib("VmRSS")
    reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    objects = [fmt.pack(g, version=version) for g in groups]
    pack_s, pack_cpu = time.perf_counter() - t0, time.process_time() - c0
    pack_peak = proc_kib("VmHWM")
    reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    back = [fmt.unpack(o) for o in objects]
    unpack_s, unpack_cpu = time.perf_counter() - t0, time.process_time() - c0
    unpack_peak = proc_kib("VmHWM")
    if check:
        for g, b in zip(groups, back):
            assert b == fmt.canonical(g), f"{name}: unpack(pack(events)) differs"
    del back
    raw = b"\n".join(e.message for g in groups for e in sorted(g, key=lambda e: e.offset or 0))
    z_size, z_s, z_cpu, tool = zstd19(raw, scratch)
    size = sum(map(len, objects))
    info = fmt.describe(objects[0])
    return {
        "name": name, "events": n, "objects": len(objects), "raw_bytes": len(raw), "archive_bytes": size,
        "zstd19_bytes": z_size, "ratio": size / z_size, "pack_eps": n / pack_s, "unpack_eps": n / unpack_s,
        "pack_s": pack_s, "unpack_s": unpack_s, "zstd19_s": z_s, "zstd_tool": tool,
        "pack_cpu": pack_cpu, "unpack_cpu": unpack_cpu, "zstd19_cpu": z_cpu,
        "rss_events_mib": rss_before / 1024, "pack_peak_mib": pack_peak / 1024, "unpack_peak_mib": unpack_peak / 1024,
        "version": info.version, "stamp": info.stamp,
        "layout": (f"{getattr(info, 'layout', 'split')} {info.separator!r} x{info.parts}"
                   if getattr(info, "layout", "split") == "split" else info.layout),
    }


def med(xs):
    return statistics.median(xs)


def rng_fmt(xs, f="{:,.0f}"):
    return f"{f.format(med(xs))} ({f.format(min(xs))}-{f.format(max(xs))})" if len(xs) > 1 else f.format(xs[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000, help="synthetic events [5000000]")
    ap.add_argument("--window", type=int, default=3600, help="archive window width, seconds [3600]")
    ap.add_argument("--repeat", type=int, default=1, help="runs; medians reported [1]")
    ap.add_argument("--no-loghub", action="store_true", help="skip the loghub samples")
    ap.add_argument("--format-version", type=int, default=fmt.VERSION,
                    help=f"archive format version to write [{fmt.VERSION}, the default of helios.archive.format]")
    args = ap.parse_args()

    scratch = OUT / "archive-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    synthetic = windows(tailer_events(synthetic_file(args.events), "bench"), args.window)
    log(f"input: {args.events:,} synthetic events in {len(synthetic)} window(s) of {args.window} s, "
        f"made in {time.perf_counter() - t0:.0f} s")
    samples = [] if args.no_loghub or not LOGHUB.is_dir() else sorted(LOGHUB.glob("*_2k.log"))
    loghub = {p.name: [tailer_events(p, "loghub")] for p in samples}

    runs: list[list[dict]] = []
    for r in range(args.repeat):
        results = [measure("synthetic", synthetic, r == 0, scratch, args.format_version)]
        log(json.dumps(results[0]))
        for name, groups in loghub.items():
            results.append(measure(name, groups, r == 0, scratch, args.format_version))
        runs.append(results)
        OUT.joinpath(f"archive-{int(time.time())}.json").write_text(json.dumps(results, indent=1))

    rows = list(zip(*runs))
    head = rows[0][0]
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    print()
    print(f"Run {datetime.date.today()} at {rev} on {platform.node()} ({os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}): `.venv/bin/python bench/archive.py {' '.join(sys.argv[1:])}`. "
          f"Archive format version {head['version']}. Baseline: {head['zstd_tool']}.")
    print()
    print("| input | events | raw lines | archive | zstd -19 | archive / zstd -19 | pack ev/s | unpack ev/s "
          "| zstd -19 MB/s | pack MB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        x = row[0]
        print(f"| {x['name']} | {x['events']:,} | {x['raw_bytes']:,} | {x['archive_bytes']:,} | {x['zstd19_bytes']:,} "
              f"| **{x['ratio']:.3f}** | {rng_fmt([r['pack_eps'] for r in row])} "
              f"| {rng_fmt([r['unpack_eps'] for r in row])} "
              f"| {rng_fmt([r['raw_bytes'] / r['zstd19_s'] / MB for r in row], '{:.2f}')} "
              f"| {rng_fmt([r['raw_bytes'] / r['pack_s'] / MB for r in row], '{:.2f}')} |")
    if len(rows) > 1:
        arch = sum(r[0]["archive_bytes"] for r in rows[1:])
        z = sum(r[0]["zstd19_bytes"] for r in rows[1:])
        print(f"| all loghub samples | | {sum(r[0]['raw_bytes'] for r in rows[1:]):,} | {arch:,} | {z:,} "
              f"| **{arch / z:.3f}** | | | | |")
    print()
    s = rows[0]
    print(f"CPU seconds (less disturbed by other load than wall time), synthetic: pack "
          f"{rng_fmt([r['pack_cpu'] for r in s], '{:.1f}')} s = {med([r['events'] / r['pack_cpu'] for r in s]):,.0f} "
          f"events per CPU second; zstd -19 of the raw lines {rng_fmt([r['zstd19_cpu'] for r in s], '{:.1f}')} s; "
          f"pack / zstd -19 {rng_fmt([r['pack_cpu'] / r['zstd19_cpu'] for r in s], '{:.2f}')}; unpack "
          f"{rng_fmt([r['unpack_cpu'] for r in s], '{:.1f}')} s = "
          f"{med([r['events'] / r['unpack_cpu'] for r in s]):,.0f} events per CPU second.")
    print()
    print(f"Synthetic: {head['objects']} object(s); layout {head['layout']}, timestamps {head['stamp']}. "
          f"Events in memory before packing: {med([r['rss_events_mib'] for r in s]):,.0f} MiB RSS; "
          f"peak RSS while packing {rng_fmt([r['pack_peak_mib'] for r in s])} MiB, while unpacking "
          f"{rng_fmt([r['unpack_peak_mib'] for r in s])} MiB. "
          f"Pack {med([r['pack_s'] for r in s]):.0f} s against zstd -19 {med([r['zstd19_s'] for r in s]):.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
