"""``helios audit``: prove nothing was lost."""

from __future__ import annotations

import sys

import click

from helios.commands.common import load


@click.command()
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A buck's data directory, read in place (repeat for every buck).")
@click.option("--buck", "-b", "bucks", multiple=True, metavar="ENDPOINT",
              help="A running buck's bucket query endpoint ([buck] query; repeat for every buck).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              metavar="SECONDS", help="How long a --buck may take to answer.")
@click.option("--env", "environment", help="Only this environment (default: all).")
@click.option("--start", help="Only buckets from this time on: ISO 8601 (UTC if no offset) or relative, like -2h.")
@click.option("--end", help="Only buckets before this time (same forms as --start).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config file: its [security] (CURVE keys) is used to ask the --buck ones.")
def audit(data_dirs: tuple[str, ...], bucks: tuple[str, ...], timeout: float, environment: str | None,
          start: str | None, end: str | None, as_json: bool, config_path: str | None) -> None:
    """Prove nothing was lost: merge the byte ranges of every tailed file held
    by the bucks (read from their data directories, or asked of running bucks
    with --buck) and report, per host and file, any gap; and, from the
    tailers' inventory, every byte seen on disk that no buck holds and every
    file seen but not read to its end, with the reason. Exit 0 when there is
    none, 1 otherwise. A --buck that does not answer is reported, and what the
    others hold is audited."""
    from helios import audit as audit_mod
    from helios.timespec import TimeSpecError, parse_time

    if not data_dirs and not bucks:
        raise click.UsageError("give the bucks to audit: --data-dir DIR or --buck ENDPOINT (repeatable)")
    if config_path is not None:
        load(config_path, {}, "query")  # CURVE keys, for asking the --buck ones
    try:
        t0 = parse_time(start) if start else None
        t1 = parse_time(end) if end else None
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    report = audit_mod.audit([*data_dirs], [*bucks], environment, t0, t1, timeout=timeout)
    click.echo(audit_mod.render(report, as_json=as_json))
    sys.exit(0 if report.ok else 1)


COMMANDS = [audit]
