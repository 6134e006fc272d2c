#!/usr/bin/env python3
"""How long ``helios.client.record()`` keeps the application: the first call
and every one after it, with the ZeroMQ and the HTTP transport.

Run from the repository root::

    .venv/bin/python bench/record_latency.py [--events 20000] [--rate 5000] [--repeat 3]

One buck (ZeroMQ ingest and HTTP ingest) runs as a process. For each
transport, a fresh interpreter (so nothing is imported yet) imports
``helios.client``, configures it, and times with ``perf_counter_ns``:

- ``configure``: ``helios.configure(...)``, which makes the recorder and
  starts its background thread;
- ``first``: the very first ``record()``;
- the next ``--events`` calls at ``--rate`` events/s (in 1 ms steps, as an
  application would), while the background thread imports its transport,
  connects and sends: p50, p99, max.

Baseline in the same interpreter: ``collections.deque.append`` of the same
tuple (the floor of any in-process queue); the ratio is record()'s p99 over
the baseline's. Every event must reach the buck (checked by its stats.json).
``--repeat N`` repeats and quotes medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _mesh import Buck, code_revision, wait_until  # noqa: E402

# Runs in a fresh interpreter: argv = bucks, events, rate.
PROBE = r"""
import collections, json, sys, time
t0 = time.perf_counter_ns()
import helios.client as helios
imported = time.perf_counter_ns() - t0
bucks, events, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
clock = time.perf_counter_ns
t = clock(); helios.configure(bucks=[bucks], copies=1, environment="bench"); configure = clock() - t
t = clock(); helios.record(message="first", seq=0); first = clock() - t
lat = []
step = max(1, int(rate / 1000))  # events per 1 ms step
start = time.monotonic()
for i in range(1, events + 1):
    t = clock(); helios.record(message="event", seq=i); lat.append(clock() - t)
    if i % step == 0:
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
q = collections.deque()
base = []
for i in range(events):
    item = (b"0" * 16, i, {"message": "event", "seq": i})
    t = clock(); q.append(item); base.append(clock() - t)
ok = helios.flush(30)
print(json.dumps({"import_ms": imported / 1e6, "configure": configure, "first": first, "lat": lat, "base": base, "flushed": ok,
                  "stats": helios.stats()}))
"""


def pct(values: list[int], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def run(bucks: str, events: int, rate: float) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, bucks, str(events), str(rate)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"the probe failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.splitlines()[-1])
    lat, base = r["lat"], r["base"]
    return {"import_ms": r["import_ms"], "configure_us": r["configure"] / 1e3, "first_us": r["first"] / 1e3, "p50_us": pct(lat, 0.5) / 1e3,
            "p99_us": pct(lat, 0.99) / 1e3, "max_us": max(lat) / 1e3, "base_p99_us": pct(base, 0.99) / 1e3,
            "delivered": r["stats"].get("delivered", 0), "flushed": r["flushed"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=5000.0, help="events/s after the first")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="helios-bench-record-") as work:
        buck = Buck(Path(work), "buck-a", http=True, env="bench").start()
        try:
            transports = {"zeromq": buck.ingest, "http": buck.http_url}
            results: dict[str, list[dict]] = {name: [] for name in transports}
            expected = 0
            for _ in range(a.repeat):
                for name, bucks in transports.items():
                    r = run(bucks, a.events, a.rate)
                    expected += a.events + 1
                    results[name].append(r)
                    print(f"{name:7} configure {r['configure_us']:6.0f} µs  first {r['first_us']:8.1f} µs  p50 {r['p50_us']:6.1f} µs  "
                          f"p99 {r['p99_us']:7.1f} µs  max {r['max_us']:8.1f} µs  "
                          f"(deque.append p99 {r['base_p99_us']:.2f} µs; import helios.client "
                          f"{r['import_ms']:.0f} ms; delivered {r['delivered']}/{a.events + 1})", flush=True)
            wait_until(lambda: (buck.stats().get("events") or 0) >= expected, 60, "the buck to count every event")
        finally:
            buck.stop()
    print(f"\n## record() latency ({code_revision()}; {a.events} events at {a.rate:g}/s after the first, "
          f"medians of {a.repeat})\n")
    print("| transport | configure() | first record() | p50 | p99 | max | p99 / deque.append p99 |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in results.items():
        m = {k: statistics.median(r[k] for r in rs) for k in ("configure_us", "first_us", "p50_us", "p99_us", "max_us",
                                                              "base_p99_us")}
        print(f"| {name} | {m['configure_us']:.0f} µs | {m['first_us']:.0f} µs | {m['p50_us']:.1f} µs | {m['p99_us']:.1f} µs | "
              f"{m['max_us']:.0f} µs | {m['p99_us'] / m['base_p99_us']:.0f}x |")


if __name__ == "__main__":
    main()
