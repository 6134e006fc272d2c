"""``helios graphite``: bridge the live feed to Graphite."""

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
@flag("graphite.carbon", "--carbon", metavar="HOST:PORT")
@flag("graphite.prefix", "--prefix")
@flag("graphite.interval", "--interval", type=int, metavar="SECONDS")
@flag("graphite.forget_after", "--forget-after", type=int, metavar="INTERVALS")
@flag("graphite.max_series", "--max-series", type=int)
@flag("graphite.max_buffer", "--max-buffer", type=int, metavar="LINES")
@filter_options
def graphite(config_path: str | None, environments: tuple[str, ...], apps: tuple[str, ...],
             severity: str | None, hosts: tuple[str, ...], contains: tuple[str, ...], **kwargs: Any) -> None:
    """Bridge the live feed to Graphite: count the events of every buck (each
    once) per environment, app, severity and host, and write the counts to
    carbon's plaintext protocol every --interval, as
    PREFIX.events.ENV.APP.SEVERITY.HOST COUNT TIMESTAMP.

    Series with no events are written as 0 until quiet for --forget-after
    intervals. SIGTERM or Ctrl-C writes the interval in progress and exits."""
    from helios.services.graphite import Bridge

    cfg = load(config_path, kwargs, "graphite")
    run_service(lambda: Bridge(build_feed(cfg, environments, apps, severity, hosts, contains), cfg.graphite,
                               connect_timeout=cfg.subscribe.connect_timeout))


COMMANDS = [graphite]
