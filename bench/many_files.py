#!/usr/bin/env python3
"""Many files: what an idle tailer costs, and how soon a new line is in both
bucks, with 1, 1,000 and 10,000 followed files, inotify against polling in
the same run.

Run from the repository root::

    .venv/bin/python bench/many_files.py [--files 1,1000,10000] [--idle 10] [--lines 40]
        [--repeat N] [--against OTHER_TREE]

Per file count and per ``--watch`` mode (``inotify``, then ``poll`` at the
default 20 ms), a fresh tailer (default ``max_open_files`` 512: the other
files are parked without a descriptor) follows that many files, each with a
line in it, and sends to two bucks:

- idle CPU: once it follows every file and has been quiet ``--settle`` (30) s, the CPU
  seconds (utime + stime from /proc, the tailer and its encoder processes)
  over ``--idle`` seconds, as a percentage of one core;
- latency: ``--lines`` lines appended one at a time (100 ms apart) to files
  picked at random; each is timed from just before its ``write`` to its
  arrival on the live feed of BOTH bucks (a ZeroMQ SUB on each, in this
  process); p50, p95 and max in ms.

The ratio poll/inotify is printed per file count. Goals (issue 20): idle
with 10,000 files under 1 % of a core; p95 under 25 ms. The machine is
shared: read the figures as noisy, the ratios as the result.

``--repeat N`` runs each case N times and prints the medians. ``--against
TREE`` (another checkout of Helios, e.g. ``git worktree add /tmp/old
HEAD~3``) runs that tree's tailer too, alternating with this one's in the
same session and against the same bucks, and prints this tree's figures
over the other's (below 1: this one is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

import zmq  # noqa: E402

from helios.errors import FrameError  # noqa: E402
from helios.wire import live  # noqa: E402
from helios.wire.ports import free_endpoint  # noqa: E402

ENV = "manyfiles"
MARK = b"bench-seq="
TICK = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(msg, flush=True)


def wait(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Proc:
    def __init__(self, name: str, args: list[str], workdir: Path, root: Path = ROOT) -> None:
        self.err = open(workdir / f"{name}.err", "wb")
        self.p = subprocess.Popen([sys.executable, "-m", "helios", *args], cwd=root, stdout=self.err,
                                  stderr=self.err, env=dict(os.environ, PYTHONPATH=str(root)))

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def stats(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants (the encoders)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


class Feeds:
    """A SUB on each buck's live feed; when each numbered line arrived on each."""

    def __init__(self, pubs: list[str]) -> None:
        self.seen: list[dict[int, float]] = [{} for _ in pubs]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.read, args=(pub, seen), daemon=True)
                        for pub, seen in zip(pubs, self.seen)]
        for t in self.threads:
            t.start()

    def read(self, pub: str, seen: dict[int, float]) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.subscribe(live.prefix(ENV))
        sock.connect(pub)
        while not self.stopping.is_set():
            if not sock.poll(50):
                continue
            frames = sock.recv_multipart()
            t = time.monotonic()
            try:
                events = live.read(frames)
            except FrameError:
                continue
            for e in events:
                i = e.message.find(MARK)
                if i >= 0:
                    seen.setdefault(int(e.message[i + len(MARK):].split()[0]), t)
        sock.close()

    def both(self, n: int) -> float | None:
        a, b = self.seen[0].get(n), self.seen[1].get(n)
        return None if a is None or b is None else max(a, b)

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join()


def run(work: Path, ingest: list[str], feeds: Feeds, nfiles: int, mode: str, idle: float, lines: int,
        seq0: int, settle: float = 30.0, root: Path = ROOT, tag: str = "") -> dict:
    logs = work / f"logs-{nfiles}-{mode}{tag}"
    logs.mkdir()
    paths = [logs / f"f{i:05d}.log" for i in range(nfiles)]
    for p in paths:
        p.write_bytes(b"Nov 23 10:00:00 web-1 app[1]: the first line of %s\n" % p.name.encode())
    state = work / f"state-{nfiles}-{mode}{tag}"
    args = ["--log-level", "warning", "tailer", "--path", str(logs / "*.log"), "--env", ENV, "--start-at", "end",
            "--state-dir", str(state), "--watch", mode, *[x for ep in ingest for x in ("--buck", ep)]]
    t = Proc(f"tailer-{nfiles}-{mode}{tag}", args, work, root)
    try:
        wait(lambda: (stats(state / "stats.json") or {}).get("files", 0) >= nfiles, 300,
             f"the tailer to follow {nfiles} files")
        time.sleep(settle)  # parking, and the saves that follow the last change (INVENTORY_EVERY + 2 s)
        c0, w0 = cpu_seconds(t.p.pid), time.monotonic()
        time.sleep(idle)
        cpu = (cpu_seconds(t.p.pid) - c0) / (time.monotonic() - w0) * 100
        rng = random.Random(nfiles)
        lat = []
        for k in range(lines):
            n = seq0 + k
            path = rng.choice(paths)
            line = b"Nov 23 10:00:01 web-1 app[1]: %s%d x\n" % (MARK, n)
            with open(path, "ab") as f:
                t0 = time.monotonic()
                f.write(line)
            arrived = wait(lambda: feeds.both(n), 30, f"line {n} in both bucks", interval=0.001)
            lat.append((arrived - t0) * 1000)
            time.sleep(0.1)
        return {"files": nfiles, "mode": mode, "idle_cpu_pct": cpu, "p50_ms": percentile(lat, 0.5),
                "p95_ms": percentile(lat, 0.95), "max_ms": max(lat)}
    finally:
        t.stop()
    shutil.rmtree(logs, ignore_errors=True)


