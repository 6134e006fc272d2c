"""The retention job: between passes (every ``RETENTION_EVERY`` seconds,
every pass with ``once``), the days before ``recent_days`` are dropped from
the index, the dedup ledger is pruned and the state forgets windows done
with long ago. An index that fails here is retried with the index's backoff."""

from __future__ import annotations

import datetime
import time
from typing import Callable

from helios.errors import HeliosError
from helios.porter.jobs.base import Context, Pass, first_day, log

RETENTION_EVERY = 60.0   # seconds between looks at the index's days


class RetentionJob:
    def __init__(self, ctx: Context, index_busy: Callable[[], int] = lambda: 0) -> None:
        self.ctx = ctx
        self.index_busy = index_busy   # loads in flight: no days are dropped under them
        self._at = 0.0

    def run_pass(self, p: Pass | None = None) -> bool:
        self.retention()
        return False   # never counts as work: the porter naps after a pass of only this

    def retention(self) -> None:
        ctx = self.ctx
        now = time.time()
        if self.index_busy() or not ctx.index_backoff.ready(now) or (
                not ctx.once and now - self._at < RETENTION_EVERY):
            return
        self._at = now
        self.forget(now)
        before = datetime.date(1970, 1, 1) + datetime.timedelta(days=first_day(ctx.cfg.recent_days) // 86400)
        wanted = set(ctx.cfg.environments)
        try:
            index = ctx.res.index
            for env in index.environments():
                if wanted and env not in wanted:
                    continue
                for day in index.drop_days(env, before):
                    ctx.state.mark_day_dropped(env, (day - datetime.date(1970, 1, 1)).days * 86400)
                    ctx.counts["days_dropped"] += 1
        except Exception as exc:  # noqa: BLE001  (an index that is down: the same backoff as loads)
            ctx.failed(ctx.index_backoff,
                       f"{type(exc).__name__}: {exc}" if not isinstance(exc, HeliosError) else str(exc),
                       now, "dropping old days")

    def forget(self, now: float) -> None:
        """Prune the dedup ledger, and the state of windows done with long ago
        (an archive object found under a forgotten window's key is merged
        into, never overwritten: see ``helios.porter.archiving``)."""
        ctx = self.ctx
        try:
            ctx.seen.prune(now)
        except OSError as exc:
            log.warning("Could not prune the porter's dedup ledger: %s.", exc)
        horizon = max(ctx.cfg.prune_age, ctx.cfg.archive_age) + ctx.cfg.dedup_horizon
        for env in ctx.state.environments():
            ctx.state.forget_before(env, int(now - horizon))
