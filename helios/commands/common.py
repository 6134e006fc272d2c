"""The plumbing every ``helios`` command shares: the root group's options,
config loading (file, then flags over it), the flags that set config keys,
running a service until SIGTERM, and the live filter options.

Command modules (``helios.commands.*``) import this module, never
``helios.cli``, which only assembles the group from them.

Exit codes: 0 done, 1 a service failed (the message says why), 2 bad
configuration or usage (every problem listed).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

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


def spool_options(section: str) -> Callable:
    """The flags of the spool keys (``config.Spool``, shared by [tailer] and
    [relay]): one list, so both commands offer the same ones."""
    options = [
        flag(f"{section}.spool_window", "--spool-window", type=int, metavar="SECONDS"),
        flag(f"{section}.spool_max_bytes", "--spool-max-bytes", type=int),
        flag(f"{section}.spool_max_age", "--spool-max-age", type=float, metavar="SECONDS"),
        flag(f"{section}.resend_jitter", "--resend-jitter", type=float, metavar="SECONDS"),
        flag(f"{section}.live_wait", "--live-wait", type=float, metavar="SECONDS"),
    ]

    def apply(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f
    return apply


# The explicit endpoint flag of each role (helios.wire.address.OFFSETS).
ROLE_FLAGS = {"ingest": "--ingest", "feed": "--feed", "query": "--query"}
ROLE_NAMES = {"ingest": "ingest (PULL)", "feed": "live feed (PUB)", "query": "bucket query (ROUTER)"}


def buck_options(key: str, role: str, *old: str) -> Callable:
    """``--buck/-b HOST[:PORT]``, the bucks' one address each (config
    [mesh] bucks), and the explicit endpoint flag of ``role`` (config key
    ``section.key``), which wins over it for bucks with unrelated ports.
    ``old`` are earlier names of the explicit flag, kept hidden."""
    options = [
        flag("mesh.bucks", "--buck", "-b", multiple=True, metavar="HOST[:PORT]",
             help=f"A buck's address: its ingest port (default 7301); the {ROLE_NAMES[role]} endpoint "
                  f"follows from it (live feed: port + 1, query: + 2). Repeat for every buck; "
                  f"config [mesh] bucks."),
        flag(key, ROLE_FLAGS[role], multiple=True, metavar="ENDPOINT",
             help=f"A buck's {ROLE_NAMES[role]} endpoint, for a buck whose ports do not follow from "
                  f"its address (repeatable; wins over --buck; config [{key.split('.')[0]}] "
                  f"{key.split('.')[1]}).  [default: {_shown(config.default(*key.split('.')))}]"),
    ]
    if old:
        options.append(flag(key, *old, multiple=True, hidden=True))

    def apply(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f
    return apply


def output_option(choices: tuple[str, ...], default: str, help: str) -> Callable:
    """``-o/--output FORMAT``, with ``--json`` kept as an alias of ``-o json``
    (when json is one of the formats). The command gets ``output``."""
    def apply(f: Callable) -> Callable:
        f = click.option("--output", "-o", type=click.Choice(choices), default=default, show_default=True,
                         help=help)(f)
        if "json" in choices:
            f = click.option("--json", "output", flag_value="json", hidden=True,
                             help="The same as -o json.")(f)
        return f
    return apply


def warn_copies(section: Any, name: str) -> None:
    """One line when ``copies`` is more than the bucks there are: each batch
    then goes to every buck (helios.wire.fanout.Fanout takes the smaller)."""
    if section.copies > len(section.bucks):
        click.echo(f"helios: warning: {name} copies = {section.copies}, but there are {len(section.bucks)} "
                   f"buck(s): each batch goes to every one ({len(section.bucks)} copies).", err=True)


def config_option(f: Callable) -> Callable:
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                        help="TOML config file (see `helios check-config --example`).")(f)


def overrides_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config keys set by flags (parameters named ``section__key``)."""
    return {k.replace("__", ".", 1): v for k, v in kwargs.items() if "__" in k}


def load(config_path: str | None, kwargs: dict[str, Any], section: str) -> config.Config:
    """The config of the command of ``section``; its [security] becomes the
    process's (helios.wire.curve.use), so that with CURVE on every socket the
    command makes is a CURVE one, and the key files it needs are checked now."""
    from helios.wire import curve

    try:
        cfg = config.load(config_path, overrides_of(kwargs), require=(section,))
        curve.use(cfg.security, section)
        return cfg
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)


def run_service(make: Callable[[], Any]) -> None:
    """Build a service with ``make`` and run it until SIGTERM or Ctrl-C, which
    ask it to finish cleanly. A service that cannot start or run exits 1
    with its reason."""
    try:
        service = make()
    except ConfigError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(2)
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)
    def ask_stop(signum, frame):
        log.info("Received %s; finishing.", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    if hasattr(service, "reload"):
        def ask_reload(signum, frame):
            log.info("Received SIGHUP; reloading the configuration.")
            service.reload()

        signal.signal(signal.SIGHUP, ask_reload)
    try:
        service.run()
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)


def make_group() -> click.Group:
    """The ``helios`` group with its own options and no commands yet."""

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

    return cli


def run_alone(command: click.Command) -> None:
    """Run ``command`` with this process's arguments as ``helios NAME ARGS``
    does (a console script such as ``helios-porter``)."""
    group = make_group()
    group.add_command(command)
    group([command.name, *sys.argv[1:]], prog_name="helios")


# --- live subscribers: subscribe, check, graphite ---

def filter_options(f: Callable) -> Callable:
    """The live filter flags shared by subscribe, check and graphite."""
    options = [
        click.option("--env", "-e", "environments", multiple=True, metavar="ENV",
                     help="Only this environment (repeatable: any of them)."),
        click.option("--app", "-a", "apps", multiple=True, metavar="APP",
                     help="Only this app (repeatable: any of them)."),
        click.option("--severity", "-s", metavar="LEVEL",
                     help="Only events this severe or worse: emerg, alert, crit, err, warning, "
                          "notice, info, debug, or 0..7 (default: all, also unknown)."),
        click.option("--host", "hosts", multiple=True, metavar="HOST",
                     help="Only this host (repeatable: any of them)."),
        click.option("--contains", multiple=True, metavar="TEXT",
                     help="Only events whose message contains TEXT (repeatable: all of them)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_feed(cfg: config.Config, environments: tuple[str, ...], apps: tuple[str, ...],
               severity: str | None, hosts: tuple[str, ...], contains: tuple[str, ...]):
    """The filter and the feed of every buck; ConfigError or ServiceError if they cannot be."""
    from helios.live.feed import Feed
    from helios.live.filter import Filter, parse_severity

    flt = Filter(environments=environments, apps=apps, hosts=hosts,
                 severity=None if severity is None else parse_severity(severity),
                 contains=tuple(c.encode() for c in contains))
    s = cfg.subscribe
    return Feed(list(s.bucks), flt, dedup_window=s.dedup_window, dedup_max=s.dedup_max, rcvhwm=s.rcvhwm)
