"""``helios tailer``: run a tailer."""

from __future__ import annotations

from typing import Any

import click

from helios import config
from helios.commands.common import (
    buck_options,
    config_option,
    flag,
    load,
    overrides_of,
    run_service,
    spool_options,
    warn_copies,
)


@click.command()
@config_option
@flag("tailer.paths", "--path", "-p", multiple=True, metavar="GLOB")
@buck_options("tailer.bucks", "ingest")
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
@spool_options("tailer")
@flag("tailer.positions_interval", "--positions-interval", type=float, metavar="SECONDS")
@flag("tailer.rotate_wait", "--rotate-wait", type=float, metavar="SECONDS")
@flag("tailer.partial_flush", "--partial-flush", type=float, metavar="SECONDS")
@flag("tailer.max_line_bytes", "--max-line-bytes", type=int)
@flag("tailer.multiline_start", "--multiline-start", metavar="REGEX")
@flag("tailer.max_open_files", "--max-open-files", type=int)
@flag("tailer.metrics", "--metrics", metavar="HOST:PORT")
@flag("tailer.encoders", "--encoders", type=int, metavar="N")
@flag("tailer.journal", "--journal/--no-journal")
@flag("tailer.journal_dir", "--journal-dir", metavar="DIR")
@flag("tailer.journal_include_units", "--journal-unit", multiple=True, metavar="UNIT")
@flag("tailer.journal_include_identifiers", "--journal-identifier", multiple=True, metavar="IDENTIFIER")
@flag("tailer.journal_exclude_units", "--journal-exclude-unit", multiple=True, metavar="UNIT")
@flag("tailer.journal_exclude_identifiers", "--journal-exclude-identifier", multiple=True, metavar="IDENTIFIER")
@flag("tailer.journal_start_at", "--journal-start-at", type=click.Choice(["end", "beginning"]))
@flag("tailer.kubernetes", "--kubernetes/--no-kubernetes")
@flag("tailer.kubernetes_root", "--kubernetes-root", metavar="DIR")
@flag("tailer.docker_root", "--docker-root", metavar="DIR")
@flag("tailer.watch", "--watch", type=click.Choice(["auto", "inotify", "poll"]))
@flag("tailer.watch_safety_poll", "--watch-safety-poll", type=float, metavar="SECONDS")
def tailer(config_path: str | None, **kwargs: Any) -> None:
    """Run a tailer: follow the files matching the globs (new files are picked
    up while running), parse each line's time, host, app and severity, and
    send every batch to COPIES distinct bucks chosen at random among the
    connected ones.

    Lines that cannot be parsed keep their receive time; none is dropped.
    Every batch is appended to a local spool before its offset is saved, and
    each closed spool bucket is re-sent to one random buck. SIGTERM saves
    positions and exits; SIGHUP reloads the config file (flags still win).

    With --journal (the local systemd journal) or --journal-dir DIR (a
    directory of journal files), journal entries are read too, through
    journalctl; their cursor is saved with the positions."""
    from helios.services.tailer import Tailer

    if kwargs.get("tailer__kubernetes") and not kwargs.get("tailer__paths") and not _file_paths(config_path):
        # --kubernetes alone: the container roots are the paths.
        from helios.parsing.containers import Sources

        kwargs["tailer__paths"] = tuple(Sources(
            kwargs.get("tailer__kubernetes_root") or config.default("tailer", "kubernetes_root"),
            kwargs.get("tailer__docker_root") if kwargs.get("tailer__docker_root") is not None
            else config.default("tailer", "docker_root")).globs())
    cfg = load(config_path, kwargs, "tailer")
    warn_copies(cfg.tailer, "[tailer]")
    def reload():
        return config.load(config_path, overrides_of(kwargs), require=("tailer",)).tailer

    run_service(lambda: Tailer(cfg.tailer, reload=reload))


def _file_paths(config_path: str | None) -> bool:
    """Does the config file set [tailer] paths? (Unreadable: the loader says why.)"""
    if config_path is None:
        return False
    import tomllib

    try:
        with open(config_path, "rb") as f:
            table = tomllib.load(f).get("tailer")
    except (OSError, ValueError):
        return False
    return isinstance(table, dict) and "paths" in table


COMMANDS = [tailer]
