"""``helios porter``: run the porter (``run``, the default; ``once``) and
show what it has done (``status``)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from helios.commands.common import buck_options, config_option, flag, load, output_option, run_alone, run_service

INDEXES = click.Choice(["sqlite", "elasticsearch", "opensearch"])


def place_options() -> list[Callable]:
    """The flags that say where the bucks, the recent index and the archive
    are: the porter's, and those of every command that reads what it wrote
    (``helios history``)."""
    return [
        buck_options("porter.bucks", "query"),
        flag("porter.index", "--index", type=INDEXES),
        flag("porter.index_url", "--index-url", metavar="URL"),
        flag("porter.index_dir", "--index-dir", metavar="DIR"),
        flag("porter.index_name", "--index-name", metavar="NAME"),
        flag("porter.archive", "--archive", type=click.Choice(["folder", "s3"])),
        flag("porter.archive_dir", "--archive-dir", metavar="DIR"),
        flag("porter.s3_bucket", "--s3-bucket", metavar="BUCKET"),
        flag("porter.s3_prefix", "--s3-prefix", metavar="PREFIX"),
        flag("porter.s3_endpoint", "--s3-endpoint", metavar="URL"),
    ]


def porter_flags(f: Callable) -> Callable:
    """The [porter] flags, shared by the group and its subcommands."""
    options = [
        config_option,
        *place_options(),
        flag("porter.environments", "--env", "-e", multiple=True, metavar="ENV"),
        flag("porter.state_dir", "--state-dir", metavar="DIR"),
        flag("porter.archive_level", "--archive-level", type=int, metavar="LEVEL"),
        flag("porter.archive_public_key", "--archive-public-key", metavar="FILE"),
        flag("porter.archive_secret_key", "--archive-secret-key", metavar="FILE"),
        flag("porter.metrics", "--metrics", metavar="HOST:PORT"),
        flag("porter.archive_blacklist", "--blacklist", multiple=True, metavar="ENV/TIME"),
        flag("porter.grace", "--grace", type=float, metavar="SECONDS"),
        flag("porter.archive_age", "--archive-age", type=float, metavar="SECONDS"),
        flag("porter.prune_age", "--prune-age", type=float, metavar="SECONDS"),
        flag("porter.recent_days", "--recent-days", type=int, metavar="DAYS"),
        flag("porter.dedup_horizon", "--dedup-horizon", type=float, metavar="SECONDS"),
        flag("porter.poll_interval", "--poll-interval", type=float, metavar="SECONDS"),
        flag("porter.timeout", "--timeout", type=float, metavar="SECONDS"),
        flag("porter.backoff_min", "--backoff-min", type=float, metavar="SECONDS"),
        flag("porter.backoff_max", "--backoff-max", type=float, metavar="SECONDS"),
        flag("porter.workers", "--workers", type=int),
        flag("porter.index_open_windows", "--index-open-windows/--no-index-open-windows"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _merged(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A subcommand's flags, with the group's (``helios porter --config X
    status``) where the subcommand's own were not given."""
    parent = click.get_current_context().parent
    merged = dict(parent.params if parent is not None else {})
    merged.update({k: v for k, v in kwargs.items() if v not in (None, ())})
    return merged


def _run(kwargs: dict[str, Any], once: bool) -> None:
    from helios.gctune import tune_gc
    from helios.services.porter import Porter

    config_path = kwargs.pop("config_path", None)
    cfg = load(config_path, kwargs, "porter")
    codes = []

    class Service(Porter):
        def run(self) -> None:  # run_service ignores a return value; keep the exit code
            codes.append(super().run())

    tune_gc()   # a window of events, the ledger's cache and the frame digests, rescanned for nothing
    run_service(lambda: Service(cfg.porter, once=once))
    sys.exit(codes[0] if codes else 0)


@click.group(invoke_without_command=True)
@porter_flags
@click.pass_context
def porter(ctx: click.Context, **kwargs: Any) -> None:
    """Run the porter (without a subcommand: `helios porter run`): load every
    closed bucket window from the bucks into the recent index (each event once,
    in time order), archive windows older than --archive-age, and ask the bucks
    to prune windows that are indexed, archived and older than --prune-age.

    Every job is idempotent: a second porter, or a porter killed with kill -9
    and restarted, leaves no duplicate and no gap. An index or archive that is
    down is retried with backoff, and nothing is pruned until it succeeded.
    `helios porter status` shows what was done and what is behind."""
    if ctx.invoked_subcommand is None:
        _run(dict(kwargs), once=False)


@porter.command("run")
@porter_flags
def run_cmd(**kwargs: Any) -> None:
    """Run the porter until SIGTERM or Ctrl-C, which let the windows in
    flight finish (and be marked) before it exits."""
    _run(_merged(kwargs), once=False)


@porter.command("once")
@porter_flags
def once_cmd(**kwargs: Any) -> None:
    """Do one pass (index, archive, prune, retention) and exit: for cron and
    tests. Exit 1 if no buck answered (each one's reason is logged), the
    index or the archive failed during the pass, or the porter's
    quarantine or dedup ledger could not be written (the window waits)."""
    _run(_merged(kwargs), once=True)


