#!/usr/bin/env python3
"""Syslog over TCP: rsyslog ``imtcp -> omfile`` against Helios's relay -> two bucks, in the same run.

Run from the repository root::

    .venv/bin/python bench/syslog_ingest.py [--size-mb 200] [--repeat 1] [--keep]

The input is the cached RFC 3164 file of ``bench/ingest.py`` for that size
(``helios.loadgen``, made once under ``bench/out/``), each line with a
``<PRI>`` before it as every network sender puts it (``-pri.log`` beside it,
made once; ``--no-pri`` sends the lines bare, so that Helios looks for a
severity in each message's text: key=value scans). Both receivers get the
very same bytes from the same sender: this process opens one TCP connection
and ``sendfile``s the file over it (newline framing, RFC 6587 3.4.2), so the
sender costs next to nothing and is not what is measured.

- **rsyslog**: a private ``rsyslogd -n -f CONF -i PIDFILE`` with
  ``bench/syslogd/rsyslog_recv_tuned.conf`` (``--rsyslog default``: the stock
  ``_default`` one): ``imtcp`` -> ``omfile``. Done when its output file holds
  every line (the end is the file's mtime once the count is reached).
- **Helios**: two bucks and ``helios relay --syslog-tcp`` (spool on, window
  86400 s so that no re-send lands inside the measured interval, as
  ``bench/ingest.py``'s ``on`` variant): every message is parsed, spooled and
  sent to both bucks. Done when both bucks' ``stats.json`` count every line
  (the ``updated`` stamp of the later one).

Wall time runs from the sender's connect to done. Printed: lines/s of each,
the ratio Helios / rsyslog (goal >= 1.0), and the CPU seconds of each
process (and of the processes it started: the relay's ``syslog_workers``)
from the sender's connect to done, so start-up is not counted. ``--repeat N`` alternates which side goes first and prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import (CLK_TCK, MB, MIB, SYSLOGD_CONFS, LineCounter, Proc, find_daemon, free_port, helios_cmd,  # noqa: E402
                    input_file, listening, loadavg, read_stats, speedups_state, start_bucks, stop_and_clean, wait_live,
                    warm)


def own_cpu(pid: int) -> float:
    """CPU seconds of one process alone (not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def send_file(port: int, path: Path) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s, open(path, "rb") as f:
        s.sendfile(f)


def rsyslog_run(path: Path, size: int, lines: int, args, run_no: int) -> dict | None:
    found = find_daemon("rsyslog", args)
    if found is None:
        return None
    prefix, env, version = found
    work = Path(tempfile.mkdtemp(prefix=f"helios-syslog-bench-{run_no}-rsyslog-", dir=args.work_dir))
    procs: list[Proc] = []
    counter = LineCounter(work / "out.log")
    try:
        (work / "recv_work").mkdir()
        port = free_port()
        text = (SYSLOGD_CONFS / f"rsyslog_recv_{args.rsyslog}.conf").read_text()
        conf = work / "recv.conf"
        conf.write_text(text.replace("RUNDIR", str(work)).replace("51514", str(port)))
        recv = Proc("rsyslog-receiver", [*prefix, "-n", "-f", str(conf), "-i", str(work / "recv.pid")], work, env)
        procs.append(recv)
        deadline = time.monotonic() + 15
        while not listening(port):
            recv.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"rsyslogd does not listen on port {port}:\n{recv.log_tail()}")
            time.sleep(0.02)
        load = loadavg()
        before = {"rsyslogd": recv.usage()["cpu_s"]}
        wall0, t0 = time.time(), time.perf_counter()
        send_file(port, path)
        while counter.count() < lines:
            recv.check_alive()
            if time.perf_counter() - t0 > 60 + size / MB:
                raise RuntimeError(f"rsyslog: timeout with {counter.lines} of {lines} lines")
            time.sleep(0.05)
        end = (work / "out.log").stat().st_mtime
        wall = end - wall0 if wall0 < end <= time.time() else time.perf_counter() - t0
        return {"who": f"{version} ({args.rsyslog})", "wall_s": wall, "lines_per_s": lines / wall,
                "load": load, "usage": since(before, {"rsyslogd": recv.usage()})}
    finally:
        counter.close()
        stop_and_clean(procs, work, args.keep)


