#!/usr/bin/env python3
"""headless: "Masterless is more stable and just as fast."

Run from the repository root::

    .venv/bin/python bench/analyses/headless.py            # the full analysis (~15 min)
    .venv/bin/python bench/analyses/headless.py --quick    # a small one (< 3 min), same report shape

Writes ``OUT/headless.md`` (``--out``, default ``docs/analyses``), its plots
under ``OUT/headless/`` and every figure as ``OUT/headless/results.json``.

Three ways to arrange the same pieces (``helios buck``, ``helios tailer``),
each buck on its own loopback address (127.0.0.11, .12, ...):

- **masterless-N**: N bucks as peers; every tailer lists all of them and
  sends each batch to two chosen at random among the connected ones
  (``--copies 2``, the default).
- **central**: one buck; every tailer sends each batch to it (``--copies 1``).
- **primary-N**: a primary and N-1 replicas. Every tailer sends each batch to
  the primary only (``--copies 1``, one ``--buck``). A forwarder process
  (``bench/_mesh.py forward``) subscribes to the primary's whole-batch live
  feed (every stored frame, as stored) and PUSHes each frame to every
  replica's ingest: asynchronous replication of what the primary stored,
  with no catch-up for a replica that was down and no failover (Helios has
  no component that would promote a replica; a tailer would need a new
  address).

Two measurements:

1. Throughput with 1, 2, 4 and 8 tailers, each reading a burst file of
   syslog lines from its beginning (its own state directory, one process:
   ``--encoders 0``, so that 8 tailers are 8 processes on this machine):
   lines/s from the first stored event until every copy the arrangement
   makes is stored (2 for masterless, 1 for central, N for primary-N).
2. Churn: 4 tailers at a steady total rate while a buck is killed with -9
   every ``--period`` seconds and started again at once, the bucks in turn
   (the primary first); with the spool on (window 2 s) and off. Lost: lines
   appended with no copy in any buck at the end; duplicated: lines stored
   under two ids; p99 delay from append to the first stored copy; time to
   recover: from a kill until lines appended were again stored within 0.3 s.
"""

from __future__ import annotations

import argparse
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
import ingest  # noqa: E402


ROOT = m.ROOT
ENV = "headless"
NAME = "headless"
TAILERS = 4
RECOVERED = 0.3  # a line stored within this many seconds of its append: the mesh has recovered


@dataclass(frozen=True)
class Topology:
    key: str
    kind: str  # masterless, central, primary
    bucks: int

    @property
    def copies(self) -> int:
        """Copies of each line the arrangement keeps when nothing fails."""
        return {"masterless": 2, "central": 1, "primary": self.bucks}[self.kind]

    @property
    def label(self) -> str:
        return {"masterless": f"masterless, {self.bucks} bucks, 2 copies", "central": "one central buck",
                "primary": f"primary + {self.bucks - 1} replica(s)"}[self.kind]


def topo(key: str) -> Topology:
    kind, _, n = key.partition("-")
    return Topology(key, kind, int(n) if n else 1)


class Mesh:
    """The bucks (and the forwarder) of one arrangement, in ``work``."""

    def __init__(self, t: Topology, work: Path) -> None:
        self.t, self.work = t, work
        self.bucks = [m.Buck(work, f"buck-{i}", f"127.0.0.{11 + i}") for i in range(t.bucks)]
        self.forwarder: m.Service | None = None
        if t.kind == "primary" and t.bucks > 1:
            self.forwarder = m.helper(work, "forwarder", "forward", "--from", self.bucks[0].publish,
                                      "--to", *[b.ingest for b in self.bucks[1:]],
                                      "--stats", str(work / "forwarder.json"))

    def start(self) -> "Mesh":
        for b in self.bucks:
            b.start(wait=False)
        for b in self.bucks:
            b.wait_ready()
        if self.forwarder:
            self.forwarder.start()
        return self

    @property
    def targets(self) -> list[str]:
        """What a tailer lists as its bucks."""
        return [self.bucks[0].ingest] if self.t.kind == "primary" else [b.ingest for b in self.bucks]

    @property
    def tailer_copies(self) -> int:
        return 2 if self.t.kind == "masterless" else 1

    @property
    def services(self) -> list[m.Service]:
        return [*self.bucks, *([self.forwarder] if self.forwarder else [])]

    def check(self) -> None:
        for s in self.services:
            s.check()

    def stop(self) -> None:
        for s in [*([self.forwarder] if self.forwarder else []), *self.bucks]:
            try:
                s.stop()
            except Exception as exc:  # keep stopping the others
                m.say(f"  ! could not stop {s.name}: {exc}")

    def usage_cpu(self) -> float:
        return sum(s.usage()["cpu_s"] for s in [*self.bucks, *([self.forwarder] if self.forwarder else [])])

    def forwarded(self) -> dict:
        try:
            return json.loads((self.work / "forwarder.json").read_text())
        except (OSError, ValueError):
            return {}


