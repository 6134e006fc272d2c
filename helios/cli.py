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
@flag("buck.publish", "--publish", metavar="ENDPOINT")
@flag("buck.publish_hwm", "--publish-hwm", type=int, metavar="MESSAGES")
@flag("buck.http", "--http", metavar="HOST:PORT")
@flag("buck.durability", "--durability", type=click.Choice(["received", "written", "fsynced"]))
@flag("buck.http_max_body", "--http-max-body", type=int, metavar="BYTES")
@flag("buck.http_max_events", "--http-max-events", type=int, metavar="EVENTS")
@flag("buck.http_max_pending", "--http-max-pending", type=int, metavar="REQUESTS")
@flag("buck.http_environment", "--http-env", metavar="ENV")
@flag("buck.query", "--query", metavar="ENDPOINT")
@flag("buck.query_max_bytes", "--query-max-bytes", type=int, metavar="BYTES")
@flag("buck.metrics", "--metrics", metavar="HOST:PORT")
@flag("buck.http_tokens", "--http-token", multiple=True, metavar="ENV=sha256:HEX")
@flag("buck.http_tls_cert", "--http-tls-cert", metavar="PEM")
@flag("buck.http_tls_key", "--http-tls-key", metavar="PEM")
@flag("buck.http_max_connections", "--http-max-connections", type=int)
@flag("buck.http_max_fields", "--http-max-fields", type=int)
@flag("buck.http_max_field_bytes", "--http-max-field-bytes", type=int, metavar="BYTES")
@flag("buck.max_raw_bytes", "--max-raw-bytes", type=int)
@flag("buck.max_batch_events", "--max-batch-events", type=int)
@flag("buck.full_retry", "--full-retry", type=float, metavar="SECONDS")
@flag("buck.full_log_interval", "--full-log-interval", type=float, metavar="SECONDS")
def buck(config_path: str | None, **kwargs: Any) -> None:
    """Run a buck: take batches on a PULL socket and append them to
    per-environment time bucket files under DATA_DIR/buckets/ENV/YYYYMMDD/.

    Frames are checked (version, header, checksum) and stored as they arrived;
    a bad frame is counted and logged, never fatal. SIGTERM flushes and exits.

    With --http, also take events as JSON, NDJSON or msgpack on
    POST http://HOST:PORT/v1/events, answered once --durability is reached.

    Bucket queries (helios buckets, helios audit --buck, the porter) are
    answered on --query, by default the ingest port + 2."""
    from helios.services.buck import Buck

    cfg = load(config_path, kwargs, "buck")
    run_service(lambda: Buck(cfg.buck))


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
@flag("tailer.state_dir", "--state-dir", metavar="DIR")
@flag("tailer.spool", "--spool/--no-spool")
@flag("tailer.spool_window", "--spool-window", type=int, metavar="SECONDS")
@flag("tailer.spool_max_bytes", "--spool-max-bytes", type=int)
@flag("tailer.resend_jitter", "--resend-jitter", type=float, metavar="SECONDS")
@flag("tailer.live_wait", "--live-wait", type=float, metavar="SECONDS")
@flag("tailer.positions_interval", "--positions-interval", type=float, metavar="SECONDS")
@flag("tailer.rotate_wait", "--rotate-wait", type=float, metavar="SECONDS")
@flag("tailer.partial_flush", "--partial-flush", type=float, metavar="SECONDS")
@flag("tailer.max_line_bytes", "--max-line-bytes", type=int)
@flag("tailer.multiline_start", "--multiline-start", metavar="REGEX")
@flag("tailer.max_open_files", "--max-open-files", type=int)
@flag("tailer.metrics", "--metrics", metavar="HOST:PORT")
@flag("tailer.encoders", "--encoders", type=int, metavar="N")
def tailer(config_path: str | None, **kwargs: Any) -> None:
    """Run a tailer: follow the files matching the globs (new files are picked
    up while running), parse each line's time, host, app and severity, and
    send every batch to COPIES distinct bucks chosen at random among the
    connected ones.

    Lines that cannot be parsed keep their receive time; none is dropped.
    Every batch is appended to a local spool before its offset is saved, and
    each closed spool bucket is re-sent to one random buck. SIGTERM saves
    positions and exits; SIGHUP reloads the config file (flags still win)."""
    from helios.services.tailer import Tailer

    cfg = load(config_path, kwargs, "tailer")
    def reload():
        return config.load(config_path, overrides_of(kwargs), require=("tailer",)).tailer

    run_service(lambda: Tailer(cfg.tailer, reload=reload))


