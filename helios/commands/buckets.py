"""``helios buckets ls|get|stats``: what the bucks hold, over the bucket query
protocol (``helios.query``). The bucks come from ``--buck`` (repeatable) or
the ``[mesh] bucks`` addresses (or ``[query] bucks`` endpoints) of a config file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from helios.commands.common import buck_options, config_option, flag, load, output_option

NS = 1_000_000_000


def query_options(f: Callable) -> Callable:
    """--buck, --timeout and -c, shared by every buckets command."""
    for option in reversed([
        config_option,
        buck_options("query.bucks", "query"),
        flag("query.timeout", "--timeout", type=float, metavar="SECONDS"),
    ]):
        f = option(f)
    return f


def _fail(text: str, code: int = 1) -> None:
    click.echo(f"helios: {text}", err=True)
    sys.exit(code)


def _ns(text: str | None, what: str) -> int | None:
    from helios.timespec import TimeSpecError, parse_time_ns

    if text is None:
        return None
    try:
        return parse_time_ns(text)
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _short(endpoint: str) -> str:
    return endpoint.partition("://")[2] or endpoint


@click.group()
def buckets() -> None:
    """Look at the buckets the bucks hold: list them (ls), copy one out (get),
    and read each buck's stats. Asks every buck given by --buck at once; a
    buck that does not answer within --timeout is named, and does not hold
    up the others."""


@buckets.command("ls", short_help="List the buckets of every buck, and which bucks hold each.")
@query_options
@click.option("--env", "-e", "environment", metavar="ENV", help="Only this environment (default: all).")
@click.option("--start", help="Only buckets whose window ends after this time: ISO 8601 (UTC if no "
              "offset), relative like -2h, 'now', or epoch seconds.")
@click.option("--end", help="Only buckets whose window starts before this time (same forms as --start).")
@output_option(("table", "json"), "table", "table: one row per bucket; json: every bucket with the bucks "
               "holding it and their sizes, and each buck's error if it failed.")
def ls(config_path: str | None, environment: str | None, start: str | None, end: str | None, output: str,
       **kwargs: Any) -> None:
    """List the buckets of every buck: id (ENV/YYYYMMDD/HHMMSS-<width>s),
    state (open: a buck may still append to it), size, and which bucks hold
    it. Exit 0 when every buck answered, 1 when one did not (the others are
    still listed)."""
    from helios.errors import QueryError
    from helios.query.client import QueryClient, holders
    from helios.store import layout

    cfg = load(config_path, kwargs, "query").query
    if environment is not None and not layout.valid_environment(environment):
        raise click.BadParameter(f"{environment!r} is not an environment name", param_hint="--env")
    t0, t1 = _ns(start, "--start"), _ns(end, "--end")
    if t0 is not None and t1 is not None and t0 > t1:
        raise click.BadParameter("--start is after --end", param_hint="--start")
    with QueryClient(timeout=cfg.timeout) as qc:
        listings = qc.list_buckets(cfg.bucks, environment, t0, t1)
    held = holders(listings)
    failed = {ep: r for ep, r in listings.items() if isinstance(r, QueryError)}
    if output == "json":
        click.echo(json.dumps({
            "bucks": {ep: {"ok": False, "error": str(r)} if ep in failed else {"ok": True, "buckets": len(r)}
                      for ep, r in listings.items()},
            "buckets": [{"id": bid, "environment": e.environment, "start_ns": e.start, "width": e.width,
                         "state": "open" if any(x.open for x in on.values()) else "closed",
                         "size": max(x.size for x in on.values()),
                         "bucks": {ep: {"size": x.size, "state": x.state} for ep, x in on.items()}}
                        for bid, on in held.items() for e in [next(iter(on.values()))]],
        }, indent=2))
    else:
        _print_table(cfg.bucks, held, failed)
    for ep, exc in failed.items():
        click.echo(f"helios: {exc}", err=True)
    sys.exit(1 if failed else 0)


def _print_table(endpoints, held, failed) -> None:
    cols = [_short(ep) for ep in endpoints]
    rows = [["BUCKET", "STATE", "SIZE", *cols]]
    for bid, on in held.items():
        state = "open" if any(x.open for x in on.values()) else "closed"
        marks = ["?" if ep in failed else ("yes" if ep in on else "-") for ep in endpoints]
        rows.append([bid, state, _size(max(x.size for x in on.values())), *marks])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    total = sum(max(x.size for x in on.values()) for on in held.values())
    down = f"; {len(failed)} of {len(endpoints)} bucks did not answer (?)" if failed else ""
    click.echo(f"{len(held)} bucket(s), {_size(total)}{down}.")


@buckets.command("get", short_help="Copy one bucket out of a buck: a bucket file, or events as NDJSON.")
@query_options
@click.argument("bucket_id")
@click.option("--output", "-o", "form", type=click.Choice(["bucket", "ndjson"]), default="bucket",
              show_default=True, help="bucket: a bucket file, records as the buck stored them; ndjson: the "
              "decoded events, one JSON object per line.")
@click.option("--ndjson", "form", flag_value="ndjson", hidden=True, help="The same as -o ndjson.")
@click.option("--to", "dest", metavar="FILE|-", default="-", show_default=True,
              help="Where to write: a file (a bucket file is replaced once complete), or - for standard output.")
def get(config_path: str | None, bucket_id: str, dest: str, form: str, **kwargs: Any) -> None:
    """Copy one bucket (BUCKET_ID as `helios buckets ls` shows it) from a buck
    that holds it: as a bucket file (records as the buck stored them; read it
    with any Helios tool) or, with -o ndjson, as decoded events. It is
    streamed in chunks, so a bucket of any size is fine. A bucket file is
    not written to a terminal.

    With several --buck, the first one that holds the bucket is used."""
    from helios.errors import QueryError
    from helios.query.client import QueryClient
    from helios.store import layout

    cfg = load(config_path, kwargs, "query").query
    try:
        layout.parse_bucket_id(bucket_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="BUCKET_ID") from None
    ndjson = form == "ndjson"
    if dest == "-" and not ndjson and sys.stdout.isatty():
        _fail("refusing to write a binary bucket file to a terminal: use -o ndjson for the events as JSON "
              "lines, --to FILE, or a pipe", 2)
    with QueryClient(timeout=cfg.timeout) as qc:
        endpoint = _holder(qc, cfg.bucks, bucket_id)
        stream = qc.fetch_bucket(endpoint, bucket_id)
        try:
            if ndjson:
                bad = _write_ndjson(stream, dest)
            else:
                bad = 0
                _write_bucket(stream, dest)
        except QueryError as exc:
            _fail(f"fetching {bucket_id} from {endpoint} failed after {stream.records} record(s): {exc}")
    open_note = "; it is still open, more may come" if stream.state == "open" else ""
    click.echo(f"helios: {bucket_id} from {endpoint}: {stream.records:,} record(s), {stream.bytes:,} bytes in "
               f"{stream.chunks} chunk(s){open_note}.", err=True)
    if stream.torn_tail or stream.skipped_bytes or stream.corrupt_records:
        click.echo(f"helios: the buck's file is damaged: {stream.corrupt_records} corrupt record(s), "
                   f"{stream.skipped_bytes} byte(s) skipped{', torn tail' if stream.torn_tail else ''}; "
                   "every record written is whole and passed its checksum.", err=True)
    if bad:
        click.echo(f"helios: {bad} record(s) could not be decoded as batches and were left out.", err=True)


def _holder(qc, endpoints, bucket_id: str) -> str:
    """The first buck (in --buck order) that lists the bucket."""
    from helios.errors import QueryError
    from helios.query.client import holders
    from helios.store import layout

    name = layout.parse_bucket_id(bucket_id)
    listings = qc.list_buckets(endpoints, name.environment, name.start * NS, name.end * NS)
    on = holders(listings).get(bucket_id, {})
    for ep in endpoints:
        if ep in on:
            return ep
    why = "; ".join(str(r) for r in listings.values() if isinstance(r, QueryError))
    _fail(f"no buck holds {bucket_id}" + (f" (and {why})" if why else ""))


def _write_bucket(stream, output: str) -> None:
    from helios.store.records import RecordWriter, encode_record

    if output == "-":
        out = sys.stdout.buffer
        for frame in stream:
            out.write(encode_record(frame))
        out.flush()
        return
    # Written beside the target and renamed once complete: an interrupted
    # get never leaves a partial file under the name asked for.
    path = Path(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.unlink(missing_ok=True)
        with RecordWriter(tmp) as w:
            batch: list[bytes] = []
            for frame in stream:
                batch.append(frame)
                if len(batch) >= 256:
                    w.append_many(batch)
                    batch.clear()
            w.append_many(batch)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_ndjson(stream, output: str) -> int:
    from helios import codec
    from helios.errors import FrameError
    from helios.eventform import to_json

    bad = 0
    out = sys.stdout.buffer if output == "-" else open(output, "wb")
    try:
        for frame in stream:
            try:
                _, events = codec.decode(frame)
            except FrameError:
                bad += 1
                continue
            out.write(b"".join(to_json(e) for e in events))
        out.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return bad


@buckets.command("stats", short_help="Each buck's figures: events, frames, storage, live feed.")
@query_options
@output_option(("table", "json"), "table", "table: one row per buck; json: each buck's whole stats, as its "
               "stats.json holds them.")
def stats(config_path: str | None, output: str, **kwargs: Any) -> None:
    """Print each buck's figures (what it writes to its stats.json): a table
    of name, uptime, frames, events, bytes stored, open buckets, bad frames,
    live subscriptions and disk free; with -o json the whole stats keyed by
    endpoint, where a buck that did not answer gets {"error": ...}. Exit 1
    when one did not answer."""
    import time

    from helios.errors import QueryError
    from helios.query.client import QueryClient

    cfg = load(config_path, kwargs, "query").query
    with QueryClient(timeout=cfg.timeout) as qc:
        answered = qc.stats(cfg.bucks)
    results = {ep: answered[ep] for ep in cfg.bucks if ep in answered}  # in the order given, not of answers
    results.update(answered)
    if output == "json":
        click.echo(json.dumps({ep: {"error": str(r)} if isinstance(r, QueryError) else r
                               for ep, r in results.items()}, indent=2, default=str))
    else:
        click.echo(stats_table(results, time.time()))
    failed = [ep for ep, r in results.items() if isinstance(r, QueryError)]
    for ep in failed:
        click.echo(f"helios: {results[ep]}", err=True)
    sys.exit(1 if failed else 0)


def stats_table(results: dict[str, Any], now: float) -> str:
    """The bucks' stats as aligned rows (a buck that did not answer: DOWN)."""
    rows = [["BUCK", "NAME", "UP", "FRAMES", "EVENTS", "STORED", "OPEN", "BAD", "SUBS", "DISK FREE"]]
    for ep, r in results.items():
        if not isinstance(r, dict):
            rows.append([_short(ep), "DOWN", *["-"] * 8])
            continue
        live = r.get("live") or {}
        up = max(now - float(r.get("started") or now), 0.0)
        rows.append([_short(ep), str(r.get("name") or "-"),
                     f"{up / 3600:.1f} h" if up >= 5400 else f"{up / 60:.0f} min" if up >= 90 else f"{up:.0f} s",
                     f"{r.get('frames', 0):,}", f"{r.get('events', 0):,}", _size(int(r.get("stored_bytes") or 0)),
                     str(r.get("open_buckets", "-")), f"{sum((r.get('bad_frames') or {}).values()):,}",
                     str(live.get("subscriptions", "-")),
                     _size(int(r["disk_free"])) if r.get("disk_free") is not None else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


COMMANDS = [buckets]