# ------------------------------------------------------------------ throughput


def throughput(t: Topology, n_tailers: int, p, work_root: Path) -> dict:
    path, _, lines = ingest.input_file(p.burst_mb)
    work = Path(tempfile.mkdtemp(prefix=f"tp-{t.key}-{n_tailers}-", dir=work_root))
    mesh = Mesh(t, work)
    tailers: list[m.Service] = []
    try:
        mesh.start()
        total = lines * n_tailers
        want = total * t.copies
        tailers += m.start_burst(work, path, n_tailers, lambda i, f: m.Service(f"tailer-{i}", m.tailer_cmd(
            [f], mesh.targets, work / f"state-{i}", env="bench", host=f"host-{i}", copies=mesh.tailer_copies,
            spool_window=86400, jitter=0, encoders=0, extra=("--rescan-interval", "0.1")), work),
            len(mesh.targets))
        b = m.burst(mesh.bucks, want, [*tailers, *mesh.services],
                    complete=lambda counts: t.kind != "primary" or counts[0] >= total)
        n, took = sum(b["counts"]), b["seconds"]
        t_first, t_primary = b["t_first"], b["t_done_each"][0] if t.kind == "primary" else None
        cpu_bucks = mesh.usage_cpu()
        cpu_tailers = sum(s.usage()["cpu_s"] for s in tailers)
        out = {"topology": t.key, "tailers": n_tailers, "lines": total, "copies_stored": n, "copies_wanted": want,
               "lines_per_s": total / took,
               "first_copy_lines_per_s": total / (t_primary - t_first) if t_primary else None,
               "seconds": took,
               "cpu_us_per_line_bucks": cpu_bucks / total * 1e6, "cpu_us_per_line_tailers": cpu_tailers / total * 1e6,
               "forwarded": mesh.forwarded()}
        m.say(f"  throughput {t.key:>13} x{n_tailers}: {out['lines_per_s']:,.0f} lines/s "
              f"({n:,}/{want:,} copies), bucks {out['cpu_us_per_line_bucks']:.1f} µs/line")
        return out
    finally:
        for s in tailers:
            s.stop()
        mesh.stop()
        if not p.keep:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------ churn


