#!/usr/bin/env python3
"""Porter benchmark: events from two bucks into the sqlite index and the archive.

Run from the repository root::

    .venv/bin/python bench/porter.py [--events 5000000] [--repeat 3] [--workers 2]

What it measures:

1. Input (made once, cached under ``bench/out/porter-<events>/``): ``--events``
   tailed lines of ``helios.loadgen`` (13 hosts, one source file each, ~2,000
   lines/s over the fleet, times within the last two days) stored as two
   bucks would hold them: every batch (2,000 lines of one host, one lz4
   frame) in the bucket file of its arrival window (60 s) in **both** bucks,
   and each host's closed 60-s spool bucket re-sent whole to one random buck
   in the next window (``--no-resend`` leaves that out). So every event is
   stored three times. Written with ``helios.store.records`` and
   ``helios.codec`` directly, for speed; the raw lines (each event's
   message, newline-terminated, in time order) go to ``raw.log`` beside them.
2. Baselines, in the same run: ``fts5_limits.py`` (``../shared/anchors/
   sqlite``) for the layout the sqlite index uses (a contentless trigram
   FTS5 table, ``detail=none``), with 1 and with 2 processes, on
   ``--anchor-rows`` rows, before every repeat; and ``zstd -19`` of
   ``raw.log`` (the zstd CLI; once per run: its size does not vary).
3. Helios, each repeat with a fresh state, index and archive: two bucks
   (``helios buck``) serving the cached data dirs, then
   - **index**: ``helios porter once`` with the archive out of reach
     (``--archive-age`` far away): every window fetched from both bucks,
     merged, deduplicated and loaded into the sqlite index with
     ``--workers`` loader processes;
   - **archive**: ``helios porter once`` again on the same state, with
     ``--archive-age 0``: every window fetched again, packed (zstd -19) and
     stored in the folder archive by ``--workers`` processes.
   Events/s are distinct events over the wall time of the ``helios porter
   once`` process (its start-up included). Peak RSS: the porter process's
   ``VmHWM``, and the greatest sum of ``VmRSS`` over the porter and its
   children (loaders, archive workers), sampled every 0.2 s. The bucks'
   CPU is part of the pipeline and of the two cores.
4. Compression: the archive's bytes (the objects as stored, without the
   folder's 40-byte checksum trailers) against ``zstd -19`` of ``raw.log``.

``--fields`` gives each event the ``key=value`` pairs of its line as fields
(what the parser gives logfmt lines: about 2 lines in 9 of ``loadgen``
have some, 4-6 pairs each), so the index also builds its field index; the
input is cached apart.

``--repeat N`` gives medians and ranges; a markdown block at the end is ready
for BENCHMARKS.md, and the raw results land in ``bench/out/porter-*.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Barrier, Process, Queue
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helios import codec, loadgen  # noqa: E402
from helios.model import source_key  # noqa: E402
from helios.parsing.fields import key_values  # noqa: E402
from helios.store import layout  # noqa: E402
from helios.store.records import RecordWriter  # noqa: E402
from helios.wire.ports import free_endpoint  # noqa: E402

OUT = ROOT / "bench" / "out"
ANCHOR = ROOT.parent / "shared" / "anchors" / "sqlite" / "fts5_limits.py"
ANCHOR_LAYOUT = "substring index: trigram, contentless, detail=none"
ZSTD = "/usr/bin/zstd"
WIDTH = 60
BATCH = 2000
RATE = 2000  # lines per second over the fleet
NS = 1_000_000_000
MB = 1_000_000
ENV = "bench"
FORMAT = 3  # of the cached input; bump when the generator changes


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------- input

def make_input(events: int, resend: bool, with_fields: bool = False) -> Path:
    """The cached bucket files of two bucks (see the module docstring)."""
    tag = f"porter-{events}{'' if resend else '-noresend'}{'-fields' if with_fields else ''}"
    base = OUT / tag
    meta_path = base / "meta.json"
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == FORMAT and meta.get("events") == events:
            log(f"input: reusing {base.relative_to(ROOT)} ({events:,} events)")
            return base
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    t_start = time.perf_counter()
    rng = random.Random(1)
    pick = random.Random(2)
    # Two days ago at midnight, so every event is within the index's retention.
    t0 = (int(time.time()) // 86400 - 2) * 86400
    keys = {h: source_key(1, i, f"{h} first line".encode()) for i, h in enumerate(loadgen.HOSTS)}
    offsets = dict.fromkeys(loadgen.HOSTS, 0)
    pending: dict[str, list] = {h: [] for h in loadgen.HOSTS}
    spool: dict[tuple[str, int], list[bytes]] = {}   # (host, spool window) -> frames
    writers: dict[tuple[str, int], RecordWriter] = {}
    roots = {b: layout.buckets_root(base / f"buck-{b}") for b in "ab"}
    stored = 0

    def writer(buck: str, start: int) -> RecordWriter:
        w = writers.get((buck, start))
        if w is None:
            for key in [k for k in writers if k[0] == buck and k[1] < start - 2 * WIDTH]:
                writers.pop(key).close()
            w = writers[(buck, start)] = RecordWriter(layout.bucket_path(roots[buck], ENV, start, WIDTH))
        return w

    def flush(host: str, arrival: float) -> None:
        nonlocal stored
        rows = pending[host]
        if not rows:
            return
        frame = codec.encode_rows(ENV, host, rows, rows[0][1], rows[-1][1])
        window = int(arrival) - int(arrival) % WIDTH
        for b in "ab":
            writer(b, window).append(frame)
        stored += 2 * len(rows)
        spool.setdefault((host, window), []).append((frame, len(rows)))
        pending[host] = []

    def resend_before(window: int) -> None:
        """Spool buckets whose window has passed go to one random buck, in the next window."""
        nonlocal stored
        for key in sorted(k for k in spool if k[1] < window):
            frames = spool.pop(key)
            if resend:
                w = writer(pick.choice("ab"), key[1] + WIDTH)
                w.append_many([f for f, _ in frames])
                stored += sum(n for _, n in frames)

    with open(base / "raw.log", "wb") as raw:
        chunk = []
        last_window = t0
        for i in range(events):
            t = t0 + i / RATE
            text = loadgen.rfc3164_line(rng, t).encode()
            # "Mmm dd HH:MM:SS host app[pid]: message": the stamp is 15 bytes.
            end = text.index(b" ", 16)
            host = text[16:end].decode()
            app = text[end + 1:text.index(b":", end)].split(b"[")[0].decode()
            t_ns = int(t * NS)
            received = t_ns + 50_000_000
            key = keys[host]
            off = offsets[host]
            offsets[host] = off + len(text)
            # Ids travel empty: the porter derives them (as from a tailer).
            fields = key_values(text[:-1]) if with_fields else None
            pending[host].append((b"", t_ns, received, host, app, 6, f"/var/log/{host}.log", off, text[:-1],
                                  fields, key))
            chunk.append(text)
            if len(pending[host]) >= BATCH:
                flush(host, received / NS)
            window = int(t) - int(t) % WIDTH
            if window != last_window:
                # A quiet host's batch closes with the tailer's batch delay, not a minute later.
                for h in loadgen.HOSTS:
                    flush(h, t)
                resend_before(window)
                last_window = window
            if len(chunk) >= 100_000:
                raw.write(b"".join(chunk))
                chunk = []
                log(f"input: {i + 1:,} events ...")
        raw.write(b"".join(chunk))
    for h in loadgen.HOSTS:
        flush(h, t0 + events / RATE)
    resend_before(2**62)
    for w in writers.values():
        w.close()
    took = time.perf_counter() - t_start
    meta = {"format": FORMAT, "events": events, "resend": resend, "events_stored": stored,
            "raw_bytes": (base / "raw.log").stat().st_size, "t0": t0}
    meta_path.write_text(json.dumps(meta))
    log(f"input: wrote {events:,} events ({stored:,} copies in two bucks) under {base.relative_to(ROOT)} "
        f"in {took:.0f} s")
    return base


# --------------------------------------------------------------------- baselines

def load_anchor():
    saved = sys.argv
    sys.argv = [str(ANCHOR)]  # the script reads its row count from argv at import
    try:
        spec = importlib.util.spec_from_file_location("fts5_limits", ANCHOR)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.argv = saved
    return mod


def anchor_rates(mod, rows: int, work: Path) -> dict:
    """fts5_limits.py's rows/s for the index's layout, 1 and 2 processes."""
    ddl = mod.LAYOUTS[ANCHOR_LAYOUT]
    data = mod.make_rows(rows)
    db, el = mod.build(str(work / "one.db"), ddl, data)
    db.close()
    del data
    q, start = Queue(), Barrier(2)
    ps = [Process(target=mod.worker, args=(str(work / f"par{i}.db"), ddl, rows // 2, i + 7, q, start))
          for i in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    par = rows / max(q.get(), q.get())
    for f in work.glob("*.db*"):
        f.unlink()
    return {"rows": rows, "one": rows / el, "two": par}


def zstd_size(raw: Path, work: Path) -> dict:
    out = work / "raw.log.zst"
    t = time.perf_counter()
    subprocess.run([ZSTD, "-19", "-q", "-f", str(raw), "-o", str(out)], check=True)
    took = time.perf_counter() - t
    size = out.stat().st_size
    out.unlink()
    return {"bytes": size, "seconds": took}


# --------------------------------------------------------------------- helios

class Tree:
    """Samples a process and its descendants: peak of the summed RSS, and VmHWM of the root."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_sum = 0
        self.root_hwm = 0
        self.root_cpu = 0.0  # utime + stime of the root alone, last seen

    def sample(self) -> None:
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                continue
            if pid == self.pid:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    fields = stat[stat.rindex(")") + 2:].split()
                    self.root_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:") and pid == self.pid:
                    self.root_hwm = max(self.root_hwm, int(line.split()[1]) * 1024)
        self.peak_sum = max(self.peak_sum, total)