def median_of(runs: list[dict]) -> dict:
    """Each figure's median over runs of one case."""
    out = dict(runs[0])
    for key in ("idle_cpu_pct", "p50_ms", "p95_ms", "max_ms"):
        out[key] = statistics.median(r[key] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default="1,1000,10000")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured")
    ap.add_argument("--lines", type=int, default=40, help="lines timed per run")
    ap.add_argument("--modes", default="inotify,poll")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds of quiet before the idle CPU is measured")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; medians are printed")
    ap.add_argument("--against", type=Path, help="another Helios tree whose tailer runs alternately, same session")
    a = ap.parse_args()
    counts = [int(x) for x in a.files.split(",")]
    modes = a.modes.split(",")
    say(f"ulimit -n: {os.sysconf('SC_OPEN_MAX')}; fs.inotify.max_user_watches: "
        f"{Path('/proc/sys/fs/inotify/max_user_watches').read_text().strip()}; load: {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="helios-many-files-"))
    ok = False
    bucks, ingest, pubs = [], [], []
    try:
        for name in ("a", "b"):
            ing, pub = free_endpoint(), free_endpoint()
            d = work / f"buck-{name}"
            bucks.append(Proc(f"buck-{name}", ["--log-level", "warning", "buck", "--name", f"buck-{name}",
                                               "--ingest", ing, "--publish", pub, "--data-dir", str(d),
                                               "--stats-interval", "0.2"], work))
            ingest.append(ing)
            pubs.append(pub)
            wait(lambda: stats(d / "stats.json"), 30, f"buck {name}")
        feeds = Feeds(pubs)
        for d in ("a", "b"):
            wait(lambda: ((stats(work / f"buck-{d}" / "stats.json") or {}).get("live") or {})
                 .get("subscriptions", 0) >= 1, 30, "the live feed subscriptions")
        results = []
        seq = 0
        trees = [("this", ROOT)] + ([("against", a.against.resolve())] if a.against else [])
        for n in counts:
            for mode in modes:
                runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
                for k in range(a.repeat):
                    for name, root in trees if k % 2 == 0 else trees[::-1]:   # alternate who goes first
                        r = run(work, ingest, feeds, n, mode, a.idle, a.lines, seq, a.settle, root, f"-{name}-{k}")
                        seq += a.lines
                        runs[name].append(r)
                        say(f"{n:>6} files  {mode:<8} {name + ' ' if a.against else ''}idle CPU "
                            f"{r['idle_cpu_pct']:6.2f} % of a core   append->both bucks p50 {r['p50_ms']:6.1f} ms  "
                            f"p95 {r['p95_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms")
                med = {name: median_of(rs) for name, rs in runs.items()}
                results.append(med["this"])
                if a.repeat > 1 or a.against:
                    for name, m in med.items():
                        say(f"{n:>6} files  {mode:<8} {name:<8} median of {a.repeat}: idle CPU "
                            f"{m['idle_cpu_pct']:.2f} %  p50 {m['p50_ms']:.1f} ms  p95 {m['p95_ms']:.1f} ms  "
                            f"max {m['max_ms']:.1f} ms")
                if a.against:
                    t, o = med["this"], med["against"]
                    say(f"{n:>6} files  {mode:<8} this/against: idle CPU "
                        f"{t['idle_cpu_pct'] / max(o['idle_cpu_pct'], 1e-9):.2f}x  p50 "
                        f"{t['p50_ms'] / max(o['p50_ms'], 1e-9):.2f}x  p95 {t['p95_ms'] / max(o['p95_ms'], 1e-9):.2f}x  "
                        f"max {t['max_ms'] / max(o['max_ms'], 1e-9):.2f}x")
        feeds.stop()
        say("\nfiles   idle CPU poll/inotify   p95 poll/inotify")
        for n in counts:
            by = {r["mode"]: r for r in results if r["files"] == n}
            if "poll" in by and "inotify" in by:
                i, p = by["inotify"], by["poll"]
                say(f"{n:>6}   {p['idle_cpu_pct'] / max(i['idle_cpu_pct'], 1e-9):10.1f}x          "
                    f"{p['p95_ms'] / max(i['p95_ms'], 1e-9):6.2f}x")
        print(json.dumps(results))
        ok = True
    finally:
        for b in bucks:
            b.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"(kept {work} and its logs)")


if __name__ == "__main__":
    main()
