#!/usr/bin/env python3
"""Ingest benchmark: one tailer -> two bucks, against rsyslog and baselines in the same run.

Run from the repository root::

    .venv/bin/python bench/ingest.py [--size-mb 1000] [--repeat 3] [--keep]

What it measures (every repeat runs everything below once, so each ratio
compares figures taken minutes apart on the same noisy machine, the same
input file and a warm page cache):

1. Input: realistic RFC 3164 lines from ``helios.loadgen.write_file``, made
   once and cached under ``bench/out/`` keyed by size (reused when its size
   matches the sidecar ``.json``).
2. Baselines: ``cat FILE > /dev/null`` and a plain Python loop that reads
   1 MiB chunks, splits lines and counts them.
3. Other collectors, on the same file (``--syslog``): rsyslog and, when it
   can be found, syslog-ng, each as a sender that tails the file and forwards
   every line over TCP on 127.0.0.1 to a receiver that writes a file, with
   the configs in ``bench/syslogd/`` (copies of the ones behind the figures
   quoted in the issues; RUNDIR, INPUT_FILE and the port are substituted).
   Both daemons are private foreground processes with their own scratch
   directory (``rsyslogd -n -f CONF -i PIDFILE``), never the system service.
   Wall time runs from the sender's start until the receiver's output file
   holds every line (counted incrementally, polled every 0.1 s; the end is
   the file's mtime when the count is reached). A missing daemon is reported
   and skipped.
4. Helios (``--helios``): two bucks (fresh data dirs, ``--stats-interval
   0.2``) and a tailer with ``--start-at beginning`` and its own fresh state
   dir. Wall time runs from the tailer's start until both bucks'
   ``stats.json`` report every line (the ``updated`` stamp of the first
   complete stats file; polled every 0.1 s). CPU seconds and peak RSS of each
   process come from ``/proc`` just before SIGTERM. Three variants:

   - ``on``: the spool on (the default) with ``--spool-window 86400``, so the
     spool is written and fsynced as in production but the re-send of a
     closed spool bucket (a third copy of its lines to one random buck) does
     not land inside the measured interval. This is the headline figure.
   - ``off``: ``--no-spool``: what the spool costs.
   - ``resend``: ``--spool-window 5 --resend-jitter 0`` (``--resend-window``):
     the spool re-sends every closed bucket during the run; the bench waits
     until the bucks hold three copies of every line (two live, one
     re-sent) and their byte counters stop moving, to count the bytes sent
     with the re-send included.

   - ``curve``: as ``on``, with CURVE on every socket (``[security] curve``;
     keys from ``helios.wire.curve``, made once under ``bench/out/curve-keys``;
     the tailer's key a sender of the bench's environments, so every frame
     is checked against its rights): what transport encryption and the
     rights checks cost, as "CURVE on / off" (goal: at least 0.85).
   - ``checked`` (not run unless asked): as ``on``, with the bucks decoding
     and checking every event of every frame (``--check-events all``; by
     default a buck decodes only frames whose header's time span is not
     sane): what that costs, as "every event checked / header only".

   Bytes sent are frame bytes as the bucks count them (``stats.json``
   ``bytes``: the length of every frame stored; ZeroMQ and TCP framing are
   not included), divided by the bytes of the input file.
5. Quiet-path latency (with the ``on`` variant): a second tailer follows an
   empty file (environment ``benchlat``, same bucks); lines are appended one
   at a time and each is timed from its ``write`` until it is in the bucket
   files of BOTH bucks (read with ``helios.store``, decoded with
   ``helios.codec``: storage, not a counter).
6. ``--repeat N``: medians and ranges of every figure; odd repeats run the
   other collectors before Helios, even ones after (so that a slow drift of
   the machine's load does not always favour the same side). A markdown
   block at the end is ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios import codec, loadgen  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordReader  # noqa: E402
from helios.wire.ports import free_endpoint, free_port  # noqa: E402

OUT = ROOT / "bench" / "out"
SYSLOGD_CONFS = ROOT / "bench" / "syslogd"
SYSLOG_NG_ROOT = OUT / "syslog-ng" / "root"  # a private `dpkg-deb -x` of syslog-ng-core (see BENCHMARKS.md)
MB = 1_000_000
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
ENV = "bench"
LAT_ENV = "benchlat"
LAT_MARK = b"helios-bench-latency"
SYSLOGS = ("rsyslog", "rsyslog-tuned", "syslog-ng", "syslog-ng-tuned")
VARIANTS = ("on", "off", "resend", "curve", "checked")
DEFAULT_VARIANTS = ("on", "off", "resend", "curve")


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------- input


def input_file(size_mb: float) -> tuple[Path, int, int]:
    """The cached input file for this size: (path, bytes, lines)."""
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"{size_mb:g}mb"
    path = OUT / f"input-{tag}.log"
    meta_path = OUT / f"input-{tag}.json"
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if path.stat().st_size == meta["bytes"] and meta.get("seed") == 1:
                log(f"input: reusing {path.relative_to(ROOT)} ({meta['bytes'] / MB:.1f} MB, {meta['lines']:,} lines)")
                return path, meta["bytes"], meta["lines"]
        except (ValueError, KeyError, OSError):
            pass
        log("input: cached file does not match its metadata; writing it again")
    tmp = path.with_suffix(".tmp")
    t0 = time.perf_counter()
    lines = loadgen.write_file(tmp, int(size_mb * MB), seed=1)
    took = time.perf_counter() - t0
    size = tmp.stat().st_size
    os.replace(tmp, path)
    meta_path.write_text(json.dumps({"bytes": size, "lines": lines, "seed": 1}))
    log(f"input: generated {path.relative_to(ROOT)} in {took:.1f} s "
        f"({size / MB:.1f} MB, {lines:,} lines, {lines / took:,.0f} lines/s)")
    return path, size, lines


# ------------------------------------------------------------------ baselines


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MIB):
            pass


def bench_cat(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", f"cat {shlex.quote(str(path))} > /dev/null"], check=True)
    return time.perf_counter() - t0


def bench_split(path: Path, lines_expected: int) -> float:
    t0 = time.perf_counter()
    count = 0
    tail = b""
    with open(path, "rb", buffering=0) as f:
        while True:
            chunk = f.read(MIB)
            if not chunk:
                break
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            count += len(parts)
    if tail:
        count += 1
    took = time.perf_counter() - t0
    if count != lines_expected:
        raise SystemExit(f"read-and-split counted {count} lines, expected {lines_expected}")
    return took


# ------------------------------------------------------------------ processes


def speedups_state() -> str:
    """Whether this tree's C module (helios/_speedups.c) is built: the BSD
    header scan runs in C, or its Python twin at about half the speed."""
    built = any((Path(__file__).resolve().parent.parent / "helios").glob("_speedups*.so"))
    return "C speedups built" if built else "C speedups NOT built (Python twins)"


def helios_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "helios", "--log-level", "warning", *args]


class Proc:
    def __init__(self, name: str, cmd: list[str], logdir: Path, env: dict | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = logdir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.p = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
                                  env=None if env is None else {**os.environ, **env})

    def check_alive(self) -> None:
        if self.p.poll() is not None:
            raise RuntimeError(f"{self.name} exited with code {self.p.returncode}:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def usage(self) -> dict:
        """CPU seconds (utime+stime) and peak RSS, from /proc, now: of the
        process and of every process it started that still runs (the
        tailer's encoders), peaks summed (an upper bound of the peak of the
        whole)."""
        total = {"cpu_s": 0.0, "peak_rss": 0, "rss": 0, "processes": 0}
        todo = [self.p.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{pid}/status") as f:
                    status = f.read()
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
            except OSError:
                continue  # gone since it was listed
            fields = stat[stat.rindex(")") + 2:].split()
            # fields[0] is state (field 3); utime and stime are fields 14 and 15.
            total["cpu_s"] += (int(fields[11]) + int(fields[12])) / CLK_TCK
            if pid == self.p.pid:   # the process itself (the tailer's reader), without its encoders
                total["own_cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total["peak_rss"] += int(line.split()[1]) * 1024
                elif line.startswith("VmRSS:"):
                    total["rss"] += int(line.split()[1]) * 1024
            total["processes"] += 1
        return total

    def terminate(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"  ! {self.name} did not exit {timeout:.0f} s after SIGTERM; killing it")
            self.p.kill()
            rc = self.p.wait()
        self._log.close()
        return rc


def read_stats(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / "stats.json").read_text())
    except (OSError, ValueError):
        return None


def start_bucks(work: Path, extra: list[str] = ()) -> tuple[list[Proc], list[str], list[Path]]:
    bucks, endpoints, dirs = [], [], []
    for name in ("buck-a", "buck-b"):
        ep = free_endpoint()
        d = work / name
        cmd = ["buck", "--ingest", ep, "--data-dir", str(d), "--name", name, "--stats-interval", "0.2", *extra]
        if has_option("buck", "--publish"):
            cmd += ["--publish", free_endpoint()]  # the live feed stays on, with nobody subscribed
        if has_option("buck", "--query"):
            cmd += ["--query", free_endpoint()]  # not "auto" (ingest + 2): another buck's port may be next
        bucks.append(Proc(name, helios_cmd(*cmd), work))
        endpoints.append(ep)
        dirs.append(d)
    deadline = time.monotonic() + 30
    try:
        while not all(read_stats(d) is not None for d in dirs):
            for b in bucks:
                b.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the bucks did not write stats.json within 30 s")
            time.sleep(0.05)
    except BaseException:
        for b in bucks:  # the caller never gets them: stop them here
            b.terminate()
        for b in bucks:
            b.wait()
        raise
    return bucks, endpoints, dirs


_HELP: dict[str, str] = {}


def has_option(command: str, option: str) -> bool:
    """Does this version of `helios COMMAND` take `option`? (The bench runs
    against a tree that moves: the tailer grew a state dir and a spool, the
    buck a live feed.)"""
    if command not in _HELP:
        _HELP[command] = subprocess.run(helios_cmd(command, "--help"), capture_output=True, text=True,
                                        cwd=ROOT).stdout
    return option in _HELP[command]


def tailer_has(option: str) -> bool:
    return has_option("tailer", option)


def tailer_cmd(path: Path, endpoints: list[str], env: str, state_dir: Path, extra: list[str]) -> list[str]:
    cmd = ["tailer", "--path", str(path)]
    for ep in endpoints:
        cmd += ["--buck", ep]
    cmd += ["--env", env, "--host", "bench-host", "--start-at", "beginning"]
    if tailer_has("--state-dir"):
        # Fresh positions and spool for every tailer: a saved position from
        # an earlier run would make it skip the file.
        cmd += ["--state-dir", str(state_dir)]
    given = " ".join(extra)
    if tailer_has("--spool-window") and "--spool-window" not in given and "--no-spool" not in given:
        # Spool writes are measured; the re-send of a closed spool bucket is
        # kept out of the measured interval (it would add a third copy of
        # some lines to one buck while we count the two live copies).
        cmd += ["--spool-window", "86400"]
    return helios_cmd(*cmd, *extra)


def stored_bytes(data_dir: Path, env: str) -> int:
    return sum(p.stat().st_size for _, p in layout.list_buckets(layout.buckets_root(data_dir), env))


# ------------------------------------------------------------------ latency


class BucketWatch:
    """New events of one environment in one buck's bucket files, read as they land."""

    def __init__(self, data_dir: Path, env: str) -> None:
        self.root = layout.buckets_root(data_dir)
        self.env = env
        self.offsets: dict[Path, int] = {}
        self.paths: list[Path] = []
        self.listed = 0.0

    def new_messages(self) -> list[bytes]:
        now = time.monotonic()
        if now - self.listed > 0.05 or not self.paths:
            self.paths = [p for _, p in layout.list_buckets(self.root, self.env)]
            self.listed = now
        out: list[bytes] = []
        for p in self.paths:
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                continue
            start = self.offsets.get(p, 0)
            if size <= start:
                continue
            reader = RecordReader(p, start)
            for frame in reader:
                _, events = codec.decode(frame)
                out.extend(e.message for e in events)
            self.offsets[p] = reader.stats.end
        return out