def run_porter(args: list[str], logfile: Path) -> dict:
    cmd = [sys.executable, "-m", "helios", "porter", "once", *args]
    with open(logfile, "ab") as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        tree = Tree(p.pid)
        reaped = False
        try:
            while not reaped:
                tree.sample()
                # wait4: the porter's CPU with that of its children (loaders, workers), once it exits.
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                reaped = pid != 0
                if not reaped:
                    time.sleep(0.2)
        finally:
            if not reaped:  # interrupted: the porter finishes its jobs in flight, then exits
                p.terminate()
                p.wait()
        took = time.perf_counter() - t
    code = p.returncode = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{' '.join(cmd)} exited {code}; see {logfile}")
    return {"seconds": took, "peak_rss_root": tree.root_hwm, "peak_rss_tree": tree.peak_sum,
            "cpu_all": usage.ru_utime + usage.ru_stime, "cpu_main": tree.root_cpu}


def start_bucks(base: Path, work: Path) -> tuple[list[subprocess.Popen], list[str]]:
    procs, queries = [], []
    for b in "ab":
        q = free_endpoint()
        data = work / f"buck-{b}"
        # The cached data dir, linked: the bucks only read (nothing is pruned).
        data.mkdir()
        (data / "buckets").symlink_to(base / f"buck-{b}" / "buckets")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "helios", "--log-level", "warning", "buck", "--name", f"bench-{b}",
             "--ingest", free_endpoint(), "--publish", "", "--query", q, "--data-dir", str(data),
             "--window", str(WIDTH)], cwd=ROOT, stdout=open(work / f"buck-{b}.log", "wb"), stderr=subprocess.STDOUT))
        queries.append(q)
    deadline = time.time() + 20
    while not all((work / f"buck-{b}" / "stats.json").exists() for b in "ab"):
        if time.time() > deadline:
            raise SystemExit("the bucks did not start")
        time.sleep(0.1)
    return procs, queries


