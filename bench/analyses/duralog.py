#!/usr/bin/env python3
"""duralog: "How durable does that logged event have to be?"

Run from the repository root::

    .venv/bin/python bench/analyses/duralog.py            # the full analysis (~15 min)
    .venv/bin/python bench/analyses/duralog.py --quick    # a small one (< 3 min), same report shape

Writes ``OUT/duralog.md`` (``--out``, default ``docs/analyses``), its plots
under ``OUT/duralog/`` and every figure as ``OUT/duralog/results.json``.

For each delivery setting, a steady load runs through the real mesh (two
bucks on 127.0.0.11 and 127.0.0.12, processes started here) while one fault
happens a little before the middle of the run:

- settings of the tailer path: spool on or off, each batch to one buck or to
  two (``--copies``), bucks that fsync each batch or not (``--fsync``);
- settings of the HTTP path: the client library (``helios.client``, two buck
  URLs) with durability received, written or fsynced, bucks without
  ``--fsync`` (a ``fsynced`` request is fsynced by group commit);
- faults: kill -9 of the tailer (restarted 0.5 s later), of one buck (back
  after 1 s), of both bucks (back after 2 s), of the porter (back after
  0.5 s), and a power cut of one buck or of both (see ``bench/_mesh.py``:
  kill -9, then every bucket file cut back to the size its last fsync
  covered, as recorded by a ledger of every fsync the buck made; back after
  1 or 2 s).

Lost and duplicated events are counted by line number against what was
appended (``bench/_mesh.py``): lost = no copy left in any buck (for the
porter's fault: not in the index); duplicated = stored under two different
ids, which deduplication by id cannot remove (for the porter: in the index
twice). The cost of each setting is measured apart: its capacity (a burst of
``--capacity-mb`` of syslog lines through a tailer, or HTTP requests of 100
events back to back from 16 clients) with the CPU it takes per event, and its
ack latency: for the tailer, the delay from append to stored in as many bucks
as the setting sends to (taken from the fault runs before their fault); for
HTTP, the answer time of requests paced at the run's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _mesh as m  # noqa: E402
import http_ingest  # noqa: E402
import ingest  # noqa: E402

ROOT = m.ROOT
ENV = "duralog"
NAME = "duralog"


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    path: str  # "tailer" or "http"
    spool: bool = True
    copies: int = 2
    fsync: bool = False
    durability: str = ""


SETTINGS = [
    Setting("spool-2", "spool on, 2 copies (default)", "tailer", True, 2, False),
    Setting("spool-1", "spool on, 1 copy", "tailer", True, 1, False),
    Setting("nospool-2", "spool off, 2 copies", "tailer", False, 2, False),
    Setting("nospool-1", "spool off, 1 copy", "tailer", False, 1, False),
    Setting("spool-2-fsync", "spool on, 2 copies, buck --fsync", "tailer", True, 2, True),
    Setting("spool-1-fsync", "spool on, 1 copy, buck --fsync", "tailer", True, 1, True),
    Setting("http-received", "HTTP, durability received", "http", durability="received"),
    Setting("http-written", "HTTP, durability written", "http", durability="written"),
    Setting("http-fsynced", "HTTP, durability fsynced", "http", durability="fsynced"),
]
BY_KEY = {s.key: s for s in SETTINGS}
FAULTS = ["tailer", "buck", "bucks", "porter", "power", "power2"]
FAULT_LABEL = {"tailer": "kill -9 tailer", "buck": "kill -9 one buck", "bucks": "kill -9 both bucks",
               "porter": "kill -9 porter", "power": "power cut, one buck", "power2": "power cut, both bucks"}
DOWN = {"tailer": 0.5, "buck": 1.0, "bucks": 2.0, "porter": 0.5, "power": 1.0, "power2": 2.0}
# What a setting must survive to be recommended (``conclusions``). Ordinary
# logs: any one process or machine failing (a buck's machine crash is the
# power cut of one buck). Audit events: every fault here, both bucks losing
# power at once included, and two copies (a dead disk, not measured here,
# takes the only copy of a one-copy setting).
# The porter's fault is left out: it reads the bucks, whatever the setting
# (run for two settings, it must lose nothing in any).
ORDINARY = ("tailer", "buck", "power")
AUDIT = ("tailer", "buck", "bucks", "power", "power2")


def promised(s: Setting, fault: str) -> bool:
    """Does the setting promise to lose nothing in this fault? (What the
    README and the code say, checked here rather than assumed.)"""
    if fault == "porter":
        return True  # every porter job is idempotent
    if s.path == "http":
        return {"buck": s.durability != "received", "bucks": s.durability != "received",
                "power": s.durability == "fsynced", "power2": s.durability == "fsynced"}.get(fault, False)
    return {"tailer": s.spool, "buck": s.spool or s.copies >= 2, "bucks": s.spool,
            "power": s.copies >= 2 or s.fsync, "power2": s.fsync}[fault]


def cases(quick: bool) -> list[tuple[Setting, str]]:
    if quick:
        return [(BY_KEY["spool-2"], "tailer"), (BY_KEY["spool-2"], "buck"), (BY_KEY["spool-2"], "power"),
                (BY_KEY["nospool-1"], "buck"), (BY_KEY["nospool-1"], "power"), (BY_KEY["spool-2"], "porter"),
                (BY_KEY["http-written"], "power"), (BY_KEY["http-fsynced"], "power")]
    out = []
    for s in SETTINGS:
        for f in FAULTS:
            if f == "tailer" and s.path == "http":
                continue  # the client library keeps its queue in memory: documented, not measured
            if f == "porter" and s.key not in ("spool-2", "http-written"):
                continue  # the porter reads the bucks; how events got there changes nothing for it
            if f == "power2" and s.key in ("spool-1", "nospool-1", "http-received"):
                continue  # already loses with one buck cut
            out.append((s, f))
    return out


# ------------------------------------------------------------------ one run


def porter_service(work: Path, bucks: list[m.Buck]) -> m.Service:
    args = ["porter", "run", "--state-dir", str(work / "porter"), "--index-dir", str(work / "index"),
            "--archive-dir", str(work / "archive"), "--grace", "0.5", "--poll-interval", "0.2", "--timeout", "2",
            "--workers", "1", "--env", ENV]
    for b in bucks:
        args += ["--query", b.query]
    return m.Service("porter", m.helios_cmd(*args), work)


def index_tally(work: Path) -> m.Tally:
    from helios.index.base import open_index, scan
    from helios.index.query import Query

    tally = m.Tally()
    if not (work / "index").exists():
        return tally
    index = open_index("sqlite", str(work / "index"))
    try:
        rows = list(scan(index, Query(environment=ENV, start=0, end=2**62, limit=None)))
    finally:
        index.close()
    tally.add_rows(rows)
    # In an index, any second row of a line is a duplicate (its ids may be equal).
    tally.two_ids = {k for k, c in tally.copies.items() if c > 1}
    return tally


def run_case(s: Setting, fault: str, p, work_root: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"{s.key}-{fault}-", dir=work_root))
    http = s.path == "http"
    window = 1 if fault == "porter" else 60
    bucks = [m.Buck(work, name, host, fsync=s.fsync, window=window, http=http, durability=s.durability or None,
                    ledger=(fault == "power" and name == "buck-a") or fault == "power2", env=ENV)
             for name, host in (("buck-a", "127.0.0.11"), ("buck-b", "127.0.0.12"))]
    services: list[m.Service] = []
    result: dict = {"setting": s.key, "fault": fault, "promised": promised(s, fault)}
    try:
        for b in bucks:
            services.append(b.start(wait=False))
        for b in bucks:
            b.wait_ready()
        porter = porter_service(work, bucks).start() if fault == "porter" else None
        if porter:
            services.append(porter)
        watcher = m.Watcher([b.data for b in bucks], ENV, want=1 if http else s.copies)
        files = [work / "in-0.log"]
        if http:
            source = None
            load = m.helper(work, "client", "record", "--bucks", *[b.http_url for b in bucks], "--durability",
                            s.durability, "--rate", str(p.rate), "--duration", str(p.duration), "--env", ENV,
                            "--out", str(work / "recorded.json"))
        else:
            files[0].touch()
            source = m.Service("tailer", m.tailer_cmd(files, [b.ingest for b in bucks], work / "tailer-state",
                                                      env=ENV, host="dl-host", copies=s.copies, spool=s.spool),
                               work).start()
            services.append(source)
            # Load starts once the tailer is connected to both bucks (its stats.json says so).
            m.wait_until(lambda: (source.check(), (m.read_stats(work / "tailer-state") or {}).get(
                "bucks_connected", 0) >= 2)[1], 30, "the tailer to connect")
            load = m.helper(work, "writer", "write", str(files[0]), "--rate", str(p.rate),
                            "--duration", str(p.duration))
        watcher.start()
        load.start()
        services.append(load)
        t0 = time.time()
        time.sleep(max(0.0, t0 + p.duration * p.fault_at - time.time()))
        t_fault = time.time()
        result["cut"] = fault_now(fault, bucks, source, porter)
        t_back = time.time()
        result["down_s"] = t_back - t_fault
        load.proc.p.wait(p.duration + 180)
        t_end = time.time()
        # Settle: spool re-sends (window 2 s + jitter 1 s), then no new copies for a second.
        time.sleep(4.0 if (s.spool and not http) else 0.5)
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 1.0 and time.time() - t_end < 60:
            for sv in services:
                if sv is not load:
                    sv.check()
            n = sum(h.bit_count() for h in watcher.held.values())
            if n != last:
                last, since = n, time.monotonic()
            time.sleep(0.1)
        truth = m.appended(files) if not http else m.recorded(work / "recorded.json")
        if porter:
            result["index"] = settle_index(work, truth, porter)
        if source:
            source.stop()
            result["tailer"] = {k: v for k, v in (m.read_stats(work / "tailer-state") or {}).items()
                                if k in ("lines", "batches", "live_unsent", "resent_buckets")}
        if porter:
            porter.stop()
        for b in bucks:
            b.stop()
        watcher.stop()
        tally = m.scan_bucks([b.data for b in bucks], ENV)
        result.update(tally.verdict(truth))
        if porter:
            result["bucks_verdict"] = {k: result[k] for k in ("lost", "dup", "lost_ppm", "dup_ppm")}
            result.update(result["index"])
        if http:
            rec = json.loads((work / "recorded.json").read_text())
            result["client"] = rec["stats"]
            result["client_flushed"] = rec["flushed"]
        steady = {k: t for k, t in truth.items() if t / 1e9 < t_fault - 0.2}
        d_first = m.delays(steady, watcher.first)
        d_all = m.delays(steady, watcher.all)
        result.update({
            "steady_events": len(steady),
            "delay_p50_ms": ms(m.pct(d_first, 50)), "delay_p99_ms": ms(m.pct(d_first, 99)),
            "delay_all_p50_ms": ms(m.pct(d_all, 50)), "delay_all_p99_ms": ms(m.pct(d_all, 99)),
            "run_p99_ms": ms(m.pct(m.delays(truth, watcher.first), 99)),
            "recovery_s": m.recovery(truth, watcher.first, [t_fault], t_end, within=0.3)[0],
            "rate": len(truth) / p.duration,
        })
        ok = "ok" if not result["promised"] or result["lost"] == 0 else "PROMISE BROKEN"
        m.say(f"  {s.key:>14} / {fault:<6}: {result['events']:,} events, lost {result['lost']} "
              f"({result['lost_ppm']:,.0f} ppm), dup {result['dup']}, copies/event "
              f"{result['copies_per_event']:.2f}, delay p99 {fmt_ms(result['delay_p99_ms'])}, "
              f"recovery {result['recovery_s']:.1f} s  [{ok}]")
        return result
    finally:
        for sv in services:
            try:
                sv.stop()
            except Exception as exc:  # keep stopping the others
                m.say(f"  ! could not stop {sv.name}: {exc}")
        if not p.keep:
            shutil.rmtree(work, ignore_errors=True)


def fault_now(fault: str, bucks: list[m.Buck], source: m.Service | None, porter: m.Service | None) -> dict | None:
    """Do the fault, wait its downtime, start what it killed again."""
    cut = None
    if fault == "tailer":
        if source is None:
            raise ValueError("no tailer in an HTTP run")
        source.kill9()
        time.sleep(DOWN[fault])
        source.start()
    elif fault in ("buck", "power"):
        if fault == "power":
            cut = bucks[0].power_cut()
        else:
            bucks[0].kill9()
        time.sleep(DOWN[fault])
        bucks[0].start()
    elif fault in ("bucks", "power2"):
        for b in bucks:
            b.kill9()
        if fault == "power2":  # both die first, then both lose what no fsync covered
            cut = {"files": 0, "bytes": 0, "never_synced": 0}
            for b in bucks:
                for k, v in b.cut_unsynced().items():
                    cut[k] += v
        time.sleep(DOWN[fault])
        for b in bucks:
            b.start(wait=False)
        for b in bucks:
            b.wait_ready()
    elif fault == "porter":
        porter.kill9()
        time.sleep(DOWN[fault])
        porter.start()
    return cut


def settle_index(work: Path, truth: dict, porter: m.Service) -> dict:
    """Wait until the index holds every appended line, or stops growing for
    8 s (the bucks close a 1 s window ~3 s after it ends; grace 0.5 s)."""
    last, since, deadline = -1, time.monotonic(), time.monotonic() + 90
    tally = m.Tally()
    while time.monotonic() < deadline:
        porter.check()
        tally = index_tally(work)
        n = len(tally.copies)
        if n >= len(truth):
            break
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > 8:
            break
        time.sleep(1.0)
    v = tally.verdict(truth)
    return {k: v[k] for k in ("lost", "dup", "lost_ppm", "dup_ppm", "copies_per_event", "lost_keys")}


def ms(v):
    return None if v is None else v * 1000


def fmt_ms(v):
    return "-" if v is None else (f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms")


# ------------------------------------------------------------------ costs


def capacity_tailer(s: Setting, p, work_root: Path) -> dict:
    """A burst file through one tailer into two bucks: events/s from the first
    stored event until the bucks hold every copy (``_mesh.burst``), and CPU per event of the
    tailer (with its encoders) and the bucks. Spool window a day: the re-send
    of a closed spool bucket (one more copy to one buck) stays out of the
    interval, as in bench/ingest.py."""
    path, _, lines = ingest.input_file(p.capacity_mb)
    work = Path(tempfile.mkdtemp(prefix=f"cap-{s.key}-", dir=work_root))
    bucks = [m.Buck(work, name, host, fsync=s.fsync) for name, host in (("buck-a", "127.0.0.11"),
                                                                         ("buck-b", "127.0.0.12"))]
    services: list[m.Service] = []
    try:
        for b in bucks:
            services.append(b.start(wait=False))
        for b in bucks:
            b.wait_ready()
        tailer = m.start_burst(work, path, 1, lambda i, f: m.Service("tailer", m.tailer_cmd(
            [f], [b.ingest for b in bucks], work / f"state-{i}", env="bench", host="bench-host", copies=s.copies,
            spool=s.spool, spool_window=86400, jitter=0, extra=("--rescan-interval", "0.1")), work), 2)[0]
        services.append(tailer)
        want = lines * s.copies
        took = m.burst(bucks, want, [tailer, *bucks], stall=10.0)["seconds"]
        cpu = tailer.usage()["cpu_s"] + sum(b.usage()["cpu_s"] for b in bucks)
        out = {"setting": s.key, "lines": lines, "events_per_s": lines / took, "cpu_us_per_event": cpu / lines * 1e6}
        m.say(f"  capacity {s.key:>14}: {out['events_per_s']:,.0f} lines/s, "
              f"{out['cpu_us_per_event']:.1f} µs CPU per line")
        return out
    finally:
        for sv in services:
            sv.stop()
        if not p.keep:
            shutil.rmtree(work, ignore_errors=True)


def cost_http(s: Setting, p, work_root: Path) -> dict:
    """One buck with HTTP ingest: 16 clients back to back (capacity), then
    requests of 100 events paced at the fault runs' rate (ack latency)."""
    work = Path(tempfile.mkdtemp(prefix=f"cost-{s.key}-", dir=work_root))
    buck = m.Buck(work, "buck-h", "127.0.0.11", http=True, durability=s.durability)
    try:
        buck.start()
        url = buck.http_url + "/v1/events"
        payloads = http_ingest.bodies()
        cpu0 = buck.usage()["cpu_s"]
        cap = asyncio.run(http_ingest.load(url, 16, p.http_seconds, s.durability, payloads))
        cpu = buck.usage()["cpu_s"] - cpu0
        paced = asyncio.run(http_ingest.load(url, 16, p.http_seconds, s.durability, payloads,
                                             rate=p.rate / http_ingest.EVENTS_PER_REQUEST))
        events = cap["events_per_s"] * (p.http_seconds + 1)  # the warm-up second is served too
        out = {"setting": s.key, "events_per_s": cap["events_per_s"], "cap_p99_ms": cap["p99_ms"],
               "ack_p50_ms": paced["p50_ms"], "ack_p99_ms": paced["p99_ms"],
               "cpu_us_per_event": cpu / events * 1e6 if events else None,
               "errors": cap["errors"] + paced["errors"]}
        m.say(f"  cost {s.key:>14}: {out['events_per_s']:,.0f} events/s, ack p50 {out['ack_p50_ms']:.1f} ms "
              f"p99 {out['ack_p99_ms']:.1f} ms at {p.rate:,.0f} events/s")
        return out
    finally:
        buck.stop()
        if not p.keep:
            shutil.rmtree(work, ignore_errors=True)


