"""``helios check-config``: check a config file, or print the example."""

from __future__ import annotations

import json
import sys

import click

from helios import config
from helios.errors import ConfigError


@click.command("check-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--example", is_flag=True, help="Print a commented example config with every key and default.")
@click.option("--show", is_flag=True, help="Also print the effective config as JSON.")
def check_config(file: str | None, example: bool, show: bool) -> None:
    """Check a config FILE: exit 0 if it is valid, or exit 2 listing every
    problem with its key path."""
    if example:
        click.echo(config.describe())
        return
    if file is None:
        raise click.UsageError("give a FILE to check, or --example")
    try:
        cfg = config.load(file)
        from helios.wire import curve

        curve.load(cfg.security, serve=False, connect=False)  # the key files that are set: readable, private
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)
    present = ", ".join(sorted(cfg.sections_present)) or "none"
    click.echo(f"{file}: OK (sections: {present})")
    if show:
        click.echo(json.dumps(config.to_dict(cfg), indent=2))


COMMANDS = [check_config]
