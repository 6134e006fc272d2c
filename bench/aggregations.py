#!/usr/bin/env python3
"""Aggregation benchmark: the search page's histogram and top values on the
embedded sqlite index, against fetching the same rows to Python and
counting there, in the same run.

    .venv/bin/python bench/aggregations.py [--events 1000000] [--repeat 5] [--keep DIR]

Builds (or reuses, with ``--keep``) a recent index of ``--events`` events
spread over one UTC day: 100 hosts, 20 apps, severities weighted like real
logs, every 10th event with a field ``user`` (50 values). Then, each the
median of ``--repeat`` runs, over the whole day and over its last hour:

- ``histogram``: ``index.histogram(q, step)`` with the page's step (about 60 buckets);
- ``top host``, ``top app``, ``top severity``, ``top user`` (an extracted field), 10 values,
  and ``tops`` of host, app and severity at once (one pass: the sidebar's way);
- a word query's histogram (``q = "timeout"``, about 1 event in 50);
- the naive way, for the whole day: ``SELECT t, sev`` of every row into
  Python and counting there (what the page would cost without GROUP BY).

Prints each figure and the ratio naive / GROUP BY.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helios.index.base import histogram_step, open_index  # noqa: E402
from helios.index.query import parse_query  # noqa: E402
from helios.model import Event, line_id  # noqa: E402

NS = 1_000_000_000
DAY0 = 1_790_000_000 // 86400 * 86400
SEVS = [3] * 2 + [4] * 8 + [5] * 10 + [6] * 70 + [7] * 10


def build(location: str, n: int) -> None:
    index = open_index("sqlite", location, workers=2)
    rnd = random.Random(1)
    chunk = []
    for i in range(n):
        t = DAY0 * NS + i * (86400 * NS // n) + rnd.randrange(1000)
        host, app = f"host-{rnd.randrange(100):03d}", f"app-{rnd.randrange(20):02d}"
        word = "timeout" if i % 50 == 7 else "ok"
        fields = {"user": f"user{rnd.randrange(50)}"} if i % 10 == 0 else None
        key = (host + app).encode().ljust(16, b".")[:16]
        chunk.append(Event(line_id(key, i * 100), t, t, host, app, rnd.choice(SEVS), f"/var/log/{app}.log", i * 100,
                           f"{host} {app}[{i % 9999}]: GET /api/v1/items/{i} {word} in {i % 900} ms".encode(),
                           fields, key, "prod"))
        if len(chunk) == 100_000:
            index.load("prod", chunk)
            chunk = []
    if chunk:
        index.load("prod", chunk)
    index.close()


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def naive_histogram(location: str, q, step: int) -> Counter:
    c: Counter = Counter()
    for path in sorted(Path(location, "helios-recent", "prod").glob("*/*.db")):
        conn = sqlite3.connect(path)
        for t, sev in conn.execute("SELECT t, sev FROM ev WHERE t >= ? AND t < ?", (q.start, q.end)):
            c[(t // step, sev)] += 1
        conn.close()
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", help="build the index here once and reuse it")
    a = ap.parse_args()
    location = a.keep or tempfile.mkdtemp(prefix="helios-agg-")
    if not Path(location, "helios-recent", "index.json").exists():
        t0 = time.perf_counter()
        build(location, a.events)
        print(f"built {a.events:,} events in {time.perf_counter() - t0:.1f} s at {location}")
    index = open_index("sqlite", location)
    for label, start, end in (("day", DAY0 * NS, (DAY0 + 86400) * NS),
                              ("last hour", (DAY0 + 23 * 3600) * NS, (DAY0 + 86400) * NS)):
        q = parse_query("", environment="prod", start=start, end=end, limit=None)
        step = histogram_step(start, end, 60)
        print(f"-- {label} ({index.count(q):,} events), median of {a.repeat}:")
        rows = [("histogram", lambda: index.histogram(q, step))]
        rows += [(f"top {f}", lambda f=f: index.top(q, f, 10)) for f in ("host", "app", "severity", "user")]
        rows.append(("tops host+app+severity", lambda: index.tops(q, ("host", "app", "severity"), 10)))
        wq = parse_query("timeout", environment="prod", start=start, end=end, limit=None)
        rows.append(("histogram of 'timeout'", lambda: index.histogram(wq, step)))
        got = {}
        for name, fn in rows:
            s, got[name] = timed(fn, a.repeat)
            print(f"{name:26s} {s * 1000:9.1f} ms")
        if label == "day":
            s_naive, c = timed(lambda: naive_histogram(location, q, step), max(1, a.repeat // 2))
            s_group, _ = timed(lambda: index.histogram(q, step), a.repeat)
            assert sum(c.values()) == sum(sum(b.values()) for _, b in got["histogram"])
            print(f"{'naive rows to Python':26s} {s_naive * 1000:9.1f} ms   ratio naive / GROUP BY: "
                  f"{s_naive / s_group:.1f}x")
    index.close()


if __name__ == "__main__":
    main()
