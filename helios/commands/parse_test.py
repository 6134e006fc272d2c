"""``helios parse-test``: what the tailer would read from each line of a file."""

from __future__ import annotations

import sys
from collections import Counter

import click

CHUNK_LINES = 2000


@click.command("parse-test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config whose [tailer] (format, timezone, app, [[tailer.parse]] rules) is used.")
@click.option("--path", "as_path", metavar="PATH",
              help="Read FILE as if it were PATH (which [[tailer.parse]] table applies); default: FILE's own path.")
@click.option("--now", metavar="TIME", help="When the lines were read (for the year of yearless dates), "
                                             "like 2024-03-11T12:00:00Z; default: now.")
@click.option("--limit", type=int, default=0, help="Show at most this many lines (0: all); counts cover all.")
@click.option("--quiet", "-q", is_flag=True, help="Only the counts.")
def parse_test(file: str, config_path: str | None, as_path: str | None, now: str | None, limit: int,
               quiet: bool) -> None:
    """Parse FILE as the tailer would and print, per line, the rule or layout
    that read it, the environment its event goes to, and the time, host, app,
    severity and fields it gave; then the count of lines per rule and layout
    (with the environment of each rule's lines), per environment, and how many
    nothing recognised (those keep the time they were read, and the default
    host and app).

    Exit code 0 when every line was recognised, 1 when some were not, 2 on
    a bad config or rule."""
    import datetime
    import os

    from helios import config
    from helios.errors import ConfigError
    from helios.model import severity_name
    from helios.parsing import containers
    from helios.parsing.profiles import Profiles
    from helios.parsing.rules import RuleError
    from helios.timespec import TimeSpecError, parse_time

    try:
        cfg = config.load(config_path).tailer if config_path else config.Tailer()
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)
    try:
        now_ns = int(parse_time(now) * 1e9) if now else datetime.datetime.now().timestamp() * 1e9
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None
    path = as_path or os.path.abspath(file)
    try:
        profiles = Profiles(cfg.format, cfg.host or "-", cfg.app, cfg.timezone, cfg.parse)
    except (RuleError, ValueError) as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)
    parser = profiles.parser(path)
    parser.explain = True
    table = profiles.table_of(path)
    rules = [r.name for r in parser.rules]
    # Where the events go: the table's environment (else the tailer's), or a rule's for the lines it matched.
    home = profiles.environment(path, cfg.environment)
    rule_env = {r.name: r.set_environment or home for r in parser.rules}
    click.echo(f"# {file} read as {path}: "
               + (f"[[tailer.parse]] table {table + 1}, rules: {', '.join(rules) or '(none)'}"
                  if table is not None else "no [[tailer.parse]] table matches; the default parser")
               + f"; zone {cfg.timezone if table is None else cfg.parse[table].get('timezone', cfg.timezone)}"
               + f"; environment {home}")
    # A container log (its first line a Docker json-file or CRI record, or a table's format docker/cri):
    # its records are joined into the application's lines, as the tailer does.
    with open(file, "rb") as f:
        first = f.readline()
    mode = profiles.container_format(path)
    joining = mode == "join" or (mode == "auto" and containers.looks_like(first))
    if joining:
        click.echo("# container records: split lines are joined, as the tailer does")
    counts: Counter = Counter()
    envs: Counter = Counter()
    shown = 0
    number = 0
    pending: list = []
    offset = 0
    with open(file, "rb") as f:
        while True:
            lines = [line for _, line in zip(range(CHUNK_LINES), f)]
            joined = None
            if joining:
                items = []
                for line in lines:
                    items.append((offset, line[:-1] if line.endswith(b"\n") else line))
                    offset += len(line)
                joined, pending = containers.join_lines(pending, items)
                if not lines:
                    joined, pending = containers.flush_pending(pending), []
                lines = [j.head.replace(b"\n", b" ") + b"\n" for j in joined]
            if not lines:
                break
            chunk = b"".join(lines)
            cols = parser.parse_chunk(chunk, int(now_ns))
            moved = parser.environments
            if joined is not None:      # the joined text is the message; the record's fields are kept
                cols = cols._replace(messages=[j.message for j in joined],
                                     fields=[{**(parsed or {}), **j.fields} or None
                                             for parsed, j in zip(cols.fields, joined)])
            for k in range(len(cols.lines)):
                number += 1
                what = parser.matched[k] or "unparsed"
                counts[what] += 1
                env = moved.get(k, home)
                envs[env] += 1
                if quiet or (limit and shown >= limit):
                    continue
                shown += 1
                t = cols.times[k]
                when = ("(time read)" if what == "unparsed" else
                        datetime.datetime.fromtimestamp(t // 10**9, datetime.timezone.utc)
                        .strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 10**9:09d}Z")
                fields = cols.fields[k]
                extra = ("  " + " ".join(f"{key}={value!r}" for key, value in fields.items())) if fields else ""
                click.echo(f"{number:6d} {what:<16} {when} env={env} host={cols.hosts[k]!r} app={cols.apps[k]!r} "
                           f"severity={severity_name(cols.severities[k])}{extra}")
                click.echo(f"       | {cols.messages[k].decode('utf-8', 'replace')}")
    click.echo(f"# {number} {'events' if joining else 'lines'}")
    by_rules = 0
    for name in rules:
        count = counts.pop(name, 0)
        by_rules += count
        click.echo(f"#   rule {name:<20} {count:8d}  -> environment {rule_env[name]}")
    if rules:
        click.echo(f"#   {'no rule matched':<25} {number - by_rules:8d}")
    unparsed = counts.pop("unparsed", 0)
    for name, count in counts.most_common():
        click.echo(f"#   {name:<25} {count:8d}")
    click.echo(f"#   {'unparsed':<25} {unparsed:8d}")
    for env, count in sorted(envs.items()):
        click.echo(f"#   environment {env:<13} {count:8d}")
    sys.exit(1 if unparsed else 0)


COMMANDS = [parse_test]