def helios_run(path: Path, size: int, lines: int, args, run_no: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"helios-syslog-bench-{run_no}-helios-", dir=args.work_dir))
    procs: list[Proc] = []
    try:
        bucks, endpoints, dirs = start_bucks(work)
        procs += bucks
        state = work / "relay"
        cmd = ["relay", "--listen", f"ipc://{work}/relay.sock", "--state-dir", str(state), "--copies", "2",
               "--syslog-tcp", "127.0.0.1:0", "--syslog-environment", "bench", "--syslog-timezone", "UTC",
               "--spool-window", "86400", "--stats-interval", "0.5", *args.relay_arg]
        for ep in endpoints:
            cmd += ["--buck", ep]
        relay = Proc("relay", helios_cmd(*cmd), work)
        procs.append(relay)
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            relay.check_alive()
            try:
                port = int(json.loads((state / "stats.json").read_text())["syslog"]["listening"]["tcp"][0]
                           .rpartition(":")[2])
            except (OSError, ValueError, KeyError, IndexError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the relay did not start:\n{relay.log_tail()}") from None
                time.sleep(0.05)
        time.sleep(2.5)   # the fanout's connect grace: both bucks connected before the first batch
        load = loadavg()
        before = {p.name: p.usage()["cpu_s"] for p in procs}
        relay_own = own_cpu(relay.p.pid)
        wall0, t0 = time.time(), time.perf_counter()
        send_file(port, path)
        wall, _ = wait_live(dirs, procs, lines, wall0, t0, timeout=60 + size / MB * 2)
        usage = since(before, {p.name: p.usage() for p in procs})
        # The relay's own process (reads, spools, sends) apart from its framing processes.
        usage["relay"]["own_cpu_s"] = own_cpu(relay.p.pid) - relay_own
        events = [read_stats(d)["events"] for d in dirs]
        return {"who": "helios relay -> 2 bucks", "wall_s": wall, "lines_per_s": lines / wall, "load": load,
                "usage": usage, "events": events}
    finally:
        stop_and_clean(procs, work, args.keep)


def since(before: dict, usage: dict) -> dict:
    """CPU seconds spent since ``before`` (the start-up, imports and the relay's
    framing processes' own, is not the work measured)."""
    return {name: {**u, "cpu_s": u["cpu_s"] - before.get(name, 0.0)} for name, u in usage.items()}


def show(res: dict, lines: int) -> None:
    print(f"  {res['who']}: {res['wall_s']:.2f} s, {res['lines_per_s']:,.0f} lines/s (load before: {res['load']})",
          flush=True)
    for name, u in res["usage"].items():
        print(f"    {name:18s} cpu {u['cpu_s']:7.2f} s ({u['cpu_s'] / lines * 1e6:.2f} µs/line)  "
              f"peak rss {u['peak_rss'] / MIB:6.1f} MiB", flush=True)
        if name == "relay" and "own_cpu_s" in u:    # (the others' own_cpu_s counts from their start)
            own = u["own_cpu_s"]
            print(f"    {'':18s} of which its own process {own:.2f} s ({own / lines * 1e6:.2f} µs/line), its "
                  f"syslog_workers {u['cpu_s'] - own:.2f} s ({(u['cpu_s'] - own) / lines * 1e6:.2f} µs/line)",
                  flush=True)


# PRIs as a host's senders mix them: facilities user, mail, daemon, auth,
# syslog, cron, authpriv, local0-7; mostly info and notice, some warnings and errors.
_FACILITIES = (1, 2, 3, 4, 5, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23)
_SEVERITIES = (6,) * 10 + (5,) * 4 + (4,) * 3 + (3,) * 2 + (7, 2)


def with_pri(path: Path) -> tuple[Path, int]:
    """The input with a ``<PRI>`` before each line, as every network sender
    (``logger``, rsyslog's ``omfwd``) puts it: made once beside the input
    (seeded, so the same bytes every run). (path, bytes)"""
    out = path.with_name(path.stem + "-pri.log")
    if out.exists() and out.stat().st_mtime >= path.stat().st_mtime:
        return out, out.stat().st_size
    rnd = random.Random(1)
    pris = [b"<%d>" % (8 * rnd.choice(_FACILITIES) + rnd.choice(_SEVERITIES)) for _ in range(4099)]
    tmp = out.with_suffix(".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        i = 0
        while block := src.readlines(1 << 22):
            dst.write(b"".join(pris[(i + k) % 4099] + line for k, line in enumerate(block)))
            i += len(block)
    os.replace(tmp, out)
    return out, out.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=200, help="input size in MB (the issue's goal: 1000) [200]")
    ap.add_argument("--repeat", type=int, default=1, help="runs of both; medians reported [1]")
    ap.add_argument("--rsyslog", choices=("tuned", "default"), default="tuned",
                    help="which bench/syslogd/rsyslog_recv_*.conf [tuned]")
    ap.add_argument("--relay-arg", action="append", default=[], help="extra argument for the relay, repeatable")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directories and logs")
    ap.add_argument("--work-dir", default=None, help="where the scratch directories go [system temp]")
    ap.add_argument("--no-pri", action="store_true",
                    help="send the file's lines as they are, with no <PRI> (as no network sender does)")
    ap.add_argument("--syslog-ng-root", default="", help=argparse.SUPPRESS)   # (find_daemon reads it)
    args = ap.parse_args()
    path, size, lines = input_file(args.size_mb)
    if not args.no_pri:
        path, size = with_pri(path)
    warm(path)
    print(f"syslog over TCP, {size / MB:.0f} MB, {lines:,} lines, newline-framed, one connection, "
          f"{'no PRI' if args.no_pri else 'each line with a <PRI>'}; {speedups_state()}", flush=True)
    rs, hs, rc, hc = [], [], [], []   # lines/s; CPU µs per line, every process of the side
    for run in range(1, args.repeat + 1):
        print(f"run {run}:", flush=True)
        order = (rsyslog_run, helios_run) if run % 2 else (helios_run, rsyslog_run)
        for f in order:
            res = f(path, size, lines, args, run)
            if res is None:
                print("  rsyslogd not found: no comparison", flush=True)
                continue
            show(res, lines)
            (rs if f is rsyslog_run else hs).append(res["lines_per_s"])
            (rc if f is rsyslog_run else hc).append(sum(u["cpu_s"] for u in res["usage"].values()) / lines * 1e6)
    if rs and hs:
        r, h = statistics.median(rs), statistics.median(hs)
        print(f"\nrsyslog imtcp -> omfile: {r:,.0f} lines/s; Helios relay -> 2 bucks: {h:,.0f} lines/s; "
              f"Helios / rsyslog = {h / r:.2f} (goal >= 1.0)", flush=True)
        print(f"CPU per line, every process of each side: rsyslog {statistics.median(rc):.2f} µs, Helios "
              f"{statistics.median(hc):.2f} µs (on a loaded machine wall time follows the scheduler more than "
              "the work; this is the work)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
