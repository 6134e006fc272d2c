"""``helios export`` and ``helios rebuild``: incident recovery.

``export`` reads events back out of an index (the recent one, or a history
index) as bucket files or NDJSON: to move a backlog into the archive (a
buck serving the exported directory hands it to the porter) or to another
system. ``rebuild`` builds (or fills again) the recent index for a range
from the archive and the bucks, with worker processes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import click

from helios.commands.common import flag, load
from helios.commands.history import place_flags, progress_line, size, time_ns
from helios.commands.search import index_flags, open_target

NS = 1_000_000_000


def _fail(text: str, code: int = 1) -> None:
    click.echo(f"helios: {text}", err=True)
    sys.exit(code)


@click.command()
@index_flags
@click.argument("text", nargs=-1)
@click.option("--env", "-e", "environment", metavar="ENV", help="The environment (required, unless --history gives it).")
@click.option("--start", help="From this time: ISO 8601 (UTC unless an offset is given), relative like -2h, or "
              "epoch seconds. [default: -1h, as search; with --history, the request's start]")
@click.option("--end", help="Before this time (same forms). [default: with --history, the request's end; else now]")
@click.option("--history", "history_id", metavar="ID", help="Export from history index ID instead of the recent index.")
@click.option("--output", "-o", "form", type=click.Choice(["bucket", "ndjson"]), default="ndjson",
              show_default=True, help="bucket: bucket files in a buck's layout under --to (a directory); ndjson: "
              "one JSON object per event, exact (see helios.export).")
@click.option("--format", "form", type=click.Choice(["bucket", "ndjson"]), hidden=True, help="The same as -o.")
@click.option("--to", "dest", default="-", show_default=True, metavar="PATH",
              help="The directory (-o bucket) or file (-o ndjson; - is standard output).")
@click.option("--window", type=int, default=60, show_default=True, metavar="SECONDS",
              help="Bucket files: the width of their windows (must divide 86400).")
def export(config_path: str | None, text: tuple[str, ...], environment: str | None, start: str | None,
           end: str | None, history_id: str | None, form: str, dest: str, window: int, **kwargs: Any) -> None:
    """Write the events of ENV from --start to --end (all of them, or those
    matching TEXT: the query of `helios search`) out of the recent index, or
    a history index with --history, in time order.

    -o bucket writes PATH/buckets/ENV/YYYYMMDD/HHMMSS-<window>s.bkt,
    the files a buck keeps: start a buck with --data-dir OUTPUT and the porter
    archives them, or `helios rebuild` loads them into an index. Every event
    comes back whole: the same ids, times, bytes and fields."""
    from helios.errors import HeliosError, SearchError
    from helios.eventform import to_json
    from helios.export import BucketExport
    from helios.index.base import scan
    from helios.index.query import parse_query
    from helios.store.layout import DAY

    if window <= 0 or DAY % window:
        raise click.BadParameter("must divide 86400", param_hint="--window")
    if form == "bucket" and dest == "-":
        raise click.UsageError("-o bucket writes a directory: give it with --to DIR")
    cfg = load(config_path, kwargs, "history")
    index, req = open_target(cfg, history_id)
    if req is not None:
        if environment not in (None, req.environment):
            _fail(f"history request {req.id} is of environment {req.environment}, not {environment}", 2)
        environment = req.environment
    if environment is None:
        raise click.UsageError("give the environment: --env ENV (or a history index: --history ID)")
    t0 = time_ns(start, "--start") if start else (req.start if req else time_ns("-1h", "--start"))
    t1 = time_ns(end, "--end") if end else (req.end if req else time_ns("now", "--end"))
    try:
        q = parse_query(" ".join(text), environment=environment, start=t0, end=t1, limit=None)
    except SearchError as exc:
        _fail(str(exc), 2)
    count = 0
    try:
        if form == "bucket":
            out = BucketExport(dest, width=window)
            try:
                for e in scan(index, replace(q, limit=None)):
                    out.add([e])
            finally:
                out.close()
            count = out.events
            click.echo(f"helios: exported {count:,} event(s) of {environment} into {len(out.files)} bucket file(s) "
                       f"under {out.root}.", err=True)
        else:
            stream = sys.stdout.buffer if dest == "-" else open(dest, "wb")
            try:
                page = []
                for e in scan(index, q):
                    page.append(to_json(e))
                    if len(page) >= 1000:
                        stream.write(b"".join(page))
                        count += len(page)
                        page = []
                stream.write(b"".join(page))
                count += len(page)
            finally:
                if stream is not sys.stdout.buffer:
                    stream.close()
                else:
                    stream.flush()
            click.echo(f"helios: exported {count:,} event(s) of {environment} as NDJSON.", err=True)
    except (HeliosError, OSError, ValueError) as exc:
        _fail(f"export stopped after {count:,} event(s): {exc}")
    finally:
        index.close()


@click.command()
@place_flags
@flag("porter.workers", "--index-workers", type=int)
@flag("history.margin", "--margin", type=float, metavar="SECONDS")
@click.option("--env", "-e", "environment", required=True, metavar="ENV", help="The environment.")
@click.option("--start", required=True, help="From this time: ISO 8601 (UTC unless an offset is given), relative "
              "like -2h, or epoch seconds.")
@click.option("--end", default="now", show_default=True, help="Before this time (same forms).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes that read and load at once, each a contiguous part of the range.")
def rebuild(config_path: str | None, environment: str, start: str, end: str, workers: int, **kwargs: Any) -> None:
    """Build the recent index (the [porter] index settings) for ENV from
    --start to --end again, from the archive (archived windows) and the
    bucks (the rest), each event once; with --workers N, N processes share
    the work. Events already in the index stay as they are, once: a rebuild
    fills what is missing, and may be run again. Shows its progress on
    standard error; exit 1 if a window could not be read or loaded."""
    from helios.errors import HeliosError
    from helios.gctune import tune_gc
    from helios.history.rebuild import rebuild as run

    cfg = load(config_path, kwargs, "history")
    t0, t1 = time_ns(start, "--start"), time_ns(end, "--end")
    if t1 <= t0:
        raise click.BadParameter("the range ends before it starts", param_hint="--end")
    tty = sys.stderr.isatty()
    last = [0.0]
    began = time.monotonic()

    def show(c) -> None:
        now = time.monotonic()
        if now - last[0] < (0.2 if tty else 2.0) and c.windows_done < c.windows_total:
            return
        last[0] = now
        p = c.progress()
        frac = (p["bytes_read"] / p["bytes_total"] if p["bytes_total"] else
                p["windows_done"] / p["windows_total"] if p["windows_total"] else 0.0)
        eta = (now - began) * (1 - frac) / frac if frac > 0 else None
        click.echo(("\r" if tty else "") + progress_line("building", frac, p, eta), nl=not tty, err=True)

    tune_gc()
    try:
        c = run(cfg, environment, t0, t1, workers, show)
    except HeliosError as exc:
        if tty:
            click.echo("", err=True)
        _fail(f"rebuild failed: {exc}")
    if tty:
        click.echo("", err=True)
    for w in c.warnings:
        click.echo(f"helios: warning: {w}", err=True)
    took = time.monotonic() - began
    click.echo(f"helios: rebuilt {environment} from {c.windows_done} window(s) ({size(c.bytes_read)}): "
               f"{c.events_loaded:,} event(s) new to the index, {c.events_read:,} read, in {took:.1f} s.", err=True)


COMMANDS = [export, rebuild]
