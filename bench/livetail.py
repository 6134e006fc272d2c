#!/usr/bin/env python3
"""Live tail benchmark: from a line appended to a log file to that line in
the DOM of the page in headless Chromium, through the whole mesh.

Run from the repository root::

    .venv/bin/python bench/livetail.py [--rates 100,1000,10000] [--seconds 30] [--repeat 1]
                                       [--screenshots docs/screenshots]

The chain: a writer thread appends realistic RFC 3164 lines (``helios.loadgen``)
to a file -> ``helios tailer`` -> two ``helios buck`` (each line reaches
both) -> ``helios web`` (subscribes to both live feeds, dedups, merges, sends)
-> Debian's Chromium, headless, driven by Playwright, one page.

Each line ends with `` seq=N t=MS``, MS being the wall clock (ms) just before
the ``write`` of its chunk. The page calls ``window.heliosOnRender(rows)``
right after it inserted a frame's lines into the DOM; the hook installed here
records ``Date.now() - MS`` per line (same machine, same clock) and the bench
drains those numbers once a second, so the page holds none of them.

Per rate (lines/s, ``--seconds`` each):

- latency p50/p95/p99/max of the lines rendered, and p95 of the last 5 s
  of the phase (is it keeping up, or drifting behind?);
- rendered lines/s, and lines the server dropped to keep up (the page's
  "N lines dropped" counter), so written = rendered + dropped + lost;
- CPU seconds of each process during the phase.

Then the renderer's memory once at least 200,000 lines went through the page
(extra lines at 5,000/s if the phases rendered fewer): the renderer
processes' RSS and PSS from /proc, and the page's JS heap from the Chrome
DevTools Protocol.

Baseline, in the same run and on the same lines: a ZeroMQ SUB socket in a
process of its own, subscribed to the live feed of one buck (every line reaches both),
timing each line from append to arrival: the floor below the web process and
the browser. The ratio page/feed says what the web process and the browser
add. (It runs on the same two cores as everything else, as does the writer.)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import signal
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

from helios import loadgen  # noqa: E402
from helios.wire import live  # noqa: E402
from helios.wire.ports import free_endpoint, free_port  # noqa: E402

OUT = ROOT / "bench" / "out"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MEMORY_LINES = 200_000

HOOK = """
(() => {
  let lat = [], rendered = 0;
  window.heliosOnRender = rows => {
    const now = Date.now();
    for (let i = 0; i < rows.length; i++) {
      const m = rows[i][5], at = m.lastIndexOf(" t=");
      if (at >= 0) lat.push(now - parseFloat(m.slice(at + 3)));
    }
    rendered += rows.length;
  };
  window.benchDrain = () => { const out = lat; lat = []; return out; };
  window.benchRendered = () => rendered;
})();
"""


def say(msg: str) -> None:
    print(msg, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# ------------------------------------------------------------------ processes

class Mesh:
    """Two bucks, a tailer and helios web, as separate processes."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.log = workdir / "app.log"
        self.log.write_bytes(b"")
        self.ingest = [free_endpoint(), free_endpoint()]
        self.publish = [free_endpoint(), free_endpoint()]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"

    def start(self, name: str, *args: str) -> None:
        out = open(self.dir / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "helios", *args], stdout=out,
                                            stderr=subprocess.STDOUT, cwd=ROOT)

    def up(self) -> None:
        for i, name in enumerate(("buck-a", "buck-b")):
            self.start(name, "buck", "--name", name, "--ingest", self.ingest[i], "--publish", self.publish[i],
                       "--data-dir", str(self.dir / name))
        self.wait(lambda: all((self.dir / n / "stats.json").exists() for n in ("buck-a", "buck-b")), "bucks")
        tail = ["tailer", "--path", str(self.log), "--env", "bench", "--start-at", "beginning",
                "--state-dir", str(self.dir / "tailer-state")]
        for ep in self.ingest:
            tail += ["--buck", ep]
        self.start("tailer", *tail)
        web = ["web", "--listen", f"127.0.0.1:{self.port}"]
        for ep in self.publish:
            web += ["--feed", ep]
        self.start("web", *web)
        import urllib.request

        def answers():
            try:
                urllib.request.urlopen(self.url + "api/status", timeout=1).read()
                return True
            except OSError:
                return False
        self.wait(answers, "helios web")

    def wait(self, check, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited:\n{(self.dir / f'{name}.out').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.05)

    def status(self) -> dict:
        import urllib.request
        with urllib.request.urlopen(self.url + "api/status", timeout=5) as r:
            return json.load(r)

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def down(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(root: int) -> dict[int, str]:
    """pid -> cmdline of every process below ``root``."""
    children: dict[int, list[int]] = {}
    cmd: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = {}, [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out[c] = cmd.get(c, "")
            todo.append(c)
    return out


def chromium_pids() -> dict[str, list[int]]:
    procs = {"renderer": [], "browser": [], "other": []}
    for pid, cmd in descendants(os.getpid()).items():
        if "chrom" not in cmd.split(" ", 1)[0]:
            continue
        kind = "renderer" if "--type=renderer" in cmd else "browser" if "--type=" not in cmd else "other"
        procs[kind].append(pid)
    return procs


def memory_kb(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private: what freeing the process would give back)."""
    out = {"rss": 0, "pss": 0, "uss": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower()] = int(rest.split()[0])
            elif key in ("Private_Clean", "Private_Dirty"):
                out["uss"] += int(rest.split()[0])
    except OSError:
        pass
    return out


def page_renderer() -> dict[str, float]:
    """Memory (MB) of the page's renderer: the biggest of Chromium's renderers
    (the others are spare ones Chromium keeps, a few MB of their own)."""
    mems = [memory_kb(pid) for pid in chromium_pids()["renderer"]]
    biggest = max(mems, key=lambda m: m["uss"], default={"rss": 0, "pss": 0, "uss": 0})
    return {k: round(v / 1024, 1) for k, v in biggest.items()}


# --------------------------------------------------------------- load, probe

SEVERITIES = (2, 3, 4, 5, 6, 7)
WEIGHTS = (1, 6, 10, 8, 70, 5)


class Writer(threading.Thread):
    """Appends lines at a rate, in chunks every 10 ms, each line stamped and
    given a syslog priority (mostly info, some warnings and errors)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.rate = 0
        self.seq = 0
        self.written = 0
        self.stop_at = 0.0
        self.go = threading.Event()
        self.done = threading.Event()
        self.rng = random.Random(1)

    def phase(self, rate: int, seconds: float) -> None:
        self.rate, self.stop_at = rate, time.monotonic() + seconds
        self.done.clear()
        self.go.set()

    def run(self) -> None:
        with open(self.path, "ab", buffering=0) as f:
            while True:
                self.go.wait()
                self.go.clear()
                start, sent = time.monotonic(), 0
                while (now := time.monotonic()) < self.stop_at:
                    due = int((now - start) * self.rate) + 1 - sent
                    if due > 0:
                        stamp = time.time()
                        lines = []
                        for _ in range(due):
                            base = loadgen.rfc3164_line(self.rng, stamp).rstrip("\n")
                            pri = 8 + self.rng.choices(SEVERITIES, WEIGHTS)[0]  # facility user
                            lines.append(f"<{pri}>{base} seq={self.seq} t={stamp * 1000:.3f}\n")
                            self.seq += 1
                        f.write("".join(lines).encode())
                        sent += due
                        self.written += due
                    time.sleep(0.01)
                self.done.set()


class FeedProbe:
    """The baseline: a SUB on a buck's live feed, timing each new line. It
    runs in a process of its own, so that it does not wait for this one
    (the writer and Playwright) to let go of the GIL."""

    def __init__(self, endpoints: list[str]) -> None:
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        self.queue = ctx.Queue()
        self.proc = ctx.Process(target=probe_main, args=(endpoints, self.queue), daemon=True)

    def start(self) -> None:
        self.proc.start()

    def drain(self) -> list[float]:
        import queue
        out = []
        while True:
            try:
                out += self.queue.get_nowait()
            except queue.Empty:
                return out


def probe_main(endpoints: list[str], out) -> None:
    sock = zmq.Context().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    for ep in endpoints:
        sock.connect(ep)
    sock.setsockopt(zmq.SUBSCRIBE, b"bench\x00")
    seen: set[bytes] = set()
    lat: list[float] = []
    next_send = time.monotonic() + 0.5
    while True:
        if sock.poll(100):
            for _ in range(256):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.time() * 1000
                for e in live.read(frames):
                    if e.id in seen:
                        continue
                    seen.add(e.id)
                    at = e.message.rfind(b" t=")
                    if at >= 0:
                        lat.append(now - float(e.message[at + 3:]))
        if time.monotonic() >= next_send:
            if lat:
                out.put(lat)
                lat = []
            if len(seen) > 1_000_000:
                seen.clear()
            next_send = time.monotonic() + 0.5


# --------------------------------------------------------------------- run

def run_phase(page, mesh: Mesh, writer: Writer, probe: FeedProbe, rate: int, seconds: float) -> dict:
    watched = {n: [p] for n, p in mesh.pids().items()}
    watched.update({f"chromium-{k}": vs for k, vs in chromium_pids().items()})
    watched["bench"] = [os.getpid()]  # the writer and Playwright
    watched["probe"] = [probe.proc.pid]

    def cpu_now():
        return {n: sum(cpu_seconds(p) for p in ps) for n, ps in watched.items()}
    cpu0 = cpu_now()
    dropped0 = page.evaluate("window.heliosLive.droppedServer")
    rendered0 = page.evaluate("window.benchRendered()")
    written0 = writer.written
    page.evaluate("window.benchDrain()")
    probe.drain()
    lat, tail_lat, feed_lat, uss = [], [], [], []
    t0 = time.monotonic()
    writer.phase(rate, seconds)
    # Until the writer is done, then until nothing more arrives for 2 s (at most 60 s):
    # lines still on their way are not lost, only late, and late shows in the latency.
    quiet_since, last_count = None, -1
    while True:
        time.sleep(1)
        uss.append(page_renderer()["uss"])
        got = page.evaluate("window.benchDrain()")
        lat += got
        if time.monotonic() > t0 + seconds - 5 and time.monotonic() <= t0 + seconds + 0.5:
            tail_lat += got
        feed_lat += probe.drain()
        if not writer.done.is_set():
            continue
        count = page.evaluate("window.benchRendered() + window.heliosLive.droppedServer")
        if count != last_count:
            quiet_since, last_count = time.monotonic(), count
        elif time.monotonic() - quiet_since >= 2 or time.monotonic() > t0 + seconds + 60:
            break
    wall = time.monotonic() - t0
    cpu1 = cpu_now()
    cpu = {n: round(cpu1[n] - cpu0[n], 2) for n in watched}
    rendered = page.evaluate("window.benchRendered()") - rendered0
    dropped = page.evaluate("window.heliosLive.droppedServer") - dropped0
    written = writer.written - written0
    return {
        "rate": rate, "seconds": seconds, "written": written, "rendered": rendered, "dropped": dropped,
        "lost": written - rendered - dropped,
        "rendered_per_s": round(rendered / seconds),
        "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99), "max_ms": max(lat, default=None),
        "p95_last5s_ms": pct(tail_lat, 95),
        "feed_p50_ms": pct(feed_lat, 50), "feed_p95_ms": pct(feed_lat, 95), "feed_p99_ms": pct(feed_lat, 99),
        "feed_lines": len(feed_lat), "cpu_s": cpu, "wall_s": round(wall, 1),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),  # other work on the machine shows here
        "renderer_uss_mb_each_s": uss,
    }


def measure_memory(page) -> dict:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    mem = page_renderer()
    cdp.send("HeapProfiler.enable")
    cdp.send("HeapProfiler.collectGarbage")
    time.sleep(1)
    after_gc = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    gc_mem = page_renderer()
    return {
        "after_gc_renderer_rss_mb": gc_mem["rss"],
        "after_gc_renderer_uss_mb": gc_mem["uss"],
        "after_gc_dom_nodes": int(after_gc.get("Nodes", 0)),
        "after_gc_js_heap_used_mb": round(after_gc.get("JSHeapUsedSize", 0) / 2**20, 1),
        "lines_rendered": page.evaluate("window.benchRendered()"),
        "lines_held": page.evaluate("window.heliosLive.rows.length"),
        "renderer_rss_mb": mem["rss"],
        "renderer_pss_mb": mem["pss"],
        "renderer_uss_mb": mem["uss"],
        "js_heap_used_mb": round(metrics.get("JSHeapUsedSize", 0) / 2**20, 1),
        "js_heap_total_mb": round(metrics.get("JSHeapTotalSize", 0) / 2**20, 1),
        "dom_nodes": int(metrics.get("Nodes", 0)),
    }


def one_run(args, sync_playwright) -> dict:
    with tempfile.TemporaryDirectory(prefix="helios-livetail-") as tmp:
        mesh = Mesh(Path(tmp))
        try:
            mesh.up()
            writer = Writer(mesh.log)
            writer.start()
            probe = FeedProbe(mesh.publish[:1])  # one buck: half the decoding, on the cores under test
            probe.start()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(HOOK)
                page.goto(mesh.url)
                # Not wait_for_function: it evals in the page, which the page's CSP refuses.
                deadline = time.monotonic() + 30
                while not page.evaluate("window.heliosLive && window.heliosLive.filterSent !== null"):
                    if time.monotonic() > deadline:
                        raise SystemExit("the page did not connect in 30 s")
                    time.sleep(0.05)
                # Warm up until a line shows: subscriptions have reached both bucks.
                writer.phase(20, 1.0)
                deadline = time.monotonic() + 20
                while page.evaluate("window.benchRendered()") == 0:
                    if time.monotonic() > deadline:
                        raise SystemExit("no line reached the page in 20 s")
                    if writer.done.is_set():
                        writer.phase(20, 1.0)
                    time.sleep(0.1)
                writer.done.wait()
                time.sleep(1)
                idle = page_renderer()
                say(f"  the page before the phases: renderer RSS {idle['rss']} MB, PSS {idle['pss']} MB, "
                    f"USS {idle['uss']} MB")
                phases = []
                for rate in args.rates:
                    say(f"  {rate:,} lines/s for {args.seconds:g} s ...")
                    r = run_phase(page, mesh, writer, probe, rate, args.seconds)
                    say(f"    rendered {r['rendered_per_s']:,}/s, p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms "
                        f"(last 5 s {r['p95_last5s_ms']}), dropped {r['dropped']:,}, lost {r['lost']:,}; "
                        f"feed p95 {r['feed_p95_ms'] and round(r['feed_p95_ms'], 1)} ms; "
                        f"load average {r['loadavg_1min_after']}; renderer USS max {max(r['renderer_uss_mb_each_s'])} MB")
                    phases.append(r)
                    if args.screenshots and rate == args.rates[0]:
                        Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(Path(args.screenshots) / "live-tail.png"))
                extra = 0
                while page.evaluate("window.benchRendered()") < MEMORY_LINES:
                    say("  more lines at 5,000/s until 200,000 went through the page ...")
                    r = run_phase(page, mesh, writer, probe, 5000, 10)
                    extra += r["rendered"]
                    if r["rendered"] == 0:
                        break
                memory = measure_memory(page)
                say(f"  memory after {memory['lines_rendered']:,} lines: renderer RSS {memory['renderer_rss_mb']} MB, "
                    f"PSS {memory['renderer_pss_mb']} MB, USS {memory['renderer_uss_mb']} MB, "
                    f"JS heap {memory['js_heap_used_mb']} MB, {memory['dom_nodes']:,} DOM nodes")
                if args.screenshots:
                    page.select_option("#f-severity", "4")
                    page.fill("#highlight", "alice")
                    writer.phase(300, 3)
                    writer.done.wait()
                    time.sleep(1)
                    page.screenshot(path=str(Path(args.screenshots) / "live-tail-filtered.png"))
                status = mesh.status()
                browser.close()
            memory.update({f"idle_renderer_{k}_mb": v for k, v in idle.items()})
            return {"phases": phases, "memory": memory, "web_counts": status["counts"], "bucks": status["bucks"]}
        finally:
            mesh.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="100,1000,10000", help="lines/s of each phase [100,1000,10000]")
    ap.add_argument("--seconds", type=float, default=30, help="length of each phase [30]")
    ap.add_argument("--repeat", type=int, default=1, help="whole runs; medians are quoted [1]")
    ap.add_argument("--screenshots", help="save screenshots of the page in this folder")
    args = ap.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium (make sysdeps)")
    from playwright.sync_api import sync_playwright

    runs = []
    for i in range(args.repeat):
        say(f"run {i + 1}/{args.repeat}")
        runs.append(one_run(args, sync_playwright))
        args.screenshots = None  # once is enough

    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 1) if values else None

    say("\nmedians over %d run(s); latency from append to the DOM; feed = ZeroMQ SUB on one buck, in a process of its own" % len(runs))
    say("| lines/s | rendered/s | dropped | lost | p50 ms | p95 ms | p99 ms | max ms | p95 last 5 s | "
        "feed p95 ms | page/feed p95 | CPU s web | CPU s renderer |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for k, rate in enumerate(args.rates):
        ph = [r["phases"][k] for r in runs]
        row = {key: med([p[key] for p in ph]) for key in (
            "rendered_per_s", "dropped", "lost", "p50_ms", "p95_ms", "p99_ms", "max_ms", "p95_last5s_ms",
            "feed_p95_ms")}
        row["rate"] = rate
        row["ratio"] = round(row["p95_ms"] / row["feed_p95_ms"], 1) if row["p95_ms"] and row["feed_p95_ms"] else None
        row["cpu_web"] = med([p["cpu_s"].get("web") for p in ph])
        row["cpu_renderer"] = med([p["cpu_s"].get("chromium-renderer") for p in ph])
        row["cpu"] = {n: med([p["cpu_s"].get(n) for p in ph]) for n in ph[0]["cpu_s"]}
        summary.append(row)
        say(f"| {rate:,} | {row['rendered_per_s']:,.0f} | {row['dropped']:,.0f} | {row['lost']:,.0f} | {row['p50_ms']} | "
            f"{row['p95_ms']} | {row['p99_ms']} | {row['max_ms']} | {row['p95_last5s_ms']} | {row['feed_p95_ms']} | "
            f"{row['ratio']}x | {row['cpu_web']} | {row['cpu_renderer']} |")
    mem = {key: med([r["memory"][key] for r in runs]) for key in runs[0]["memory"]}
    say("CPU seconds per phase (median): " + "; ".join(
        f"{r['rate']:,}/s: " + ", ".join(f"{n} {v}" for n, v in r["cpu"].items()) for r in summary))
    say(f"the page before any phase: renderer RSS {mem['idle_renderer_rss_mb']} MB, PSS {mem['idle_renderer_pss_mb']} MB, "
        f"USS {mem['idle_renderer_uss_mb']} MB")
    say(f"after a forced GC: renderer RSS {mem['after_gc_renderer_rss_mb']} MB, USS {mem['after_gc_renderer_uss_mb']} MB, "
        f"{mem['after_gc_dom_nodes']:,.0f} DOM nodes, JS heap {mem['after_gc_js_heap_used_mb']} MB")
    say(f"\nrenderer after {mem['lines_rendered']:,.0f} lines rendered ({mem['lines_held']:,.0f} held by the page): "
        f"RSS {mem['renderer_rss_mb']} MB, PSS {mem['renderer_pss_mb']} MB, USS {mem['renderer_uss_mb']} MB, JS heap {mem['js_heap_used_mb']} MB, "
        f"{mem['dom_nodes']:,.0f} DOM nodes")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"livetail-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary, "memory": mem}, indent=1))
    say(f"details: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
