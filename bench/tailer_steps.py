#!/usr/bin/env python3
"""Where the tailer's loop spends its turns with many files: each step timed.

Run from the repository root::

    .venv/bin/python bench/tailer_steps.py [--files 10000] [--settle 10] [--idle 20] [--lines 40]
        [--against OTHER_TREE]

A real tailer (inotify, the default 512 open files: the others parked) runs
in this process, following ``--files`` files, each with a line, and sending
to two real bucks (subprocesses). Its steps (``Tailer.save``,
``send_inventory``, ``watch_dirs``, ``pass_over_files``, ``Watcher.scan``,
...) are wrapped with a timer, and each loop turn is timed without its
sleep. Printed per phase (the settle after every file is followed, an idle
spell, then ``--lines`` appends 100 ms apart to random files): per step the
calls, total, p50 and max ms; the loop turns' p50, p99 and max; the turns
over 8 ms with what they did; the collector's pauses; and the idle CPU of
the process (all its threads; noisy on a shared machine: the counts are the
result, not the milliseconds). ``--against TREE`` runs the same in another
Helios tree (steps it lacks are left out) after this one.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

STEPS = {"Tailer": ["save", "send_inventory", "watch_dirs", "pass_over_files", "changed_readers",
                    "remember_parked", "look_at_parked", "resend_spool", "flush", "write_stats"],
         "Watcher": ["scan", "park_idle", "unpark", "remember"]}


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--against", type=Path)
    a = ap.parse_args()
    root = Path(os.environ.get("HELIOS_TREE") or Path(__file__).resolve().parent.parent)
    sys.path.insert(0, str(root))
    run(root, a)
    if a.against:
        print(f"\n=== against {a.against}", flush=True)
        args = [sys.executable, __file__, "--files", str(a.files), "--settle", str(a.settle), "--idle", str(a.idle),
                "--lines", str(a.lines)]
        subprocess.run(args, env=dict(os.environ, HELIOS_TREE=str(a.against.resolve()),
                                      PYTHONPATH=str(a.against.resolve())), check=False)


def run(root: Path, a) -> None:
    from helios import config
    from helios.services import tailer as T
    from helios.tail import notify
    from helios.tail import watcher as W
    from helios.wire.ports import free_endpoint

    print(f"tree {root}; {a.files} files; load {os.getloadavg()[0]:.2f}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="helios-tailer-steps-"))
    logs = work / "logs"
    logs.mkdir()
    paths = [logs / f"f{i:05d}.log" for i in range(a.files)]
    for p in paths:
        p.write_bytes(b"Nov 23 10:00:00 web-1 app[1]: the first line of %s\n" % p.name.encode())
    bucks, ingest = [], []
    for name in "ab":
        ing, pub = free_endpoint(), free_endpoint()
        bucks.append(subprocess.Popen([sys.executable, "-m", "helios", "--log-level", "warning", "buck", "--name", name,
                                       "--ingest", ing, "--publish", pub, "--data-dir", str(work / name)],
                                      cwd=root, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(root))))
        ingest.append(ing)
    times: dict[str, list[float]] = collections.defaultdict(list)
    turn: list[tuple[str, float]] = []
    turns: list[float] = []
    slow: list[tuple[float, list]] = []
    pauses: list[tuple[int, float]] = []

    def wrap(cls, name):
        orig = getattr(cls, name, None)
        if orig is None:
            return

        def timed(*args, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*args, **kw)
            finally:
                ms = (time.perf_counter() - t0) * 1000
                times[f"{cls.__name__}.{name}"].append(ms)
                turn.append((f"{cls.__name__}.{name}", ms))
        setattr(cls, name, timed)

    for cls, names in ((T.Tailer, STEPS["Tailer"]), (W.Watcher, STEPS["Watcher"])):
        for n in names:
            wrap(cls, n)
    # A loop turn: from one notifier.take to the next, less the time asleep in wait.
    last = [None]
    take, wait = notify.Notifier.take, notify.Notifier.wait

    def timed_take(self):
        now = time.perf_counter()
        if last[0] is not None:
            ms = (now - last[0]) * 1000
            turns.append(ms)
            if ms > 8:
                slow.append((ms, [(n, round(m, 1)) for n, m in turn if m > 0.5]))
        turn.clear()
        out = take(self)
        last[0] = time.perf_counter()
        return out

    def timed_wait(self, timeout, also=None):
        t0 = time.perf_counter()
        try:
            return wait(self, timeout, also)
        finally:
            if last[0] is not None:
                last[0] += time.perf_counter() - t0
    notify.Notifier.take, notify.Notifier.wait = timed_take, timed_wait

    def on_gc(phase, info, t=[0.0]):
        if phase == "start":
            t[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - t[0]) * 1000))
    gc.callbacks.append(on_gc)

    cfg = config.load(None, {"tailer.paths": (str(logs / "*.log"),), "tailer.environment": "steps",
                             "tailer.bucks": tuple(ingest), "tailer.state_dir": str(work / "state"),
                             "tailer.start_at": "end", "tailer.watch": "inotify"}).tailer
    t = T.Tailer(cfg)
    th = threading.Thread(target=t.run, daemon=True)
    t0 = time.monotonic()
    th.start()
    while time.monotonic() - t0 < 600:
        w = getattr(t, "watcher", None)
        if w is not None and len(w.current) + len(w.parked) >= a.files:
            break
        time.sleep(0.1)
    print(f"following {a.files} files after {time.monotonic() - t0:.1f} s", flush=True)

    def report(title):
        print(f"-- {title}")
        for k, v in sorted(times.items()):
            print(f"   {k:26s} calls {len(v):5d}  total {sum(v):8.1f} ms  p50 {percentile(v, .5):6.2f}  "
                  f"max {max(v):7.2f} ms")
        if turns:
            print(f"   loop turns {len(turns)}: p50 {percentile(turns, .5):.2f} ms  p99 {percentile(turns, .99):.2f} ms  "
                  f"max {max(turns):.2f} ms; over 8 ms: {len(slow)}")
        for ms, what in sorted(slow, reverse=True)[:5]:
            print(f"     {ms:7.1f} ms: {what}")
        if pauses:
            print(f"   collector: {len(pauses)} pauses, max {max(p for _, p in pauses):.1f} ms, "
                  f"generations {sorted({g for g, _ in pauses})}")
        times.clear()
        turns.clear()
        slow.clear()
        pauses.clear()

    time.sleep(a.settle)
    report(f"settle ({a.settle:g} s after every file is followed)")
    c0, w0 = sum(os.times()[:2]), time.monotonic()
    time.sleep(a.idle)
    cpu = (sum(os.times()[:2]) - c0) / (time.monotonic() - w0) * 100
    report(f"idle {a.idle:g} s: CPU {cpu:.2f} % of a core (this process, all threads)")
    rng = random.Random(1)
    for k in range(a.lines):
        with open(rng.choice(paths), "ab") as f:
            f.write(b"Nov 23 10:00:01 web-1 app[1]: line %d\n" % k)
        time.sleep(0.1)
    time.sleep(1)
    report(f"{a.lines} appends, 100 ms apart")
    t.stop()
    th.join(60)
    for b in bucks:
        b.terminate()
        b.wait()


if __name__ == "__main__":
    main()
