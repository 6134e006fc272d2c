#!/usr/bin/env python3
"""What the sqlite rollups (agg, agg_h, agg_s) cost a load, in the same run:
CPU seconds per event of ``SqliteIndex.load`` (in-process, one loader) with
them and with their upkeep left out, alternating, on the same events
(13 hosts running 4 of 9 apps each, severities mostly info, over
``--hours``: a few hundred (severity, host, app) a minute, as real logs).

    .venv/bin/python bench/rollup.py [--events 200000] [--hours 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helios.index import sqlite as sqlite_index  # noqa: E402
from helios.model import Event  # noqa: E402

T0 = 1_767_225_600 * 10**9


def events(n: int, hours: int) -> list[Event]:
    rng = random.Random(1)
    hosts = [f"web-{i}" for i in range(13)]
    apps = ["sshd", "nginx", "cron", "kernel", "postgres", "redis", "app", "sudo", "systemd"]
    runs = {h: rng.sample(apps, 4) for h in hosts}
    out = []
    span = hours * 3600 * 10**9
    for i in range(n):
        t = T0 + span * i // n
        msg = b"%s request %08x from 10.%d.%d.%d took %d ms" % (
            rng.choice((b"GET", b"POST", b"PUT")), rng.getrandbits(32), rng.randrange(256), rng.randrange(256),
            rng.randrange(256), rng.randrange(2000))
        host = rng.choice(hosts)
        sev = rng.choices(range(8), (1, 1, 2, 5, 10, 15, 60, 6))[0]
        out.append(Event(i.to_bytes(16, "big"), t, t, host, rng.choice(runs[host]), sev,
                         "/var/log/x", i * 100, msg, None, b"\x01" * 16, "bench"))
    return out


def run(evs: list, with_rollups: bool) -> float:
    keep = sqlite_index._add_to_rollups
    if not with_rollups:
        sqlite_index._add_to_rollups = lambda conn, above, events=None: None     # type: ignore[assignment]
    d = tempfile.mkdtemp(prefix="rollup-bench-")
    try:
        index = sqlite_index.SqliteIndex(d, "b")
        t = time.process_time()
        for i in range(0, len(evs), 50_000):
            index.load("bench", evs[i:i + 50_000])
        took = time.process_time() - t
        index.close()
    finally:
        sqlite_index._add_to_rollups = keep
        shutil.rmtree(d, ignore_errors=True)
    return took / len(evs) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--hours", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    evs = events(args.events, args.hours)
    got: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for with_rollups in (False, True):
            got[with_rollups].append(run(evs, with_rollups))
    without, with_ = min(got[False]), min(got[True])
    print(f"{args.events:,} events over {args.hours} h, best of {args.rounds}: load CPU µs/event "
          f"{without:.2f} without the rollups, {with_:.2f} with them; ratio {with_ / without:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
