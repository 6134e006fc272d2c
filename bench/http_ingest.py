#!/usr/bin/env python3
"""HTTP ingest benchmark: events/s and ack latency per durability level and
number of clients, against the disk's raw fsync rate measured in the same run.

Run from the repository root::

    .venv/bin/python bench/http_ingest.py [--duration 4] [--repeat 3] [--clients 1,8,64]

What it measures (each repeat measures the baselines right before the
Helios runs, so every ratio compares figures taken seconds apart):

1. Baselines:
   - the raw fsync rate of the disk under the buck's data directory: a loop
     of 4 KiB append + fsync for 2 s (what one request per fsync could reach);
   - a bare aiohttp server (a subprocess) that reads each body and answers
     200 without parsing it, driven by the same clients: the ceiling of the
     HTTP layer and of this load generator on this machine.
2. One buck (``helios buck --http``, fresh data dir); for each durability
   (sent as the ``Helios-Durability`` header) and each client count:
   ``N`` concurrent clients, each on its own keep-alive connection, each
   POSTing JSON bodies of 100 events (about 160 bytes each; pre-encoded, ids
   assigned by the buck) back to back for ``--duration`` seconds after a
   1 s warm-up. Events/s counts acked events only (any non-200 answer is
   counted and reported); latency runs from sending a request to reading its
   answer. Back-to-back clients measure capacity: at saturation, latency is
   mostly queueing (64 requests in flight / requests per second).
   Then, per durability, an open-loop run: the largest number of clients
   together offer 50,000 events/s (500 requests/s) on a fixed schedule, and
   latency counts from each request's scheduled time: the ack latency an
   application sees at that load.
3. For ``fsynced``: requests per fsync round (from the buck's stats.json) and
   events/s as a multiple of the disk's limit without group commit
   (fsync/s x 100 events).
4. ``--repeat N``: medians (and ranges) of every figure; a markdown block at
   the end is ready to paste into BENCHMARKS.md. Results are also written to
   ``bench/out/http-ingest-TIMESTAMP.json``.

The clients run in this process (asyncio + aiohttp) and share the machine's
cores with the buck, as a co-located load balancer or app would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from helios.wire.ports import free_endpoint, free_port  # noqa: E402

OUT = ROOT / "bench" / "out"
LEVELS = ("received", "written", "fsynced")
EVENTS_PER_REQUEST = 100
PACED = 50_000  # events/s offered in the open-loop runs (the goal's rate)

BARE_SERVER = textwrap.dedent("""
    import sys
    from aiohttp import web
    async def events(request):
        body = await request.read()
        return web.json_response({"accepted": len(body)})
    app = web.Application()
    app.router.add_post("/v1/events", events)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
