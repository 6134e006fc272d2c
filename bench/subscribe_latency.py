#!/usr/bin/env python3
"""Live feed benchmark: ``helios subscribe`` latency, and ingest with subscribers.

Run from the repository root::

    .venv/bin/python bench/subscribe_latency.py [--duration 10] [--repeat 3] [--events 200000]

1. Latency, append to output. Two bucks, a tailer and ``helios subscribe
   --output raw`` (stdout piped here, read by a thread) run as processes, as
   an operator runs them. Lines are appended to the tailed file at 100 and
   1,000 lines/s (in 10 ms steps) for ``--duration`` seconds each; each
   carries a sequence number, and its latency runs from the ``write`` to the
   moment its line is read from subscribe's stdout. Baseline, in the same
   run: a ZeroMQ SUB in this process on buck A's live feed, decoding with
   ``helios.wire.live`` (the floor: tailer, buck, PUB, no subscriber
   process); the ratio is subscribe's p99 over the baseline's.
2. Ingest with subscribers. ``--events`` lines (in a file written before the
   tailer starts) go through the tailer to both bucks with (a) nobody
   watching, (b) one stuck subscriber (a SUB that never reads), (c) one
   ``helios subscribe --output count``; the figure is the time until both
   bucks' stats.json count every event, and the ratio is against (a).
3. Many subscription prefixes (issue 17, attack 6). The same ingest with
   (d) ``--prefixes`` (100,000) prefixes on each buck, from 100 SUB sockets,
   each naming an app of the ingested environment that never occurs (so every
   frame is decoded and each of its topics looked up, and nothing is sent:
   the worst case for a filter that scans prefixes), and (e) one such prefix;
   the bucks run with their subscription caps raised so that all are taken.
   The figure is the ratio (d)/(e), the cost of the number of prefixes, which
   must stay under 1.10; (d)/(a) is shown too. The same in-process, without
   the mesh's noise: ``Publisher.publish`` of one stored frame of 1,000
   events with one prefix and with ``--prefixes``.

``--repeat N`` repeats everything and quotes medians (and ranges). A markdown
block at the end is ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

LAT_ENV = "benchlat"
MARK = b"helios-bench-seq="


def log(msg: str) -> None:
    print(msg, flush=True)


class Proc:
    def __init__(self, name: str, args: list[str], workdir: Path, stdout=None) -> None:
        self.name = name
        self.err = open(workdir / f"{name}.err", "wb")
        self.p = subprocess.Popen([sys.executable, "-m", "helios", *args], cwd=ROOT,
                                  stdout=stdout if stdout is not None else self.err, stderr=self.err)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def stats(data: Path) -> dict | None:
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return None


def wait(check, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Mesh:
    """Two bucks and a tailer (own state dir) following ``log``."""

    def __init__(self, workdir: Path, log_path: Path, env: str, buck_args: tuple[str, ...] = ()) -> None:
        self.procs: list[Proc] = []
        self.data, self.ingest, self.pubs = [], [], []
        for n in ("a", "b"):
            ing, pub, d = free_endpoint(), free_endpoint(), workdir / f"buck-{n}"
            self.procs.append(Proc(f"buck-{n}", ["buck", "--name", f"buck-{n}", "--ingest", ing, "--publish", pub,
                                                 "--data-dir", str(d), "--stats-interval", "0.1", *buck_args],
                                   workdir))
            self.data.append(d)
            self.ingest.append(ing)
            self.pubs.append(pub)
        for d in self.data:
            wait(lambda: stats(d), 20, f"{d.name} to start")
        self.tailer_args = ["tailer", "--path", str(log_path), "--env", env, "--start-at", "beginning",
                            "--state-dir", str(workdir / "tailer-state"),
                            *[x for ep in self.ingest for x in ("--buck", ep)]]
        self.workdir = workdir

    def start_tailer(self) -> None:
        self.procs.append(Proc("tailer", self.tailer_args, self.workdir))

    def subscribed(self, *counts: int) -> None:
        """Wait until each buck has seen (at least) its count of subscriptions."""
        for d, count in zip(self.data, counts):
            wait(lambda: stats(d)["live"]["subscriptions"] >= count, 20, f"subscriptions on {d.name}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(lat_ms: list[float]) -> dict:
    return {"n": len(lat_ms), "p50": percentile(lat_ms, 0.5), "p95": percentile(lat_ms, 0.95),
            "p99": percentile(lat_ms, 0.99), "max": max(lat_ms)}


# --------------------------------------------------------------- latency


def latency_run(workdir: Path, rates: list[int], duration: float, reorder_delay: float) -> dict:
    log_path = workdir / "lat.log"
    log_path.write_bytes(b"")
    mesh = Mesh(workdir, log_path, LAT_ENV)
    mesh.start_tailer()
    appended: dict[int, float] = {}
    seen_sub: dict[int, float] = {}
    seen_base: dict[int, float] = {}

    sub = Proc("subscribe", ["--log-level", "warning", "subscribe", "--output", "raw", "--env", LAT_ENV,
                             "--reorder-delay", str(reorder_delay),
                             *[x for p in mesh.pubs for x in ("--feed", p)]], workdir, stdout=subprocess.PIPE)

    def read_subscribe():
        for line in sub.p.stdout:
            t = time.monotonic()
            i = line.find(MARK)
            if i >= 0:
                seen_sub.setdefault(int(line[i + len(MARK):].split()[0]), t)

    base = zmq.Context.instance().socket(zmq.SUB)
    base.setsockopt(zmq.LINGER, 0)
    base.subscribe(live.prefix(LAT_ENV, "bench"))  # a prefix of its own, so it shows as a second subscription
    base.connect(mesh.pubs[0])
    stop = threading.Event()

    def read_baseline():
        while not stop.is_set():
            if not base.poll(50):
                continue
            frames = base.recv_multipart()
            t = time.monotonic()
            try:
                events = live.read(frames)
            except FrameError:
                continue
            for e in events:
                i = e.message.find(MARK)
                if i >= 0:
                    seen_base.setdefault(int(e.message[i + len(MARK):].split()[0]), t)

    readers = [threading.Thread(target=read_subscribe, daemon=True), threading.Thread(target=read_baseline, daemon=True)]
    for r in readers:
        r.start()
    mesh.subscribed(2, 1)  # subscribe's prefix on both, the baseline's on buck A
    out = {}
    seq = 0
    try:
        with open(log_path, "ab", buffering=0) as f:
            for rate in rates:
                first = seq
                step = 0.01
                per_step = rate * step
                owed = 0.0
                start = time.monotonic()
                next_t = start
                while time.monotonic() - start < duration:
                    owed += per_step
                    n = int(owed)
                    owed -= n
                    if n:
                        chunk = b"".join(b"<14>Nov 23 10:00:00 bench-host bench[1]: %s%d padding to look like a log line\n"
                                         % (MARK, seq + k) for k in range(n))
                        t = time.monotonic()
                        f.write(chunk)
                        for k in range(n):
                            appended[seq + k] = t
                        seq += n
                    next_t += step
                    time.sleep(max(0.0, next_t - time.monotonic()))
                last = seq
                wait(lambda: all(i in seen_sub for i in range(first, last)), 30, f"every line at {rate}/s",
                     interval=0.05)
                wait(lambda: all(i in seen_base for i in range(first, last)), 10, "the baseline", interval=0.05)
                sub_ms = [(seen_sub[i] - appended[i]) * 1000 for i in range(first, last)]
                base_ms = [(seen_base[i] - appended[i]) * 1000 for i in range(first, last)]
                out[rate] = {"subscribe": summary(sub_ms), "baseline": summary(base_ms)}
                s, b = out[rate]["subscribe"], out[rate]["baseline"]
                log(f"  {rate:>5} lines/s: subscribe p50 {s['p50']:.1f} p95 {s['p95']:.1f} p99 {s['p99']:.1f} "
                    f"max {s['max']:.1f} ms | baseline SUB p50 {b['p50']:.1f} p99 {b['p99']:.1f} ms "
                    f"| p99 ratio {s['p99'] / b['p99']:.2f}")
    finally:
        stop.set()
        readers[1].join(5)  # the baseline reader owns its socket until it stops
        base.close()
        sub.stop()
        mesh.stop()
    return out


# --------------------------------------------------------------- ingest


def ingest_run(workdir: Path, events: int, mode: str, prefixes: int = 100_000) -> float:
    log_path = workdir / "ingest.log"
    with open(log_path, "wb") as f:
        for start in range(0, events, 10_000):
            f.write(b"".join(b"<%d>Nov 23 10:00:%02d web-%d app%d[42]: line %08d payload of a usual size for a log line\n"
                             % (8 + i % 8, i % 60, i % 5, i % 20, i) for i in range(start, min(events, start + 10_000))))
    buck_args: tuple[str, ...] = ()
    if mode in ("prefixes", "one-prefix"):
        cfg = workdir / "buck.toml"
        cfg.write_text(f"[buck]\nlive_max_subscriptions = {max(prefixes, 1)}\n"
                       f"live_max_subscriptions_per_peer = {max(prefixes, 1)}\n")
        buck_args = ("-c", str(cfg))
    mesh = Mesh(workdir, log_path, "benchin", buck_args)
    extra = None
    many: list = []
    try:
        if mode in ("prefixes", "one-prefix"):
            # Apps that never occur ("app7" does, "nosuch7-..." does not); cut mid-field on purpose.
            n = prefixes if mode == "prefixes" else 1
            sockets = min(100, n)
            for s in range(sockets):
                sock = zmq.Context.instance().socket(zmq.SUB)
                sock.setsockopt(zmq.LINGER, 0)
                for i in range(s, n, sockets):
                    sock.subscribe(b"benchin\0nosuch%d-%d" % (s, i))
                for p in mesh.pubs:
                    sock.connect(p)
                many.append(sock)
            mesh.subscribed(n, n)
            log(f"    ({mode}: {n:,} prefixes on each buck)")
        if mode == "stuck":
            extra = zmq.Context.instance().socket(zmq.SUB)
            extra.setsockopt(zmq.LINGER, 0)
            extra.setsockopt(zmq.RCVHWM, 10)
            # Subscribed to everything the way helios subscribe and the web tail are: the whole-batch stream.
            extra.subscribe(live.WHOLE)
            for p in mesh.pubs:
                extra.connect(p)
            mesh.subscribed(1, 1)
        elif mode == "reader":
            extra = Proc("reader", ["--log-level", "warning", "subscribe", "--output", "count",
                                    *[x for p in mesh.pubs for x in ("--feed", p)]], workdir)
            mesh.subscribed(1, 1)
        start = time.monotonic()
        mesh.start_tailer()
        wait(lambda: all((stats(d) or {}).get("events", 0) >= events for d in mesh.data), 300,
             "every event in both bucks", interval=0.05)
        elapsed = time.monotonic() - start
        if mode in ("stuck", "reader"):
            q = [stats(d)["live"]["queue_full"] for d in mesh.data]
            log(f"    ({mode}: bucks' queue_full {q})")
        return elapsed
    finally:
        if isinstance(extra, Proc):
            extra.stop()
        elif extra is not None:
            extra.close()
        for sock in many:
            sock.close()
        mesh.stop()


def publish_cost(prefixes: int, frames: int = 300) -> dict[int, float]:
    """Milliseconds per ``Publisher.publish`` of a 1,000-event frame, by number of prefixes."""
    from helios import codec
    from helios.model import Event, random_id
    from helios.wire.publisher import Publisher

    sock = zmq.Context.instance().socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"inproc://bench-publish-{os.urandom(6).hex()}")
    t = time.time_ns()
    events = [Event(random_id(), t, t, f"web-{i % 5}", f"app{i % 20}", i % 8, "", None,
                    b"line %08d payload of a usual size for a log line" % i, None) for i in range(1000)]
    frame = codec.encode_events("benchin", "web-1", events)
    header = codec.check_frame(frame)
    out = {}
    try:
        for n in (1, prefixes):
            pub = Publisher(sock, "bench", max_subscriptions=max(n, 1), max_per_peer=max(n, 1))
            for i in range(n):
                pub.on_upstream([b"\x01benchin\0nosuch%d-%d" % (i % 100, i)], "bench")
            start = time.perf_counter()
            for _ in range(frames):
                pub.publish(header, frame)
            out[n] = (time.perf_counter() - start) / frames * 1000
    finally:
        sock.close()
    return out


# --------------------------------------------------------------- main


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" + (f" ({min(values):.1f}-{max(values):.1f})" if len(values) > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per rate (default 10)")
    ap.add_argument("--rates", default="100,1000", help="lines/s, comma-separated (default 100,1000)")
    ap.add_argument("--events", type=int, default=200_000, help="lines for the ingest part (default 200000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--prefixes", type=int, default=100_000, help="prefixes per buck for part 3 (default 100000)")
    ap.add_argument("--skip-prefixes", action="store_true")
    ap.add_argument("--reorder-delay", type=float, default=0.02,
                    help="helios subscribe --reorder-delay (default 0.02, its own default)")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    lat: dict[int, dict[str, list]] = {r: {"sub": [], "base": [], "sub95": [], "sub50": [], "max": []} for r in rates}
    ing: dict[str, list[float]] = {"none": [], "stuck": [], "reader": []}
    if not args.skip_prefixes:
        ing.update({"prefixes": [], "one-prefix": []})
    for rep in range(args.repeat):
        log(f"repeat {rep + 1}/{args.repeat}")
        if args.skip_latency:
            res = None
        else:
            with tempfile.TemporaryDirectory(prefix="helios-bench-live-") as tmp:
                res = latency_run(Path(tmp), rates, args.duration, args.reorder_delay)
        for r in rates if res else ():
            lat[r]["sub"].append(res[r]["subscribe"]["p99"])
            lat[r]["sub95"].append(res[r]["subscribe"]["p95"])
            lat[r]["sub50"].append(res[r]["subscribe"]["p50"])
            lat[r]["max"].append(res[r]["subscribe"]["max"])
            lat[r]["base"].append(res[r]["baseline"]["p99"])
        if not args.skip_ingest:
            for mode in ing:
                with tempfile.TemporaryDirectory(prefix="helios-bench-live-") as tmp:
                    t = ingest_run(Path(tmp), args.events, mode, args.prefixes)
                ing[mode].append(t)
                log(f"  ingest {args.events:,} lines to both bucks, {mode:<6}: {t:.2f} s ({args.events / t:,.0f} lines/s)")

    log("")
    log(f"### Live feed: `helios subscribe --reorder-delay {args.reorder_delay:g}` ({platform.machine()}, "
        f"{os.cpu_count()} cores, medians of {args.repeat}, ranges in brackets)")
    log("")
    log("| rate | subscribe p50 | p95 | p99 | max | baseline SUB p99 | p99 ratio |")
    log("|---|---|---|---|---|---|---|")
    for r in rates if not args.skip_latency else ():
        ratio = [s / b for s, b in zip(lat[r]["sub"], lat[r]["base"])]
        log(f"| {r:,} lines/s | {med(lat[r]['sub50'])} ms | {med(lat[r]['sub95'])} ms | {med(lat[r]['sub'])} ms | "
            f"{med(lat[r]['max'])} ms | {med(lat[r]['base'])} ms | {statistics.median(ratio):.2f} |")
    if not args.skip_ingest:
        log("")
        log(f"| ingest of {args.events:,} lines into both bucks | seconds | lines/s | vs nobody watching |")
        log("|---|---|---|---|")
        base = statistics.median(ing["none"])
        for mode, label in (("none", "nobody watching"), ("stuck", "one stuck subscriber"),
                            ("reader", "one `helios subscribe --output count`")):
            m = statistics.median(ing[mode])
            log(f"| {label} | {med(ing[mode])} | {args.events / m:,.0f} | {m / base:.2f} |")
        if not args.skip_prefixes:
            for mode, label in (("one-prefix", "one prefix naming an absent app"),
                                ("prefixes", f"{args.prefixes:,} such prefixes (100 sockets)")):
                m = statistics.median(ing[mode])
                log(f"| {label} | {med(ing[mode])} | {args.events / m:,.0f} | {m / base:.2f} |")
            ratio = [a / b for a, b in zip(ing["prefixes"], ing["one-prefix"])]
            log("")
            log(f"{args.prefixes:,} prefixes vs one (same run, median of per-repeat ratios): "
                f"{statistics.median(ratio):.2f} (goal: under 1.10)")
    if not args.skip_prefixes:
        costs = [publish_cost(args.prefixes) for _ in range(args.repeat)]
        one = statistics.median(c[1] for c in costs)
        many = statistics.median(c[args.prefixes] for c in costs)
        log(f"In-process, Publisher.publish of a 1,000-event frame: {one:.3f} ms with one prefix, {many:.3f} ms "
            f"with {args.prefixes:,}: ratio {many / one:.2f}")


if __name__ == "__main__":
    main()
