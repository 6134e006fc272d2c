"""``helios``: the services and the operator tools.

Each command loads the config (file, then flags over it), validates it,
builds its service and runs it. Every flag that sets a config key takes its
help text and shown default from the one schema in ``helios.config``.

Exit codes: 0 done, 1 a service failed (the message says why), 2 bad
configuration or usage (every problem listed).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any, Callable

import click

from helios import __version__, config
from helios.errors import ConfigError, HeliosError

log = logging.getLogger("helios")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    if value == "":
        return '""'
    return str(value).lower() if isinstance(value, bool) else str(value)


def flag(key: str, *decls: str, **kw: Any) -> Callable:
    """A click option that overrides config key ``section.key``."""
    section, name = key.split(".")
    # The flag's own default is None, so that "not given" leaves the file's
    # value alone; the help shows the schema's default instead.
    kw.setdefault("help", f"{config.doc(section, name)}  [default: {_shown(config.default(section, name))}]")
    return click.option(*decls, f"{section}__{name}", default=None, **kw)


def config_option(f: Callable) -> Callable:
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                        help="TOML config file (see `helios check-config --example`).")(f)


def load(config_path: str | None, kwargs: dict[str, Any], section: str) -> config.Config:
    overrides = {k.replace("__", ".", 1): v for k, v in kwargs.items() if "__" in k}
    try:
        return config.load(config_path, overrides, require=(section,))
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)


def run_service(service) -> None:
    """Run until SIGTERM or Ctrl-C, which ask the service to finish cleanly."""
    def ask_stop(signum, frame):
        log.info("Received %s; finishing.", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    try:
        service.run()
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="helios")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
              help="Least severe log messages shown (on standard error).")
def cli(log_level: str) -> None:
    """Helios: collect log lines and events from every host, keep them on a
    masterless mesh of bucks, show them live, and find any past line.

    Run `helios COMMAND --help` for what each command does and its defaults."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@cli.command()
@config_option
@flag("buck.ingest", "--ingest", metavar="ENDPOINT")
@flag("buck.data_dir", "--data-dir", metavar="DIR")
@flag("buck.window", "--window", type=int, metavar="SECONDS")
@flag("buck.fsync", "--fsync/--no-fsync")
@flag("buck.name", "--name")
@flag("buck.max_frame_bytes", "--max-frame-bytes", type=int)
@flag("buck.stats_interval", "--stats-interval", type=float, metavar="SECONDS")
def buck(config_path: str | None, **kwargs: Any) -> None:
    """Run a buck: take batches on a PULL socket and append them to
    per-environment time bucket files under DATA_DIR/buckets/ENV/YYYYMMDD/.

    Frames are checked (version, header, checksum) and stored as they arrived;
    a bad frame is counted and logged, never fatal. SIGTERM flushes and exits."""
    from helios.services.buck import Buck

    cfg = load(config_path, kwargs, "buck")
    try:
        service = Buck(cfg.buck)
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)
    run_service(service)


@cli.command()
@config_option
@flag("tailer.paths", "--path", "-p", multiple=True, metavar="GLOB")
@flag("tailer.bucks", "--buck", "-b", multiple=True, metavar="ENDPOINT")
@flag("tailer.environment", "--env", "-e")
@flag("tailer.host", "--host")
@flag("tailer.app", "--app")
@flag("tailer.format", "--format", type=click.Choice(["auto", "rfc3164", "rfc5424", "iso8601", "json", "raw"]))
@flag("tailer.timezone", "--timezone")
@flag("tailer.start_at", "--start-at", type=click.Choice(["end", "beginning"]))
@flag("tailer.copies", "--copies", type=int)
@flag("tailer.batch_events", "--batch-events", type=int)
@flag("tailer.batch_bytes", "--batch-bytes", type=int)
@flag("tailer.batch_delay", "--batch-delay", type=float, metavar="SECONDS")
@flag("tailer.poll_interval", "--poll-interval", type=float, metavar="SECONDS")
@flag("tailer.rescan_interval", "--rescan-interval", type=float, metavar="SECONDS")
def tailer(config_path: str | None, **kwargs: Any) -> None:
    """Run a tailer: follow the files matching the globs (new files are picked
    up while running), parse each line's time, host, app and severity, and
    send every batch to COPIES distinct bucks chosen at random among the
    connected ones.

    Lines that cannot be parsed keep their receive time; none is dropped."""
    from helios.services.tailer import Tailer

    cfg = load(config_path, kwargs, "tailer")
    run_service(Tailer(cfg.tailer))


@cli.command("check-config")
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
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)
    present = ", ".join(sorted(cfg.sections_present)) or "none"
    click.echo(f"{file}: OK (sections: {present})")
    if show:
        click.echo(json.dumps(config.to_dict(cfg), indent=2))


@cli.command()
@click.argument("logs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--rate", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Lines per second the generator writes (when no LOGS are given).")
@click.option("--duration", type=float, metavar="SECONDS",
              help="Stop after this long (default: run until Ctrl-C).")
@click.option("--dir", "workdir", type=click.Path(file_okay=False),
              help="Where bucks keep their files (default: a new temporary folder, kept on exit).")
@click.option("--env", "environment", default="demo", show_default=True, help="Environment of the events.")
def demo(logs: tuple[str, ...], rate: int, duration: float | None, workdir: str | None, environment: str) -> None:
    """Run the whole mesh on this machine on embedded defaults: two bucks, a
    tailer, and a generator writing realistic log lines to a file in a
    temporary folder, all on 127.0.0.1. Prints what runs where and a live
    count of events received by each buck. Ctrl-C stops everything cleanly.

    Given LOGS (e.g. /var/log/syslog), the tailer follows those instead of the
    generator's file, from their end."""
    from helios.services.demo import Demo

    d = Demo(logs=list(logs), rate=rate, workdir=workdir, environment=environment)
    signal.signal(signal.SIGTERM, lambda *_: d.stop())
    signal.signal(signal.SIGINT, lambda *_: d.stop())
    try:
        sys.exit(d.run(duration))
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)


def main() -> None:
    cli(prog_name="helios")


if __name__ == "__main__":
    main()


def buck_main() -> None:
    """``helios-buck``: the same as ``helios buck``."""
    cli(["buck", *sys.argv[1:]], prog_name="helios")


def tailer_main() -> None:
    """``helios-tailer``: the same as ``helios tailer``."""
    cli(["tailer", *sys.argv[1:]], prog_name="helios")
