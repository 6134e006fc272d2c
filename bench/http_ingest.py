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
5. The client library's three paths, from an application's threads
   (``--part record``; ``--part all``, the default, runs both parts):
   two bucks (``--http``) and a relay (``helios relay``, ipc socket, spool
   on, sending each batch to both bucks). In this process, 1, 8 and 32
   application threads (``--threads``) call ``Recorder.record()`` back to
   back for ``--record-events`` events in all (dicts like the HTTP bodies'
   events; the recorder's queue holds them all, so none is dropped), through

   - ``zmq``: ``[client] bucks`` = the two ingest endpoints, copies 2;
   - ``http``: ``[client] bucks`` = the two HTTP URLs (durability written,
     one buck per batch);
   - ``relay``: ``[client] relay`` = the relay's ipc endpoint; the relay
     spools each batch and sends it to both bucks. Its spool window is a
     day, so the re-send of a closed spool bucket (a third copy) does not
     land inside the measurement, as in ``bench/ingest.py``'s ``on``.

   Events/s runs from the first ``record()`` until the bucks' stats.json
   hold every event (both bucks for zmq and relay, either for http): the
   whole path, not just the hand-off. ``record()`` p50/p99 are over every
   call; application CPU is this process's CPU per event (the recording
   threads and the library's background threads), the cost an application
   pays; relay CPU is the relay process's.
6. Token authentication on vs off (``--part token``; also in ``all``): two
   bucks, one without ``http_tokens`` and one with 16 of them (each request
   carries a valid one: every stored hash is compared, in constant time),
   measured in turn (off, on, on, off: half the duration each, the first
   mode alternating by repeat) with the same clients and bodies (durability
   ``written``). The ratio on/off is taken per repeat; its median is the cost
   of authentication.

7. Slow clients (``--part slowloris``; also in ``all``): one buck
   (``--http``) and one ``helios web``, each with its defaults (timeouts,
   caps). Honest clients offer, on a fixed schedule, 100 POSTs/s of the
   bodies above (durability ``written``, so the disk's fsync does not hide
   the HTTP layer) and 20 page loads/s of the web app's ``/`` (a new
   connection each, as werkzeug closes every connection), for
   ``--slow-duration`` seconds (15: longer than the header timeout, so
   servers close slow connections and they come back while it is
   measured), first without and then with ``--slow``
   (default 500) slowloris connections open against EACH server. They come
   from a child process (so their work does not slow this one's clock),
   from 127.0.0.2..127.0.0.51 (10 per address, under the per-client caps:
   the timeouts, not the caps, must hold), and trickle: half send a request
   line and one header line a second, half send whole headers and one
   body byte a second, each connection at its own random phase of the
   second; each one the server closes is opened again at once. Figures: POST and page-load p50/p99 in both phases, the ratio
   with/without, non-200 answers, and how many slow connections the
   servers closed (their timeouts at work). Goal: p99 under 100 ms with
   the slow connections open. The file-descriptor limit is raised for the
   child and the servers.

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
import resource
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
               rate: float | None = None, extra_headers: dict | None = None) -> dict:
    """``clients`` concurrent keep-alive clients for ``duration`` s after a 1 s
    warm-up: back to back (closed loop), or together ``rate`` requests/s on a
    fixed schedule (open loop; latency then counts from the scheduled time,
    so a request that had to wait for its client's previous one is charged
    for the wait)."""
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
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


# --- part 5: the client library's paths (record() from application threads) ---

TRANSPORTS = ("zmq", "http", "relay")