def measure_latency(work: Path, endpoints: list[str], dirs: list[Path], bucks: list[Proc],
                    n: int, interval: float, extra: list[str]) -> list[float]:
    quiet = work / "quiet.log"
    quiet.write_bytes(b"")
    tailer = Proc("tailer-quiet", tailer_cmd(quiet, endpoints, LAT_ENV, work / "tailer-quiet-state", extra), work)
    watches = [BucketWatch(d, LAT_ENV) for d in dirs]
    fd = os.open(quiet, os.O_WRONLY | os.O_APPEND)
    procs = [tailer, *bucks]

    def wait_for(tag: bytes, timeout: float, then: float | None = None) -> float | None:
        """Seconds until `tag` is in both bucks (polled about every 0.5 ms);
        None if it is not in both after `timeout` seconds, or `then` seconds
        after it reached the first one."""
        t0 = time.perf_counter()
        pending = set(range(len(watches)))
        last_check = t0
        while pending:
            for i in list(pending):
                if any(m.endswith(tag) for m in watches[i].new_messages()):
                    pending.discard(i)
                    if then is not None and pending:
                        timeout = min(timeout, time.perf_counter() - t0 + then)
            if not pending:
                break
            now = time.perf_counter()
            if now - t0 > timeout:
                return None
            if now - last_check > 0.5:
                for p in procs:
                    p.check_alive()
                last_check = now
            time.sleep(0.0005)
        return time.perf_counter() - t0

    try:
        # Warm-up lines until one is in both bucks: the tailer has started and
        # is connected to both. (A batch sent before both connections are up
        # goes to one buck only, so the first line may never reach the other.)
        t_warm = time.perf_counter()
        for k in range(30):
            stamp = time.strftime("%b %e %H:%M:%S", time.gmtime()).encode()
            tag = LAT_MARK + b" warmup=%d" % k
            os.write(fd, stamp + b" bench-host app[1]: " + tag + b"\n")
            if wait_for(tag, 30.0, then=1.0) is not None:
                break
        else:
            raise RuntimeError("no warm-up line reached both bucks")
        log(f"  latency: tailer ready after {time.perf_counter() - t_warm:.2f} s and {k + 1} warm-up line(s)")
        if k:
            log(f"  ! {k} warm-up line(s) reached only one buck (a batch sent before both connections were up)")
        lats = []
        next_t = time.perf_counter()
        for i in range(n):
            next_t += interval
            stamp = time.strftime("%b %e %H:%M:%S", time.gmtime()).encode()
            tag = LAT_MARK + b" seq=%d" % i
            t0 = time.perf_counter()
            os.write(fd, stamp + b" bench-host app[1]: " + tag + b"\n")
            if wait_for(tag, 30.0) is None:
                raise RuntimeError(f"line {tag!r} not in both bucks after 30 s")
            lats.append(time.perf_counter() - t0)  # from just before the write
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.perf_counter()
        return lats
    finally:
        os.close(fd)
        tailer.terminate()
        tailer.wait()