""")


def bodies(n: int = 64) -> list[bytes]:
    """Pre-encoded JSON bodies of 100 realistic events each."""
    rnd = random.Random(7)
    users = [f"user-{i:05d}" for i in range(5000)]
    out = []
    for _ in range(n):
        events = []
        for _ in range(EVENTS_PER_REQUEST):
            events.append({
                "severity": rnd.choice(["info", "info", "info", "warning", "err"]),
                "app": rnd.choice(["shop", "cart", "search"]),
                "message": f"checkout finished for {rnd.choice(users)} in {rnd.randint(5, 900)} ms",
                "order": rnd.randint(1, 10**9), "amount": round(rnd.uniform(1, 500), 2),
                "region": rnd.choice(["eu-west", "us-east", "ap-south"]),
            })
        out.append(json.dumps(events).encode())
    return out


def fsync_rate(directory: Path, seconds: float = 2.0) -> float:
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = os.urandom(4096)
    n = 0
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, block)
            os.fsync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


async def load(url: str, clients: int, duration: float, level: str | None, payloads: list[bytes],
               rate: float | None = None) -> dict:
    """``clients`` concurrent keep-alive clients for ``duration`` s after a 1 s
    warm-up: back to back (closed loop), or together ``rate`` requests/s on a
    fixed schedule (open loop; latency then counts from the scheduled time,
    so a request that had to wait for its client's previous one is charged
    for the wait)."""
    headers = {"Content-Type": "application/json"}
    if level:
        headers["Helios-Durability"] = level
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    latencies: list[float] = []
    counts = {"events": 0, "requests": 0, "errors": 0}
    warm_end = time.perf_counter() + 1.0
    end = warm_end + duration

    start = time.perf_counter()

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        i = n
        k = 0
        while True:
            t0 = time.perf_counter()
            if rate:
                due = start + (k * clients + n) / rate
                k += 1
                if due > t0:
                    await asyncio.sleep(due - t0)
                t0 = due
            if t0 >= end:
                return
            body = payloads[i % len(payloads)]
            i += clients
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                status = resp.status
            t1 = time.perf_counter()
            if t0 >= warm_end:
                counts["requests"] += 1
                if status == 200:
                    counts["events"] += EVENTS_PER_REQUEST
                    latencies.append(t1 - t0)
                else:
                    counts["errors"] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(n, session) for n in range(clients)))
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: 0.0)
    return {"events_per_s": counts["events"] / duration, "requests": counts["requests"], "errors": counts["errors"],
            "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def read_stats(data: Path) -> dict:
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


class Server:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = open(log, "ab")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_repeat(work: Path, client_counts: list[int], duration: float, payloads: list[bytes]) -> dict:
    out: dict = {"fsync_per_s": fsync_rate(work)}
    # Baseline: a bare aiohttp server, same clients, same bodies.
    port = free_port()
    (work / "bare.py").write_text(BARE_SERVER)
    bare = Server([sys.executable, str(work / "bare.py"), str(port)], work / "bare.out")
    try:
        url = f"http://127.0.0.1:{port}/v1/events"
        wait_for(lambda: _up(url), 15, "the bare server")
        out["bare"] = {str(c): asyncio.run(load(url, c, duration, None, payloads)) for c in client_counts}
    finally:
        bare.stop()
    data = work / f"buck-{time.monotonic_ns()}"
    port = free_port()
    buck = Server([sys.executable, "-m", "helios", "buck", "--ingest", free_endpoint(), "--publish", free_endpoint(),
                   "--data-dir", str(data), "--http", f"127.0.0.1:{port}", "--stats-interval", "0.2"],
                  work / "buck.out")
    try:
        url = f"http://127.0.0.1:{port}/v1/events"
        wait_for(lambda: read_stats(data).get("http"), 15, "the buck")
        for level in LEVELS:
            r = asyncio.run(load(url, max(client_counts), duration, level, payloads, rate=PACED / EVENTS_PER_REQUEST))
            out[f"paced/{level}"] = r
            time.sleep(0.5)  # stats.json is written every 0.2 s
            for c in client_counts:
                before = read_stats(data)["http"]
                cpu0 = cpu_seconds(buck.p.pid)
                t0 = time.perf_counter()
                r = asyncio.run(load(url, c, duration, level, payloads))
                r["buck_cpu"] = (cpu_seconds(buck.p.pid) - cpu0) / (time.perf_counter() - t0)
                time.sleep(0.5)
                if level == "fsynced":
                    after = read_stats(data)["http"]
                    rounds = after.get("fsync_rounds", 0) - before.get("fsync_rounds", 0)
                    acked = after.get("ok_fsynced", 0) - before.get("ok_fsynced", 0)
                    r["requests_per_fsync"] = acked / rounds if rounds else None
                    r["x_disk_limit"] = r["events_per_s"] / (out["fsync_per_s"] * EVENTS_PER_REQUEST)
                out[f"{level}/{c}"] = r
    finally:
        buck.stop()
    return out


def _up(url: str) -> bool:
    async def probe():
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(url, data=b"[]", headers={"Content-Type": "application/json"}) as r:
                    return r.status == 200
        except aiohttp.ClientError:
            return False
    return asyncio.run(probe())


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values, fmt="{:,.0f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.median(values)
    return fmt.format(m) if len(values) == 1 else f"{fmt.format(m)} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=4.0, help="measured seconds per run (after 1 s warm-up)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", default="1,8,64", help="client counts, comma-separated")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    payloads = bodies()
    OUT.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(dir=OUT, prefix="http-") as tmp:
        for i in range(args.repeat):
            r = one_repeat(Path(tmp), counts, args.duration, payloads)
            runs.append(r)
            print(f"repeat {i + 1}/{args.repeat}: fsync/s {r['fsync_per_s']:,.0f}; " + "; ".join(
                f"{k} {v['events_per_s']:,.0f} ev/s p99 {v['p99_ms']:.1f} ms" for k, v in r.items() if "/" in k),
                f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"http-ingest-{stamp}.json").write_text(json.dumps(
        {"machine": platform.platform(), "cpus": os.cpu_count(), "duration": args.duration, "runs": runs}, indent=1))

    lines = [
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs; {args.repeat} repeats of {args.duration:g} s "
        f"per run, medians (min..max). Bodies: JSON arrays of {EVENTS_PER_REQUEST} events "
        f"({len(payloads[0]) // EVENTS_PER_REQUEST} bytes each).",
        "",
        f"Raw disk: write 4 KiB + fsync loop: **{spread([r['fsync_per_s'] for r in runs])} fsync/s**, so one "
        f"request per fsync could ack at most {spread([r['fsync_per_s'] * EVENTS_PER_REQUEST for r in runs])} events/s.",
        "",
        "| durability | clients | events/s | ack p50 ms | ack p99 ms | buck CPU | requests per fsync | x disk limit | non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        for c in counts:
            rs = [r[f"{level}/{c}"] for r in runs]
            lines.append(
                f"| {level} | {c} | {spread([x['events_per_s'] for x in rs])} | "
                f"{spread([x['p50_ms'] for x in rs], '{:.1f}')} | {spread([x['p99_ms'] for x in rs], '{:.1f}')} | "
                f"{spread([x['buck_cpu'] for x in rs], '{:.2f}')} | "
                f"{spread([x.get('requests_per_fsync') for x in rs], '{:.1f}')} | "
                f"{spread([x.get('x_disk_limit') for x in rs], '{:.2f}')} | {sum(x['errors'] for x in rs)} |")
    for c in counts:
        rs = [r["bare"][str(c)] for r in runs]
        ratio = med([r[f"written/{c}"]["events_per_s"] / r["bare"][str(c)]["events_per_s"] for r in runs])
        lines.append(f"| bare aiohttp (baseline) | {c} | {spread([x['events_per_s'] for x in rs])} | "
                     f"{spread([x['p50_ms'] for x in rs], '{:.1f}')} | {spread([x['p99_ms'] for x in rs], '{:.1f}')} | "
                     f"- | - | written/bare {ratio:.2f} | {sum(x['errors'] for x in rs)} |")
    top = max(counts)
    lines += ["", f"Offered load of {PACED:,} events/s ({PACED // EVENTS_PER_REQUEST} requests/s on a fixed schedule) "
                  f"from {top} clients; latency from each request's scheduled time:", "",
              "| durability | events/s acked | ack p50 ms | ack p99 ms | non-200 |", "|---|---:|---:|---:|---:|"]
    for level in LEVELS:
        rs = [r[f"paced/{level}"] for r in runs]
        lines.append(f"| {level} | {spread([x['events_per_s'] for x in rs])} | "
                     f"{spread([x['p50_ms'] for x in rs], '{:.1f}')} | {spread([x['p99_ms'] for x in rs], '{:.1f}')} | "
                     f"{sum(x['errors'] for x in rs)} |")
    cap = [r[f"fsynced/{top}"] for r in runs]
    paced = [r["paced/fsynced"] for r in runs]
    lines += ["", f"Goal ({top} clients, fsynced): >= 50,000 events/s and ack p99 < 50 ms. Measured: capacity "
                  f"{med([x['events_per_s'] for x in cap]):,.0f} events/s; at {PACED:,} events/s offered, "
                  f"p99 {med([x['p99_ms'] for x in paced]):.1f} ms."]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
