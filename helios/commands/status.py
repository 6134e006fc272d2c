"""``helios status``: the whole mesh at a glance, from any host.

Everything comes from the bucks' stats over the bucket query protocol: each
buck's own figures (asked twice, ``--interval`` apart, for its ingest rate),
the senders it has seen (tailers, relays and clients: per environment and
host, when they last sent and how far behind their newest event was), and
the reports other services leave with it (the porter's last indexed,
archived and pruned windows per environment). So a host that can reach the
bucks sees all of it, and a dead buck is told apart from a quiet one.

``assess`` is pure: stats in, a ``Status`` (rows and warnings) out; the
command only asks and prints.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from helios.commands.common import buck_options, config_option, flag, load, output_option

# A sender silent for longer than this is listed as gone quiet (a warning);
# one silent beyond --seen is not listed at all.
QUIET_S = 120.0
# A sender whose newest event was this far behind when it sent is behind.
BEHIND_S = 60.0
# A porter report older than this means the porter is stuck or gone.
PORTER_STALE_S = 600.0


@dataclass
class Status:
    checked: float
    bucks: list[dict] = field(default_factory=list)
    senders: list[dict] = field(default_factory=list)
    porters: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # input kind -> senders ("ENV/HOST") heard through it, with their events: what frames name
    # (file, journal, container, syslog/udp, syslog/tcp, syslog/tls, inventory), the HTTP ingest's
    # (http, otlp), and "zmq" for unmarked frames (clients, relayed applications, older senders)
    inputs: dict[str, dict[str, int]] = field(default_factory=dict)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def assess(first: dict[str, Any], second: dict[str, Any], interval: float, now: float,
           seen: float = 600.0) -> Status:
    """The mesh's status from two rounds of stats (endpoint -> stats dict,
    or an exception for a buck that did not answer), ``interval`` seconds
    apart."""
    st = Status(checked=now)
    senders: dict[str, dict] = {}
    porters: dict[str, dict] = {}
    for ep in sorted(second):
        s2, s1 = second[ep], first.get(ep)
        if isinstance(s2, BaseException) or not isinstance(s2, dict):
            st.bucks.append({"endpoint": ep, "up": False, "error": str(s2)})
            st.warnings.append(f"buck {ep} is DOWN: {s2}")
            continue
        rate = None
        if isinstance(s1, dict) and interval > 0:
            rate = max(s2.get("events", 0) - s1.get("events", 0), 0) / interval
        row = {"endpoint": ep, "up": True, "name": s2.get("name"), "uptime": now - s2.get("started", now),
               "events": s2.get("events", 0), "rate": rate, "stored_bytes": s2.get("stored_bytes"),
               "disk_free": s2.get("disk_free"), "disk_total": s2.get("disk_total"),
               "write_errors": s2.get("write_errors", 0), "bad_frames": sum((s2.get("bad_frames") or {}).values()),
               "corrected_events": s2.get("corrected_events", 0)}
        st.bucks.append(row)
        if row["write_errors"]:
            st.warnings.append(f"buck {ep} failed to store {row['write_errors']} frame(s) (see its log)")
        if row["disk_free"] is not None and row["disk_total"] and row["disk_free"] / row["disk_total"] < 0.05:
            st.warnings.append(f"buck {ep} has {_size(row['disk_free'])} free on its data disk")
        for key, v in (s2.get("senders") or {}).items():
            cur = senders.setdefault(key, {"sender": key, "last_seen": 0.0, "events": 0, "newest_event": 0.0,
                                           "bucks": []})
            cur["events"] += v.get("events", 0)
            cur["bucks"].append(ep)
            if v.get("last_seen", 0) >= cur["last_seen"]:
                cur["last_seen"] = v.get("last_seen", 0)
                cur["newest_event"] = max(cur["newest_event"], v.get("newest_event", 0))
        for source, report in (s2.get("reports") or {}).items():
            if source not in porters or report.get("received", 0) > porters[source].get("received", 0):
                porters[source] = {**report, "source": source}
    st.inputs = by_input(second, {s["sender"] for s in senders.values() if now - s["last_seen"] <= seen})
    for s in sorted(senders.values(), key=lambda s: s["sender"]):
        silent = now - s["last_seen"]
        if silent > seen:
            continue
        s["silent"] = silent
        s["delay"] = max(s["last_seen"] - s["newest_event"], 0.0) if s["newest_event"] else None
        st.senders.append(s)
        if silent > QUIET_S:
            st.warnings.append(f"{s['sender']} has sent nothing for {_ago(silent)}")
        elif s["delay"] is not None and s["delay"] > BEHIND_S:
            st.warnings.append(f"{s['sender']} is behind: its newest event was {_ago(s['delay'])} old when sent")
    for source in sorted(porters):
        p = porters[source]
        st.porters.append(p)
        age = now - p.get("received", now)
        if age > PORTER_STALE_S:
            st.warnings.append(f"porter {source} last reported {_ago(age)} ago: stuck or stopped")
        for problem in p.get("problems") or ():
            st.warnings.append(f"porter {source}: {problem}")
    return st


def by_input(stats: dict[str, Any], listed: set[str]) -> dict[str, dict[str, int]]:
    """The senders in ``listed`` by the input they came through, with their
    events, summed over the bucks: the HTTP ingest's own lists (``http``:
    /v1/events, ``otlp``: /v1/logs), the input kinds frames name (a
    sender's ``inputs``: file, journal, container, syslog/udp, ...), and
    ``zmq`` for the events of a sender neither accounts for (unmarked
    frames: clients, relayed applications, senders older than the kinds)."""
    out: dict[str, dict[str, int]] = {}
    for s in stats.values():
        if not isinstance(s, dict):
            continue
        through_http: dict[str, int] = {}
        for kind, senders in sorted(((s.get("http") or {}).get("senders") or {}).items()):
            for key, v in senders.items():
                if key in listed:
                    out.setdefault(kind, {})[key] = out.get(kind, {}).get(key, 0) + v.get("events", 0)
                    through_http[key] = through_http.get(key, 0) + v.get("events", 0)
        for key, v in (s.get("senders") or {}).items():
            if key not in listed:
                continue
            rest = v.get("events", 0) - through_http.get(key, 0)
            for kind, n in sorted((v.get("inputs") or {}).items()):
                if n > 0:
                    out.setdefault(kind, {})[key] = out.get(kind, {}).get(key, 0) + n
                    rest -= n
            if rest > 0:
                out.setdefault("zmq", {})[key] = out.get("zmq", {}).get(key, 0) + rest
    return out


def _when(ns_or_s: Any) -> str:
    """A window's end as `helios porter status` shows it (ISO 8601 UTC, to the second)."""
    from helios.timespec import iso_s

    if not ns_or_s:
        return "-"
    t = float(ns_or_s)
    if t > 1e14:  # ns
        t /= 1e9
    return iso_s(t)


def render(st: Status, colour: bool) -> str:
    def c(text: str, fg: str, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if colour else text

    out = [c(f"Helios mesh at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.checked))} UTC", "white", True), "",
           c("BUCKS", "white", True)]
    for b in st.bucks:
        if not b["up"]:
            out.append(f"  {c('DOWN', 'red', True)}  {b['endpoint']}  {b['error']}")
            continue
        rate = "-" if b["rate"] is None else f"{b['rate']:,.0f} ev/s"
        disk = ""
        if b.get("disk_total"):
            disk = f"  disk {_size(b['disk_free'])} free of {_size(b['disk_total'])}"
        fixed = f"  {b['corrected_events']:,} event times corrected" if b.get("corrected_events") else ""
        out.append(f"  {c('up', 'green', True)}    {b['endpoint']}  {b['name']}  up {_ago(b['uptime'])}  "
                   f"ingest {rate}  {b['events']:,} copies stored since start  "
                   f"{_size(b['stored_bytes'] or 0)} on disk{disk}{fixed}")
    if any(b["up"] for b in st.bucks):
        out.append("  (copies: each batch goes live to two bucks and each closed spool window is re-sent once, so "
                   "the bucks store about 3 copies of an event; the porter indexes it once)")
    out += ["", c("SENDERS (tailers, relays, clients) seen recently", "white", True)]
    if not st.senders:
        out.append("  (none)")
    for s in st.senders:
        delay = "-" if s["delay"] is None else _ago(s["delay"])
        flag_ = c("quiet", "yellow", True) if s["silent"] > QUIET_S else (
            c("behind", "yellow", True) if s["delay"] is not None and s["delay"] > BEHIND_S else c("ok", "green"))
        out.append(f"  {flag_:<6} {s['sender']}  last sent {_ago(s['silent'])} ago  delay {delay}  "
                   f"{s['events']:,} copies stored by {len(s['bucks'])} buck(s)")
    if st.inputs:
        out += ["", c("SENDERS BY INPUT", "white", True)]
        names = {"zmq": "zmq (clients, relayed applications, older senders)", "http": "http (/v1/events)",
                 "otlp": "otlp (/v1/logs)", "file": "file (tailed files)", "journal": "journal (systemd)",
                 "container": "container (pod and Docker logs)", "syslog/udp": "syslog/udp (relays)",
                 "syslog/tcp": "syslog/tcp (relays)", "syslog/tls": "syslog/tls (relays)",
                 "inventory": "inventory (tailers' file lists, for helios audit)"}
        for kind, senders in sorted(st.inputs.items()):
            shown = sorted(senders)[:10]
            more = f" and {len(senders) - len(shown)} more" if len(senders) > len(shown) else ""
            out.append(f"  {names.get(kind, kind)}: {len(senders)} sender(s), {sum(senders.values()):,} copies "
                       f"stored: {', '.join(shown)}{more}")
    out += ["", c("PORTER", "white", True)]
    if not st.porters:
        out.append("  (no porter has reported to these bucks)")
    for p in st.porters:
        out.append(f"  {p['source']}  reported {_ago(st.checked - p.get('received', st.checked))} ago")
        for env, e in sorted((p.get("environments") or {}).items()):
            too_old = (f"; {c(format(e['too_old'], ',') + ' events too old for the index', 'yellow', True)}"
                       if e.get("too_old") else "")
            events = f" ({e['events_indexed']:,} distinct events)" if e.get("events_indexed") is not None else ""
            out.append(f"    {env}: indexed to {_when(e.get('indexed'))}{events}, archived to "
                       f"{_when(e.get('archived'))}, pruned to {_when(e.get('pruned'))}; "
                       f"behind: {e.get('behind', '-')}{too_old}")
    out.append("")
    if st.warnings:
        out.append(c("WARNINGS", "red", True))
        out += [f"  {c('!', 'red', True)} {w}" for w in st.warnings]
    else:
        out.append(c("No warnings.", "green"))
    return "\n".join(out)


@click.command("status", short_help="The whole mesh at a glance: bucks, senders, porter.")
@config_option
@buck_options("query.bucks", "query")
@flag("query.timeout", "--timeout", type=float, metavar="SECONDS")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds between the two rounds of stats that give each buck's ingest rate (0: one round).")
@click.option("--seen", type=float, default=600.0, show_default=True,
              help="List senders heard from in the last this many seconds.")
@output_option(("text", "json"), "text", "text: for people; json: the status as JSON.")
def status(config_path: str | None, interval: float, seen: float, output: str, **kwargs: Any) -> None:
    """Show the whole mesh from any host that reaches the bucks: each buck up
    or down with its ingest rate and disk use; the tailers, relays and
    clients that sent in the last minutes, with how far behind they are; the
    porter's last indexed, archived and pruned window per environment. A dead
    buck, a sender that fell behind or went quiet, and a stuck porter each
    get a warning line. Exit 0 with no warnings, 1 with some."""
    from helios.query.client import QueryClient

    cfg = load(config_path, kwargs, "query").query
    with QueryClient(timeout=cfg.timeout) as qc:
        first = qc.stats(cfg.bucks) if interval > 0 else {}
        if interval > 0:
            time.sleep(interval)  # the rate is the difference of two counts
        second = qc.stats(cfg.bucks)
    st = assess(first, second, interval, time.time(), seen)
    if output == "json":
        click.echo(json.dumps(asdict(st), indent=2, default=str))
    else:
        click.echo(render(st, colour=sys.stdout.isatty()))
    sys.exit(1 if st.warnings else 0)


COMMANDS = [status]
