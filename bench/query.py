#!/usr/bin/env python3
"""Bucket query benchmark: streaming a large bucket out of a running buck.

Run from the repository root::

    .venv/bin/python bench/query.py [--mb 256] [--repeat 3]

Set-up: one bucket file of ``--mb`` MB of real batch frames (``helios.loadgen``
lines, 2,000 per frame, lz4 as the tailer sends them) is written into a
fresh buck data directory, in a window long closed, and a buck process is
started on it (defaults: 4 MiB fetch chunks).

1. Fetch throughput. ``helios.query.client.fetch_bucket`` streams the whole
   bucket over tcp://127.0.0.1 into this process (frames counted, not kept).
   Baseline, in the same repeat: ``RecordReader`` reading the same file in
   this process (page cache warm for both): the floor of any reader. The
   ratio is fetch time over local read time.
2. Memory. The peak RSS of this process (the client; it also ran the local
   read) and of the buck (VmHWM), against the bucket's size: a bucket of
   any size must never sit in memory on either side.
3. Loop stalls. The latency of a ``stats`` query (from a second client)
   while a fetch streams, against the same query on the idle buck: queries
   and ingest messages share the buck's loop, so this is how long ingest
   waits behind fetch chunks.

``--repeat N`` repeats 1-3 and quotes medians (and ranges). A markdown block
at the end is ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
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

from helios import codec, loadgen  # noqa: E402
from helios.model import Event  # noqa: E402
from helios.query.client import QueryClient  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordReader, RecordWriter  # noqa: E402
from helios.wire.ports import free_endpoint  # noqa: E402

OLD = 1_706_659_200  # 2024-01-31T00:00:00Z


def log(msg: str) -> None:
    print(msg, flush=True)


def make_bucket(data: Path, mb: int) -> tuple[str, Path, int]:
    """A bucket of about ``mb`` MB of frames of 2,000 realistic lines; a few
    distinct frames repeated (the buck and the fetch never look inside)."""
    rng = random.Random(1)
    frames = []
    for f in range(8):
        lines = [loadgen.rfc3164_line(rng, OLD + f).rstrip("\n").encode() for _ in range(2000)]
        now = time.time_ns()
        evs = [Event(os.urandom(16), now + i, now, "web-01", "app", 6, "/var/log/syslog", i * 130, ln, None,
                     b"k" * 16, "bench") for i, ln in enumerate(lines)]
        frames.append(codec.encode_events("bench", "web-01", evs))
    path = layout.bucket_path(data / "buckets", "bench", OLD, 60)
    n = 0
    with RecordWriter(path) as w:
        while path.stat().st_size < mb * 1_000_000:
            w.append_many(frames)
            n += len(frames)
    return layout.bucket_id(layout.BucketName("bench", OLD, 60)), path, n


def rss_peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def local_read(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = sum(1 for _ in RecordReader(path))
    return time.perf_counter() - t, n


def fetch(q: str, bucket_id: str) -> tuple[float, int, int]:
    with QueryClient(timeout=30) as qc:
        t = time.perf_counter()
        stream = qc.fetch_bucket(q, bucket_id)
        n = sum(1 for _ in stream)
        return time.perf_counter() - t, n, stream.chunks


def stats_latencies(q: str, seconds: float, stop: threading.Event | None = None) -> list[float]:
    out = []
    with QueryClient(timeout=30) as qc:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            t = time.perf_counter()
            r = qc.stats([q])[q]
            if isinstance(r, Exception):
                raise r
            out.append(time.perf_counter() - t)
            time.sleep(0.005)
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def once(q: str, bucket_id: str, path: Path, buck_pid: int) -> dict:
    size = path.stat().st_size
    local_s, n_local = local_read(path)
    idle = stats_latencies(q, 2.0)
    busy: list[float] = []
    stop = threading.Event()
    th = threading.Thread(target=lambda: busy.extend(stats_latencies(q, 600, stop)))
    th.start()
    fetch_s, n, chunks = fetch(q, bucket_id)
    stop.set()
    th.join()
    assert n == n_local, (n, n_local)
    return {
        "size": size, "records": n, "chunks": chunks,
        "local_mb_s": size / local_s / 1e6, "fetch_mb_s": size / fetch_s / 1e6, "ratio": fetch_s / local_s,
        "fetch_s": fetch_s, "local_s": local_s,
        "client_peak_mb": rss_peak_kb() / 1024, "buck_hwm_mb": vm_hwm_kb(buck_pid) / 1024,
        "idle_p50_ms": pct(idle, 0.5) * 1e3, "idle_p99_ms": pct(idle, 0.99) * 1e3,
        "busy_p50_ms": pct(busy, 0.5) * 1e3, "busy_p99_ms": pct(busy, 0.99) * 1e3, "busy_n": len(busy),
    }


def med(runs: list[dict], key: str, fmt: str = "{:.1f}") -> str:
    xs = [r[key] for r in runs]
    m = statistics.median(xs)
    return fmt.format(m) + (f" ({fmt.format(min(xs))} – {fmt.format(max(xs))})" if len(xs) > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256, help="Size of the bucket, MB.")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="helios-bench-query-"))
    data = work / "buck"
    log(f"Writing a {args.mb} MB bucket under {data} ...")
    bucket_id, path, _ = make_bucket(data, args.mb)
    q = free_endpoint()
    err = open(work / "buck.err", "wb")
    buck = subprocess.Popen([sys.executable, "-m", "helios", "buck", "--ingest", free_endpoint(), "--publish", "",
                             "--query", q, "--data-dir", str(data), "--stats-interval", "0.5"],
                            cwd=ROOT, stdout=err, stderr=err)
    runs = []
    try:
        deadline = time.monotonic() + 30
        while not (data / "stats.json").exists():
            if time.monotonic() > deadline or buck.poll() is not None:
                raise SystemExit(f"the buck did not start; see {work / 'buck.err'}")
            time.sleep(0.05)
        for i in range(args.repeat):
            r = once(q, bucket_id, path, buck.pid)
            runs.append(r)
            log(f"repeat {i + 1}: fetch {r['fetch_mb_s']:.0f} MB/s, local read {r['local_mb_s']:.0f} MB/s "
                f"(x{r['ratio']:.2f}), {r['chunks']} chunks; client peak RSS {r['client_peak_mb']:.0f} MB, "
                f"buck peak {r['buck_hwm_mb']:.0f} MB; stats query p50/p99 idle {r['idle_p50_ms']:.1f}/"
                f"{r['idle_p99_ms']:.1f} ms, during fetch {r['busy_p50_ms']:.1f}/{r['busy_p99_ms']:.1f} ms")
    finally:
        buck.terminate()
        buck.wait(15)
        err.close()
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"query-{int(time.time())}.json").write_text(json.dumps(runs, indent=2))
    size_mb = runs[0]["size"] / 1e6
    command = f"bench/query.py --mb {args.mb} --repeat {args.repeat}"
    print(f"""
### Results ({time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, `{command}`)

Bucket: {size_mb:.0f} MB, {runs[0]['records']:,} records (frames of 2,000 lines), fetched in
{runs[0]['chunks']} chunks of <= 4 MiB.

| | median (min – max) |
|---|---|
| fetch over the query protocol, MB/s | {med(runs, 'fetch_mb_s', '{:.0f}')} |
| `RecordReader` on the same file in-process (baseline), MB/s | {med(runs, 'local_mb_s', '{:.0f}')} |
| ratio fetch time / local read time | {med(runs, 'ratio', '{:.2f}')} |
| client (this process) peak RSS, MB | {med(runs, 'client_peak_mb', '{:.0f}')} |
| buck peak RSS (VmHWM), MB | {med(runs, 'buck_hwm_mb', '{:.0f}')} |
| `stats` query latency, idle buck, p50 / p99 ms | {med(runs, 'idle_p50_ms')} / {med(runs, 'idle_p99_ms')} |
| `stats` query latency while the fetch streams, p50 / p99 ms | {med(runs, 'busy_p50_ms')} / {med(runs, 'busy_p99_ms')} |
""")


if __name__ == "__main__":
    main()