# ------------------------------------------------------------------ Helios


def loadavg() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def curve_configs() -> dict[str, str]:
    """Config files with CURVE on, for the bucks and the tailer of the curve
    variant (keys made once, kept under bench/out/curve-keys)."""
    from helios.wire import rights
    from helios.wire.curve import read_rights, write_keypair

    keys = OUT / "curve-keys"
    allow = keys / "allow"
    # The tailer's key is a sender of the bench's environments, so that the
    # bucks check each frame against a declared role (helios.wire.rights).
    sender = rights.parse_values("sender", f"{ENV} {LAT_ENV}")
    tailer = keys / "tailer.key"
    if tailer.exists() and not read_rights(tailer).declared:  # made before roles: make it again
        tailer.unlink()
        (keys / "private" / "tailer.key_secret").unlink(missing_ok=True)
    for name in ("server", "tailer"):
        if not (keys / f"{name}.key").exists():
            write_keypair(keys, name, sender if name == "tailer" else None)
    allow.mkdir(exist_ok=True)
    (allow / "tailer.key").write_bytes((keys / "tailer.key").read_bytes())
    files = {"buck": f'server_secret_key = "{keys}/private/server.key_secret"\nallow_dir = "{allow}"\n',
             "tailer": f'secret_key = "{keys}/private/tailer.key_secret"\nserver_key = "{keys}/server.key"\n'}
    for role, text in files.items():
        (keys / f"{role}.toml").write_text("[security]\ncurve = true\n" + text)
    return {role: str(keys / f"{role}.toml") for role in files}


def variant_args(variant: str, args) -> list[str]:
    """The tailer's extra arguments for one Helios variant."""
    if variant in ("on", "checked"):
        return list(args.tailer_arg)
    if variant == "curve":
        return [*args.tailer_arg, "-c", curve_configs()["tailer"]]
    if variant == "off":
        return [*args.tailer_arg, "--no-spool"]
    return [*args.tailer_arg, "--spool-window", str(args.resend_window), "--resend-jitter", "0"]


def dir_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def wait_live(dirs: list[Path], procs: list[Proc], lines: int, wall0: float, t0: float,
              timeout: float) -> tuple[float, float]:
    """Until both bucks count every line: (wall s from the stats stamp, polled s)."""
    done_at: list[float | None] = [None, None]
    last = [None, None]
    while True:
        for i, d in enumerate(dirs):
            if done_at[i] is None:
                st = read_stats(d)
                if st is not None:
                    last[i] = st
                    if st["events"] >= lines:
                        done_at[i] = st["updated"]
        if all(x is not None for x in done_at):
            break
        if any(x is not None for x in done_at) and time.time() - min(x for x in done_at if x) > 15:
            got = [s and s["events"] for s in last]
            raise RuntimeError(f"one buck has every line but the other stalled for 15 s: {got} of {lines} "
                               "events (a batch went to one buck only)")
        for p in procs:
            p.check_alive()
        if time.perf_counter() - t0 > timeout:
            got = [s and s["events"] for s in last]
            raise RuntimeError(f"timeout after {timeout:.0f} s: bucks have {got} of {lines} events")
        time.sleep(0.1)
    return max(done_at) - wall0, time.perf_counter() - t0


