#!/usr/bin/env python3
"""Journal benchmark: the tailer reading a journal into two bucks, against journalctl alone, same run.

Run from the repository root::

    .venv/bin/python bench/journal_read.py [--entries 200000] [--repeat 3]

Input: ``--entries`` journal entries (syslog-like messages of a few units),
written once into a real journal file by ``systemd-journal-remote`` and
cached under ``bench/out/journal-N/``. Each repeat measures:

1. ``journalctl -o export --directory=DIR > /dev/null``: what reading the
   journal costs at all (the floor: the tailer runs this very command).
2. Helios: two fresh bucks and a tailer with ``--journal-dir DIR
   --start-at beginning`` (spool on, ``--spool-window 86400`` so no re-send
   lands in the run), from the tailer's start until both bucks' stats.json
   count every entry; CPU seconds of the tailer (its journalctl and encoders
   included) just before SIGTERM.

It prints entries/s of both and the ratio journalctl time / Helios time (1.0:
Helios as fast as journalctl alone can write the export format).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "bench")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from ingest import Proc, helios_cmd, read_stats, start_bucks  # noqa: E402

from helios.tail.journal import serialize  # noqa: E402

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
UNITS = [(b"sshd.service", b"sshd"), (b"cron.service", b"CRON"), (b"nginx.service", b"nginx"),
         (b"postgresql.service", b"postgres")]


def journal_dir(n: int) -> Path:
    d = ROOT / "bench" / "out" / f"journal-{n}"
    done = d / "done"
    if done.exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    export = d / "input.export"
    with open(export, "wb") as out:
        for start in range(0, n, 10_000):
            entries = []
            for i in range(start, min(n, start + 10_000)):
                unit, ident = UNITS[i % len(UNITS)]
                entries.append([("__REALTIME_TIMESTAMP", b"%d" % (1_700_000_000_000_000 + i * 1000)),
                                ("__MONOTONIC_TIMESTAMP", b"%d" % (1_000_000 + i * 1000)),
                                ("_BOOT_ID", b"0123456789abcdef0123456789abcdef"), ("_HOSTNAME", b"web-1"),
                                ("_SYSTEMD_UNIT", unit), ("SYSLOG_IDENTIFIER", ident), ("PRIORITY", b"6"),
                                ("_PID", b"%d" % (1000 + i % 97)), ("_UID", b"0"), ("_COMM", ident),
                                ("_TRANSPORT", b"syslog"),
                                ("MESSAGE", b"Accepted publickey for user%d from 10.0.%d.%d port %d ssh2"
                                 % (i % 50, i % 256, i % 199, 40000 + i % 20000))])
            out.write(serialize(entries))
    subprocess.run([JOURNAL_REMOTE, f"--output={d / 'bench.journal'}", str(export)], check=True,
                   capture_output=True)
    export.unlink()
    done.touch()
    return d


def bench_journalctl(d: Path) -> tuple[float, float]:
    """Wall and CPU seconds of journalctl writing the export format to /dev/null."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(["journalctl", "-o", "export", f"--directory={d}"], stdout=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def bench_helios(d: Path, n: int) -> tuple[float, float, float]:
    work = Path(tempfile.mkdtemp(prefix="helios-bench-journal-"))
    procs = []
    try:
        bucks, endpoints, dirs = start_bucks(work)
        procs += bucks
        cmd = ["tailer", "--journal-dir", str(d), "--start-at", "beginning", "--env", "bench",
               "--state-dir", str(work / "tailer"), "--spool-window", "86400"]
        for ep in endpoints:
            cmd += ["--buck", ep]
        t0 = time.monotonic()
        tailer = Proc("tailer", helios_cmd(*cmd), work)
        procs.append(tailer)
        while not all((read_stats(x) or {}).get("events", 0) >= n for x in dirs):
            tailer.check_alive()
            time.sleep(0.1)
        wall = time.monotonic() - t0
        use = tailer.usage()
        return wall, use["cpu_s"], use.get("own_cpu_s", 0.0)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d = journal_dir(args.entries)
    jc, jcpu, hw, hc, ho = [], [], [], [], []
    n = args.entries
    for r in range(args.repeat):
        w, c = bench_journalctl(d)
        jc.append(w)
        jcpu.append(c)
        w, c, own = bench_helios(d, n)
        hw.append(w)
        hc.append(c)
        ho.append(own)
        print(f"run {r + 1}: journalctl {n / jc[-1]:,.0f} entries/s ({jcpu[-1]:.2f} CPU s); Helios {n / w:,.0f} "
              f"entries/s into both bucks ({c:.2f} CPU s in the tailer, journalctl and workers included; "
              f"{own:.2f} in its own process); "
              f"wall ratio {jc[-1] / w:.2f}, CPU ratio {jcpu[-1] / c:.2f}", flush=True)
    med = statistics.median
    print(f"median of {args.repeat} ({n:,} entries): journalctl -o export {n / med(jc):,.0f} entries/s, "
          f"{med(jcpu) * 1e6 / n:.1f} CPU us/entry; Helios tailer to two bucks {n / med(hw):,.0f} entries/s, "
          f"{med(hc) * 1e6 / n:.1f} CPU us/entry ({med(ho) * 1e6 / n:.1f} in the tailer's own process); "
          f"journalctl / Helios: wall {med(jc) / med(hw):.2f}, "
          f"CPU {med(jcpu) / med(hc):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