def event_maps(n: int = 1000) -> list[dict]:
    """Events like the HTTP bodies' (pre-made: the threads measure record(), not this)."""
    return [e for body in bodies(n // EVENTS_PER_REQUEST) for e in json.loads(body)]


def buck_events(datas: list[Path]) -> list[int]:
    return [read_stats(d).get("events", 0) for d in datas]


def record_run(settings: dict, threads: int, total: int, events: list[dict], datas: list[Path],
               copies_on_each: bool, relay_pid: int | None) -> dict:
    """``threads`` application threads record ``total`` events back to back;
    wait until the bucks hold them all."""
    import threading

    from helios.client import Recorder

    time.sleep(0.5)  # stats.json is written every 0.2 s: let the last run's counts settle
    before = buck_events(datas)
    rec = Recorder(queue_size=total + 1000, **settings)
    latencies: list[list[int]] = [[] for _ in range(threads)]
    per = total // threads
    gate = threading.Barrier(threads + 1)

    def app(k: int) -> None:
        lat = latencies[k]
        record, clock = rec.record, time.perf_counter_ns
        mine = events[k::threads] or events
        m = len(mine)
        gate.wait()
        for i in range(per):
            t0 = clock()
            record(mine[i % m])
            lat.append(clock() - t0)

    workers = [threading.Thread(target=app, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    cpu0 = time.process_time()
    relay_cpu0 = cpu_seconds(relay_pid) if relay_pid else 0.0
    gate.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    recorded = time.perf_counter() - t0
    rec.flush(120)
    want = per * threads

    def arrived() -> bool:
        got = [a - b for a, b in zip(buck_events(datas), before)]
        return min(got) >= want if copies_on_each else sum(got) >= want
    wait_for(arrived, 180, "every recorded event in the bucks")
    # The last stats.json may lag the store by up to 0.2 s: a bias of at most that against every transport.
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stats = rec.stats()
    rec.close(timeout=5)
    flat = sorted(x for lat in latencies for x in lat)
    pick = lambda q: flat[min(len(flat) - 1, int(q * len(flat)))] / 1000  # noqa: E731  (µs)
    return {"events_per_s": want / elapsed, "record_per_s": want / recorded, "p50_us": pick(0.50),
            "p99_us": pick(0.99), "app_cpu_us_per_event": cpu / want * 1e6, "dropped": stats.get("dropped", 0),
            "relay_cpu_us_per_event": (cpu_seconds(relay_pid) - relay_cpu0) / want * 1e6 if relay_pid else None}


def record_repeat(work: Path, thread_counts: list[int], total: int, events: list[dict]) -> dict:
    out: dict = {}
    servers: list[Server] = []
    try:
        eps, urls, datas = [], [], []
        for name in ("a", "b"):
            data = work / f"rbuck-{name}-{time.monotonic_ns()}"
            ep, port = free_endpoint(), free_port()
            servers.append(Server([sys.executable, "-m", "helios", "buck", "--ingest", ep, "--publish", free_endpoint(),
                                   "--data-dir", str(data), "--http", f"127.0.0.1:{port}", "--stats-interval", "0.2"],
                                  work / f"rbuck-{name}.out"))
            eps.append(ep)
            urls.append(f"http://127.0.0.1:{port}")
            datas.append(data)
        for data in datas:
            wait_for(lambda: read_stats(data).get("http"), 15, "the bucks")
        state = work / f"relay-{time.monotonic_ns()}"
        listen = f"ipc://{state}/relay.sock"
        relay = Server([sys.executable, "-m", "helios", "relay", "--listen", listen, "--state-dir", str(state),
                        "--buck", eps[0], "--buck", eps[1], "--spool-window", "86400", "--stats-interval", "0.2"],
                       work / "relay.out")
        servers.append(relay)
        wait_for(lambda: read_stats(state), 15, "the relay")
        paths = {"zmq": ({"bucks": eps, "copies": 2}, True, None),
                 "http": ({"bucks": urls}, False, None),
                 "relay": ({"relay": listen}, True, relay.p.pid)}
        for t in thread_counts:
            for kind in TRANSPORTS:
                settings, on_each, pid = paths[kind]
                out[f"{kind}/{t}"] = record_run(settings, t, total, events, datas, on_each, pid)
    finally:
        for server in reversed(servers):
            server.stop()
    return out


def record_table(runs: list[dict], thread_counts: list[int], total: int) -> list[str]:
    lines = [f"Application threads call `record()` back to back, {total:,} events in all per run "
             "(events/s: from the first call until the bucks hold every event):", "",
             "| path | threads | events/s | record() p50 µs | record() p99 µs | app CPU µs/event | "
             "relay CPU µs/event | vs zmq events/s | dropped |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in thread_counts:
        for kind in TRANSPORTS:
            rs = [r[f"{kind}/{t}"] for r in runs]
            ratio = med([r[f"{kind}/{t}"]["events_per_s"] / r[f"zmq/{t}"]["events_per_s"] for r in runs])
            lines.append(
                f"| {kind} | {t} | {spread([x['events_per_s'] for x in rs])} | "
                f"{spread([x['p50_us'] for x in rs], '{:.1f}')} | {spread([x['p99_us'] for x in rs], '{:.1f}')} | "
                f"{spread([x['app_cpu_us_per_event'] for x in rs], '{:.1f}')} | "
                f"{spread([x['relay_cpu_us_per_event'] for x in rs], '{:.1f}')} | {ratio:.2f} | "
                f"{sum(x['dropped'] for x in rs)} |")
    return lines


# --- part 6: bearer token authentication on vs off ---

TOKENS = 16  # hashes a buck holds: each request's is compared with every one


def token_repeat(work: Path, client_counts: list[int], duration: float, payloads: list[bytes], order: int) -> dict:
    from helios import tokens

    secrets = [tokens.new_token() for _ in range(TOKENS)]
    token_args = [a for t in secrets for a in ("--http-token", f"*={tokens.hash_token(t)}")]
    servers, urls = [], {}
    try:
        for mode, extra in (("off", []), ("on", token_args)):
            data, port = work / f"tbuck-{mode}-{time.monotonic_ns()}", free_port()
            servers.append(Server([sys.executable, "-m", "helios", "buck", "--ingest", free_endpoint(),
                                   "--publish", free_endpoint(), "--data-dir", str(data), "--http",
                                   f"127.0.0.1:{port}", "--stats-interval", "0.2", *extra], work / f"tbuck-{mode}.out"))
            wait_for(lambda: read_stats(data).get("http"), 15, f"the buck with tokens {mode}")
            urls[mode] = (f"http://127.0.0.1:{port}/v1/events", servers[-1].p.pid)
        auth = {"on": {"Authorization": f"Bearer {secrets[-1]}"}, "off": None}
        out: dict = {"check_us": check_cost(secrets)}
        for c in client_counts:
            # ABBA, half the duration each: a load that drifts during the pair (other work on
            # the machine) weighs on both modes alike. Which comes first alternates by repeat.
            first, second = ("off", "on") if order % 2 == 0 else ("on", "off")
            halves: dict[str, list[dict]] = {"off": [], "on": []}
            for mode in (first, second, second, first):
                url, pid = urls[mode]
                cpu0, t0 = cpu_seconds(pid), time.perf_counter()
                r = asyncio.run(load(url, c, duration / 2, "written", payloads, extra_headers=auth[mode]))
                r["buck_cpu"] = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)
                halves[mode].append(r)
            for mode, (x, y) in halves.items():
                out[f"{mode}/{c}"] = {k: (x[k] + y[k]) / 2 if k not in ("errors", "requests") else x[k] + y[k]
                                      for k in x}
    finally:
        for server in servers:
            server.stop()
    return out


# --- part 7: slow clients ---------------------------------------------------------------

SLOW_SOURCES = [f"127.0.0.{i}" for i in range(2, 52)]


def raise_fd_limit(need: int) -> None:
    """Sockets are file descriptors; children inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = soft + need if hard == resource.RLIM_INFINITY else min(hard, soft + need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        raise SystemExit(f"the file-descriptor limit is under {need}: raise it (ulimit -n)")


async def slowloris(targets: list[tuple[str, int, str]], per_target: int) -> None:
    """The child: keep ``per_target`` slow connections open against each
    (host, port, path) until SIGTERM; print "ready" once all are open, and
    the number of connections the servers closed at the end."""
    closed = 0
    opened = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def one(k: int, host: str, port: int, path: str) -> None:
        nonlocal closed, opened
        src = SLOW_SOURCES[k % len(SLOW_SOURCES)]
        body_mode = k % 2 == 1
        first = True
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(src, 0))
            except OSError:
                await asyncio.sleep(0.5)
                continue
            if first:
                opened += 1
                first = False
            try:
                if body_mode:
                    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 60000\r\n\r\n[".encode())  # under both servers' body limits
                else:
                    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
                # Each connection on its own clock (a random phase), as connections opened
                # over time are; all in step, 1,000 bytes would land in the same millisecond.
                wait = random.uniform(0.0, 1.0)
                while not stop.is_set():
                    await writer.drain()
                    try:  # a server that closes us answers (or not) and ends the read
                        data = await asyncio.wait_for(reader.read(4096), wait)
                        wait = 1.0
                        if not data:
                            break
                        continue
                    except asyncio.TimeoutError:
                        wait = 1.0
                    writer.write(b" " if body_mode else b"X-Slow: 1\r\n")
            except OSError:
                pass
            finally:
                writer.close()
            if not stop.is_set():
                closed += 1

    tasks = [asyncio.ensure_future(one(k, h, p, path)) for h, p, path in targets for k in range(per_target)]
    while opened < len(tasks) and not stop.is_set():
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"closed {closed}", flush=True)


async def page_loads(url: str, clients: int, duration: float, rate: float) -> dict:
    """Open-loop GETs of a page, a new connection each; latency from the scheduled time."""
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0}
    warm_end = time.perf_counter() + 1.0
    end = warm_end + duration
    start = time.perf_counter()

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        k = 0
        while True:
            due = start + (k * clients + n) / rate
            k += 1
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            if due >= end:
                return
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError:
                status = 0
            if due >= warm_end:
                counts["requests"] += 1
                if status == 200:
                    latencies.append(time.perf_counter() - due)
                else:
                    counts["errors"] += 1

    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(n, session) for n in range(clients)))
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: 0.0)
    return {"requests": counts["requests"], "errors": counts["errors"], "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def honest(post_url: str, page_url: str, duration: float, payloads: list[bytes]) -> dict:
    posts, pages = await asyncio.gather(load(post_url, 8, duration, "written", payloads, rate=100.0),
                                        page_loads(page_url, 4, duration, 20.0))
    return {"post": posts, "page": pages}


def slow_repeat(work: Path, duration: float, payloads: list[bytes], slow: int) -> dict:
    raise_fd_limit(4 * slow + 512)
    data, http_port, web_port = work / f"sbuck-{time.monotonic_ns()}", free_port(), free_port()
    pub = free_endpoint()
    servers = [Server([sys.executable, "-m", "helios", "buck", "--ingest", free_endpoint(), "--publish", pub,
                       "--data-dir", str(data), "--http", f"127.0.0.1:{http_port}", "--stats-interval", "0.2"],
                      work / "sbuck.out")]
    try:
        wait_for(lambda: read_stats(data).get("http"), 15, "the buck")
        servers.append(Server([sys.executable, "-m", "helios", "web", "--listen", f"127.0.0.1:{web_port}",
                               "--feed", pub], work / "sweb.out"))
        post_url, page_url = f"http://127.0.0.1:{http_port}/v1/events", f"http://127.0.0.1:{web_port}/"
        wait_for(lambda: _get_ok(page_url), 15, "helios web")
        def measured(pids):
            cpu0, t0 = [cpu_seconds(p) for p in pids], time.perf_counter()
            r = asyncio.run(honest(post_url, page_url, duration, payloads))
            wall = time.perf_counter() - t0
            r["cpu"] = [(cpu_seconds(p) - c) / wall for p, c in zip(pids, cpu0)]  # cores used
            return r

        pids = [servers[0].p.pid, servers[1].p.pid]
        out = {"without": measured(pids)}
        child = subprocess.Popen([sys.executable, __file__, "--slowloris-child", str(slow),
                                  f"127.0.0.1:{http_port}:/v1/events", f"127.0.0.1:{web_port}:/login"],
                                 stdout=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            if child.stdout.readline().strip() != "ready":
                raise SystemExit("the slowloris child did not open its connections")
            out["with"] = measured(pids + [child.pid])
        finally:
            child.send_signal(signal.SIGTERM)
            rest = child.communicate(timeout=60)[0]
        out["slow_closed"] = int(rest.split()[-1]) if rest.strip() else None
        out["slow"] = slow
    finally:
        for server in reversed(servers):
            server.stop()
    return out


def _get_ok(url: str) -> bool:
    async def probe():
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url) as r:
                    return r.status == 200
        except aiohttp.ClientError:
            return False
    return asyncio.run(probe())


def slow_table(runs: list[dict], duration: float) -> list[str]:
    slow = runs[0]["slow"]
    lines = [f"Slow clients: {slow} slowloris connections against the buck's HTTP ingest AND {slow} against "
             f"helios web (half trickling headers, half bodies, a byte or line a second, from 50 addresses), "
             f"honest load 100 POSTs/s (100 events, written) + 20 page loads/s, {duration:g} s per phase, "
             f"{len(runs)} repeat(s), medians (min..max):", "",
             "| honest request | phase | p50 ms | p99 ms | non-200 |", "|---|---|---:|---:|---:|"]
    for kind, name in (("post", "POST /v1/events"), ("page", "GET / (helios web)")):
        for phase in ("without", "with"):
            rs = [r[phase][kind] for r in runs]
            lines.append(f"| {name} | {phase} slowloris | {spread([x['p50_ms'] for x in rs], '{:.1f}')} | "
                         f"{spread([x['p99_ms'] for x in rs], '{:.1f}')} | {sum(x['errors'] for x in rs)} |")
        ratio = med([r["with"][kind]["p99_ms"] / r["without"][kind]["p99_ms"] for r in runs
                     if r["without"][kind]["p99_ms"]])
        lines.append(f"| {name} | p99 with/without | | **{ratio:.2f}** | |")
    cpu = {ph: [med([r[ph]["cpu"][k] for r in runs]) for k in range(len(runs[0][ph]["cpu"]))]
           for ph in ("without", "with")}
    lines += ["", f"CPU (cores) without slowloris: buck {cpu['without'][0]:.2f}, web {cpu['without'][1]:.2f}; "
                  f"with: buck {cpu['with'][0]:.2f}, web {cpu['with'][1]:.2f}, the slowloris child "
                  f"{cpu['with'][2]:.2f}. Load average at the end: {os.getloadavg()[0]:.1f} (other work on the "
                  "machine shows in every p99)."]
    worst = max(max(r["with"]["post"]["p99_ms"], r["with"]["page"]["p99_ms"]) for r in runs)
    lines += ["", f"Slow connections the servers closed (timeouts) during the 'with' phases: "
                  f"{', '.join(str(r['slow_closed']) for r in runs)}. Goal: p99 < 100 ms with them open; "
                  f"worst p99 measured: {worst:.1f} ms ({'met' if worst < 100 else 'NOT met'})."]
    return lines


def check_cost(secrets: list[str], n: int = 20_000) -> float:
    """µs per request of the buck's own token check (``HttpIngest.authorize``,
    run here on a request's headers against the same hashes), the best of 5."""
    from types import SimpleNamespace

    from helios import tokens
    from helios.buck.http_ingest import HttpIngest

    me = SimpleNamespace(tokens=[("*", tokens.hash_token(t).encode()) for t in secrets])
    request = SimpleNamespace(headers={"Authorization": f"Bearer {secrets[-1]}"})
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            HttpIngest.authorize(me, request)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def token_table(runs: list[dict], client_counts: list[int]) -> list[str]:
    """Events/s, and the buck's CPU per acked event: on a machine whose cores
    other work also wants, the buck's share of CPU moves events/s from run to
    run, while the CPU it spends per event (what bounds its throughput once it
    has a core) moves much less."""
    def us(x: dict) -> float:
        return x["buck_cpu"] / x["events_per_s"] * 1e6 if x["events_per_s"] else float("nan")

    lines = [f"Token authentication ({TOKENS} token hashes on the buck, a valid bearer token on every request) "
             "vs none; durability written, JSON bodies of 100 events:", "",
             "| clients | tokens | events/s | ack p50 ms | ack p99 ms | buck CPU µs/event | on/off events/s | "
             "on/off CPU µs/event | non-200 |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in client_counts:
        ratio = med([r[f"on/{c}"]["events_per_s"] / r[f"off/{c}"]["events_per_s"] for r in runs])
        cpu_ratio = med([us(r[f"on/{c}"]) / us(r[f"off/{c}"]) for r in runs])
        for mode in ("off", "on"):
            rs = [r[f"{mode}/{c}"] for r in runs]
            lines.append(f"| {c} | {mode} | {spread([x['events_per_s'] for x in rs])} | "
                         f"{spread([x['p50_ms'] for x in rs], '{:.1f}')} | {spread([x['p99_ms'] for x in rs], '{:.1f}')} | "
                         f"{spread([us(x) for x in rs], '{:.1f}')} | "
                         f"{f'{ratio:.3f}' if mode == 'on' else '-'} | {f'{cpu_ratio:.3f}' if mode == 'on' else '-'} | "
                         f"{sum(x['errors'] for x in rs)} |")
    check = med([r["check_us"] for r in runs if "check_us" in r])
    if check is not None:
        off = med([us(r[f"off/{c}"]) for r in runs for c in client_counts])
        lines += ["", f"The token check itself (`HttpIngest.authorize`, {TOKENS} hashes, timed in this process): "
                      f"**{check:.1f} µs per request**, {check / EVENTS_PER_REQUEST:.3f} µs per event at "
                      f"{EVENTS_PER_REQUEST} events a request: {check / EVENTS_PER_REQUEST / off * 100:.1f} % of "
                      f"the buck's {off:.1f} µs of CPU per event without tokens."]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=4.0, help="measured seconds per run (after 1 s warm-up)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", default="1,8,64", help="client counts, comma-separated")
    ap.add_argument("--part", choices=["all", "http", "record", "token", "slowloris"], default="all",
                    help="http: the HTTP ingest runs (1-4); record: the client library's paths (5); "
                         "token: token authentication on vs off (6); slowloris: honest latency with "
                         "slow connections open (7)")
    ap.add_argument("--slow", type=int, default=500, help="slowloris connections per server for --part slowloris")
    ap.add_argument("--slow-duration", type=float, default=15.0,
                    help="measured seconds per phase of --part slowloris (over the 10 s header timeout, so "
                         "the servers close and the attacker reopens connections while it is measured)")
    ap.add_argument("--slowloris-child", type=int, metavar="N", help=argparse.SUPPRESS)
    ap.add_argument("targets", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--threads", default="1,8,32", help="application thread counts for --part record")
    ap.add_argument("--record-events", type=int, default=200_000, help="events recorded per run of part 5")
    args = ap.parse_args()
    if args.slowloris_child:
        targets = [(t.split(":", 2)[0], int(t.split(":", 2)[1]), t.split(":", 2)[2]) for t in args.targets]
        asyncio.run(slowloris(targets, args.slowloris_child))
        return
    counts = [int(c) for c in args.clients.split(",")]
    threads = [int(c) for c in args.threads.split(",")]
    payloads = bodies()
    events = event_maps()
    OUT.mkdir(parents=True, exist_ok=True)
    runs, record_runs, token_runs, slow_runs = [], [], [], []
    with tempfile.TemporaryDirectory(dir=OUT, prefix="http-") as tmp:
        for i in range(args.repeat):
            if args.part in ("all", "http"):
                r = one_repeat(Path(tmp), counts, args.duration, payloads)
                runs.append(r)
                print(f"repeat {i + 1}/{args.repeat}: fsync/s {r['fsync_per_s']:,.0f}; " + "; ".join(
                    f"{k} {v['events_per_s']:,.0f} ev/s p99 {v['p99_ms']:.1f} ms" for k, v in r.items() if "/" in k),
                    f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            if args.part in ("all", "record"):
                r = record_repeat(Path(tmp), threads, args.record_events, events)
                record_runs.append(r)
                print(f"repeat {i + 1}/{args.repeat}, record(): " + "; ".join(
                    f"{k} {v['events_per_s']:,.0f} ev/s p99 {v['p99_us']:.1f} µs" for k, v in r.items()),
                    f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            if args.part in ("all", "token"):
                r = token_repeat(Path(tmp), counts, args.duration, payloads, i)
                token_runs.append(r)
                print(f"repeat {i + 1}/{args.repeat}, tokens: " + "; ".join(
                    f"{k} {v['events_per_s']:,.0f} ev/s p99 {v['p99_ms']:.1f} ms" for k, v in r.items()
                    if isinstance(v, dict)) + f"; check {r['check_us']:.1f} µs/request",
                    f"(load average {os.getloadavg()[0]:.1f})", flush=True)
            if args.part in ("all", "slowloris"):
                r = slow_repeat(Path(tmp), args.slow_duration, payloads, args.slow)
                slow_runs.append(r)
                print(f"repeat {i + 1}/{args.repeat}, slowloris: " + "; ".join(
                    f"{kind} p50/p99 {r[ph][kind]['p50_ms']:.1f}/{r[ph][kind]['p99_ms']:.1f} ms {ph}"
                    for kind in ("post", "page") for ph in ("without", "with")) + f"; closed {r['slow_closed']}",
                    f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"http-ingest-{stamp}.json").write_text(json.dumps(
        {"machine": platform.platform(), "cpus": os.cpu_count(), "duration": args.duration, "runs": runs,
         "record_runs": record_runs, "token_runs": token_runs, "slow_runs": slow_runs}, indent=1))
    if slow_runs:
        print("\n" + "\n".join(slow_table(slow_runs, args.slow_duration)))
    if record_runs:
        print("\n" + "\n".join(record_table(record_runs, threads, args.record_events)))
    if token_runs:
        print("\n" + "\n".join(token_table(token_runs, counts)))
    if not runs:
        return

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
