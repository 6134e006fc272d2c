"""``helios audit``: prove nothing was lost."""

from __future__ import annotations

import sys
from typing import Any

import click

from helios.commands.common import buck_options, config_option, flag, load, output_option



class _IndexKind(click.Choice):
    """An index kind, or nothing (``--index`` alone: the kind the config gives)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return value if value == "" else super().convert(value, param, ctx)


@click.command()
@click.argument("more_dirs", nargs=-1, type=click.Path(file_okay=False), metavar="[DATA_DIR]...")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A buck's data directory, read in place (repeat for every buck; more may follow as "
              "arguments: --data-dir A B).")
@buck_options("query.bucks", "query")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              metavar="SECONDS", help="How long a running buck may take to answer.")
@click.option("--env", "-e", "environment", help="Only this environment (default: all).")
@click.option("--start", help="Only buckets from this time on: ISO 8601 (UTC if no offset) or relative, like -2h.")
@click.option("--end", help="Only buckets before this time (same forms as --start).")
@output_option(("text", "json"), "text", "text: the report; json: the report as JSON.")
@flag("porter.index", "--index", type=_IndexKind(["sqlite", "elasticsearch", "opensearch"]), is_flag=False,
      flag_value="", help="Audit the recent index instead (of this kind; alone: [porter] index): every event of every "
      "window the porter's record says it loaded, as the bucks (--buck, or [porter] bucks) hold it, must be in the "
      "index, and the index must hold nothing the bucks do not. Reads [porter] state_dir, index settings and "
      "recent_days.")
@click.option("--content", is_flag=True, help="With --index: compare each event's content too (message, host, app, "
              "severity, source, offset, received, fields: all the index stores but the time, which is compared "
              "anyway), as the porter maps the buck's event into the index; a difference is CHANGED. Costs: every "
              "event of the index is read whole (not only its id) and each checked event hashed on both sides: on "
              "sqlite about half again the time and the scratch space; Elasticsearch and OpenSearch send every "
              "document whole.")
@flag("porter.state_dir", "--state-dir", metavar="DIR")
@flag("porter.index_url", "--index-url", metavar="URL")
@flag("porter.index_dir", "--index-dir", metavar="DIR")
@flag("porter.index_name", "--index-name", metavar="NAME")
@flag("porter.recent_days", "--recent-days", type=int, metavar="DAYS")
@config_option
def audit(more_dirs: tuple[str, ...], data_dirs: tuple[str, ...], timeout: float, environment: str | None,
          start: str | None, end: str | None, output: str, content: bool, config_path: str | None,
          **kwargs: Any) -> None:
    """Prove nothing was lost: merge the byte ranges of every tailed file held
    by the bucks (read from their data directories, or asked of running bucks
    with --buck) and report, per host and file, any gap; and, from the
    tailers' inventory, every byte seen on disk that no buck holds and every
    file seen but not read to its end, with the reason. Exit 0 when there is
    none, 1 otherwise. A buck that does not answer is reported, and what the
    others hold is audited.

    With --index: the same proof one step further, bucks -> porter -> recent
    index: per window, the events the bucks hold that are not in the index
    and the events of the index no buck holds, with example lines, and what
    could not be checked (windows not yet loaded or pruned, or loaded into
    another index, events too old for the index, bucks that did not answer). With --content also each
    event's content (CHANGED). Exit 0 when there is no difference, 1 otherwise. Progress goes to standard
    error."""
    from helios import audit as audit_mod

    data_dirs = (*data_dirs, *more_dirs)
    against_index = kwargs.get("porter__index") is not None
    if content and not against_index:
        raise click.UsageError("--content compares the index's events with the bucks': give --index too")
    if kwargs.get("porter__index") == "":
        kwargs["porter__index"] = None     # --index alone: the config's kind
    asked = any(kwargs.get(k) for k in ("mesh__bucks", "query__bucks"))
    cfg = load(config_path, kwargs, "query")  # the bucks, and CURVE keys for asking them
    if config_path is not None and {"mesh", "query"} & cfg.sections_present:
        asked = True
    bucks = list(cfg.query.bucks) if asked else []
    if against_index:
        # The bucks as the porter names them (its record says which it loaded each window from): [porter]
        # bucks, unless given here.
        given = any(kwargs.get(k) for k in ("mesh__bucks", "query__bucks"))
        _audit_index(cfg, data_dirs, list(cfg.query.bucks) if given else list(cfg.porter.bucks), environment,
                     start, end, timeout, output, _configured_index(config_path), content)
    if not data_dirs and not bucks:
        raise click.UsageError("give the bucks to audit: DATA_DIR... (or --data-dir DIR), or --buck HOST[:PORT] "
                               "(repeatable)")
    t0, t1 = _times(start, end)
    report = audit_mod.audit([*data_dirs], bucks, environment, t0, t1, timeout=timeout)
    click.echo(audit_mod.render(report, as_json=output == "json"))
    sys.exit(0 if report.ok else 1)


def _times(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    """--start and --end as seconds (None: unbounded); a bad one is a usage error."""
    from helios.timespec import TimeSpecError, parse_time

    try:
        return (parse_time(start) if start else None), (parse_time(end) if end else None)
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc)) from None


def _identity(porter: Any) -> str:
    from helios.porter.state import index_identity

    return index_identity(porter.index, porter.index_dir if porter.index == "sqlite" else porter.index_url,
                          porter.index_name)


def _configured_index(config_path: str | None) -> str | None:
    """The index the porter's config file names (``index_identity``), this
    command's flags left out; None without a config file or its [porter]."""
    from helios import config
    from helios.errors import ConfigError

    if config_path is None:
        return None
    try:
        cfg = config.load(config_path, require=("porter",))
        return _identity(cfg.porter) if "porter" in cfg.sections_present else None
    except (ConfigError, ValueError):
        return None


def _audit_index(cfg: Any, data_dirs: tuple[str, ...], bucks: list[str], environment: str | None,
                 start: str | None, end: str | None, timeout: float, output: str, porter_index: str | None,
                 content: bool = False) -> None:
    from helios import indexaudit
    from helios.commands.search import _no_index_here
    from helios.errors import HeliosError
    from helios.history import places

    if data_dirs:
        raise click.UsageError("--index asks running bucks (--buck HOST[:PORT], or [porter] bucks in the config): "
                               "the porter's record names the bucks it loaded each window from by their endpoints")
    if not bucks:
        raise click.UsageError("give the bucks the porter loads from: --buck HOST[:PORT] (repeatable), or the "
                               "porter's config with -c")
    t0, t1 = _times(start, end)
    _no_index_here(cfg)
    try:
        # A small page cache: the audit reads each file once, in order.
        index = places.recent_index(cfg, **({"cache_mb": 8} if cfg.porter.index == "sqlite" else {}))
        try:
            report = indexaudit.audit_index(index, cfg.porter.state_dir, bucks, environment=environment,
                                            ported=cfg.porter.environments, start=t0, end=t1,
                                            recent_days=cfg.porter.recent_days, timeout=timeout,
                                            identity=_identity(cfg.porter), porter_index=porter_index,
                                            content=content)
        finally:
            index.close()
    except HeliosError as exc:
        click.echo(f"helios: {exc}", err=True)
        sys.exit(1)
    click.echo(indexaudit.render(report, as_json=output == "json"))
    sys.exit(0 if report.ok else 1)


COMMANDS = [audit]
