"""``helios web``: serve the browser live tail, search and archie."""

from __future__ import annotations

from typing import Any

import click

from helios.commands.common import buck_options, config_option, flag, load, run_service


@click.command()
@config_option
@buck_options("web.bucks_pub", "feed")
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
@flag("web.max_connections", "--max-connections", type=int)
@flag("web.max_connections_per_client", "--max-connections-per-client", type=int)
@flag("web.header_timeout", "--header-timeout", type=float, metavar="SECONDS")
@flag("web.body_timeout", "--body-timeout", type=float, metavar="SECONDS")
@flag("web.allowed_hosts", "--allowed-host", multiple=True, metavar="HOST")
@flag("history.dir", "--history-dir", metavar="DIR")
@flag("porter.index_dir", "--index-dir", metavar="DIR")
def web(config_path: str | None, **kwargs: Any) -> None:
    """Serve the browser live tail: subscribe to the live feed (PUB) of every
    buck (--buck, or --feed endpoints), and show the events in a page at http://LISTEN/.

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


COMMANDS = [web]
