"""``helios check``: a Nagios / monitoring-plugins check of the live feed."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from helios import config
from helios.commands.common import buck_options, build_feed, filter_options, flag
from helios.errors import ConfigError, HeliosError


class PluginCommand(click.Command):
    """A monitoring plugin: bad arguments are UNKNOWN (exit 3), said on
    standard output, where Nagios reads a plugin's status."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            click.echo(f"HELIOS UNKNOWN - bad arguments: {exc.format_message()}")
            sys.exit(3)



@click.command(cls=PluginCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config file (its [mesh] bucks, or [subscribe] bucks; see `helios check-config --example`).")
@buck_options("subscribe.bucks", "feed")
@filter_options
@click.option("--duration", "seconds", type=click.FloatRange(min=0.1, max=3600), default=10.0, show_default=True,
              metavar="SECONDS", help="Seconds of live events to count (keep it under the monitor's plugin "
              "timeout).")
@click.option("--seconds", "seconds", type=click.FloatRange(min=0.1, max=3600), hidden=True,
              help="The same as --duration.")
@click.option("--warning", "-w", metavar="RANGE", help="Warning when the count breaches this "
              "monitoring-plugins range: 10 (more than 10), 10: (fewer than 10), ~:10 (more than "
              "10), 10:20 (outside 10..20), @10:20 (inside 10..20).")
@click.option("--critical", "-c", metavar="RANGE", help="Critical when the count breaches this range "
              "(same forms as --warning; looked at first).")
@click.option("--label", default="events", show_default=True, help="Perfdata label of the count.")
@flag("subscribe.connect_timeout", "--connect-timeout", type=float, metavar="SECONDS")
def check(config_path: str | None, environments: tuple[str, ...], apps: tuple[str, ...],
          severity: str | None, hosts: tuple[str, ...], contains: tuple[str, ...], seconds: float,
          warning: str | None, critical: str | None, label: str, **kwargs: Any) -> None:
    """A Nagios / monitoring-plugins check: count the live events that match
    the filter during --duration (each event once, from every buck) and compare
    the count with the --warning and --critical ranges.

    Prints one status line with perfdata ('events', 'dropped', 'bucks') and
    exits 0 OK, 1 WARNING, 2 CRITICAL, or 3 UNKNOWN (no buck reachable, bad
    arguments)."""
    from helios.live.plugin import UNKNOWN, Range
    from helios.services.check import Check

    def unknown(text: str) -> None:
        click.echo(f"HELIOS UNKNOWN - {text}")
        sys.exit(UNKNOWN)

    overrides = {k.replace("__", ".", 1): v for k, v in kwargs.items() if "__" in k}
    try:
        cfg = config.load(config_path, overrides)
        from helios.wire import curve

        curve.use(cfg.security, "subscribe")  # the live feed's sockets are CURVE ones when it is on
        w = Range.parse(warning) if warning is not None else None
        c = Range.parse(critical) if critical is not None else None
        if "'" in label or "=" in label:
            raise ConfigError(["label: may not contain ' or ="], source="arguments")
        feed = build_feed(cfg, environments, apps, severity, hosts, contains)
    except ConfigError as exc:
        unknown("bad arguments: " + "; ".join(exc.problems))
    except HeliosError as exc:
        unknown(str(exc))
    service = Check(feed, seconds, w, c, connect_timeout=cfg.subscribe.connect_timeout, label=label)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    code, line = service.run()
    click.echo(line)
    sys.exit(code)


COMMANDS = [check]
