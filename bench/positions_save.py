#!/usr/bin/env python3
"""How long a positions save blocks the tailer's loop, with many files.

Run from the repository root::

    .venv/bin/python bench/positions_save.py [--files 10000] [--saves 20] [--moved 40] [--touched 512]

Per save, ``--moved`` entries get a new offset (lines read) and ``--touched``
more only a new "seen" time (the open readers ``Watcher.remember`` visits);
then a save as the tailer did before (fingerprint over every entry, JSON of
every entry, write, fsync, rename, all on the loop) and as it does now
(fingerprint without a walk, a snapshot of the changed entries handed to
``positions.Saver``'s thread). The inventory's walk is timed the same way:
every entry before, the changed ones now. Figures are the loop's blocking
time per save in ms (median and max); the ratio is before/after. The machine
may be shared: read the ratio, not the figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios.store.atomic import write_atomic  # noqa: E402
from helios.tail import positions  # noqa: E402
from helios.tail.positions import Position, Positions  # noqa: E402


def make(n: int) -> Positions:
    return Positions({f"{i:032x}": Position(f"/var/log/app/f{i:05d}.log", 2049, 100000 + i, b"first line %d\n" % i,
                                            0, 1000 + i, time.time(), head_len=64, head_hash=i,
                                            paths=[f"/var/log/app/f{i:05d}.log"], size=1000 + i, first=0)
                      for i in range(n)})


def old_fingerprint(p: Positions) -> tuple:
    return (sum(x.offset for x in p.files.values()), len(p.files), sum(x.done for x in p.files.values()),
            sum(x.changed for x in p.files.values()), sum(x.head_len for x in p.files.values()),
            tuple(sorted(p.spool.items())), len(p.watching))


def old_inventory(p: Positions, sent: dict) -> int:
    n = 0
    for key, x in list(p.files.items()):
        major, minor = (tuple(x.paths), x.first, x.end, x.detail), (x.size, x.offset)
        if sent.get(key) == (major, minor):
            continue
        sent[key] = (major, minor)
        n += 1
    return n


def new_inventory(p: Positions, sent: dict) -> int:
    n = 0
    for key, x in p.take_inventory_touched().items():
        major, minor = (tuple(x.paths), x.first, x.end, x.detail), (x.size, x.offset)
        if sent.get(key) == (major, minor):
            continue
        sent[key] = (major, minor)
        n += 1
    return n


def move(p: Positions, keys: list[str], moved: int, touched: int, rng: random.Random) -> None:
    now = time.time()
    for k in rng.sample(keys, moved):
        x = p.files[k]
        x.offset += 80
        x.size = max(x.size, x.offset)
    for k in keys[:touched]:
        p.files[k].seen = now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--moved", type=int, default=40)
    ap.add_argument("--touched", type=int, default=512)
    a = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "positions.json"
        times: dict[str, list[float]] = {"before": [], "after": [], "inv before": [], "inv after": []}
        p = make(a.files)
        keys = list(p.files)
        sent: dict = {}
        old_inventory(p, sent)
        for _ in range(a.saves):
            move(p, keys, a.moved, a.touched, rng)
            t0 = time.perf_counter()
            old_fingerprint(p)
            write_atomic(path, p.to_bytes())
            t1 = time.perf_counter()
            old_inventory(p, sent)
            t2 = time.perf_counter()
            times["before"].append(t1 - t0)
            times["inv before"].append(t2 - t1)
        p = make(a.files)
        saver = positions.Saver(path)
        saver.submit(p.snapshot())
        saver.wait()
        sent = {}
        new_inventory(p, sent)
        for _ in range(a.saves):
            move(p, keys, a.moved, a.touched, rng)
            t0 = time.perf_counter()
            p.fingerprint()
            saver.submit(p.snapshot())
            t1 = time.perf_counter()
            new_inventory(p, sent)
            t2 = time.perf_counter()
            times["after"].append(t1 - t0)
            times["inv after"].append(t2 - t1)
            saver.wait()   # (not in the loop: the tailer goes on; here, one save at a time)
        saver.close()
        assert positions.load(path).files == p.files
    print(f"{a.files} entries, {a.moved} moved and {a.touched} more touched per save, {a.saves} saves:")
    for name, v in times.items():
        print(f"  {name:11s} median {statistics.median(v) * 1000:8.2f} ms   max {max(v) * 1000:8.2f} ms")
    for what in ("", "inv "):
        b, f = statistics.median(times[what + "before"]), statistics.median(times[what + "after"])
        print(f"  ratio {what or 'save '}before/after (median): {b / f:.1f}x")


if __name__ == "__main__":
    main()