def churn(t: Topology, spool: bool, p, work_root: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"churn-{t.key}-{'spool' if spool else 'nospool'}-", dir=work_root))
    mesh = Mesh(t, work)
    tailers: list[m.Service] = []
    load = None
    files = [work / f"in-{i}.log" for i in range(TAILERS)]
    try:
        mesh.start()
        watcher = m.Watcher([b.data for b in mesh.bucks], ENV, want=t.copies)
        for i, f in enumerate(files):
            f.touch()
            tailers.append(m.Service(f"tailer-{i}", m.tailer_cmd(
                [f], mesh.targets, work / f"state-{i}", env=ENV, host=f"host-{i}", copies=mesh.tailer_copies,
                spool=spool, encoders=0), work).start())
        m.wait_until(lambda: all((m.read_stats(work / f"state-{i}") or {}).get("bucks_connected", 0)
                                 >= len(mesh.targets) for i in range(TAILERS)), 30, "the tailers to connect")
        load = m.helper(work, "writer", "write", *map(str, files), "--rate", str(p.rate / TAILERS),
                        "--duration", str(p.duration))
        watcher.start()
        load.start()
        t0 = time.time()
        kills, victims = [], []
        k = 0
        while t0 + p.first_kill + k * p.period < t0 + p.duration - 1.0:
            time.sleep(max(0.0, t0 + p.first_kill + k * p.period - time.time()))
            victim = mesh.bucks[k % len(mesh.bucks)]
            kills.append(time.time())
            victims.append(victim.name)
            victim.kill9()
            victim.start(wait=False)  # at once: down for as long as a buck takes to start
            k += 1
        load.proc.p.wait(p.duration + 60)
        t_end = time.time()
        time.sleep(4.0 if spool else 1.0)  # spool re-sends: window 2 s + jitter up to 1 s
        last, since = -1, time.monotonic()
        while time.monotonic() - since < 1.0 and time.time() - t_end < 60:
            n = sum(h.bit_count() for h in watcher.held.values())
            if n != last:
                last, since = n, time.monotonic()
            time.sleep(0.1)
        for s in tailers:
            s.stop()
        mesh.stop()
        watcher.stop()
        truth = m.appended(files)
        verdict = m.scan_bucks([b.data for b in mesh.bucks], ENV).verdict(truth)
        d_first = m.delays(truth, watcher.first)
        rec = m.recovery(truth, watcher.first, kills, t_end, within=RECOVERED)
        out = {"topology": t.key, "spool": spool, "kills": len(kills), "victims": victims, **verdict,
               "p50_ms": ms(m.pct(d_first, 50)), "p99_ms": ms(m.pct(d_first, 99)),
               "p999_ms": ms(m.pct(d_first, 99.9)), "max_ms": ms(max(d_first) if d_first else None),
               "recovery_median_s": m.median(rec), "recovery_max_s": max(rec) if rec else None,
               "recovery_s": rec, "forwarded": mesh.forwarded()}
        m.say(f"  churn {t.key:>13} spool {'on ' if spool else 'off'}: {len(kills)} kills, {out['events']:,} lines, "
              f"lost {out['lost']} ({out['lost_ppm']:,.0f} ppm), dup {out['dup']}, p99 {fmt_ms(out['p99_ms'])}, "
              f"recovery median {out['recovery_median_s']:.1f} s max {out['recovery_max_s']:.1f} s")
        return out
    finally:
        if load is not None:
            load.stop()
        for s in tailers:
            s.stop()
        mesh.stop()
        if not p.keep:
            shutil.rmtree(work, ignore_errors=True)


def ms(v):
    return None if v is None else v * 1000


