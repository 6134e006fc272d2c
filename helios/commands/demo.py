"""``helios demo``: the whole mesh on this machine."""

from __future__ import annotations

import signal
import sys

import click

from helios.errors import HeliosError


@click.command()
@click.argument("logs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--rate", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Lines per second the generator writes (when no LOGS are given).")
@click.option("--duration", type=float, metavar="SECONDS",
              help="Stop after this long (default: run until Ctrl-C).")
@click.option("--dir", "workdir", type=click.Path(file_okay=False),
              help="The folder of everything the demo writes (default: a new temporary folder, kept on exit).")
@click.option("--env", "environment", default="demo", show_default=True, help="Environment of the events.")
@click.option("--web/--no-web", default=True, show_default=True, help="Also serve the browser live tail.")
@click.option("--journal/--no-journal", default=None,
              help="Also read this machine's systemd journal, from its newest entry on "
                   "(default: when journalctl shows an entry here).")
@click.option("--window", default=10, show_default=True, type=click.IntRange(1, 3600), metavar="SECONDS",
              help="Width of the bucks' and the spool's windows; it must divide 86400. Events are searchable "
              "2 to 3 windows after they are written.")
@click.option("--index-open-windows/--no-index-open-windows", default=True, show_default=True,
              help="The porter also indexes the windows the bucks still hold open: events are searchable within "
              "seconds, not 2 to 3 windows later.")
def demo(logs: tuple[str, ...], rate: int, duration: float | None, workdir: str | None, environment: str,
         web: bool, journal: bool | None, window: int, index_open_windows: bool) -> None:
    """Run the whole mesh on this machine on embedded defaults: two bucks, a
    tailer, the porter, a history server, the web (live tail, search, archie)
    and a generator writing realistic log lines (with priorities, several
    hosts and apps), all on 127.0.0.1, everything in one folder (a new
    temporary one, or --dir). Prints what runs where, every endpoint, a
    working command for each tool, the web address once the page answers,
    and once a second the counts: lines generated, events read, copies the
    bucks stored, distinct events indexed. Ctrl-C stops everything cleanly.

    Given LOGS (e.g. /var/log/syslog), the tailer follows those instead of the
    generator's file, from their end. The tailer also reads the machine's
    systemd journal when it has one (--no-journal: not)."""
    from helios.services.demo import Demo

    if 86400 % window:
        raise click.BadParameter(f"{window} does not divide 86400 (a day): try 5, 10, 15, 20, 30 or 60",
                                 param_hint="--window")
    d = Demo(logs=list(logs), rate=rate, workdir=workdir, environment=environment, web=web, journal=journal,
             window=window, index_open_windows=index_open_windows)
    signal.signal(signal.SIGTERM, lambda *_: d.stop())
    signal.signal(signal.SIGINT, lambda *_: d.stop())
    try:
        sys.exit(d.run(duration))
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)


COMMANDS = [demo]
