#!/usr/bin/env python3
"""What reading the journal costs the tailer's own process, against journalctl alone, same run.

Run from the repository root::

    .venv/bin/python bench/journal_ingest.py [--entries 200000] [--repeat 3]

Input: ``--entries`` syslog-like entries of a few units, written once into a
real journal file by ``/lib/systemd/systemd-journal-remote --output=F.journal``
from export-format input (``bench/journal_read.py``'s cache under
``bench/out/journal-N/``). Each repeat measures, in turn:

1. ``journalctl --file F -o export > /dev/null``: the floor (the tailer runs
   this very command and reads its pipe).
2. ``take``: what the tailer's loop does with the journal, in this process:
   a ``JournalReader`` (journalctl child, its pipe read a turn at a time),
   entries to event rows (``journal.take``), rows to frames of 500 events
   (``codec.encode_rows``, as ``Tailer.read_journal``); no spool, no sockets.
   CPU is this process's own (journalctl's is apart, in 1.).
3. ``parse+to_row``: the same with what the reader did before
   ``journal.take``: ``journal.parse``, ``Filter.excluded`` and
   ``journal.to_row`` per entry (the before of the same run).
4. ``worker``: what the tailer runs now, ``JournalWorker``: 2. in a worker
   process, this one taking its frames (``read_frames``). CPU us/entry is
   this process's (the tailer loop's share); ``+worker`` adds the worker's
   and its journalctl's. Its wall time includes the worker's start (a
   Python start-up, a tenth of a second or so).

Printed per path: entries/s (wall), CPU us/entry of this process, and the
ratios journalctl / path (wall) and the speed-up of ``take`` over
``parse+to_row`` and of ``worker`` over ``parse+to_row`` (this process's CPU). ``bench/journal_read.py`` measures the whole tailer
into two bucks.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from journal_read import journal_dir  # noqa: E402

from helios import codec  # noqa: E402
from helios.gctune import tune_gc  # noqa: E402
from helios.tail import journal  # noqa: E402
from helios.tail.journal_reader import JournalReader, JournalWorker  # noqa: E402

BATCH = 500


def bench_journalctl(f: Path) -> tuple[float, float]:
    """Wall and CPU seconds of journalctl writing the file's export format to /dev/null."""
    t0 = time.monotonic()
    p = subprocess.Popen(["journalctl", "--file", str(f), "-o", "export"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - t0, usage.ru_utime + usage.ru_stime


def old_take(data, received, host, app, source, filt, after, first, max_value=journal.MAX_VALUE):
    """What the reader did before ``journal.take`` (its loop of then, as one function)."""
    try:
        entries, used = journal.parse(data)
    except journal.ExportFormatError as exc:
        return journal.Taken([], 0, None, error=exc)
    rows, cursor, excluded, errors = [], None, 0, 0
    for entry in entries:
        if filt.excluded(entry):
            c = next((v for k, v in entry if k == "__CURSOR"), None)
            if c is not None:
                cursor = c.decode("ascii", "replace")
            excluded += 1
            continue
        numberings = len(after)
        row = journal.to_row(entry, received, host, app, source, after, max_value)
        if row is None:
            errors += 1
            continue
        if len(after) > numberings:
            first.setdefault(next(reversed(after)), row[9][journal.AFTER] + 1)
        cursor = next(v for k, v in entry if k == "__CURSOR").decode("ascii")
        rows.append(row)
    return journal.Taken(rows, used, cursor, excluded, errors)


def bench_reader(d: Path, n: int, way) -> tuple[float, float]:
    """Wall and own CPU seconds to read ``n`` entries into frames with ``way`` as ``journal.take``."""
    real = journal.take
    journal.take = way
    try:
        t0, c0 = time.monotonic(), time.process_time()
        reader = JournalReader(str(d), {}, "beginning", journal.Filter(), "bench-host", "bench")
        got = frames = 0
        try:
            while got < n:
                rows, _, more = reader.read(time.time_ns())
                for i in range(0, len(rows), BATCH):
                    part = rows[i:i + BATCH]
                    codec.encode_rows("bench", "bench-host", part, min(r[1] for r in part),
                                      max(r[1] for r in part), input="journal")
                    frames += 1
                got += len(rows)
                if not rows:
                    select.select([reader.fileno()] if reader.fileno() is not None else [], [], [], 0.05)
        finally:
            reader.close()
        return time.monotonic() - t0, time.process_time() - c0
    finally:
        journal.take = real


def bench_worker(d: Path, n: int) -> tuple[float, float, float]:
    """Wall and own CPU seconds to take ``n`` entries' frames from a ``JournalWorker``; and the
    worker's CPU seconds (its journalctl's included)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, c0 = time.monotonic(), time.process_time()
    reader = JournalWorker(str(d), {}, "beginning", journal.Filter(), "bench-host", "bench",
                           environment="bench", batch_events=BATCH)
    got = 0
    try:
        while got < n:
            frames, sizes, _, more = reader.read_frames(time.time_ns())
            got += sum(sizes)
            if not more:
                select.select([reader.fileno()], [], [], 0.05)
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
    finally:
        reader.close()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, cpu, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.entries
    d = journal_dir(n)
    f = d / "bench.journal"
    tune_gc()   # as the tailer
    ways = {"take": journal.take, "parse+to_row": old_take}
    res: dict[str, list[tuple[float, float]]] = {"journalctl": [], **{k: [] for k in ways}, "worker": []}
    worker_total = []
    for r in range(args.repeat):
        res["journalctl"].append(bench_journalctl(f))
        for name, way in ways.items():
            res[name].append(bench_reader(d, n, way))
        w, c, wc = bench_worker(d, n)
        res["worker"].append((w, c))
        worker_total.append(c + wc)
        print(f"run {r + 1}: " + "; ".join(f"{k} {n / w:,.0f} entries/s, {c * 1e6 / n:.1f} CPU us/entry"
                                           for k, v in res.items() for w, c in v[-1:]), flush=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in res.items()}
    jw = med["journalctl"][0]
    print(f"median of {args.repeat} ({n:,} entries, {f.stat().st_size / 1e6:.0f} MB journal file):")
    for k, (w, c) in med.items():
        print(f"  {k:13} {n / w:>10,.0f} entries/s  {c * 1e6 / n:5.1f} CPU us/entry"
              + ("" if k == "journalctl" else f"  journalctl / this (wall) {jw / w:.2f}"))
    print(f"  {'+worker':13} {'':>10}             {statistics.median(worker_total) * 1e6 / n:5.1f} CPU us/entry "
          "(the worker and its journalctl too)")
    for k in ("take", "worker"):
        print(f"{k} / parse+to_row: this process's CPU {med['parse+to_row'][1] / med[k][1]:.2f}x less, "
              f"wall {med['parse+to_row'][0] / med[k][0]:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
