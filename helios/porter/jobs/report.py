"""The report job: ``STATE_DIR/status.json`` (what ``helios porter
status`` shows, and what the metrics endpoint serves), rewritten after each
window and each pass, and the pass's progress left with every buck that
answered (for ``helios status`` on any host)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from helios.errors import HeliosError, QueryError
from helios.porter import report
from helios.porter.jobs.base import Context, Pass, log
from helios.porter.quarantine import problem_line
from helios.porter.quarantine import summarize as quarantine_summary
from helios.query.client import Result
from helios.query.protocol import BucketEntry
from helios.store.atomic import write_atomic

QUARANTINE_EVERY = 60.0  # seconds between counts of the quarantine (unless it grew)


class ReportJob:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._status_at = float("-inf")
        self.last_status: dict[str, Any] | None = None   # for the metrics' scrape thread

    def run_pass(self, p: Pass) -> bool:
        self.write_status()
        self.leave_report(p.listings)
        return False

    def status(self) -> dict[str, Any]:
        ctx, cfg = self.ctx, self.ctx.cfg
        now = time.time()
        if time.monotonic() - ctx.quarantine_at >= QUARANTINE_EVERY:
            # Also when an operator moved the quarantine away once it was looked into.
            ctx.quarantine_summary = quarantine_summary(ctx.state_dir)
            ctx.quarantine_at = time.monotonic()
        envs = report.summarize(ctx.listed, ctx.state.windows(), now, grace=cfg.grace,
                                archive_age=cfg.archive_age, prune_age=cfg.prune_age,
                                environments=cfg.environments, left_out=ctx.state.left_out())
        return {"pid": os.getpid(), "started": ctx.started, "updated": now, "listed_at": ctx.listed_at,
                "bucks": dict(ctx.bucks),
                "index": ctx.index_backoff.status(now),
                "archive": ctx.archive_backoff.status(now),
                "doing": ctx.doing, "doing_since": ctx.doing_since,
                "environments": envs, "counts": dict(ctx.counts), "quarantine": ctx.quarantine_summary,
                "metrics": ctx.metrics.address if ctx.metrics is not None else None,
                "index_moved": ctx.index_moved.to_dict() if ctx.index_moved is not None else None}

    def leave_report(self, listings: dict[str, Result[list[BucketEntry]]]) -> None:
        """Leave this pass's progress with every buck that answered, for
        ``helios status`` on any host (``QueryClient.report``)."""
        ctx, cfg = self.ctx, self.ctx.cfg
        now = time.time()
        states = ctx.state.windows()
        last: dict[str, dict[str, int | None]] = {}
        for ws in states:
            e = last.setdefault(ws.name.environment, {"indexed": None, "archived": None, "pruned": None})
            for key, done in (("indexed", ws.indexed), ("archived", ws.archived_at is not None),
                              ("pruned", bool(ws.pruned_from))):
                if done:
                    e[key] = max(e[key] or 0, ws.name.end)
        behind = report.summarize(ctx.listed, states, now, grace=cfg.grace, archive_age=cfg.archive_age,
                                  prune_age=cfg.prune_age, environments=cfg.environments)
        left_out = ctx.state.left_out()
        envs = {}
        for env in sorted(set(last) | set(behind)):
            b = behind.get(env, {})
            envs[env] = {**last.get(env, {"indexed": None, "archived": None, "pruned": None}),
                         "behind": f"index {b.get('index_behind', 0)}, archive {b.get('archive_behind', 0)}, "
                                   f"prune {b.get('prune_behind', 0)} window(s)",
                         "too_old": (left_out.get(env) or {}).get("events", 0),
                         "events_indexed": b.get("events_indexed", 0)}  # distinct: each event once
        problems = [f"the {b.what} ({b.where}) is failing since {report.iso(b.since)}: {b.error}; nothing is "
                    "pruned until it works" for b in (ctx.index_backoff, ctx.archive_backoff) if b.failures]
        problems += [f"buck {ep} does not answer" for ep, st in ctx.bucks.items() if st != "ok"]
        held_aside = problem_line(ctx.quarantine_summary)
        if held_aside:
            problems.append(held_aside)
        live = [ep for ep, r in listings.items() if not isinstance(r, QueryError)]
        if not live:
            return
        body = {"environments": envs, "problems": problems, "pid": os.getpid(), "updated": now}
        try:
            ctx.qc.report(live, ctx.source, body, timeout=min(cfg.timeout, 2.0))
        except (QueryError, AttributeError) as exc:  # a client without reports: nothing to leave
            log.debug("Could not leave the porter's report with the bucks: %s", exc)

    def write_status(self, at_most_every: float = 0.0) -> None:
        now = time.monotonic()
        if now - self._status_at < at_most_every:
            return
        self._status_at = now
        try:
            # Kept for the metrics' scrape thread, which may not touch the state database.
            self.last_status = self.status()
            write_atomic(self.ctx.state_dir / "status.json", json.dumps(self.last_status, indent=1).encode(),
                         durable=False)
        except (OSError, HeliosError) as exc:
            log.warning("Could not write the porter status file: %s.", exc)