def wait_resend(dirs: list[Path], procs: list[Proc], lines: int, wall0: float, t0: float,
                timeout: float, quiet_s: float = 1.5) -> tuple[float, float]:
    """Until the bucks hold three copies of every line (two live, one re-sent
    from the spool) and neither buck's byte counter has moved for `quiet_s`:
    (wall s to the last change, polled s)."""
    last_bytes: list[int | None] = [None, None]
    changed = [time.time(), time.time()]
    stamps = [wall0, wall0]
    while True:
        sts = [read_stats(d) for d in dirs]
        now = time.time()
        for i, st in enumerate(sts):
            if st is not None and st["bytes"] != last_bytes[i]:
                last_bytes[i], changed[i], stamps[i] = st["bytes"], now, st["updated"]
        events = sum(st["events"] for st in sts if st is not None)
        if None not in sts and events >= 3 * lines and now - max(changed) >= quiet_s:
            break
        for p in procs:
            p.check_alive()
        if time.perf_counter() - t0 > timeout:
            got = [st and st["events"] for st in sts]
            raise RuntimeError(f"timeout after {timeout:.0f} s: bucks have {got} events, waiting for "
                               f"{3 * lines} in all (two live copies and one re-sent)")
        time.sleep(0.1)
    return max(stamps) - wall0, time.perf_counter() - t0


def helios_run(path: Path, size: int, lines: int, args, run_no: int, variant: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"helios-bench-{run_no}-{variant}-", dir=args.work_dir))
    procs: list[Proc] = []
    extra = variant_args(variant, args)
    load = loadavg()
    try:
        bucks, endpoints, dirs = start_bucks(work, ["-c", curve_configs()["buck"]] if variant == "curve" else
                                             ["--check-events", "all"] if variant == "checked" else [])
        procs += bucks
        timeout = 60 + size / MB * 0.5  # 1000 MB: 560 s, i.e. a floor of ~14k lines/s
        state = work / "tailer-state"
        wall0 = time.time()
        t0 = time.perf_counter()
        tailer = Proc("tailer", tailer_cmd(path, endpoints, ENV, state, extra), work)
        procs.append(tailer)
        if variant == "resend":
            wall, polled = wait_resend(dirs, procs, lines, wall0, t0, timeout + 3 * args.resend_window + 30)
        else:
            wall, polled = wait_live(dirs, procs, lines, wall0, t0, timeout)
        usage = {p.name: p.usage() for p in procs}
        final = [read_stats(d) for d in dirs]
        spool = dir_bytes(state / "spool")
        tailer.terminate()
        tailer.wait()
        problems = []
        log(f"  tailer: {' '.join(tailer.cmd[3:])}")
        copies = 3 if variant == "resend" else 1
        for st in final:
            # (>=: the tailer's inventory records, a few per file, are events too)
            if variant != "resend" and st["events"] < lines:
                problems.append(f"{variant}: {st['name']} has {st['events']} events, expected {lines}")
            if st.get("bad_frames") or st.get("write_errors"):
                problems.append(f"{variant}: {st['name']}: bad frames {st.get('bad_frames')}, "
                                f"write errors {st.get('write_errors')}")
        events = sum(st["events"] for st in final)
        if variant == "resend" and events < copies * lines:
            problems.append(f"resend: the bucks hold {events} events, expected {copies * lines} "
                            "(two live copies and one re-sent)")
        res = {
            "variant": variant,
            "tailer_args": extra,
            "load": load,
            "wall_s": wall,
            "wall_polled_s": polled,
            "lines_per_s": lines / wall,
            "mb_per_s": size / MB / wall,
            "usage": usage,
            "frames": [st["frames"] for st in final],
            "events": [st["events"] for st in final],
            "wire_bytes": [st["bytes"] for st in final],
            "stored_bytes": [stored_bytes(d, ENV) for d in dirs],
            "spool_bytes": spool,
            "problems": problems,
        }
        if variant == "on" and args.latency_lines:
            res["latency_s"] = measure_latency(work, endpoints, dirs, bucks, args.latency_lines,
                                               args.latency_interval, extra)
        if variant == "on" and args.verify:
            res["verify"] = verify(dirs[0], path, lines)
        return res
    finally:
        stop_and_clean(procs, work, args.keep)