@porter.command("status")
@porter_flags
@output_option(("text", "json"), "text", "text: for people; json: the status as JSON.")
def status_cmd(output: str, **kwargs: Any) -> None:
    """Show, per environment, the last window indexed, archived and pruned,
    and what is behind (asking the bucks which windows they hold, when they
    answer), with the health of the index, the archive and the bucks as the
    running porter last saw them. Exit 1 when the porter reports a failing
    index or archive."""
    kwargs = _merged(kwargs)
    kwargs.pop("output", None)
    config_path = kwargs.pop("config_path", None)
    cfg = load(config_path, kwargs, "porter").porter
    status = gather_status(cfg)
    if output == "json":
        click.echo(json.dumps(status, indent=2, sort_keys=True))
    else:
        from helios.porter.report import render

        click.echo(render(status))
    down = any((status.get(job) or {}).get("state") == "down" for job in ("index", "archive"))
    sys.exit(1 if down else 0)


@porter.command("quarantine")
@porter_flags
def quarantine_cmd(**kwargs: Any) -> None:
    """Print what the porter set aside because no index or archive could
    hold it (STATE_DIR/quarantine), one JSON object per line: each event as
    sent, with its window and the problem, and each frame that does not
    decode. The frames themselves are kept as the bucks held them, in bucket
    files under STATE_DIR/quarantine/buckets."""
    from helios.porter.quarantine import entries

    kwargs = _merged(kwargs)
    config_path = kwargs.pop("config_path", None)
    cfg = load(config_path, kwargs, "porter").porter
    for entry in entries(cfg.state_dir):
        click.echo(json.dumps(entry, sort_keys=True))


def gather_status(cfg) -> dict[str, Any]:
    """The state (what was done), the running porter's status.json (health),
    and a fresh listing of the bucks (what is behind)."""
    from helios.porter import report
    from helios.porter.state import State
    from helios.query.client import QueryClient, holders
    from helios.errors import QueryError

    state_dir = Path(cfg.state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        click.echo(f"helios: the porter state directory {state_dir} is not a directory", err=True)
        sys.exit(1)
    out: dict[str, Any] = {"state_dir": str(state_dir)}
    status_path = state_dir / "status.json"
    running = None
    try:
        saved = json.loads(status_path.read_text())
        out["status_file"] = str(status_path)
        age = time.time() - saved.get("updated", 0)
        if _alive(saved.get("pid")) and age < max(60.0, 3 * cfg.poll_interval):
            running = {"pid": saved["pid"], "age": age, "doing": saved.get("doing"),
                       "doing_for": None if saved.get("doing_since") is None else time.time() - saved["doing_since"]}
            out["index"], out["archive"] = saved.get("index"), saved.get("archive")
        out["counts"] = saved.get("counts")
    except (OSError, ValueError):
        pass
    out["running"] = running
    with QueryClient(timeout=min(cfg.timeout, 5.0)) as qc:
        listings = qc.list_buckets(cfg.bucks)
    out["bucks"] = {ep: (str(r) if isinstance(r, QueryError) else "ok") for ep, r in listings.items()}
    answered = any(not isinstance(r, QueryError) for r in listings.values())
    wanted = set(cfg.environments)
    listed = [(n, h) for n, h in report.parse_listed(holders(listings)) if not wanted or n.environment in wanted]
    windows, left_out = [], {}
    if (state_dir / "porter.db").exists():
        st = State(state_dir / "porter.db")
        try:
            windows, left_out = st.windows(), st.left_out()
            out.update(index_move(st, cfg, listed if answered else None))
        finally:
            st.close()
    from helios.porter.quarantine import summarize as quarantine_summary

    out["quarantine"] = quarantine_summary(state_dir)
    out["environments"] = report.summarize(listed if answered else None, windows, time.time(), grace=cfg.grace,
                                           archive_age=cfg.archive_age, prune_age=cfg.prune_age,
                                           environments=cfg.environments, left_out=left_out)
    return out


def index_move(st, cfg, listed) -> dict[str, Any]:
    """What ``porter status`` says of a change of index: the last one the
    porter saw (``index_moved``: from, to, when, how many windows it marked
    to load again), and a config that names another index than the porter
    last loaded into (``index_configured``: the porter was not restarted yet;
    ``index_to_load_again``: the windows the bucks hold it will load again)."""
    from helios.porter.state import index_identity

    out: dict[str, Any] = {}
    moved = st.moved()
    if moved is not None:
        out["index_moved"] = moved.to_dict()
    configured = index_identity(cfg.index, cfg.index_dir if cfg.index == "sqlite" else cfg.index_url, cfg.index_name)
    if st.index() is not None and st.index() != configured:
        out["index_configured"] = {"recorded": st.index(), "configured": configured}
        if listed is not None:
            held = {n for n, _ in listed}
            out["index_configured"]["to_load_again"] = len(held & st.loaded_elsewhere(configured))
    return out


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    """``helios-porter``: the same as ``helios porter``."""
    run_alone(porter)


COMMANDS = [porter]