def combine(runs: list[dict]) -> dict:
    """The median of every figure over the repeats, with the range of the capacity."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = m.median([r.get(k) for r in runs])
    caps = [r["events_per_s"] for r in runs]
    out["range"], out["repeats"] = (min(caps), max(caps)), len(runs)
    return out


# ------------------------------------------------------------------ report


def cell(r: dict | None) -> str:
    if r is None:
        return "—"
    mark = " ✓" if r["promised"] and r["lost"] == 0 else (" ✗" if r["promised"] else "")
    text = f"{r['lost_ppm']:,.0f}"
    if r["dup"]:
        text += f" (+{r['dup_ppm']:,.0f} dup)"
    return text + mark


def plots(results: list[dict], costs: dict, out_dir: Path) -> list[str]:
    plt = m.pyplot()
    names = []
    runs = {(r["setting"], r["fault"]): r for r in results}
    keys = [s.key for s in SETTINGS if any(r["setting"] == s.key for r in results)]

    def worst(key: str) -> float:
        return max((r["lost_ppm"] for r in results if r["setting"] == key), default=0.0)

    # 1. Loss against cost: capacity and ack latency; single failures, then every fault.
    single = ("tailer", "buck", "porter", "power")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharey="row")
    for row, (faults, what) in enumerate(((single, "one failure: a tailer, a buck or the porter killed, "
                                           "or one buck's power cut"),
                                          (tuple(FAULTS), "every fault, both bucks killed or cut at once included"))):
        for col, (metric, xlabel) in enumerate((("events_per_s", "capacity (events/s; bars: range of the repeats)"),
                                                ("ack_p99_ms", "ack latency p99 (ms): until stored as promised"))):
            ax = axes[row][col]
            for n, key in enumerate(keys):
                c = costs.get(key)
                if not c or c.get(metric) is None:
                    continue
                s = BY_KEY[key]
                y = max((r["lost_ppm"] for r in results if r["setting"] == key and r["fault"] in faults), default=0.0)
                color = "tab:blue" if s.path == "tailer" else "tab:orange"
                xerr = None
                if metric == "events_per_s" and c.get("range"):
                    xerr = [[c[metric] - c["range"][0]], [c["range"][1] - c[metric]]]
                ax.errorbar(c[metric], y, xerr=xerr, fmt="o" if s.path == "tailer" else "s", color=color,
                            ms=7, capsize=3, lw=1)
                ax.annotate(key, (c[metric], y), textcoords="offset points", fontsize=7,
                            xytext=(6, 4 + 9 * (n % 3)) if y else (6, 6 + 11 * (n % 4)))
            ax.set_yscale("symlog", linthresh=10)
            ax.set_ylim(-1, 3e6)
            if metric == "ack_p99_ms":
                ax.set_xscale("log")
            ax.grid(True, alpha=0.3)
            ax.set_xlabel(xlabel, fontsize=8)
            if col == 0:
                ax.set_ylabel(f"worst loss (events per million)\n{what}", fontsize=8)
    axes[0][0].set_title("loss against throughput")
    axes[0][1].set_title("loss against ack latency")
    fig.suptitle("duralog: what each delivery setting loses and what it costs (circles: tailer, squares: HTTP; "
                 "0 = nothing lost)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "loss-vs-cost.png", dpi=110)
    plt.close(fig)
    names.append("loss-vs-cost.png")

    # 2. Loss per fault and setting.
    faults = [f for f in FAULTS if any(r["fault"] == f for r in results)]
    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / max(1, len(faults))
    for j, f in enumerate(faults):
        xs, ys = [], []
        for i, key in enumerate(keys):
            r = runs.get((key, f))
            if r is not None:
                xs.append(i + (j - (len(faults) - 1) / 2) * width)
                ys.append(max(r["lost_ppm"], 0.5))
        ax.bar(xs, ys, width, label=FAULT_LABEL[f])
    ax.set_xticks(range(len(keys)), keys, rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(0.4, 2e6)
    ax.axhline(1, color="grey", lw=0.5)
    ax.set_ylabel("events lost per million (0 drawn at 0.5)")
    ax.set_title("duralog: events lost per million, per setting and fault")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "loss-by-fault.png", dpi=110)
    plt.close(fig)
    names.append("loss-by-fault.png")
    return names


def conclusions(results: list[dict], costs: dict) -> tuple[list[str], dict]:
    """Which setting to recommend, from the figures: the cheapest (highest
    capacity) setting that promises to lose nothing in the faults that
    matter (``ORDINARY``, ``AUDIT``) and lost nothing in every one of them
    that was run. A promise is required, not only a clean run: a fault can
    miss a window that a setting leaves open (``received`` acks before the
    write) by luck."""
    by_setting: dict[str, dict[str, dict]] = {}
    for r in results:
        by_setting.setdefault(r["setting"], {})[r["fault"]] = r
    run_on = {path: {r["fault"] for r in results if BY_KEY[r["setting"]].path == path} for path in ("tailer", "http")}

    def qualifies(key: str, faults: tuple[str, ...], copies: int = 1) -> bool:
        s, runs = BY_KEY[key], by_setting.get(key, {})
        needed = run_on[s.path] & set(faults)
        return bool(needed) and (s.path == "http" or s.copies >= copies) and all(
            f in runs and runs[f]["promised"] and runs[f]["lost"] == 0 for f in needed)

    def capacity(key: str) -> float:
        return (costs.get(key) or {}).get("events_per_s") or 0.0

    def spread(key: str) -> tuple[float, float]:
        c = costs.get(key) or {}
        return tuple(c.get("range") or (capacity(key), capacity(key)))

    def cheapest(path: str, faults: tuple[str, ...], copies: int = 1) -> str | None:
        """The highest capacity; among settings whose capacities overlap it
        (within this machine's noise), two copies before one (a buck that
        is down keeps nothing unavailable, a dead disk loses nothing) and no
        fsync before fsync (this VM's disk fsyncs in well under a
        millisecond, which hides what fsync per batch costs on most disks)."""
        ok = [k for k in by_setting if BY_KEY[k].path == path and qualifies(k, faults, copies)]
        if not ok:
            return None
        best = max(ok, key=capacity)
        tied = [k for k in ok if spread(k)[1] >= spread(best)[0]]
        return min(tied, key=lambda k: (-BY_KEY[k].copies, BY_KEY[k].fsync, -capacity(k)))

    pick = {"ordinary": cheapest("tailer", ORDINARY), "audit": cheapest("tailer", AUDIT, copies=2),
            "http_ordinary": cheapest("http", ORDINARY), "http_audit": cheapest("http", AUDIT)}
    lines: list[str] = []

    def vs(k: str, other: str) -> str:
        a, b = costs.get(k) or {}, costs.get(other) or {}
        if not a.get("events_per_s") or not b.get("events_per_s") or k == other:
            return ""
        ratio = a["events_per_s"] / b["events_per_s"]
        return (f" Its capacity is {abs(1 - ratio):.0%} {'below' if ratio < 1 else 'above'} that of `{other}` "
                f"({a['events_per_s']:,.0f} against {b['events_per_s']:,.0f} events/s) and its ack p99 is "
                f"{fmt_ms(a.get('ack_p99_ms'))} against {fmt_ms(b.get('ack_p99_ms'))}.")

    def say(what: str, path: str, k: str | None, claim: str, cheaper: str | None = None) -> None:
        if not run_on[path]:
            lines.append(f"- **{what}**: not measured in this run.")
        elif k is None:
            lines.append(f"- **{what}**: no setting measured here {claim}.")
        else:
            lines.append(f"- **{what}**: **{BY_KEY[k].label}** (`{k}`): the cheapest setting that {claim}."
                         + (vs(k, cheaper) if cheaper and cheaper in costs else ""))
    say("Ordinary logs, tailed", "tailer", pick["ordinary"],
        "promises to survive, and lost nothing when, a tailer or a buck was killed or one buck's machine "
        "lost power")
    say("Audit events, tailed", "tailer", pick["audit"],
        "keeps two copies and promises to survive, and lost nothing in, every fault here: both bucks killed "
        "or losing power at once included", cheaper=pick["ordinary"])
    say("Events over HTTP, ordinary", "http", pick["http_ordinary"],
        "survives what the tailer's default survives (a buck killed, a buck's machine losing power): HTTP "
        "sends each batch to one buck, so between an ack and that buck's machine crash there is only the "
        "fsync", cheaper="http-written")
    say("Events over HTTP, audit", "http", pick["http_audit"],
        "also survives both bucks losing power")
    from helios import config

    defaults = {"tailer": (config.Tailer().spool, config.Tailer().copies, config.Buck().fsync),
                "http": config.Buck().durability}
    checks = []
    if pick["ordinary"]:
        s = BY_KEY[pick["ordinary"]]
        same = defaults["tailer"] == (s.spool, s.copies, s.fsync)
        checks.append(f"the tailer's and buck's (spool {'on' if defaults['tailer'][0] else 'off'}, copies "
                      f"{defaults['tailer'][1]}, buck fsync {'on' if defaults['tailer'][2] else 'off'}) "
                      + ("are" if same else "are **not**") + " the recommendation for ordinary logs")
    if pick["http_ordinary"]:
        same = defaults["http"] == BY_KEY[pick["http_ordinary"]].durability
        checks.append(f"HTTP's (`[buck] durability = \"{defaults['http']}\"`) " + ("is" if same else "is **not**")
                      + " the recommendation for ordinary events")
    if checks:
        lines.append("- **Defaults** (`helios/config.py`): " + "; ".join(checks) + ". Audit events ask for more "
                     "where they are configured: `helios buck --fsync` on the bucks that take them (and "
                     "`Helios-Durability: fsynced` for HTTP).")
    tailer_costs = {k: c for k, c in costs.items() if BY_KEY[k].path == "tailer" and c.get("events_per_s")}
    if len(tailer_costs) > 1:
        lo_k = min(tailer_costs, key=capacity)
        hi_k = max(tailer_costs, key=capacity)
        overlap = all(spread(k)[1] >= max(spread(j)[0] for j in tailer_costs) for k in tailer_costs)
        cpu = [c["cpu_us_per_event"] for c in tailer_costs.values() if c.get("cpu_us_per_event")]
        lines.append(f"- **What the tailer settings cost** here: capacities from {capacity(lo_k):,.0f} (`{lo_k}`) to "
                     f"{capacity(hi_k):,.0f} lines/s (`{hi_k}`)"
                     + (", every range overlapping every other: a second copy, the spool and a per-batch fsync "
                        "cost less than this shared machine's noise" if overlap else "")
                     + f"; {min(cpu):.1f}–{max(cpu):.1f} µs of CPU per line in all (the tailer's parsing is most "
                     "of it). A batch holds up to 2,000 lines, so a second copy or an fsync is paid per batch, "
                     "not per line; with small batches (quiet files: a batch per line) an fsync per batch costs a "
                     "disk's fsync latency per line, which this VM's disk (well under 1 ms) hides.")
    porter = [r for r in results if r["fault"] == "porter"]
    if porter:
        settings = ", ".join(f"`{r['setting']}`" for r in porter)
        if not any(r["lost"] or r["dup"] for r in porter):
            lines.append(f"- **The porter** killed with -9 mid-load lost nothing and indexed nothing twice "
                         f"(with {settings}): its jobs are idempotent.")
        else:
            lines.append("- **The porter** killed with -9 mid-load: " + "; ".join(
                f"`{r['setting']}` lost {r['lost']}, indexed {r['dup']} twice" for r in porter) + ".")
    broken = [r for r in results if r["promised"] and r["lost"]]
    if broken:
        lines.append("- **Promises broken**: " + "; ".join(
            f"`{r['setting']}` / {FAULT_LABEL[r['fault']]} lost {r['lost']}" for r in broken) + ".")
    else:
        lines.append("- Every setting kept what it promises (✓ in the table): no loss where the setting "
                     "says there is none.")
    dups = [r for r in results if r["dup"]]
    lines.append("- **Duplicates**: " + ("none survived deduplication by id in any run: every copy of a line "
                                         "(two bucks, spool re-sends, lines read again after a tailer restart, "
                                         "HTTP retries) carries the same id." if not dups else
                                         "; ".join(f"`{r['setting']}` / {FAULT_LABEL[r['fault']]}: {r['dup']}"
                                                   for r in dups) + "."))
    return lines, pick


def write_report(results: list[dict], costs: dict, p, argv: str, info: dict, took: float) -> Path:
    out_dir = Path(p.out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"params": vars(p), "machine": info, "argv": argv,
                                                      "took": took, "runs": results, "costs": costs},
                                                     indent=1, default=str))
    for k, c in costs.items():
        if BY_KEY[k].path == "tailer":  # its ack: append to stored in every bucket it sends to
            c["ack_p50_ms"] = m.median([r["delay_all_p50_ms"] for r in results if r["setting"] == k])
            c["ack_p99_ms"] = m.median([r["delay_all_p99_ms"] for r in results if r["setting"] == k])
    plots(results, costs, out_dir)
    concl, pick = conclusions(results, costs)
    runs = {(r["setting"], r["fault"]): r for r in results}
    keys = [s.key for s in SETTINGS if any(r["setting"] == s.key for r in results)]
    faults = [f for f in FAULTS if any(r["fault"] == f for r in results)]
    L: list[str] = []
    L += ["# duralog: how durable does that logged event have to be?", ""]
    L += [f"*{'Quick run (`--quick`): few cases, short runs; see the full run for figures to quote.' if p.quick else 'Full run.'}* "
          f"Produced by `bench/analyses/duralog.py` on {info['date']} ({info['revision']}), in {took / 60:.1f} min.", ""]
    L += ["## Answer", "", *concl, ""]
    L += ["## Events lost per million, by setting and fault", "",
          f"Each cell is one run of {p.duration:g} s at {p.rate:,.0f} events/s with one fault at "
          f"{p.fault_at:.0%} of the run: events lost per million appended (or recorded), "
          "✓ = the setting promises no loss in this fault and lost nothing, ✗ = it promised and lost; "
          "no mark: no promise; — : not run. One event is "
          f"{1e6 / (p.rate * p.duration):,.0f} per million here.", ""]
    L += m.table(["setting", *[FAULT_LABEL[f] for f in faults]],
                 [[f"`{k}`", *[cell(runs.get((k, f))) for f in faults]] for k in keys])
    L += ["", f"![loss by fault]({NAME}/loss-by-fault.png)", ""]
    L += ["## What each setting costs", "",
          "Capacity: tailer settings read a burst file of "
          f"{p.capacity_mb:g} MB of syslog lines into two bucks (events/s from the first stored event until every "
          "copy is stored; CPU of the tailer, its encoders and both bucks per line); HTTP levels: one buck, 16 "
          "clients posting 100 events per request back to back (CPU of the buck per event). Ack latency: tailer "
          "settings, from append to stored in every buck the setting sends to (the fault runs, before their "
          f"fault); HTTP, from sending a request to its answer, requests paced at {p.rate:,.0f} events/s. "
          "Copies per event: what the bucks stored per line in the fault runs (median): two live copies, and "
          "with the spool, each closed spool bucket re-sent once more. Capacity and HTTP figures: median of "
          f"{p.repeat} run(s), range in brackets, repeats interleaved.", ""]
    rows = []
    for k in keys:
        c = costs.get(k) or {}
        rs = [r for r in results if r["setting"] == k]
        copies = m.median([r["copies_per_event"] for r in rs if r["fault"] != "porter"])
        p50, p99 = c.get("ack_p50_ms"), c.get("ack_p99_ms")
        spread = f" ({c['range'][0]:,.0f}–{c['range'][1]:,.0f})" if c.get("repeats", 1) > 1 else ""
        rows.append([f"`{k}`", BY_KEY[k].label, m.fmt(c.get("events_per_s")) + spread,
                     m.fmt(c.get("cpu_us_per_event"), ".1f"),
                     fmt_ms(p50), fmt_ms(p99), m.fmt(copies, ".2f")])
    L += m.table(["setting", "what", "capacity (events/s)", "CPU µs/event", "ack p50", "ack p99",
                  "copies/event"], rows)
    L += ["", f"![loss against cost]({NAME}/loss-vs-cost.png)", ""]
    L += ["## Every run", "",
          "Delay: append (or record) to the first stored copy, before the fault (p50, p99) and over the whole "
          "run (p99 run); recovery: seconds from the fault until events appended were again stored within 0.3 s "
          "(read by polling the bucket files every 20 ms, so delays include up to ~40 ms of polling). "
          "Copies/event counts every stored copy of a line, spool re-sends and re-reads included.", ""]
    rows = []
    for r in results:
        extra = ""
        if r.get("cut"):
            extra = f"cut {r['cut']['bytes']:,} B of {r['cut']['files']} file(s)"
        if r["fault"] == "porter" and r.get("bucks_verdict"):
            extra = f"bucks: lost {r['bucks_verdict']['lost']}"
        if r.get("client"):
            dropped = {k: v for k, v in r["client"].items() if k.startswith(("dropped", "failed")) and v}
            if dropped:
                extra = (extra + "; " if extra else "") + f"client logged {dropped}"
        rows.append([f"`{r['setting']}`", FAULT_LABEL[r["fault"]], f"{r['events']:,}", r["lost"], r["dup"],
                     f"{r['copies_per_event']:.2f}", fmt_ms(r["delay_p50_ms"]), fmt_ms(r["delay_p99_ms"]),
                     fmt_ms(r["run_p99_ms"]), f"{r['recovery_s']:.1f} s", extra])
    L += m.table(["setting", "fault", "events", "lost", "dup", "copies/event", "delay p50", "delay p99",
                  "p99 run", "recovery", "notes"], rows)
    L += ["", "## Why these figures", "",
          "- **A tailer killed**: with the spool, an offset is committed once its batch is in the spool, and "
          "positions are saved every second after the spool is fsynced; the new tailer reads again from the "
          "saved offsets, so up to a second of lines is stored twice, with the same ids (copies/event rises, "
          "duplicates stay 0). Without the spool an offset is committed once a buck's socket took the batch, so "
          "a batch still queued in ZeroMQ when the tailer dies can be lost: no promise, even when a run "
          "loses nothing.",
          "- **A buck killed**: with two copies the other buck has every batch; with one, what was in flight to "
          "the dead buck (its socket buffers, its receive queue) is lost unless the spool sends it again after "
          "its window. A tailer counts a buck as alive for 2 s after its last successful send and waits for it "
          "to take a batch's missing copy (up to `live_wait`, 1 s, with the spool; 0.1 s per batch without), "
          "which is the ~1 s delay after the kill in the two-copy runs.",
          "- **Power cuts**: what no fsync covered is gone. With two copies the other buck has it; the spool "
          "sends again each window it has not re-sent yet; a window it had already re-sent to the cut buck is "
          "sent once more only before the spool prunes it (`spool_max_age`, a day by default), after the run "
          "ends: counted lost here. With `--fsync` every batch is durable once stored, and a cut takes nothing.",
          "- **HTTP** sends each batch to one buck and retries on the other until acked. `received` acks "
          "before the write (a kill between ack and write loses the request; the window is short, so a run "
          "may not hit it); `written` acks once the events are in the bucket file (page cache: survives the "
          "buck's process, not its machine); `fsynced` once on disk, one fsync per drain round shared by "
          "every request of the round (group commit).",
          ""]
    L += ["## How it was measured", "",
          "- **The mesh**: two bucks on 127.0.0.11 and 127.0.0.12 (their own data directories, started by the "
          "script as `helios buck` processes), one tailer (`helios tailer`, spool window 2 s and re-send jitter "
          "1 s instead of 60 s and 10 s, so that re-sends happen within a run: delays that wait for a re-send are "
          "30x longer with the defaults) following one file that a writer process appends numbered lines to at "
          "a steady rate, or, for HTTP, a process that records numbered events through `helios.client` "
          "(both buck URLs, its durability level, retry on the other buck) at the same rate. The porter "
          "(`helios porter run`, sqlite index, 1 s bucket windows, grace 0.5 s) runs only for its own fault.",
          "- **Faults**: " + "; ".join(f"{FAULT_LABEL[f]} (back after {DOWN[f]:g} s)" for f in FAULTS) + ". "
          "kill -9 is SIGKILL of the process alone; its helper processes (encoders, index loaders) are "
          "killed after it.",
          "- **Power cut of a buck, and how the last fsynced length is known**: the buck runs under a thin "
          "launcher (`bench/_mesh.py fsync-ledger`) that wraps `helios.store.durable.fsync`, the one function "
          "every fsync of Helios goes through, and appends (device, inode, size) to a ledger after each fsync "
          "returns. The buck's loop is the only writer of its bucket files, so that size is exactly what the "
          "fsync made durable. The cut: kill -9, then each bucket file is truncated to the last size the ledger "
          "holds for its inode, or to nothing if it was never fsynced; the buck then starts again on the cut "
          "files (it drops any torn record itself). This is the strict model: it assumes the kernel wrote "
          f"nothing back on its own. Linux writes dirty pages back after `vm.dirty_expire_centisecs` "
          f"({m.fmt(info.get('dirty_expire_s'), 'g')} s here) plus up to one `dirty_writeback_centisecs` "
          f"({m.fmt(info.get('dirty_writeback_s'), 'g')} s), so a real power cut of a buck without fsync loses "
          "up to the last ~35 s of what that buck wrote, not more; the runs here are shorter than that, so both "
          "models give the same figure, and a longer run would lose the same ~35 s (fewer per million). Nothing "
          "else on the machine loses power: the tailer's spool and the other buck stay whole.",
          "- **Counting**: every line carries its file, its number and its append time; the truth is read back "
          "from the appended file (or the recorder's list) at the end, and every copy in both bucks is read "
          "from their bucket files once everything has stopped. Lost: a line with no copy anywhere; duplicated: "
          "a line stored under two different ids (deduplication by id, as the porter does, cannot remove it); "
          "for the porter's fault, lost and duplicated are counted in its index, where a line twice is a "
          "duplicate whatever its ids.",
          "- **Costs** are measured in separate runs (above), on a machine shared with other work: "
          f"{info['cores']} cores ({info['cpu']}), load average {info['loadavg_start']} at the start, "
          f"{info['loadavg_end']} at the end. Loss figures: one run per case (a loss is an event, counted "
          "exactly; whether it happens can depend on timing, which is why only promised settings are "
          "recommended); costs: medians of the repeats.",
          "", "## Command", "", "```sh", argv, "```", ""]
    md = Path(p.out) / f"{NAME}.md"
    md.write_text("\n".join(L))
    return md


# ------------------------------------------------------------------ main


def main() -> int:
    ap = argparse.ArgumentParser(description="duralog: events lost and duplicated per delivery setting and "
                                             "fault, against what each setting costs.")
    ap.add_argument("--quick", action="store_true", help="few cases, short runs (< 3 min)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "analyses"), help="where the report goes")
    ap.add_argument("--rate", type=float, help="events/s of the steady load")
    ap.add_argument("--duration", type=float, help="seconds of load per run")
    ap.add_argument("--fault-at", type=float, default=0.4, help="when the fault happens, as a fraction of the run")
    ap.add_argument("--capacity-mb", type=float, help="size of the burst file of the capacity runs")
    ap.add_argument("--http-seconds", type=float, help="seconds of each HTTP cost measurement")
    ap.add_argument("--repeat", type=int, help="cost measurements per setting (medians)")
    ap.add_argument("--only", default="", help="run only these cases: SETTING/FAULT,... (for debugging)")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--from-results", metavar="JSON", help="write the report from a results.json of an earlier "
                    "run instead of running anything")
    p = ap.parse_args()
    p.rate = p.rate or 2000.0
    p.duration = p.duration or (5.0 if p.quick else 10.0)
    p.repeat = p.repeat or (1 if p.quick else 3)
    p.capacity_mb = p.capacity_mb or (20.0 if p.quick else 100.0)
    p.http_seconds = p.http_seconds or (1.5 if p.quick else 4.0)
    argv = ".venv/bin/python bench/analyses/duralog.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if p.from_results:  # the report again from saved figures (the report's logic changed, not the mesh)
        saved = json.loads(Path(p.from_results).read_text())
        for k, v in saved["params"].items():
            if k not in ("out", "from_results"):
                setattr(p, k, v)
        argv = saved.get("argv") or ".venv/bin/python bench/analyses/duralog.py" + (" --quick" if p.quick else "")
        md = write_report(saved["runs"], saved["costs"], p, argv, saved["machine"], saved.get("took", 0.0))
        m.say(f"report: {md}")
        return 0
    info = m.machine()
    started = time.monotonic()
    todo = cases(p.quick)
    if p.only:
        wanted = {tuple(x.split("/")) for x in p.only.split(",")}
        todo = [(s, f) for s, f in todo if (s.key, f) in wanted]
    m.say(f"duralog: {len(todo)} runs of {p.duration:g} s at {p.rate:,.0f} events/s; load average {info['loadavg_start']}")
    work_root = Path(tempfile.mkdtemp(prefix="duralog-"))
    results, costs = [], {}
    try:
        for s, f in todo:
            results.append(run_case(s, f, p, work_root))
        m.say("costs:")
        measured: dict[str, list[dict]] = {}
        for _ in range(p.repeat):  # repeats interleaved: a drift of the machine's load hits every setting alike
            for key in dict.fromkeys(s.key for s, _ in todo):
                s = BY_KEY[key]
                measured.setdefault(key, []).append(
                    capacity_tailer(s, p, work_root) if s.path == "tailer" else cost_http(s, p, work_root))
        costs = {key: combine(runs) for key, runs in measured.items()}
    finally:
        if not p.keep:
            shutil.rmtree(work_root, ignore_errors=True)
    info["loadavg_end"] = m.loadavg()
    md = write_report(results, costs, p, argv, info, time.monotonic() - started)
    m.say(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