def stop_and_clean(procs, work: Path, keep: bool) -> None:
    """End the run's processes and remove its scratch directory (unless --keep)."""
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    if keep:
        log(f"  kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def report_helios(res: dict, size: int, lines: int) -> None:
    v = res["variant"]
    sent = sum(res["wire_bytes"])
    if v == "resend":
        log(f"  helios {v}: all copies landed after {res['wall_s']:.2f} s; the bucks got "
            f"{sum(res['events']) / lines:.3f} copies of each line, {sent / MB:.1f} MB of frames "
            f"({sent / size:.3f} per byte read)")
    else:
        log(f"  helios {v}: {res['wall_s']:.2f} s (polled {res['wall_polled_s']:.2f} s), "
            f"{res['lines_per_s']:,.0f} lines/s, {res['mb_per_s']:.1f} MB/s; frames to the bucks "
            f"{sent / MB:.1f} MB ({sent / size:.3f} per byte read)")
    for name, x in res["usage"].items():
        log(f"    {name:8s} cpu {x['cpu_s']:7.2f} s ({x['cpu_s'] / lines * 1e6:.2f} µs/line)  "
            f"peak rss {x['peak_rss'] / MIB:7.1f} MiB" + (
                f"  (reader {x['own_cpu_s'] / lines * 1e6:.2f}, encoders "
                f"{(x['cpu_s'] - x['own_cpu_s']) / lines * 1e6:.2f} µs/line)"
                if x.get("processes", 1) > 1 and "own_cpu_s" in x else ""))
    if v == "on":
        log(f"    stored per buck: {[f'{b / MB:.1f} MB' for b in res['stored_bytes']]} "
            f"({res['stored_bytes'][0] / size:.3f} of bytes read); frames {res['frames']}; "
            f"spool {res['spool_bytes'] / MB:.1f} MB")
    if "latency_s" in res:
        lat = res["latency_s"]
        log(f"  latency append -> both bucks: p50 {pct(lat, 50) * 1e3:.1f} ms, p95 {pct(lat, 95) * 1e3:.1f} ms, "
            f"max {max(lat) * 1e3:.1f} ms")
    if "verify" in res:
        log(f"  verify: {res['verify']}")


# ------------------------------------------------------------------ rsyslog, syslog-ng


_DAEMONS: dict[str, tuple[list[str], dict | None, str] | None] = {}


def find_daemon(daemon: str, args) -> tuple[list[str], dict | None, str] | None:
    """(command prefix, extra environment, version) of rsyslogd or syslog-ng,
    or None (and a message saying how to get it) when it is not there."""
    if daemon in _DAEMONS:
        return _DAEMONS[daemon]
    found = None
    if daemon == "rsyslog":
        exe = shutil.which("rsyslogd") or next((p for p in ("/usr/sbin/rsyslogd",) if os.path.exists(p)), None)
        if exe:
            out = subprocess.run([exe, "-v"], capture_output=True, text=True).stdout.split()
            found = ([exe], None, f"rsyslog {out[1] if len(out) > 1 else '?'}")
        else:
            log("rsyslog: rsyslogd not found, so the rsyslog comparison is skipped. Install it with "
                "`apt-get update && apt-get install -y rsyslog` (the bench runs it as a private foreground "
                "process with its own config; the system service is never started).")
    else:
        root = Path(args.syslog_ng_root)
        exe = root / "usr" / "sbin" / "syslog-ng"
        env = None
        prefix: list[str] = []
        if exe.exists():
            libs = [root / "usr" / "lib" / "syslog-ng", *root.glob("usr/lib/*-linux-gnu"), *root.glob("lib/*-linux-gnu")]
            env = {"LD_LIBRARY_PATH": ":".join(map(str, libs))}
            mods = sorted(p for p in (root / "usr" / "lib" / "syslog-ng").glob("[0-9]*") if p.is_dir())
            prefix = [str(exe)] + ([f"--module-path={mods[-1]}"] if mods else [])
        elif shutil.which("syslog-ng"):
            prefix = [shutil.which("syslog-ng")]
        if prefix:
            p = subprocess.run([*prefix, "--version"], capture_output=True, text=True,
                               env={**os.environ, **(env or {})})
            first = (p.stdout.splitlines() or ["?"])[0]
            if p.returncode == 0:
                found = (prefix, env, "syslog-ng " + first.split("(")[-1].rstrip(")") if "(" in first else first)
            else:
                log(f"syslog-ng: {prefix[0]} does not run ({(p.stderr or p.stdout).strip()[:200]}); skipped.")
        else:
            log(f"syslog-ng: not found (neither {exe} nor syslog-ng on PATH); skipped. It conflicts with the "
                "rsyslog package, so the bench uses a private extraction: see BENCHMARKS.md.")
    _DAEMONS[daemon] = found
    return found


def listening(port: int) -> bool:
    """Is something listening on this TCP port? (From /proc, without connecting.)"""
    want = f":{port:04X}"
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except (OSError, StopIteration):
            pass
    return False


class LineCounter:
    """Complete lines in a growing file, counted incrementally (wc -l)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return 0
        while True:
            data = os.pread(self.fd, 8 * MIB, self.offset)
            if not data:
                return self.lines
            self.lines += data.count(b"\n")
            self.offset += len(data)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def syslog_run(kind: str, path: Path, size: int, lines: int, args, run_no: int) -> dict | None:
    """One sender -> receiver pair on the input file; None if the daemon is missing."""
    daemon = "rsyslog" if kind.startswith("rsyslog") else "syslog-ng"
    flavour = "tuned" if kind.endswith("-tuned") else "default"
    found = find_daemon(daemon, args)
    if found is None:
        return None
    prefix, env, version = found
    work = Path(tempfile.mkdtemp(prefix=f"helios-bench-{run_no}-{kind}-", dir=args.work_dir))
    procs: list[Proc] = []
    counter = LineCounter(work / "out.log")
    load = loadavg()
    try:
        (work / "recv_work").mkdir()
        (work / "send_work").mkdir()
        port = free_port()
        cmds = {}
        for role in ("recv", "send"):
            src = SYSLOGD_CONFS / f"{daemon}_{role}_{flavour}.conf"
            text = src.read_text()
            if "51514" not in text:
                raise RuntimeError(f"{src} has no port 51514 to replace")
            conf = work / f"{role}.conf"
            conf.write_text(text.replace("RUNDIR", str(work)).replace("INPUT_FILE", str(path))
                            .replace("51514", str(port)))
            if daemon == "rsyslog":
                cmds[role] = [*prefix, "-n", "-f", str(conf), "-i", str(work / f"{role}.pid")]
            else:
                cmds[role] = [*prefix, "-F", "--no-caps", "-f", str(conf), "-p", str(work / f"{role}.pid"),
                              "-R", str(work / f"{role}.persist"), "-c", str(work / f"{role}.ctl")]
        recv = Proc(f"{kind}-receiver", cmds["recv"], work, env)
        procs.append(recv)
        deadline = time.monotonic() + 15
        while not listening(port):
            recv.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} receiver does not listen on port {port} after 15 s:\n{recv.log_tail()}")
            time.sleep(0.02)
        timeout = 60 + size / MB * 1.0  # 1000 MB: 1060 s, a floor of ~8k lines/s
        wall0 = time.time()
        t0 = time.perf_counter()
        send = Proc(f"{kind}-sender", cmds["send"], work, env)
        procs.append(send)
        seen, grew = 0, t0
        while True:
            n = counter.count()
            now = time.perf_counter()
            if n >= lines:
                break
            if n != seen:
                seen, grew = n, now
            elif now - grew > 30:
                raise RuntimeError(f"{kind}: the receiver's output stalled at {n} of {lines} lines for 30 s")
            if now - t0 > timeout:
                raise RuntimeError(f"{kind}: timeout after {timeout:.0f} s with {n} of {lines} lines")
            for p in procs:
                p.check_alive()
            time.sleep(0.1)
        polled = time.perf_counter() - t0
        end = (work / "out.log").stat().st_mtime
        wall = end - wall0 if wall0 < end <= time.time() else polled
        usage = {"sender": send.usage(), "receiver": recv.usage()}
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        written = counter.count()
        problems = []
        if written != lines:
            problems.append(f"{kind}: the receiver wrote {written} lines, expected {lines}")
        return {
            "kind": kind,
            "version": version,
            "load": load,
            "wall_s": wall,
            "wall_polled_s": polled,
            "lines_per_s": lines / wall,
            "mb_per_s": size / MB / wall,
            "usage": usage,
            "out_bytes": counter.offset,
            "problems": problems,
        }
    finally:
        counter.close()
        stop_and_clean(procs, work, args.keep)


def verify(data_dir: Path, path: Path, lines: int) -> str:
    """Decode every stored event of one buck: count, unique ids, message bytes."""
    t0 = time.perf_counter()
    n = 0
    msg_bytes = 0
    ids = set()
    for _, p in layout.list_buckets(layout.buckets_root(data_dir), ENV):
        for frame in RecordReader(p):
            _, rows = codec.decode_rows(frame)
            n += len(rows)
            for r in rows:
                ids.add(r[0])
                msg_bytes += len(r[8])
    expect_bytes = path.stat().st_size - lines  # without the newlines
    ok = n == lines and len(ids) == lines and msg_bytes == expect_bytes
    return (f"{'OK' if ok else 'MISMATCH'}: {n} events ({len(ids)} distinct ids), {msg_bytes} message bytes "
            f"(expected {lines} and {expect_bytes}); {time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------------------ report


def code_revision() -> str:
    """The commit measured, and whether helios/ differs from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "helios"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return rev + (" + uncommitted changes in helios/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_stamp() -> list:
    """Names, sizes and mtimes of the package's sources: to notice edits during a run."""
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (ROOT / "helios").rglob("*.py"))


def med(xs):
    return statistics.median(xs)


def pct(xs, q):
    s = sorted(xs)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def fmt_range(xs, f):
    if len(xs) == 1 or len({f(x) for x in xs}) == 1:
        return f(xs[0])
    return f"{f(med(xs))} ({f(min(xs))} – {f(max(xs))})"




def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=1000, help="input size in MB (10^6 bytes) [1000]")
    ap.add_argument("--repeat", type=int, default=1, help="runs of everything; medians reported [1]")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs, scratch dirs and logs")
    ap.add_argument("--latency-lines", type=int, default=50, help="quiet-path lines to time per run (0: skip) [50]")
    ap.add_argument("--latency-interval", type=float, default=0.05, help="seconds between quiet lines [0.05]")
    ap.add_argument("--verify", action="store_true", help="decode one buck's data and check every line is there")
    ap.add_argument("--work-dir", default=None, help="where the temporary data dirs go [system temp]")
    ap.add_argument("--tailer-arg", action="append", default=[],
                    help="extra argument for the tailer, repeatable (e.g. --tailer-arg=--batch-events=5000)")
    ap.add_argument("--helios", default=",".join(DEFAULT_VARIANTS),
                    help="Helios variants, comma-separated: on (spool on), off (--no-spool), resend (short spool "
                         "window; counts the re-sent bytes), curve (as on, with CURVE on every socket), checked (as on, with "
                         "the bucks decoding and checking every event: --check-events all) [%(default)s]")
    ap.add_argument("--resend-window", type=int, default=5,
                    help="--spool-window of the resend variant, seconds (must divide 86400) [5]")
    ap.add_argument("--syslog", default=",".join(SYSLOGS),
                    help="other collectors, comma-separated, or 'none': " + ", ".join(SYSLOGS) + " [all]")
    ap.add_argument("--syslog-ng-root", default=str(SYSLOG_NG_ROOT),
                    help="a `dpkg-deb -x` of syslog-ng-core and its libraries, used if it holds usr/sbin/syslog-ng; "
                         "else syslog-ng on PATH [bench/out/syslog-ng/root]")
    args = ap.parse_args()
    argv = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/ingest.py", *sys.argv[1:]])
    variants = [v for v in args.helios.split(",") if v]
    syslogs = [] if args.syslog == "none" else [s for s in args.syslog.split(",") if s]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown Helios variant {v!r} (choose from {', '.join(VARIANTS)})")
    for s in syslogs:
        if s not in SYSLOGS:
            ap.error(f"unknown collector {s!r} (choose from {', '.join(SYSLOGS)}, or none)")
    if "resend" in variants and (args.resend_window < 1 or 86400 % args.resend_window):
        ap.error("--resend-window must be a whole number of seconds that divides 86400")

    log(f"$ {argv}")
    rev, code_before = code_revision(), code_stamp()
    path, size, lines = input_file(args.size_mb)
    log("warming the page cache")
    warm(path)

    runs = []
    for r in range(args.repeat):
        run = {"load": loadavg(), "helios": {}, "syslog": {}, "problems": []}
        log(f"run {r + 1}/{args.repeat} (load average {run['load']})")
        run["cat_s"] = bench_cat(path)
        log(f"  cat > /dev/null: {run['cat_s']:.2f} s, {lines / run['cat_s']:,.0f} lines/s, "
            f"{size / MB / run['cat_s']:,.0f} MB/s")
        run["split_s"] = bench_split(path, lines)
        log(f"  python read+split: {run['split_s']:.2f} s, {lines / run['split_s']:,.0f} lines/s, "
            f"{size / MB / run['split_s']:,.0f} MB/s")

        def others() -> None:
            for kind in syslogs:
                log(f"  {kind} (load average {loadavg()})")
                try:
                    res = syslog_run(kind, path, size, lines, args, r + 1)
                except RuntimeError as exc:
                    run["problems"].append(f"{kind}: {exc}")
                    log(f"  ! {kind} failed: {exc}")
                    continue
                if res is None:
                    continue
                run["syslog"][kind] = res
                run["problems"] += res["problems"]
                log(f"  {kind} ({res['version']}): {res['wall_s']:.2f} s (polled {res['wall_polled_s']:.2f} s), "
                    f"{res['lines_per_s']:,.0f} lines/s, {res['mb_per_s']:.1f} MB/s")
                for name, x in res["usage"].items():
                    log(f"    {name:8s} cpu {x['cpu_s']:7.2f} s ({x['cpu_s'] / lines * 1e6:.2f} µs/line)  "
                        f"peak rss {x['peak_rss'] / MIB:7.1f} MiB")

        def helios() -> None:
            # Variants in the other order every other run: a drift of the load does not favour one.
            for v in (variants if r % 2 == 0 else variants[::-1]):
                log(f"  helios {v} (load average {loadavg()})")
                try:
                    res = helios_run(path, size, lines, args, r + 1, v)
                except RuntimeError as exc:
                    run["problems"].append(f"helios {v}: {exc}")
                    log(f"  ! helios {v} failed: {exc}")
                    continue
                run["helios"][v] = res
                run["problems"] += res["problems"]
                report_helios(res, size, lines)

        for step in ((others, helios) if r % 2 == 0 else (helios, others)):
            step()
        on = run["helios"].get("on")
        if on:
            for kind, res in run["syslog"].items():
                log(f"  Helios (spool on) / {kind}: {on['lines_per_s'] / res['lines_per_s']:.2f}")
            off = run["helios"].get("off")
            if off:
                log(f"  spool on / off: lines/s x{on['lines_per_s'] / off['lines_per_s']:.3f}, tailer CPU "
                    f"x{on['usage']['tailer']['cpu_s'] / off['usage']['tailer']['cpu_s']:.3f}")
            curve = run["helios"].get("curve")
            if curve:
                log(f"  CURVE on / off (spool on): lines/s x{curve['lines_per_s'] / on['lines_per_s']:.3f} "
                    f"(goal >= 0.85), tailer CPU x{curve['usage']['tailer']['cpu_s'] / on['usage']['tailer']['cpu_s']:.3f}")
            checked = run["helios"].get("checked")
            if checked:
                cpu = lambda res: sum(u["cpu_s"] for n, u in res["usage"].items() if n.startswith("buck"))  # noqa: E731
                log(f"  every event checked / header only (spool on): lines/s "
                    f"x{checked['lines_per_s'] / on['lines_per_s']:.3f}, bucks' CPU x{cpu(checked) / cpu(on):.3f} "
                    f"({cpu(checked) / lines * 1e6:.2f} vs {cpu(on) / lines * 1e6:.2f} us per line, both bucks)")
        for p in run["problems"]:
            log(f"  ! {p}")
        runs.append(run)

    notes = []
    if code_stamp() != code_before:
        notes.append("helios/ changed during the run: the runs may not all measure the same code")
        log(f"! {notes[-1]}")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"ingest-{stamp}.json").write_text(json.dumps(
        {"argv": argv, "code": rev, "size": size, "lines": lines, "runs": runs}, indent=1))

    md = markdown(runs, argv, rev, size, lines, args, notes)
    log("\n----- markdown for BENCHMARKS.md -----\n")
    log("\n".join(md))
    log("\n-----")
    problems = [p for r in runs for p in r["problems"]]
    return 1 if problems else 0


