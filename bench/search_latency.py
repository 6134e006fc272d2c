#!/usr/bin/env python3
"""How long after it is written an event is found by ``helios search``, in
``helios demo`` (two bucks, tailer, porter: the whole path).

Run from the repository root::

    .venv/bin/python bench/search_latency.py [--window 10] [--markers 10] [--rate 200]

A demo runs with ``--window`` second windows. Every few seconds a line with
a unique marker is appended to the generator's file (one write, O_APPEND:
whole lines only), and ``helios search`` is polled until it finds it; the
figure is the time from the write to the first search that finds it. Prints
p50, p95 and max, and the same-run comparison: latency over window width
(the bucks hold a window open two windows after its end, so today's ratio is
2..3; indexing the open window early would bring it towards 0).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--markers", type=int, default=10)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--every", type=float, default=3.0, help="seconds between markers")
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="helios-search-latency-") as tmp:
        folder = Path(tmp) / "demo"
        out = open(Path(tmp) / "demo.out", "w+")
        demo = subprocess.Popen([sys.executable, "-m", "helios", "demo", "--dir", str(folder), "--no-web",
                                 "--rate", str(a.rate), "--window", str(a.window)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            config = folder / "helios.toml"
            gen = folder / "generated.log"
            deadline = time.monotonic() + 60
            while not (config.exists() and gen.exists()) and time.monotonic() < deadline:
                time.sleep(0.2)
            written: dict[str, float] = {}
            found: dict[str, float] = {}
            next_marker = time.monotonic()
            stop_at = time.monotonic() + a.markers * a.every + 4 * a.window + 60
            while time.monotonic() < stop_at and len(found) < a.markers:
                now = time.monotonic()
                if len(written) < a.markers and now >= next_marker:
                    marker = f"latencymarker{len(written):04d}x{os.getpid()}"
                    stamp = time.strftime("%b %e %H:%M:%S", time.gmtime())
                    fd = os.open(gen, os.O_WRONLY | os.O_APPEND)
                    os.write(fd, f"<14>{stamp} bench-1 bench[1]: {marker}\n".encode())
                    os.close(fd)
                    written[marker] = time.monotonic()
                    next_marker = now + a.every
                r = subprocess.run([sys.executable, "-m", "helios", "search", "-c", str(config), "--env", "demo",
                                    "--start", "-1h", "-o", "raw", "--all", "app:bench"], env=env,
                                   capture_output=True, text=True)
                t = time.monotonic()
                for m in re.findall(r"latencymarker\d{4}x\d+", r.stdout):
                    if m in written and m not in found:
                        found[m] = t - written[m]
                time.sleep(0.2)
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
            out.close()
    lat = sorted(found.values())
    if not lat:
        print("no marker was found: see the demo's output")
        return 1
    p50 = statistics.median(lat)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    print(f"search latency, {len(lat)} of {a.markers} markers found, window {a.window} s: "
          f"p50 {p50:.1f} s  p95 {p95:.1f} s  max {lat[-1]:.1f} s")
    print(f"same run, latency / window width: p50 {p50 / a.window:.2f}  p95 {p95 / a.window:.2f}")
    return 0 if len(lat) == a.markers else 1


if __name__ == "__main__":
    sys.exit(main())
