#!/usr/bin/env python3
"""How long after it is written an event is found by ``helios search``, in
``helios demo`` (two bucks, tailer, porter: the whole path).

Run from the repository root::

    .venv/bin/python bench/search_latency.py [--window 10] [--markers 10] [--rate 200]

A demo runs with ``--window`` second windows, twice: with the porter's
``index_open_windows`` (the open windows indexed as events arrive) and
without (a window is indexed once closed: the bucks hold it open two windows
after its end). Every few seconds a line with a unique marker is appended
to the generator's file (one write, O_APPEND: whole lines only), and
``helios search`` is polled until it finds it; the figure is the time from
the write to the first search that finds it. Prints p50, p95 and max of
each, and the same-run comparison as a ratio (closed windows only over
open windows indexed). Each run also checks the index holds each event
once (exactly once, after the window's own load too: ``helios export``,
ids counted), and reports the CPU time of the porter (its process and
every process it started) per event indexed, and the ratio on / off.
"""

from __future__ import annotations

import argparse
import json
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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and every live process under it."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            parents[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo.extend(c for c, pp in parents.items() if pp == p and c not in tree)
    ticks = 0
    for p in tree:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def run(a, index_open: bool) -> tuple[list[float], dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    found: dict[str, float] = {}
    info: dict = {}
    with tempfile.TemporaryDirectory(prefix="helios-search-latency-") as tmp:
        folder = Path(tmp) / "demo"
        out = open(Path(tmp) / "demo.out", "w+")
        demo = subprocess.Popen([sys.executable, "-m", "helios", "demo", "--dir", str(folder), "--no-web",
                                 "--rate", str(a.rate), "--window", str(a.window),
                                 "--index-open-windows" if index_open else "--no-index-open-windows"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            config = folder / "helios.toml"
            gen = folder / "generated.log"
            deadline = time.monotonic() + 60
            while not (config.exists() and gen.exists()) and time.monotonic() < deadline:
                time.sleep(0.2)

            def search() -> list[str]:
                r = subprocess.run([sys.executable, "-m", "helios", "search", "-c", str(config), "--env", "demo",
                                    "--start", "-1h", "-o", "raw", "--all", "app:bench"], env=env,
                                   capture_output=True, text=True)
                return re.findall(r"latencymarker\d{4}x\d+", r.stdout)

            written: dict[str, float] = {}
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
                hits = search()
                t = time.monotonic()
                for m in hits:
                    if m in written and m not in found:
                        found[m] = t - written[m]
                time.sleep(0.2)
            # Exactly once: after every marker's window was loaded whole too.
            time.sleep(3 * a.window + 5)
            hits = search()
            twice = {m for m in hits if hits.count(m) > 1}
            if twice:
                print(f"  DUPLICATES in the index: {sorted(twice)}")
            out.flush()
            m = re.search(r"porter\s+pid (\d+)", Path(out.name).read_text())
            if m:
                info["cpu_s"] = cpu_seconds(int(m.group(1)))
            r = subprocess.run([sys.executable, "-m", "helios", "export", "-c", str(config), "--env", "demo",
                                "--start", "-1d", "-o", "ndjson"], env=env, capture_output=True, text=True)
            ids = [json.loads(line)["id"] for line in r.stdout.splitlines() if line.strip()]
            info["events"], info["duplicates"] = len(ids), len(ids) - len(set(ids))
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
            out.close()
    return sorted(found.values()), info


def summary(label: str, result: tuple[list[float], dict], a) -> float | None:
    lat, info = result
    if "cpu_s" in info and info.get("events"):
        info["per_event"] = info["cpu_s"] / info["events"]
        print(f"{label}: porter CPU {info['cpu_s']:.1f} s for {info['events']} events in the index "
              f"({info['per_event'] * 1e6:.0f} us/event), {info['duplicates']} duplicate(s) in the index")
    if not lat:
        print(f"{label}: no marker was found")
        return None
    p50 = statistics.median(lat)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    print(f"{label}: {len(lat)} of {a.markers} markers found, window {a.window} s: "
          f"p50 {p50:.1f} s  p95 {p95:.1f} s  max {lat[-1]:.1f} s  (p95 / window {p95 / a.window:.2f})")
    return p95


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--markers", type=int, default=10)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--every", type=float, default=3.0, help="seconds between markers")
    a = ap.parse_args()
    on, off = run(a, True), run(a, False)
    fresh = summary("open windows indexed (default)", on, a)
    closed = summary("closed windows only           ", off, a)
    if fresh and closed:
        print(f"same run: p95 closed windows only / open windows indexed = {closed / fresh:.1f}x")
    if on[1].get("per_event") and off[1].get("per_event"):
        print(f"same run: porter CPU per event, open windows indexed / closed windows only = "
              f"{on[1]['per_event'] / off[1]['per_event']:.2f}x")
    return 0 if fresh and closed else 1


if __name__ == "__main__":
    sys.exit(main())