@cli.command()
@config_option
@flag("web.bucks_pub", "--buck", "-b", multiple=True, metavar="ENDPOINT")
@flag("web.listen", "--listen", metavar="HOST:PORT")
@flag("web.metrics", "--metrics", metavar="HOST:PORT")
@flag("web.max_lines", "--max-lines", type=int)
@flag("web.reorder_delay", "--reorder-delay", type=float, metavar="SECONDS")
@flag("web.dedup_window", "--dedup-window", type=float, metavar="SECONDS")
@flag("web.dedup_max", "--dedup-max", type=int)
@flag("web.max_age", "--max-age", type=float, metavar="SECONDS")
@flag("web.session_rate", "--session-rate", type=int, metavar="LINES_PER_S")
@flag("web.max_lag", "--max-lag", type=float, metavar="SECONDS")
@flag("web.max_delay", "--max-delay", type=float, metavar="SECONDS")
@flag("web.flush_interval", "--flush-interval", type=float, metavar="SECONDS")
@flag("web.max_line_chars", "--max-line-chars", type=int)
@flag("history.dir", "--history-dir", metavar="DIR")
@flag("porter.index_dir", "--index-dir", metavar="DIR")
def web(config_path: str | None, **kwargs: Any) -> None:
    """Serve the browser live tail: subscribe to the live feed (PUB) of every
    buck given by --buck, and show the events in a page at http://LISTEN/.

    Copies of an event from two bucks are shown once, the bucks' streams are
    merged in time order, and each page's filters (environment, host, app,
    severity, substring or regex) run here, so only what a page shows is sent
    to it. A page that cannot keep up is told how many lines were dropped
    instead of falling behind.

    Also serves the search page (/search: the recent index of the [porter]
    section, and history indexes) and archie (/archie, /api/history: history
    requests of the [history] section, built by `helios history serve`)."""
    from helios.web.app import LiveTail

    cfg = load(config_path, kwargs, "web")
    run_service(lambda: LiveTail(cfg.web, full=cfg))


@cli.command()
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
        from helios.wire import curve

        curve.load(cfg.security, serve=False, connect=False)  # the key files that are set: readable, private
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


@cli.command()
@config_option
@flag("subscribe.bucks", "--buck", "-b", multiple=True, metavar="ENDPOINT")
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


class PluginCommand(click.Command):
    """A monitoring plugin: bad arguments are UNKNOWN (exit 3), said on
    standard output, where Nagios reads a plugin's status."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            click.echo(f"HELIOS UNKNOWN - bad arguments: {exc.format_message()}")
            sys.exit(3)


@cli.command(cls=PluginCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config file (its [subscribe] section; see `helios check-config --example`).")
@flag("subscribe.bucks", "--buck", "-b", multiple=True, metavar="ENDPOINT")
@filter_options
@click.option("--seconds", type=click.FloatRange(min=0.1, max=3600), default=10.0, show_default=True,
              help="Seconds of live events to count (keep it under the monitor's plugin timeout).")
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
    the filter during --seconds (each event once, from every buck) and compare
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


@cli.command()
@config_option
@flag("subscribe.bucks", "--buck", "-b", multiple=True, metavar="ENDPOINT")
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


# Commands kept in modules of their own (helios/commands/), which use the
# helpers above: imported here, at the end, once those exist.
from helios.commands import register  # noqa: E402

register(cli)


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
