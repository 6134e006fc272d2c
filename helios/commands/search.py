"""``helios search``: find events in the recent index or a history index,
and with ``--follow`` go on with the live feed."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from typing import Any, Callable

import click

from helios.commands.common import buck_options, config_option, flag, load, run_service
from helios.commands.history import iso, time_ns
from helios.commands.porter import INDEXES

NS = 1_000_000_000
OUTPUTS = ("line", "json", "table", "raw")


def index_flags(f: Callable) -> Callable:
    for option in reversed([
        config_option,
        flag("porter.index", "--index", type=INDEXES),
        flag("porter.index_url", "--index-url", metavar="URL"),
        flag("porter.index_dir", "--index-dir", metavar="DIR"),
        flag("porter.index_name", "--index-name", metavar="NAME"),
        flag("history.dir", "--history-dir", metavar="DIR"),
    ]):
        f = option(f)
    return f


def _fail(text: str, code: int = 1) -> None:
    click.echo(f"helios: {text}", err=True)
    sys.exit(code)


def _no_index_here(cfg) -> None:
    """An embedded index that does not exist is said as such, with where it
    was looked for: not "no events" (a relative index_dir, like the default
    ./helios-data/index, depends on the folder the command runs in)."""
    from pathlib import Path

    p = cfg.porter
    if p.index != "sqlite":
        return
    root = Path(p.index_dir) / p.index_name
    if not root.exists():
        where = (f" ([porter] index_dir {p.index_dir} is relative to the current directory {Path.cwd()}: run "
                 "where the porter runs, or give its config file with -c or --index-dir)"
                 if not Path(p.index_dir).is_absolute() else "")
        _fail(f"no index at {root.absolute()}: no porter has indexed anything there{where}")


def open_target(cfg, history_id: str | None):
    """(index, request or None): the recent index, or the ready history index ID."""
    from helios.errors import HeliosError
    from helios.history import places

    try:
        if history_id is None:
            _no_index_here(cfg)
            return places.recent_index(cfg), None
        with places.store(cfg) as store:
            r = store.get(history_id)
        if r.state != "ready":
            why = f": {r.reason}" if r.reason else ""
            _fail(f"history request {r.id} is {r.state}{why}; only a ready one can be searched"
                  + (" (`helios history status --wait " + r.id + "`)" if r.state in ("queued", "building") else ""))
        return places.history_index(cfg, r), r
    except HeliosError as exc:
        _fail(str(exc))


def table_writer(out, width: int | None):
    """Rows of TIME HOST APP SEV MESSAGE, the message cut to the terminal."""
    from helios.model import severity_name
    from helios.timespec import iso_ms

    header = [False]

    def write(events) -> None:
        rows = [(iso_ms(e.time), e.host or "-", e.app or "-", severity_name(e.severity),
                 e.message.decode("utf-8", "replace").replace("\n", "\u21b5")) for e in events]
        if not header[0]:
            rows.insert(0, ("TIME", "HOST", "APP", "SEV", "MESSAGE"))
            header[0] = True
        hw = max((len(r[1]) for r in rows), default=4)
        aw = max((len(r[2]) for r in rows), default=3)
        lines = []
        for t, h, a, s, m in rows:
            line = f"{t:24s} {h:{hw}s} {a:{aw}s} {s:7s} {m}"
            if width and len(line) > width:
                line = line[:width - 1] + "\u2026"
            lines.append(line + "\n")
        out.write("".join(lines).encode())
    return write


def writer_for(output: str, out):
    from helios.eventform import FORMATTERS

    if output == "table":
        width = shutil.get_terminal_size((0, 0)).columns if out.isatty() else None
        return table_writer(out, width or None)
    fmt = FORMATTERS["json" if output == "json" else output]
    return lambda events: out.write(b"".join(map(fmt, events)))


@click.command()
@index_flags
@click.argument("text", nargs=-1)
@click.option("--env", "-e", "environment", metavar="ENV", help="The environment (required, unless --history gives it).")
@click.option("--start", help="From this time: ISO 8601 (UTC unless an offset is given), relative like -2h, 'now', "
              "or epoch seconds. [default: -1h; with --history, the request's start]")
@click.option("--end", help="Before this time (same forms). [default: now; with --history, the request's end]")
@click.option("--history", "history_id", metavar="ID", help="Search history index ID (`helios history request`) "
              "instead of the recent index.")
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="Only this host (repeatable: any of them).")
@click.option("--app", "apps", multiple=True, metavar="APP", help="Only this app (repeatable: any of them).")
@click.option("--severity", "-s", metavar="LEVEL", help="Only this severe or worse: emerg, alert, crit, err, "
              "warning, notice, info, debug, or 0..7.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Print at most this many events.")
@click.option("--all", "everything", is_flag=True, help="Print every matching event (read a page at a time).")
@click.option("--reverse", is_flag=True, help="Newest first.")
@click.option("--count", "count_only", is_flag=True, help="Print only how many events match.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="line", show_default=True,
              help="line: TIME ENV HOST APP SEVERITY MESSAGE; json: one JSON object per line; table: aligned "
              "columns; raw: the message as read.")
@click.option("--follow", "-f", is_flag=True, help="After the matches, go on printing new matching events as "
              "they reach the bucks (their live feed: --buck, or [mesh] bucks), until Ctrl-C.")
@buck_options("subscribe.bucks", "feed", "--live-buck")
@click.option("--histogram", "histogram", is_flag=True, help="Print how many events match per time bucket (about "
              "40 round buckets over the range) as text bars, by severity with -o json.")
@click.option("--top", "top_field", metavar="FIELD", help="Print the most frequent values of FIELD among the "
              "matches, with counts: host, app, severity, environment or an extracted field (user, http.status); "
              "-n values [default: 10].")
def search(config_path: str | None, text: tuple[str, ...], environment: str | None, start: str | None,
           end: str | None, history_id: str | None, hosts: tuple[str, ...], apps: tuple[str, ...],
           severity: str | None, limit: int, everything: bool, reverse: bool, count_only: bool, output: str,
           follow: bool, histogram: bool = False, top_field: str | None = None, **kwargs: Any) -> None:
    """Find events: TEXT is whole words (error), substrings (quoted, or any
    word with other characters: user=bob, /api/v1), filters (host:web1
    app:nginx,haproxy sev:err) and fields (user:alice http.status:500
    msg:"payment declined"), all of which must match; see
    helios.index.query. Searches the recent index (the [porter] index
    settings), or with --history ID a history index.

    For a range older than the recent index keeps, ask for a history index
    first: `helios history request --env ENV --start ... --end ...`; this
    command says so when the range starts before the recent index's oldest
    day. Exit 0 when something matched, 1 when nothing did, 2 for a bad
    query or range."""
    from helios.errors import ConfigError, HeliosError, SearchError
    from helios.index.base import scan
    from helios.index.query import parse_query
    from helios.live.filter import parse_severity

    cfg = load(config_path, kwargs, "history")
    if follow and (reverse or count_only):
        raise click.UsageError("--follow goes forward in time: not with --reverse or --count")
    index, req = open_target(cfg, history_id)
    if req is not None:
        if environment is not None and environment != req.environment:
            _fail(f"history request {req.id} is of environment {req.environment}, not {environment}", 2)
        environment = req.environment
    if environment is None:
        raise click.UsageError("give the environment: --env ENV (or a history index: --history ID)")
    t0 = time_ns(start, "--start") if start else (req.start if req else time_ns("-1h", "--start"))
    t1 = time_ns(end, "--end") if end else (req.end if req else time_ns("now", "--end"))
    try:
        q = parse_query(" ".join(text), environment=environment, start=t0, end=t1,
                        limit=None if everything else limit, order="desc" if reverse else "asc")
        sev = q.severity
        if severity is not None:
            sev = parse_severity(severity) if sev is None else min(sev, parse_severity(severity))
        q = replace(q, hosts=q.hosts + hosts, apps=q.apps + apps, severity=sev)
    except (SearchError, ConfigError) as exc:
        _fail(str(exc) if isinstance(exc, SearchError) else "; ".join(exc.problems), 2)
    if histogram or top_field:
        if histogram and top_field:
            raise click.UsageError("--histogram or --top, not both")
        if follow or count_only:
            raise click.UsageError("--histogram and --top count what is in the index: not with --follow or --count")
        ctx = click.get_current_context()
        n = limit if ctx.get_parameter_source("limit") is not click.core.ParameterSource.DEFAULT else 10
        try:
            found = (_print_histogram(index, q, output) if histogram
                     else _print_top(index, q, top_field, n, output))
        except SearchError as exc:
            _fail(str(exc), 2)
        except HeliosError as exc:
            _fail(str(exc))
        finally:
            index.close()
        sys.exit(0 if found else 1)
    out = sys.stdout.buffer
    shown = 0
    try:
        if count_only:
            total = index.count(q)
            click.echo(total)
            sys.stdout.flush()
            sys.exit(0 if total else 1)
        write = writer_for(output, out)
        hits = scan(index, q) if everything else iter(index.search(q))
        page: list = []
        for e in hits:
            page.append(e)
            if len(page) >= 1000:
                write(page)
                shown += len(page)
                page = []
        write(page)
        shown += len(page)
        out.flush()
        if not shown and req is None:
            _hint_history(index, q)
        if not everything and shown >= limit:
            total = index.count(replace(q, limit=None))
            if total > shown:
                click.echo(f"helios: {shown:,} of {total:,} matches (use --limit N, or --all for every one).",
                           err=True)
    except HeliosError as exc:
        _fail(str(exc))
    except BrokenPipeError:
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - | head: not an error
        return
    finally:
        index.close()
    if follow:
        _follow(cfg, q, output)
        return
    sys.exit(0 if shown else 1)


BAR_WIDTH = 50
SEVERITY_ORDER = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "-")


def histogram_lines(buckets: list, start: int, end: int, step: int, width: int = BAR_WIDTH) -> list[str]:
    """Text bars of a histogram, every bucket of [start, end) (empty ones too): TIME COUNT BAR."""
    from helios.timespec import iso_s

    counts = {t: sum(c.values()) for t, c in buckets}
    top = max(counts.values(), default=0)
    cw = max(5, len(f"{top:,}"))
    lines = []
    for t in range(start // step * step, end, step):
        c = counts.get(t, 0)
        bar = "\u2588" * (round(c / top * width) if top else 0) or ("\u258f" if c else "")
        lines.append(f"{iso_s(t / NS)}  {c:>{cw},}  {bar}".rstrip())
    return lines


def _print_histogram(index, q, output: str) -> bool:
    import json

    from helios.index.base import histogram_step
    from helios.model import severity_name
    from helios.timespec import iso_s

    step = histogram_step(q.start, q.end, 40)
    buckets = index.histogram(q, step)
    if output == "json":
        for t, counts in buckets:
            click.echo(json.dumps({"time": iso_s(t / NS), "time_ns": t, "step_s": step // NS,
                                   "count": sum(counts.values()),
                                   "severity": {severity_name(k): v for k, v in sorted(
                                       counts.items(), key=lambda kv: 9 if kv[0] is None else kv[0])}}))
    else:
        total = sum(sum(c.values()) for _, c in buckets)
        click.echo(f"{total:,} event(s) of {q.environment} from {iso_s(q.start / NS)} to {iso_s(q.end / NS)}, "
                   f"per {step // NS} s:")
        for line in histogram_lines(buckets, q.start, q.end, step):
            click.echo(line)
    return bool(buckets)


def _print_top(index, q, field: str, n: int, output: str) -> bool:
    import json

    from helios.index.base import top_values

    values = top_values(index, q, field, n)
    if output == "json":
        for v, c in values:
            click.echo(json.dumps({"field": field, "value": v, "count": c}))
    else:
        cw = max((len(f"{c:,}") for _, c in values), default=5)
        for v, c in values:
            click.echo(f"{c:>{cw},}  {v}")
    return bool(values)


def _hint_history(index, q) -> None:
    """Nothing found, and the range starts before what the recent index keeps: say how to look further back."""
    import datetime

    from helios.errors import HeliosError

    try:
        days = index.days(q.environment)
    except HeliosError:
        return
    first = days[0] if days else None
    if first is None or datetime.datetime.fromtimestamp(q.start / NS, datetime.timezone.utc).date() < first:
        held = f"holds {q.environment} from {first} on" if first else f"holds no events of {q.environment}"
        click.echo(f"helios: nothing found; the recent index {held}. For older events, ask for a history index: "
                   f"helios history request --env {q.environment} --start {iso(q.start)} --end {iso(q.end)}", err=True)


def _follow(cfg, q, output: str) -> None:
    """The live feed from now on, through the query's own test (``matches``)."""
    from helios.live.feed import Feed
    from helios.live.filter import Filter
    from helios.index.query import matches
    from helios.services.subscribe import Subscriber

    live_q = replace(q, start=0, end=2 ** 63 - 1, after=None, limit=None)

    class QueryFilter(Filter):
        """The bucks' prefix subscriptions from the filters; every event then
        checked against the whole query (terms too)."""

        def match(self, e) -> bool:
            return super().match(e) and matches(live_q, e)

    flt = QueryFilter(environments=(q.environment,), apps=q.apps, severity=q.severity, hosts=q.hosts,
                      contains=q.substrings)
    s = cfg.subscribe
    click.echo(f"helios: following the live feed of {len(s.bucks)} buck(s); Ctrl-C stops.", err=True)
    run_service(lambda: Subscriber(Feed(list(s.bucks), flt, dedup_window=s.dedup_window, dedup_max=s.dedup_max,
                                        rcvhwm=s.rcvhwm),
                                   "line" if output == "table" else output, connect_timeout=s.connect_timeout))


COMMANDS = [search]
