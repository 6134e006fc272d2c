"""``helios relay``: the host's relay for applications that record events."""

from __future__ import annotations

from typing import Any

import click

from helios.commands.common import buck_options, config_option, flag, load, run_service, spool_options, warn_copies


@click.command()
@config_option
@flag("relay.listen", "--listen", metavar="ENDPOINT")
@buck_options("relay.bucks", "ingest")
@flag("relay.state_dir", "--state-dir", metavar="DIR")
@flag("relay.copies", "--copies", type=int)
@flag("relay.rcvhwm", "--rcvhwm", type=int, metavar="MESSAGES")
@flag("relay.sndhwm", "--sndhwm", type=int, metavar="MESSAGES")
@flag("relay.max_frame_bytes", "--max-frame-bytes", type=int)
@spool_options("relay")
@flag("relay.sync_interval", "--sync-interval", type=float, metavar="SECONDS")
@flag("relay.stats_interval", "--stats-interval", type=float, metavar="SECONDS")
@flag("relay.metrics", "--metrics", metavar="HOST:PORT")
@flag("relay.syslog_udp", "--syslog-udp", multiple=True, metavar="HOST:PORT")
@flag("relay.syslog_tcp", "--syslog-tcp", multiple=True, metavar="HOST:PORT")
@flag("relay.syslog_tls", "--syslog-tls", multiple=True, metavar="HOST:PORT")
@flag("relay.syslog_tls_cert", "--syslog-tls-cert", metavar="FILE")
@flag("relay.syslog_tls_key", "--syslog-tls-key", metavar="FILE")
@flag("relay.syslog_environment", "--syslog-environment", metavar="NAME")
@flag("relay.syslog_timezone", "--syslog-timezone", metavar="ZONE")
@flag("relay.syslog_max_message_bytes", "--syslog-max-message-bytes", type=int)
@flag("relay.syslog_idle_timeout", "--syslog-idle-timeout", type=float, metavar="SECONDS")
@flag("relay.syslog_max_connections", "--syslog-max-connections", type=int)
@flag("relay.syslog_workers", "--syslog-workers", type=int)
def relay(config_path: str | None, **kwargs: Any) -> None:
    """Run the host's relay: take batches from the applications of this host
    (client library with [client] relay = the --listen endpoint), append each
    to a local spool, and send it to COPIES distinct bucks chosen at random
    among the connected ones, as a tailer does.

    Applications keep recording while every buck is down: the relay spools,
    and each closed spool bucket is re-sent to one random buck once its window
    has passed, until a buck takes it. A relay killed (even with kill -9)
    loses nothing it had spooled. SIGTERM fsyncs the spool and exits.

    With --syslog-udp/--syslog-tcp/--syslog-tls it also takes syslog from
    the network (the host's daemons, appliances, rsyslog forwarding): each
    message is parsed and spooled before the next read, with the same
    two-buck and re-send guarantee (README, Syslog over the network)."""
    from helios.services.relay import Relay

    cfg = load(config_path, kwargs, "relay")
    warn_copies(cfg.relay, "[relay]")
    run_service(lambda: Relay(cfg.relay))


COMMANDS = [relay]
