#!/usr/bin/env python3
"""What ``helios audit --index`` costs: time and memory against the porter's
load of the same windows.

Two buck data directories are planted with WINDOWS windows of EVENTS client
events each, as a tailer leaves them (buck a every frame, buck b every
other frame and a re-send of the previous window's first frames); two real
bucks serve them, ``helios porter once`` loads the sqlite index, then
``helios audit --index`` checks it. Printed: each one's wall time and peak
RSS (``wait4``'s usage of that child alone), and the audit's time as a ratio of the
load's, from the same run.

And what checking content costs: ``helios audit --index --content`` on the
same index (every stored field read and hashed on both sides), its time and
peak RSS, and its time as a ratio of the audit without it, from the same run.

    python bench/audit_index.py --windows 20 --events 10000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helios import codec  # noqa: E402
from helios.model import Event, random_id  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordWriter  # noqa: E402

NS = 1_000_000_000


def plant(root: Path, windows: int, events: int) -> int:
    day = (int(time.time()) // 86400 - 1) * 86400
    rnd = random.Random(1)
    resend: list[bytes] = []
    for w in range(windows):
        start = day + w * 60
        evs = [Event(random_id(), (start + rnd.randrange(60)) * NS, start * NS + i, f"web-{i % 7}", "app", i % 8, "",
                     None, b"GET /api/v1/items/%d 200 %dms" % (i, rnd.randrange(900)), None, b"", "prod")
               for i in range(events)]
        frames = [codec.encode_events("prod", "web-1", evs[i:i + 1000]) for i in range(0, len(evs), 1000)]
        for name, fr in (("a", frames), ("b", frames[::2] + resend)):
            with RecordWriter(layout.bucket_path(root / f"buck-{name}" / "buckets", "prod", start, 60)) as out:
                for f in fr:
                    out.append(f)
        resend = frames[:3]
    return windows * events


def run(args: list[str], work: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS MiB of this child alone (wait4), exit status, its output)."""
    out = work / "child.out"
    t0 = time.monotonic()
    with open(out, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "helios", *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - t0, usage.ru_maxrss / 1024, p.returncode, out.read_text(errors="replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--events", type=int, default=10_000, help="events per window")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-audit-index-"))
    total = plant(work, a.windows, a.events)
    bucks, queries = [], []
    try:
        for name in ("a", "b"):
            data = work / f"buck-{name}"
            bucks.append(subprocess.Popen([sys.executable, "-m", "helios", "--log-level", "warning", "buck",
                                           "--name", f"buck-{name}", "--ingest", "tcp://127.0.0.1:*", "--publish", "",
                                           "--query", "tcp://127.0.0.1:*", "--data-dir", str(data),
                                           "--stats-interval", "0.2"], cwd=ROOT,
                                          env=dict(os.environ, PYTHONPATH=str(ROOT))))
            deadline = time.monotonic() + 30
            while True:
                try:
                    queries.append(json.loads((data / "stats.json").read_text())["query"])
                    break
                except (OSError, ValueError, KeyError):
                    if time.monotonic() > deadline:
                        raise SystemExit("a buck did not start") from None
                    time.sleep(0.1)
        place = ["--state-dir", str(work / "porter"), "--index-dir", str(work / "index"), "--recent-days", "30"]
        q = [x for ep in queries for x in ("--query", ep)]
        load_s, load_rss, rc, text = run(["porter", "once", *place, "--archive-dir", str(work / "archive"),
                                          "--archive-age", "86400000", "--prune-age", "86400000", "--workers", "0",
                                          *q], work)
        if rc != 0:
            raise SystemExit(text[-2000:])
        audit_s, audit_rss, rc, text = run(["audit", "--index", *place, *q], work)
        if rc != 0:
            raise SystemExit(text[-3000:])
        content_s, content_rss, rc, content_text = run(["audit", "--index", "--content", *place, *q], work)
        if rc != 0:
            raise SystemExit(content_text[-3000:])
    finally:
        for b in bucks:
            b.terminate()
            b.wait()
    print(f"{total:,} events in {a.windows} windows, held as about {total * 2.1:,.0f} copies by two bucks")
    print(f"  porter once (load)   {load_s:7.1f} s  {total / load_s:10,.0f} events/s  peak RSS {load_rss:6.0f} MiB")
    print(f"  audit --index        {audit_s:7.1f} s  {total / audit_s:10,.0f} events/s  peak RSS {audit_rss:6.0f} MiB")
    scratch = re.search(r"scratch file ([\d,]+) MiB", text)
    if scratch:
        mib = int(scratch.group(1).replace(",", ""))
        print(f"  audit scratch file   {mib:,} MiB ({mib * 2**20 / total:.0f} bytes per distinct event)")
    print(f"  audit / load time    {audit_s / load_s:.2f}")
    print(f"  audit --index --content {content_s:4.1f} s  {total / content_s:10,.0f} events/s  "
          f"peak RSS {content_rss:6.0f} MiB")
    scratch = re.search(r"scratch file ([\d,]+) MiB", content_text)
    if scratch:
        print(f"  its scratch file     {scratch.group(1)} MiB")
    print(f"  --content / without  {content_s / audit_s:.2f}")
    print(f"  (files in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
