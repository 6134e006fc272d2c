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
              help="Where bucks keep their files (default: a new temporary folder, kept on exit).")
@click.option("--env", "environment", default="demo", show_default=True, help="Environment of the events.")
@click.option("--web/--no-web", default=True, show_default=True, help="Also serve the browser live tail.")
def demo(logs: tuple[str, ...], rate: int, duration: float | None, workdir: str | None, environment: str,
         web: bool) -> None:
    """Run the whole mesh on this machine on embedded defaults: two bucks, a
    tailer, the browser live tail, and a generator writing realistic log
    lines to a file in a temporary folder, all on 127.0.0.1. Prints what runs
    where (with the live tail's address) and a live count of events received
    by each buck. Ctrl-C stops everything cleanly.

    Given LOGS (e.g. /var/log/syslog), the tailer follows those instead of the
    generator's file, from their end."""
    from helios.services.demo import Demo

    d = Demo(logs=list(logs), rate=rate, workdir=workdir, environment=environment, web=web)
    signal.signal(signal.SIGTERM, lambda *_: d.stop())
    signal.signal(signal.SIGINT, lambda *_: d.stop())
    try:
        sys.exit(d.run(duration))
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)


COMMANDS = [demo]