def markdown(runs: list[dict], argv: str, rev: str, size: int, lines: int, args, notes: list[str]) -> list[str]:
    f0, f1, f2, f3 = (lambda x: f"{x:,.0f}"), (lambda x: f"{x:.1f}"), (lambda x: f"{x:.2f}"), (lambda x: f"{x:.3f}")

    def fr(xs, f):
        return fmt_range(xs, f) if xs else "–"

    def helios(v):
        return [r["helios"][v] for r in runs if v in r["helios"]]

    def syslog(kind):
        return [r["syslog"][kind] for r in runs if kind in r["syslog"]]

    def ratio(v, kind):
        """Helios variant v's lines/s over kind's, each pair from one run."""
        return [r["helios"][v]["lines_per_s"] / r["syslog"][kind]["lines_per_s"]
                for r in runs if v in r["helios"] and kind in r["syslog"]]

    def ratio_base(key):
        return [r["helios"]["on"]["lines_per_s"] / (lines / r[key]) for r in runs if "on" in r["helios"]]

    def us(res_list, name):
        return [x["usage"][name]["cpu_s"] / lines * 1e6 for x in res_list]

    md = []
    md.append(f"Command: `{argv}` (code at {rev})  ")
    md.append(f"Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {os.cpu_count()} CPUs ({cpu_name()}); "
              f"Python {platform.python_version()}; {speedups_state()}; input {size / MB:.1f} MB, {lines:,} lines "
              f"({size / lines:.0f} bytes/line); {len(runs)} run(s), median (min – max). "
              f"Load average (1, 5, 15 min) at the start of each run: {'; '.join(r['load'] for r in runs)}.")
    md.append("")
    md.append("| Path | wall s | lines/s | MB/s | Helios (spool on) ÷ this |")
    md.append("|---|---:|---:|---:|---:|")
    for key, label in (("cat_s", "`cat FILE > /dev/null`"), ("split_s", "Python read 1 MiB + split")):
        xs = [r[key] for r in runs]
        md.append(f"| {label} | {fr(xs, f2)} | {fr([lines / x for x in xs], f0)} | {fr([size / MB / x for x in xs], f0)} "
                  f"| {fr(ratio_base(key), f3)} |")
    for kind in SYSLOGS:
        rs = syslog(kind)
        if not rs:
            continue
        label = f"{rs[0]['version']}, {'tuned' if kind.endswith('-tuned') else 'stock'} configs: file -> TCP -> file"
        md.append(f"| {label} | {fr([x['wall_s'] for x in rs], f2)} | {fr([x['lines_per_s'] for x in rs], f0)} "
                  f"| {fr([x['mb_per_s'] for x in rs], f1)} | {fr(ratio('on', kind), f2)} |")
    for v, label in (("on", "**Helios** tailer -> 2 bucks, spool on"), ("off", "Helios tailer -> 2 bucks, `--no-spool`"),
                     ("curve", "Helios tailer -> 2 bucks, spool on, CURVE on every socket")):
        rs = helios(v)
        if rs:
            bold = (lambda s: f"**{s}**") if v == "on" else (lambda s: s)
            md.append(f"| {label} | {fr([x['wall_s'] for x in rs], f2)} | {bold(fr([x['lines_per_s'] for x in rs], f0))} "
                      f"| {fr([x['mb_per_s'] for x in rs], f1)} | "
                      f"{'1' if v == 'on' else fr(ratio_base_v(runs, 'on', v), f3)} |")
    cost = ratio_base_v(runs, "curve", "on")
    if cost:
        met = "met" if statistics.median(cost) >= 0.85 else "**not met**"
        md.append("")
        md.append(f"**CURVE on ÷ off (lines/s, spool on both), each pair from one run: {fr(cost, f3)}** "
                  f"(goal ≥ 0.85, i.e. CURVE costs at most 15%: {met}; per run: {', '.join(f'{x:.3f}' for x in cost)}).")
    md.append("")
    goal = ratio("on", "rsyslog")
    if goal:
        met = "met" if statistics.median(goal) >= 2.0 else "**not met**"
        md.append(f"**Helios (spool on, parsing on) ÷ rsyslog (stock configs), each pair from one run: "
                  f"{fr(goal, f2)}** (goal ≥ 2.0: {met}; per run: {', '.join(f'{x:.2f}' for x in goal)}).")
        md.append("")

    md.append("| Run | Process | CPU s | CPU µs/line | peak RSS MiB |")
    md.append("|---|---|---:|---:|---:|")
    groups = [(f"Helios, spool {'on' if v == 'on' else 'off'}", helios(v)) for v in ("on", "off")]
    groups += [("Helios, spool on, CURVE", helios("curve"))]
    groups += [(f"Helios, spool window {args.resend_window} s (with re-send)", helios("resend"))]
    groups += [(kind, syslog(kind)) for kind in SYSLOGS]
    for label, rs in groups:
        if not rs:
            continue
        names = list(rs[0]["usage"])
        for n in names:
            md.append(f"| {label} | {n} | {fr([x['usage'][n]['cpu_s'] for x in rs], f1)} | {fr(us(rs, n), f2)} "
                      f"| {fr([x['usage'][n]['peak_rss'] / MIB for x in rs], f1)} |")
            if all(x["usage"][n].get("processes", 1) > 1 and "own_cpu_s" in x["usage"][n] for x in rs):
                # The tailer's own process (it reads, spools and sends) and its encoder processes.
                own = [x["usage"][n]["own_cpu_s"] for x in rs]
                enc = [x["usage"][n]["cpu_s"] - x["usage"][n]["own_cpu_s"] for x in rs]
                md.append(f"| {label} | {n}: reader | {fr(own, f1)} | {fr([c / lines * 1e6 for c in own], f2)} | |")
                md.append(f"| {label} | {n}: encoders | {fr(enc, f1)} | {fr([c / lines * 1e6 for c in enc], f2)} | |")
        total = [sum(x["usage"][n]["cpu_s"] for n in names) for x in rs]
        md.append(f"| {label} | all | {fr(total, f1)} | {fr([t / lines * 1e6 for t in total], f2)} | |")
        md.append(f"| {label} | (cores busy: CPU s / wall s) | {fr([t / x['wall_s'] for t, x in zip(total, rs)], f2)} | | |")
    md.append("")

    on, off = helios("on"), helios("off")
    if on and off:
        pairs = [(r["helios"]["on"], r["helios"]["off"]) for r in runs if "on" in r["helios"] and "off" in r["helios"]]

        def tot(x):
            return sum(u["cpu_s"] for u in x["usage"].values())

        md.append("Spool cost (each pair from one run):")
        md.append("")
        md.append("| Tailer | lines/s | tailer CPU µs/line | all three CPU µs/line | tailer peak RSS MiB | spool written, MB |")
        md.append("|---|---:|---:|---:|---:|---:|")
        for label, rs in (("spool on (`--spool-window 86400`)", on), ("`--no-spool`", off)):
            md.append(f"| {label} | {fr([x['lines_per_s'] for x in rs], f0)} | {fr(us(rs, 'tailer'), f2)} "
                      f"| {fr([tot(x) / lines * 1e6 for x in rs], f2)} | {fr([x['usage']['tailer']['peak_rss'] / MIB for x in rs], f1)} "
                      f"| {fr([x['spool_bytes'] / MB for x in rs], f1)} |")
        md.append(f"| on ÷ off | {fr([a['lines_per_s'] / b['lines_per_s'] for a, b in pairs], f3)} "
                  f"| {fr([a['usage']['tailer']['cpu_s'] / b['usage']['tailer']['cpu_s'] for a, b in pairs], f3)} "
                  f"| {fr([tot(a) / tot(b) for a, b in pairs], f3)} | | |")
        md.append("")

    md.append("Bytes sent per byte read (frame bytes received and stored by the two bucks, their `stats.json` "
              "`bytes`, over the input file's bytes; ZeroMQ and TCP framing not counted):")
    md.append("")
    md.append("| Variant | MB of frames to the bucks | per byte read | copies of each line in the bucks |")
    md.append("|---|---:|---:|---:|")
    rows = [("spool on, live only (each batch to both bucks; re-send kept out by `--spool-window 86400`)", on),
            ("`--no-spool` (live only)", off),
            (f"spool on, `--spool-window {args.resend_window} --resend-jitter 0`: live + re-send of every spool "
             "bucket to one buck", helios("resend"))]
    for label, rs in rows:
        if rs:
            md.append(f"| {label} | {fr([sum(x['wire_bytes']) / MB for x in rs], f1)} "
                      f"| {fr([sum(x['wire_bytes']) / size for x in rs], f3)} "
                      f"| {fr([sum(x['events']) / lines for x in rs], f3)} |")
    if on:
        md.append(f"| one copy (one buck, spool on) | {fr([x['wire_bytes'][0] / MB for x in on], f1)} "
                  f"| {fr([x['wire_bytes'][0] / size for x in on], f3)} | 1 |")
    md.append("")
    if on:
        stored = [x["stored_bytes"][0] for x in on]
        md.append(f"Stored per buck (bucket files on disk, spool on): {fr([s / MB for s in stored], f1)} MB "
                  f"({fr([s / size for s in stored], f3)} of the input; {fr([s / lines for s in stored], f1)} bytes "
                  f"per event); spool on the tailer's disk: {fr([x['spool_bytes'] / MB for x in on], f1)} MB; "
                  f"{fr([x['frames'][0] for x in on], f0)} frames per buck.")
    rs = helios("resend")
    if rs:
        md.append(f"With the {args.resend_window} s spool window, the third copy of the last line landed "
                  f"{fr([x['wall_s'] for x in rs], f1)} s after the tailer started.")
    if on and all("latency_s" in x for x in on):
        lat = [y for x in on for y in x["latency_s"]]
        per_run = ", ".join(f"{pct(x['latency_s'], 50) * 1e3:.1f}" for x in on)
        md.append("")
        md.append(f"Quiet-path latency (append of one line -> stored in both bucks, {args.latency_lines} lines "
                  f"{args.latency_interval * 1e3:.0f} ms apart per run, {len(lat)} in all): "
                  f"p50 {pct(lat, 50) * 1e3:.1f} ms, p95 {pct(lat, 95) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms "
                  f"(per-run p50: {per_run} ms).")
    problems = [p for r in runs for p in r["problems"]]
    if problems or notes:
        md.append("")
        md.append("Problems: " + "; ".join(problems + notes))
    return md


def ratio_base_v(runs: list[dict], a: str, b: str) -> list[float]:
    """Helios variant a's lines/s over variant b's, each pair from one run."""
    return [r["helios"][a]["lines_per_s"] / r["helios"][b]["lines_per_s"]
            for r in runs if a in r["helios"] and b in r["helios"]]


if __name__ == "__main__":
    sys.exit(main())