def one_repeat(base: Path, meta: dict, workers: int, work: Path) -> dict:
    procs, queries = start_bucks(base, work)
    try:
        common = ["--state-dir", str(work / "state"), "--index-dir", str(work / "index"), "--archive-dir",
                  str(work / "archive"), "--grace", "0", "--prune-age", "1e12", "--recent-days", "7",
                  "--workers", str(workers), "--timeout", "60"]
        for q in queries:
            common += ["--query", q]
        index = run_porter([*common, "--archive-age", "1e12"], work / "porter-index.log")
        archive = run_porter([*common, "--archive-age", "0"], work / "porter-archive.log")
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
    status = json.loads((work / "state" / "status.json").read_text())
    env = status["environments"][ENV]
    if env["events_indexed"] != meta["events"]:
        raise SystemExit(f"the index took {env['events_indexed']:,} events, not {meta['events']:,}")
    archive_bytes = env["archive_bytes"]
    return {"index": index, "archive": archive, "events": meta["events"], "archive_bytes": archive_bytes,
            "windows": env["windows_indexed"],
            "index_mb": sum(f.stat().st_size for f in (work / "index").rglob("*") if f.is_file()) / MB}


def med(values: list[float], fmt: str = "{:,.0f}") -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} – {fmt.format(max(values))})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="[porter] workers (index loaders, archive packers)")
    ap.add_argument("--anchor-rows", type=int, default=500_000, help="rows of the fts5_limits.py baseline")
    ap.add_argument("--no-resend", action="store_true", help="no spool re-send copies (two copies, not three)")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--fields", action="store_true", help="events carry their line's key=value pairs as fields")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = make_input(a.events, not a.no_resend, a.fields)
    meta = json.loads((base / "meta.json").read_text())
    anchor = load_anchor()
    scratch = Path(tempfile.mkdtemp(prefix="porter-bench-", dir=OUT))
    z = zstd_size(base / "raw.log", scratch)
    log(f"zstd -19 of raw.log: {z['bytes']:,} bytes in {z['seconds']:.0f} s "
        f"({meta['raw_bytes'] / z['bytes']:.2f}x)")
    runs = []
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # SIGTERM (like Ctrl-C) ends the run after the repeats done so far: their table is printed.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        repeats(a, base, meta, anchor, scratch, runs, stamp, z)
    except KeyboardInterrupt:
        log(f"interrupted after {len(runs)} repeat(s)")
    if not a.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    if runs:
        summary(a, meta, z, runs)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def repeats(a, base: Path, meta: dict, anchor, scratch: Path, runs: list, stamp: str, z: dict) -> None:
    for r in range(a.repeat):
        work = scratch / f"run-{r}"
        work.mkdir()
        base_rates = anchor_rates(anchor, a.anchor_rows, work)
        log(f"repeat {r + 1}: fts5_limits ({ANCHOR_LAYOUT}): {base_rates['one']:,.0f} rows/s in 1 process, "
            f"{base_rates['two']:,.0f} in 2")
        res = one_repeat(base, meta, a.workers, work)
        res["anchor"] = base_rates
        n = res["events"]
        log(f"repeat {r + 1}: index {n / res['index']['seconds']:,.0f} events/s "
            f"({res['index']['seconds']:.1f} s), archive {n / res['archive']['seconds']:,.0f} events/s "
            f"({res['archive']['seconds']:.1f} s), archive {res['archive_bytes']:,} bytes; peak RSS porter "
            f"{res['index']['peak_rss_root'] / MB:.0f} / {res['archive']['peak_rss_root'] / MB:.0f} MB")
        runs.append(res)
        result = {"args": vars(a), "meta": meta, "zstd": z, "runs": runs}
        (OUT / f"porter-{stamp}.json").write_text(json.dumps(result, indent=1))
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def summary(a, meta: dict, z: dict, runs: list) -> None:
    n = meta["events"]
    two = [r["anchor"]["two"] for r in runs]
    one = [r["anchor"]["one"] for r in runs]
    idx = [n / r["index"]["seconds"] for r in runs]
    arc = [n / r["archive"]["seconds"] for r in runs]
    ratio = [n / r["index"]["seconds"] / r["anchor"]["two" if a.workers >= 2 else "one"] for r in runs]
    sizes = [r["archive_bytes"] for r in runs]
    copies = meta["events_stored"] / n
    log("")
    log(f"Command: `.venv/bin/python bench/porter.py --events {n} --repeat {a.repeat} --workers {a.workers}"
        f"{' --no-resend' if a.no_resend else ''}{' --fields' if a.fields else ''}` ({datetime.date.today()}; 2 shared cores; "
        f"{len(runs)} repeat(s) done)")
    log("")
    log(f"{n:,} events ({meta['raw_bytes'] / MB:,.0f} MB of raw lines), stored about {copies:.1f} times over "
        f"two bucks, {runs[0]['windows']} windows of {WIDTH} s.")
    log("")
    log("| | median (min – max) |")
    log("|---|---|")
    log(f"| index: events/s into sqlite (porter once, {a.workers} loader processes) | {med(idx)} |")
    log(f"| fts5_limits.py, trigram contentless detail=none, rows/s, 1 process | {med(one)} |")
    log(f"| fts5_limits.py, same layout, rows/s, 2 processes | {med(two)} |")
    log(f"| ratio index events/s / fts5_limits rows/s ({min(a.workers, 2)} process(es)) | {med(ratio, '{:.2f}')} |")
    log(f"| archive: events/s into the folder archive (zstd -19, {a.workers} workers) | {med(arc)} |")
    log(f"| porter peak RSS (VmHWM), index / archive pass, MB | "
        f"{med([r['index']['peak_rss_root'] / MB for r in runs])} / "
        f"{med([r['archive']['peak_rss_root'] / MB for r in runs])} |")
    log(f"| porter + children, peak summed RSS, index / archive pass, MB | "
        f"{med([r['index']['peak_rss_tree'] / MB for r in runs])} / "
        f"{med([r['archive']['peak_rss_tree'] / MB for r in runs])} |")
    for phase in ("index", "archive"):
        main_us = [r[phase]["cpu_main"] / n * 1e6 for r in runs if "cpu_main" in r[phase]]
        all_us = [r[phase]["cpu_all"] / n * 1e6 for r in runs if "cpu_all" in r[phase]]
        if all_us:
            log(f"| {phase} pass CPU µs per event: porter process / with its children | {med(main_us, '{:.1f}')} / "
                f"{med(all_us, '{:.1f}')} |")
    log(f"| sqlite index on disk, MB | {med([r['index_mb'] for r in runs])} |")
    log(f"| archive bytes (all objects) | {med(sizes)} |")
    log(f"| zstd -19 of the raw lines, bytes (same run) | {z['bytes']:,} |")
    log(f"| compression: raw / archive, raw / zstd -19 | {meta['raw_bytes'] / statistics.median(sizes):.2f}x, "
        f"{meta['raw_bytes'] / z['bytes']:.2f}x |")
    log(f"| archive size / zstd -19 size | {statistics.median(sizes) / z['bytes']:.3f} |")


if __name__ == "__main__":
    main()
