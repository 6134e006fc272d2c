"""``helios audit``: prove nothing was lost."""

from __future__ import annotations

import sys
from typing import Any

import click

from helios.commands.common import buck_options, config_option, load, output_option


@click.command()
@click.argument("more_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[DATA_DIR]...")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A buck's data directory, read in place (repeat for every buck; more may follow as "
              "arguments: --data-dir A B).")
@buck_options("query.bucks", "query")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              metavar="SECONDS", help="How long a running buck may take to answer.")
@click.option("--env", "-e", "environment", help="Only this environment (default: all).")
@click.option("--start", help="Only buckets from this time on: ISO 8601 (UTC if no offset) or relative, like -2h.")
@click.option("--end", help="Only buckets before this time (same forms as --start).")
@output_option(("text", "json"), "text", "text: the report; json: the report as JSON.")
@config_option
def audit(more_dirs: tuple[str, ...], data_dirs: tuple[str, ...], timeout: float, environment: str | None,
          start: str | None, end: str | None, output: str, config_path: str | None, **kwargs: Any) -> None:
    """Prove nothing was lost: merge the byte ranges of every tailed file held
    by the bucks (read from their data directories, or asked of running bucks
    with --buck) and report, per host and file, any gap; and, from the
    tailers' inventory, every byte seen on disk that no buck holds and every
    file seen but not read to its end, with the reason. Exit 0 when there is
    none, 1 otherwise. A buck that does not answer is reported, and what the
    others hold is audited."""
    from helios import audit as audit_mod
    from helios.timespec import TimeSpecError, parse_time

    data_dirs = (*data_dirs, *more_dirs)
    asked = any(kwargs.get(k) for k in ("mesh__bucks", "query__bucks"))
    cfg = load(config_path, kwargs, "query")  # the bucks, and CURVE keys for asking them
    if config_path is not None and {"mesh", "query"} & cfg.sections_present:
        asked = True
    bucks = list(cfg.query.bucks) if asked else []
    if not data_dirs and not bucks:
        raise click.UsageError("give the bucks to audit: DATA_DIR... (or --data-dir DIR), or --buck HOST[:PORT] "
                               "(repeatable)")
    try:
        t0 = parse_time(start) if start else None
        t1 = parse_time(end) if end else None
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    report = audit_mod.audit([*data_dirs], bucks, environment, t0, t1, timeout=timeout)
    click.echo(audit_mod.render(report, as_json=output == "json"))
    sys.exit(0 if report.ok else 1)


COMMANDS = [audit]