def fmt_ms(v):
    return "-" if v is None else (f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms")


# ------------------------------------------------------------------ report


def medians(runs: list[dict]) -> list[dict]:
    """One row per (arrangement, tailers): the median run's figures, and the
    range of lines/s over the repeats."""
    out = []
    for key in dict.fromkeys((r["topology"], r["tailers"]) for r in runs):
        rs = sorted((r for r in runs if (r["topology"], r["tailers"]) == key), key=lambda r: r["lines_per_s"])
        mid = dict(rs[len(rs) // 2])
        mid["lines_per_s"] = m.median([r["lines_per_s"] for r in rs])
        mid["range"] = (rs[0]["lines_per_s"], rs[-1]["lines_per_s"])
        mid["repeats"] = len(rs)
        out.append(mid)
    return out


def plots(tp: list[dict], ch: list[dict], out_dir: Path) -> None:
    plt = m.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    ax = axes[0]
    for key in dict.fromkeys(r["topology"] for r in tp):
        rs = sorted((r for r in tp if r["topology"] == key), key=lambda r: r["tailers"])
        line, = ax.plot([r["tailers"] for r in rs], [r["lines_per_s"] for r in rs], marker="o", label=topo(key).label)
        if all(r.get("repeats", 1) > 1 for r in rs):
            ax.fill_between([r["tailers"] for r in rs], [r["range"][0] for r in rs], [r["range"][1] for r in rs],
                            color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xlabel("tailers (shaded: range of the repeats)")
    ax.set_ylabel("lines/s, every copy stored")
    ax.set_title("throughput")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    keys = list(dict.fromkeys(r["topology"] for r in ch))
    width = 0.4
    for ax, metric, title, ylabel in ((axes[1], "lost_ppm", "loss while a buck is killed every period",
                                       "lines lost per million (0 drawn at 0.5)"),
                                      (axes[2], "p99_ms", "p99 delay, append to first stored copy",
                                       "ms")):
        for j, spool in enumerate((False, True)):
            xs, ys = [], []
            for i, key in enumerate(keys):
                r = next((r for r in ch if r["topology"] == key and r["spool"] == spool), None)
                if r is not None and r[metric] is not None:
                    xs.append(i + (j - 0.5) * width)
                    ys.append(max(r[metric], 0.5))
            ax.bar(xs, ys, width, label=f"spool {'on' if spool else 'off'}")
        ax.set_xticks(range(len(keys)), keys, rotation=20, fontsize=8)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    axes[1].set_ylim(0.4, 2e6)
    fig.suptitle("headless: throughput and loss side by side", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "throughput-and-loss.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for j, spool in enumerate((False, True)):
        xs, med, mx = [], [], []
        for i, key in enumerate(keys):
            r = next((r for r in ch if r["topology"] == key and r["spool"] == spool), None)
            if r is not None:
                xs.append(i + (j - 0.5) * width)
                med.append(r["recovery_median_s"])
                mx.append(r["recovery_max_s"])
        bars = ax.bar(xs, med, width, label=f"median, spool {'on' if spool else 'off'}")
        ax.scatter(xs, mx, marker="_", s=200, color=bars.patches[0].get_facecolor() if bars.patches else None,
                   label=f"max, spool {'on' if spool else 'off'}")
    ax.set_xticks(range(len(keys)), keys, rotation=20, fontsize=8)
    ax.set_ylabel(f"s from a kill until lines are stored within {RECOVERED:g} s again")
    ax.set_title("headless: time to recover from a killed buck")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "recovery.png", dpi=110)
    plt.close(fig)


def conclusions(tp: list[dict], ch: list[dict]) -> list[str]:
    L = []
    top = max((r["tailers"] for r in tp), default=0)
    at_top = {r["topology"]: r["lines_per_s"] for r in tp if r["tailers"] == top}
    if "masterless-2" in at_top and "central" in at_top:
        ratio = at_top["masterless-2"] / at_top["central"]
        cpu = {r["topology"]: r["cpu_us_per_line_bucks"] for r in tp if r["tailers"] == top}
        L.append(f"- **Just as fast?** With {top} tailers, two masterless bucks stored two copies of every line at "
                 f"{at_top['masterless-2']:,.0f} lines/s against {at_top['central']:,.0f} for one central buck "
                 f"storing one ({ratio:.2f}x)" + (f" and {at_top['primary-2']:,.0f} for a primary and its replica "
                                                  f"({at_top['masterless-2'] / at_top['primary-2']:.2f}x)"
                                                  if "primary-2" in at_top else "") + ". "
                 + ("Within 15%: as fast, while keeping two copies." if ratio >= 0.85 else
                    "Slower: the second copy costs the tailers a second send and the bucks a second store, on "
                    "cores they share here with the tailers.")
                 + (f" The second copy shows in the bucks' CPU ({cpu['masterless-2']:.1f} µs per line in all "
                    f"against {cpu['central']:.1f}), small beside the tailers' parsing (~2 µs per line): a buck "
                    "stores a batch without decoding it." if "masterless-2" in cpu and "central" in cpu else ""))
    for spool in (False, True):
        rs = {r["topology"]: r for r in ch if r["spool"] == spool}
        if not rs:
            continue
        parts = [f"`{k}` lost {r['lost']:,} ({r['lost_ppm']:,.0f} per million), p99 {fmt_ms(r['p99_ms'])}, "
                 f"recovery {r['recovery_median_s']:.1f} s (max {r['recovery_max_s']:.1f} s)"
                 for k, r in rs.items()]
        L.append(f"- **Churn, spool {'on' if spool else 'off'}** ({next(iter(rs.values()))['kills']} kills each): "
                 + "; ".join(parts) + ".")
    # More stable? Masterless against the others with as many bucks and the same spool setting.
    pairs = []
    for r in ch:
        t = topo(r["topology"])
        if t.kind != "masterless":
            continue
        for o in ch:
            ot = topo(o["topology"])
            if o["spool"] == r["spool"] and ot.kind != "masterless" and (ot.bucks == t.bucks or ot.kind == "central"):
                pairs.append((r, o))
    if pairs:
        n = len(pairs)
        lost = sum(r["lost"] <= o["lost"] for r, o in pairs)
        p99 = sum((r["p99_ms"] or 0) <= (o["p99_ms"] or 0) for r, o in pairs)
        rec = sum((r["recovery_max_s"] or 0) <= (o["recovery_max_s"] or 0) for r, o in pairs)
        stable = lost == n and p99 >= 0.75 * n and rec >= 0.75 * n
        worst = max(pairs, key=lambda ro: (ro[0]["p99_ms"] or 0))[0]
        L.append(f"- **More stable?** {'Yes' if stable else 'Not on every count'}: against one central buck and "
                 f"against a primary with as many replicas as it has bucks, the same spool setting ({n} pairs), "
                 f"a masterless mesh lost as little or less in {lost} of {n}, had a p99 delay as low or lower in "
                 f"{p99}, and recovered as fast or faster in {rec}. Its worst p99 was {fmt_ms(worst['p99_ms'])} "
                 f"(`{worst['topology']}`, spool {'on' if worst['spool'] else 'off'}). "
                 "In a masterless mesh the other copy of each batch goes to a buck that is up, and the next "
                 "batches go to the bucks that are connected; a tailer only waits, for as long as it still counts "
                 "the dead buck as alive (2 s after its last send), for a batch's second copy when no third buck "
                 "can take it (up to 0.1 s per batch with the spool off, up to `live_wait`, 1 s, with it on: "
                 "the two-bucks mesh's p99 with the spool on). One central buck or a primary is a single point "
                 "that every tailer waits for (spool off: reading stops until it is back and reconnected, and "
                 "what was in flight to it is lost; spool on: lines wait for the re-send of their spool bucket); "
                 "a replica fed from the primary's live feed misses what the primary stores while the replica "
                 "is down. The bucks are killed in turn, so a primary with N-1 replicas loses its primary in one "
                 "kill out of N: more replicas make it look steadier here without making its primary less of a "
                 "single point.")
    return L


def write_report(tp: list[dict], ch: list[dict], p, argv: str, info: dict, took: float) -> Path:
    out_dir = Path(p.out) / NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"params": vars(p), "machine": info, "argv": argv, "took": took,
                                                      "throughput": tp, "churn": ch}, indent=1, default=str))
    tp = medians(tp)
    plots(tp, ch, out_dir)
    L = ["# headless: masterless is more stable and just as fast?", "",
         f"*{'Quick run (`--quick`): few arrangements, short runs; see the full run for figures to quote.' if p.quick else 'Full run.'}* "
         f"Produced by `bench/analyses/headless.py` on {info['date']} ({info['revision']}), in {took / 60:.1f} min.", "",
         "## Answer", "", *conclusions(tp, ch), "",
         "![throughput and loss side by side](headless/throughput-and-loss.png)", "",
         "## Throughput with 1 to 8 tailers", "",
         f"Each tailer reads a burst file of {p.burst_mb:g} MB of syslog lines from its beginning (the file is "
         "linked into place once every tailer is connected); lines/s from the "
         "first stored event until every copy the arrangement keeps is stored (masterless: 2, central: 1, "
         "primary-N: N; the replicas through the forwarder). CPU: of the bucks (and the forwarder) and of the "
         f"tailers, per line. Median of {p.repeat} run(s) (range in brackets), repeats interleaved; the other "
         "columns are the median run's.", ""]
    rows = []
    for r in tp:
        fw = r.get("forwarded") or {}
        spread = f" ({r['range'][0]:,.0f}–{r['range'][1]:,.0f})" if r["repeats"] > 1 else ""
        rows.append([f"`{r['topology']}`", r["tailers"], f"{r['lines']:,}", m.fmt(r["lines_per_s"]) + spread,
                     m.fmt(r["first_copy_lines_per_s"]), f"{r['copies_stored']:,} / {r['copies_wanted']:,}",
                     m.fmt(r["cpu_us_per_line_bucks"], ".1f"), m.fmt(r["cpu_us_per_line_tailers"], ".1f"),
                     f"{fw.get('missed', 0):,}" if fw else "-"])
    L += m.table(["arrangement", "tailers", "lines", "lines/s (all copies)", "lines/s (primary)",
                  "copies stored / wanted", "bucks µs/line", "tailers µs/line", "frames the forwarder dropped"],
                 rows)
    L += ["", "## A buck killed every few seconds", "",
          f"{TAILERS} tailers, {p.rate:,.0f} lines/s in all, {p.duration:g} s; a buck killed with -9 every "
          f"{p.period:g} s from {p.first_kill:g} s on and started again at once, the bucks in turn (primary first). "
          "Delays are from append to the first stored copy (bucket files polled every 20 ms); recovery: from a kill "
          f"until lines appended were again stored within {RECOVERED:g} s (for good, until the next kill; lines "
          f"appended in the last {2 * RECOVERED:g} s before the next kill are left out); a spool re-send comes 2-3 s after its window "
          "(spool window 2 s and jitter 1 s here; 60 s and 10 s by default, so a line that waits for a re-send "
          "waits ~30x longer in production).", ""]
    rows = []
    for r in ch:
        fw = r.get("forwarded") or {}
        rows.append([f"`{r['topology']}`", "on" if r["spool"] else "off", r["kills"], f"{r['events']:,}", r["lost"],
                     m.fmt(r["lost_ppm"]), r["dup"], f"{r['copies_per_event']:.2f}", fmt_ms(r["p50_ms"]),
                     fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]), m.fmt(r["recovery_median_s"], ".1f"),
                     m.fmt(r["recovery_max_s"], ".1f"), f"{fw.get('missed', 0):,}" if fw else "-"])
    L += m.table(["arrangement", "spool", "kills", "lines", "lost", "lost ppm", "dup", "copies/line", "p50",
                  "p99", "max", "recovery median (s)", "recovery max (s)", "frames not replicated"], rows)
    L += ["", "![time to recover](headless/recovery.png)", "",
          "## How it was measured", "",
          "- **Processes**: every buck, tailer, writer and the forwarder is its own process, started by the script "
          "(`helios buck`, `helios tailer`, `bench/_mesh.py write|forward`); kill -9 is SIGKILL of the buck "
          "process; it is started again at once with the same addresses and data directory, so its downtime is "
          "its start-up (~0.5 s here) and its senders reconnect by themselves.",
          "- **Addresses**: each buck binds its own loopback address (127.0.0.11, .12, ...), as separate hosts "
          "would have; the tailers connect from 127.0.0.1. Network namespaces (`ip netns`, veth pairs) would "
          "give each buck a network stack of its own, which matters for network faults (partitions, delay, "
          "loss with `tc netem`); for killed and restarted processes they bring nothing that separate loopback "
          "addresses do not: the kernel resets the connections of a killed process the same way, and "
          "ZeroMQ reconnects the same way. So the script uses loopback addresses and needs no root.",
          "- **Primary/replica**: the forwarder is a ZeroMQ SUB socket on the primary's live feed (whole-batch "
          "stream, `\\x01`) and one PUSH (`sender` role: IMMEDIATE) per replica; the primary stores and "
          "publishes, the forwarder sends each stored frame on. What the primary stores while a replica is down "
          "never reaches that replica, and what the primary stores just after it restarts, before the "
          "forwarder's subscription reaches it, is not replicated either (counted as frames not replicated when "
          "the forwarder could not send, not when it never saw them).",
          "- **Counting**: every line carries its file, number and append time; lost and duplicated are counted "
          "against the appended files once everything has stopped, over the union of every buck's bucket files "
          "(so a replica's copy counts as much as the primary's).",
          f"- **Machine**: {info['cores']} cores ({info['cpu']}) shared with other work; load average "
          f"{info['loadavg_start']} at the start, {info['loadavg_end']} at the end. The tailers, bucks and the "
          "forwarder share the same cores, so the throughput figures are those of the whole mesh on one small "
          f"machine, not of a buck alone. Throughput: median of {p.repeat} run(s); churn: one run each (a lost "
          "line is counted exactly, but whether a kill catches a batch in flight depends on timing).",
          "", "## Command", "", "```sh", argv, "```", ""]
    md = Path(p.out) / f"{NAME}.md"
    md.write_text("\n".join(L))
    return md


