"""``helios subscribe``: print the live events of every buck."""

from __future__ import annotations

from typing import Any

import click

from helios.commands.common import (
    buck_options,
    build_feed,
    config_option,
    filter_options,
    flag,
    load,
    run_service,
)


@click.command()
@config_option
@buck_options("subscribe.bucks", "feed")
@filter_options
@click.option("--output", "-o", type=click.Choice(["line", "raw", "json", "count"]), default="line",
              show_default=True, help="line: TIME ENV HOST APP SEVERITY MESSAGE; raw: the message as "
              "read; json: one JSON object per line; count: events per --interval.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              metavar="SECONDS", help="Seconds per line of --output count.")
@click.option("--limit", type=click.IntRange(min=1), help="Exit after this many events.")
@click.option("--duration", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Exit after this long (default: run until Ctrl-C).")
@click.option("--reorder-delay", type=click.FloatRange(min=0, max=5), default=0.02, show_default=True,
              metavar="SECONDS", help="Events are held this long to be printed in the order they "
              "were read (a batch arrives as one message per topic); 0 prints at once.")
@flag("subscribe.dedup_window", "--dedup-window", type=float, metavar="SECONDS")
@flag("subscribe.dedup_max", "--dedup-max", type=int)
@flag("subscribe.rcvhwm", "--rcvhwm", type=int, metavar="MESSAGES")
@flag("subscribe.connect_timeout", "--connect-timeout", type=float, metavar="SECONDS")
def subscribe(config_path: str | None, environments: tuple[str, ...], apps: tuple[str, ...],
              severity: str | None, hosts: tuple[str, ...], contains: tuple[str, ...], output: str,
              interval: float, limit: int | None, duration: float | None, reorder_delay: float,
              **kwargs: Any) -> None:
    """Print the live events of every buck as they arrive, each once (the
    copy from the second buck is dropped), filtered by environment, app,
    severity, host and substring. The bucks send only what the filter can
    want (ZeroMQ prefix subscriptions).

    Ctrl-C exits cleanly. If this subscriber reads too slowly, the bucks drop
    for it rather than slow down; it says how many (count output, and on exit)."""
    from helios.services.subscribe import Subscriber

    cfg = load(config_path, kwargs, "subscribe")
    run_service(lambda: Subscriber(build_feed(cfg, environments, apps, severity, hosts, contains), output,
                                   interval=interval, limit=limit, duration=duration,
                                   connect_timeout=cfg.subscribe.connect_timeout, reorder_delay=reorder_delay))


COMMANDS = [subscribe]
