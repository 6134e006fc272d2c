"""``helios history request|status|list|drop|retry|serve``: history indexes on demand.

A request names an environment and a time range; ``helios history serve``
(running somewhere that sees the same ``[history] dir``) builds its index
from the archive and the bucks; ``helios search --history ID`` searches it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

import click

from helios.commands.common import config_option, flag, load, output_option, run_service
from helios.commands.porter import place_options

NS = 1_000_000_000


def place_flags(f: Callable) -> Callable:
    """Where the store, the indexes, the archive and the bucks are: the
    [history] dir and the [porter] settings, as flags."""
    for option in reversed([
        config_option,
        flag("history.dir", "--history-dir", metavar="DIR"),
        *place_options(),
        flag("porter.timeout", "--timeout", type=float, metavar="SECONDS"),
    ]):
        f = option(f)
    return f


def store_flags(f: Callable) -> Callable:
    """Only the store: status, list and retry read nothing else."""
    for option in reversed([config_option, flag("history.dir", "--history-dir", metavar="DIR")]):
        f = option(f)
    return f


def _fail(text: str, code: int = 1) -> None:
    click.echo(f"helios: {text}", err=True)
    sys.exit(code)


def time_ns(text: str, what: str) -> int:
    """A time as typed (ISO 8601, relative like -2h, now, epoch seconds) in ns."""
    from helios.timespec import TimeSpecError, parse_time_ns

    try:
        return parse_time_ns(text)
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _store(cfg):
    from helios.errors import HistoryError
    from helios.history import places

    try:
        return places.store(cfg)
    except HistoryError as exc:
        _fail(str(exc))


def _get(store, request_id: str):
    from helios.errors import HistoryError

    try:
        return store.get(request_id)
    except HistoryError as exc:
        _fail(str(exc))


# --------------------------------------------------------------------------- rendering

def iso(ns_or_s: float | None, ns: bool = True) -> str:
    if ns_or_s is None:
        return "-"
    from helios.timespec import iso_s

    return iso_s(ns_or_s / NS if ns else ns_or_s)


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_line(state: str, frac: float, p: dict, eta: float | None, width: int = 24) -> str:
    """``building  42% [##########..............] 12/30 windows, 1,234 events, 3.1 MiB of 7.4 MiB, ETA 0:12``"""
    filled = int(round(frac * width))
    text = (f"{state:9s} {frac * 100:3.0f}% [{'#' * filled}{'.' * (width - filled)}] "
            f"{p['windows_done']}/{p['windows_total']} windows, {p['events_loaded']:,} events, "
            + (f"{size(p['bytes_read'])} read" if state == "ready"     # the total was the plan's guess
               else f"{size(p['bytes_read'])} of {size(p['bytes_total'])}"))
    return text + (f", ETA {duration(eta)}" if eta is not None else "")


def bar(r) -> str:
    """A request's progress on one line."""
    return progress_line(r.state, r.fraction(), r.to_dict()["progress"], r.eta())


def describe(r) -> str:
    lines = [f"request  {r.id}",
             f"index    {r.index_name} ({r.index_kind})",
             f"range    {r.environment} from {iso(r.start)} to {iso(r.end)}",
             f"state    {r.state}" + (f": {r.reason}" if r.reason else ""),
             f"progress {bar(r)}",
             f"asked    {r.asked} time(s), first at {iso(r.created, ns=False)}; {r.attempts} build(s) started"]
    if r.finished:
        took = f" (in {duration(r.finished - r.started)})" if r.started else ""
        lines.append(f"finished {iso(r.finished, ns=False)}{took}")
    if r.expires and r.state in ("ready", "expired"):
        lines.append(f"{'expires ' if r.state == 'ready' else 'expired '} {iso(r.expires, ns=False)}")
    lines += [f"warning  {w}" for w in r.warnings]
    if r.state == "ready":
        lines.append(f"search   helios search --history {r.id} TEXT")
    elif r.state == "failed":
        lines.append(f"retry    helios history retry {r.id}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands

@click.group()
def history() -> None:
    """History indexes on demand: ask for an environment's events of any past
    time range (request), watch the build (status, list), search it with
    `helios search --history ID`, and drop it when done (it also expires after
    [history] expiry, 24 h by default). `helios history serve` builds them."""


@history.command("request", short_help="Ask for a history index of a time range; wait until it is ready.")
@place_flags
@click.option("--env", "-e", "environment", required=True, metavar="ENV", help="The environment.")
@click.option("--start", required=True, help="Start of the range: ISO 8601 (2026-11-20T10:00, UTC unless an "
              "offset is given), relative like -2h, 'now', or epoch seconds.")
@click.option("--end", default="now", show_default=True, help="End of the range (same forms as --start).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Show the build's progress until it is ready or failed; --no-wait returns at once.")
@output_option(("text", "json"), "text", "text: for people; json: the request as JSON (with --wait, once done).")
def request_cmd(config_path: str | None, environment: str, start: str, end: str, wait: bool, output: str,
                **kwargs: Any) -> None:
    """Ask for the events of ENV from --start to --end in a temporary index of
    their own (helios-history-ID), built from the archive and the bucks by
    `helios history serve`. Prints the request id at once on standard output,
    then (unless --no-wait) a progress bar on standard error until the index
    is ready.

    The same range asked for again shares the build (and restarts a ready
    index's expiry); a failed or expired one is built again. Exit 0 when
    ready (or queued, with --no-wait), 1 when the build failed (the reason
    is printed), 2 for a bad range or an unknown environment."""
    from helios.errors import HistoryError
    from helios.history.intake import submit

    cfg = load(config_path, kwargs, "history")
    t0, t1 = time_ns(start, "--start"), time_ns(end, "--end")
    store = _store(cfg)
    try:
        r, queued = submit(cfg, store, environment, t0, t1)
    except HistoryError as exc:
        _fail(str(exc), 2 if exc.status < 500 else 1)
    click.echo(r.id)
    sys.stdout.flush()
    if not queued:
        click.echo(f"helios: this range was asked for before: request {r.id} is {r.state}.", err=True)
    if wait:
        r = _watch(store, r.id)
    if output == "json":
        click.echo(json.dumps(r.to_dict(), indent=2))
    store.close()
    if r.state == "failed":
        _fail(f"history request {r.id} failed: {r.reason}. `helios history retry {r.id}` tries again.")
    if r.state == "expired":
        _fail(f"history request {r.id} was dropped meanwhile.")


def _watch(store, request_id: str):
    """Show progress until the request is ready, failed or expired. Ctrl-C
    stops only the watching: the build goes on, and the message says how
    to follow it."""
    try:
        return _watch_until_done(store, request_id)
    except KeyboardInterrupt:
        click.echo("", err=True)
        click.echo(f"helios: stopped watching; history request {request_id} is still being built by `helios "
                   f"history serve`. Follow it with `helios history status --wait {request_id}`; once ready, "
                   f"`helios search --history {request_id} TEXT`.", err=True)
        sys.exit(130)


def _watch_until_done(store, request_id: str):
    tty = sys.stderr.isatty()
    shown, last_line = "", 0.0
    hint_at = time.monotonic() + 10
    while True:
        r = store.get(request_id)
        line = bar(r)
        now = time.monotonic()
        if tty:
            click.echo("\r" + line.ljust(len(shown)), nl=False, err=True)
        elif line != shown and (now - last_line >= 1.0 or r.state not in ("queued", "building")):
            click.echo(line, err=True)   # a log, not a terminal: a line when it changed, at most once a second
            last_line = now
        shown = line
        if r.state not in ("queued", "building"):
            if tty:
                click.echo("", err=True)
            if r.state == "ready":
                click.echo(f"helios: ready: {r.events_loaded:,} events in {r.index_name}; search it with "
                           f"`helios search --history {r.id} TEXT`.", err=True)
            return r
        if r.state == "queued" and now > hint_at:
            click.echo(("\n" if tty else "") + "helios: still queued: is `helios history serve` running with "
                       f"--history-dir {store.dir}?", err=True)
            hint_at = float("inf")
        time.sleep(0.2)


@history.command("status", short_help="Show one request: state, progress, expiry.")
@store_flags
@click.argument("request_id", metavar="ID")
@output_option(("text", "json"), "text", "text: for people; json: the request as JSON.")
@click.option("--wait", is_flag=True, help="Show the progress until it is ready or failed, as `request` does.")
def status_cmd(config_path: str | None, request_id: str, output: str, wait: bool, **kwargs: Any) -> None:
    """Show history request ID: its range, state (queued, building, ready,
    failed with its reason, expired), progress (windows done of all, events
    loaded, bytes read, estimated time left) and when it expires. Exit 0,
    or 1 when it failed or there is no such request."""
    cfg = load(config_path, kwargs, "history")
    store = _store(cfg)
    r = _watch(store, request_id) if wait else _get(store, request_id)
    click.echo(json.dumps(r.to_dict(), indent=2) if output == "json" else describe(r))
    sys.exit(1 if r.state == "failed" else 0)


@history.command("list", short_help="List the requests, newest first.")
@store_flags
@click.option("--state", "states", multiple=True, type=click.Choice(["queued", "building", "ready", "failed", "expired"]),
              help="Only requests in this state (repeatable).")
@output_option(("text", "json"), "text", "text: for people; json: the requests as JSON.")
def list_cmd(config_path: str | None, states: tuple[str, ...], output: str, **kwargs: Any) -> None:
    """List the history requests, newest first: id, environment, range,
    state, progress and events, and when a ready one expires."""
    cfg = load(config_path, kwargs, "history")
    store = _store(cfg)
    found = store.list(states)
    if output == "json":
        click.echo(json.dumps([r.to_dict() for r in found], indent=2))
        return
    rows = [["ID", "ENV", "START", "END", "STATE", "DONE", "EVENTS", "EXPIRES"]]
    for r in found:
        rows.append([r.id, r.environment, iso(r.start), iso(r.end), r.state, f"{r.fraction() * 100:.0f}%",
                     f"{r.events_loaded:,}", iso(r.expires, ns=False) if r.state == "ready" else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    failed = [r for r in found if r.state == "failed"]
    for r in failed:
        click.echo(f"{r.id} failed: {r.reason}", err=True)
    click.echo(f"{len(found)} request(s).", err=True)


@history.command("drop", short_help="Delete a request's index now.")
@place_flags
@click.argument("request_id", metavar="ID")
def drop_cmd(config_path: str | None, request_id: str, **kwargs: Any) -> None:
    """Delete the index of history request ID now (a build in progress
    stops), rather than at its expiry. The request stays listed, expired;
    asking for the same range again builds it again."""
    from helios.errors import HeliosError
    from helios.history import places

    cfg = load(config_path, kwargs, "history")
    store = _store(cfg)
    r = _get(store, request_id)
    was = r.state
    r = store.expire(request_id, "dropped")
    try:
        index = places.history_index(cfg, r)
        try:
            index.drop()
        finally:
            index.close()
    except HeliosError as exc:
        _fail(f"request {request_id} is dropped, but its index {r.index_name} could not be deleted: {exc}")
    click.echo(f"helios: dropped history request {request_id} (was {was}); its index {r.index_name} is deleted.",
               err=True)


@history.command("retry", short_help="Build a failed or expired request again.")
@store_flags
@click.argument("request_id", metavar="ID")
@click.option("--wait/--no-wait", default=False, show_default=True, help="Show the progress until it is done.")
def retry_cmd(config_path: str | None, request_id: str, wait: bool, **kwargs: Any) -> None:
    """Queue failed (or expired) history request ID again: `helios history
    serve` builds it from the start. Exit 1 if it is not failed or expired,
    or (with --wait) if it failed again."""
    from helios.errors import HistoryError

    cfg = load(config_path, kwargs, "history")
    store = _store(cfg)
    try:
        r = store.retry(request_id)
    except HistoryError as exc:
        _fail(str(exc))
    click.echo(f"helios: history request {r.id} is queued again.", err=True)
    if wait:
        r = _watch(store, r.id)
        if r.state == "failed":
            _fail(f"history request {r.id} failed again: {r.reason}")


@history.command("serve", short_help="Build the requested history indexes (run one or more).")
@place_flags
@flag("history.expiry", "--expiry", type=float, metavar="SECONDS")
@flag("history.max_range", "--max-range", type=float, metavar="SECONDS")
@flag("history.margin", "--margin", type=float, metavar="SECONDS")
@flag("history.builds", "--builds", type=int)
@flag("history.load_workers", "--load-workers", type=int)
@flag("history.poll_interval", "--poll-interval", type=float, metavar="SECONDS")
@flag("history.lease", "--lease", type=float, metavar="SECONDS")
def serve_cmd(config_path: str | None, **kwargs: Any) -> None:
    """Build history indexes: take the queued requests of --history-dir, fill
    each index from the archive (archived windows) and the bucks (the rest),
    each event once and in time order, and report progress as it goes.
    Delete the indexes of ready requests once they expire.

    Give it the porter's settings (the [porter] section of the same config
    file, or the flags): where the archive, the index backend and the bucks
    are. Several may run on one --history-dir. SIGTERM stops after the
    window at hand and puts unfinished requests back in the queue."""
    from helios.gctune import tune_gc
    from helios.history.serve import HistoryServer

    cfg = load(config_path, kwargs, "history")
    tune_gc()   # windows of events in flight, rescanned by the collector for nothing
    run_service(lambda: HistoryServer(cfg))


COMMANDS = [history]