def main() -> int:
    ap = argparse.ArgumentParser(description="headless: masterless bucks against one central buck and a "
                                             "primary/replica pair: throughput, and loss under churn.")
    ap.add_argument("--quick", action="store_true", help="few arrangements, short runs (< 3 min)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "analyses"), help="where the report goes")
    ap.add_argument("--rate", type=float, help="lines/s of the churn load, all tailers together")
    ap.add_argument("--duration", type=float, help="seconds of each churn run")
    ap.add_argument("--period", type=float, help="seconds between kills")
    ap.add_argument("--first-kill", type=float, default=2.0, help="seconds into a churn run of the first kill")
    ap.add_argument("--burst-mb", type=float, help="size of each tailer's burst file (throughput)")
    ap.add_argument("--repeat", type=int, help="throughput runs per arrangement and tailer count (medians)")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("--from-results", metavar="JSON", help="write the report from a results.json of an earlier "
                    "run instead of running anything")
    p = ap.parse_args()
    if p.from_results:  # the report again from saved figures (the report's logic changed, not the mesh)
        saved = json.loads(Path(p.from_results).read_text())
        for k, v in saved["params"].items():
            if k not in ("out", "from_results"):
                setattr(p, k, v)
        argv = saved.get("argv") or ".venv/bin/python bench/analyses/headless.py" + (" --quick" if p.quick else "")
        md = write_report(saved["throughput"], saved["churn"], p, argv, saved["machine"], saved.get("took", 0.0))
        m.say(f"report: {md}")
        return 0
    p.repeat = p.repeat or (1 if p.quick else 3)
    p.rate = p.rate or 2000.0
    p.duration = p.duration or (10.0 if p.quick else 24.0)
    p.period = p.period or (3.0 if p.quick else 5.0)
    p.burst_mb = p.burst_mb or (20.0 if p.quick else 40.0)
    argv = ".venv/bin/python bench/analyses/headless.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if p.quick:
        tp_plan = [(k, n) for k in ("central", "primary-2", "masterless-2") for n in (1, 4)]
        ch_plan = [(k, False) for k in ("central", "primary-2", "masterless-2")]
    else:
        tp_plan = [(k, n) for k in ("central", "primary-2", "masterless-2", "masterless-5") for n in (1, 2, 4, 8)]
        ch_plan = [(k, s) for k in ("central", "primary-2", "primary-3", "primary-5", "masterless-2",
                                    "masterless-3", "masterless-5") for s in (False, True)]
    info = m.machine()
    started = time.monotonic()
    m.say(f"headless: {len(tp_plan)} throughput runs, {len(ch_plan)} churn runs; load average {info['loadavg_start']}")
    work_root = Path(tempfile.mkdtemp(prefix="headless-"))
    tp, ch = [], []
    try:
        for key, spool in ch_plan:
            ch.append(churn(topo(key), spool, p, work_root))
        for rep in range(p.repeat):  # repeats interleaved, so that a drift of the machine's load hits all alike
            for key, n in tp_plan:
                tp.append({**throughput(topo(key), n, p, work_root), "repeat": rep})
    finally:
        if not p.keep:
            shutil.rmtree(work_root, ignore_errors=True)
    info["loadavg_end"] = m.loadavg()
    md = write_report(tp, ch, p, argv, info, time.monotonic() - started)
    m.say(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
