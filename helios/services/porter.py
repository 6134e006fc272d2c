"""The porter: bucket windows from the bucks into the index and the archive.

Each pass asks every buck which buckets it holds (a buck that does not
answer is reported and left out: the others go on), then runs three jobs
over the windows, oldest first:

1. **Index.** A window closed on every buck that holds it, ``grace``
   seconds past its end and not yet loaded, is fetched from every buck that
   holds it, merged (each event once, sorted by time and id;
   ``helios.porter.merge``), cleared of events an earlier window already
   ported (``helios.porter.seen``) and of events older than the index
   keeps, and loaded. A buck that held the window but was down when it was
   loaded is fetched alone when it comes back.
2. **Archive.** A window ``archive_age`` past its end and not archived is
   fetched and merged the same way, packed and stored (verified by the
   backend), unless the blacklist names it.
3. **Prune.** A window indexed and archived and past the buck retention
   age is deleted from the bucks whose copy went into both.

A window is marked in the state (``helios.porter.state``) only after its
job succeeded, so a porter killed at any point redoes at most the jobs in
flight, and since every job is idempotent, that costs time, never a
duplicate or a gap. An index or archive that fails is retried with
exponential backoff (``backoff_min`` .. ``backoff_max``); its windows stay
unmarked, so nothing is pruned meanwhile; the log and ``status.json`` say
so. SIGTERM lets the jobs in flight finish and mark, then returns.

Old days are dropped from the index (``recent_days``) between passes.
``STATE_DIR/status.json`` (rewritten after each window and each pass) is
what ``helios porter status`` shows with the state.

Each job is a unit of ``helios.porter.jobs`` (``IndexJob``, ``ArchiveJob``,
``PruneJob``, ``RetentionJob``, ``ReportJob``) with one interface,
``run_pass(Pass) -> bool``, over a shared ``Context``; this module only
composes them: the schedule, the bucks' listing, stopping and the metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helios.errors import QueryError, ServiceError
from helios.porter import report
from helios.porter import windows as win
from helios.porter.jobs import (
    ArchiveJob,
    Context,
    IndexJob,
    Pass,
    PruneJob,
    ReportJob,
    RetentionJob,
)
from helios.porter.seen import Seen, window_key
from helios.porter.state import State, identity_of_where
from helios.query.client import holders
from helios.store.durable import make_dirs

if TYPE_CHECKING:
    from helios.config import Porter as PorterConfig
    from helios.query.client import Result
    from helios.query.protocol import BucketEntry

log = logging.getLogger(__name__)


class Porter:
    """The service (see the module docstring) for one ``[porter]`` section;
    ``once``: a single pass, for cron and tests. It composes the jobs of
    ``helios.porter.jobs``: the schedule, the bucks' listing, signals and
    the metrics are its own."""

    def __init__(self, cfg: PorterConfig, *, once: bool = False) -> None:
        self.cfg = cfg
        self.once = once
        self.state_dir = Path(cfg.state_dir)
        # Checked here, at start: a ledger that cannot be written would leave every window for the next pass.
        for d, what in ((self.state_dir, "the porter state directory"),
                        (self.state_dir / "seen", "the porter's dedup ledger")):
            try:
                make_dirs(d)  # 0750 whatever the umask
            except OSError as exc:
                raise ServiceError(f"cannot use {what} {d}: {exc.strerror}") from None
            if not d.is_dir():
                raise ServiceError(f"cannot use {what} {d}: it is not a directory")
        self.ctx = Context(cfg, self.state_dir, once=once)
        self.report = ReportJob(self.ctx)
        self.ctx.progressed = lambda: self.report.write_status(at_most_every=1.0)
        self.spec = self.ctx.spec
        self.counts = self.ctx.counts
        self.stopping = self.ctx.stopping
        self._moved_unsaid = False   # the index changed; how many windows are loaded again not yet said

    @property
    def source(self) -> str:
        """This porter's name in its reports and records at the bucks."""
        return self.ctx.source

    @property
    def last_status(self) -> dict[str, Any] | None:
        """The status of the last pass, for the metrics' scrape thread."""
        return self.report.last_status

    def stop(self) -> None:
        """Finish the jobs in flight, then return from ``run``; safe from a signal handler."""
        self.stopping.set()

    # ----------------------------------------------------------------- running

    def run(self) -> int:
        """Pass after pass until stopped (or one pass with ``once``); returns
        0, or 1 when ``once`` met an index or archive that failed, a
        quarantine or dedup ledger it could not write, or no buck that
        answered."""
        from helios.porter.workers import Resources
        from helios.query.client import QueryClient

        ctx = self.ctx
        ctx.res = Resources(self.spec)
        self.index = IndexJob(ctx)
        try:
            ctx.state = State(self.state_dir / "porter.db")
            self._use_index()
            ctx.seen = Seen(self.state_dir / "seen", horizon=self.cfg.archive_age + self.cfg.dedup_horizon)
            ctx.qc = QueryClient(timeout=self.cfg.timeout)
        except BaseException:
            self.index.close()
            raise
        self.archive = ArchiveJob(ctx)
        self.fresh = None
        if self.cfg.index_open_windows:
            from helios.porter.jobs.fresh import FreshJob

            self.fresh = FreshJob(ctx)
        self.prune = PruneJob(ctx)
        self.retention = RetentionJob(ctx, index_busy=lambda: self.index.busy)
        if self.cfg.metrics:
            from helios.metrics import Endpoint, porter_families

            ctx.metrics = Endpoint.start("porter", f"porter@{os.uname().nodename}", self.cfg.metrics,
                                         porter_families(self))
        log.info("Porter ports the windows of %d buck(s) into the %s index and the %s archive.",
                 len(self.cfg.bucks), ctx.index_backoff.where, ctx.archive_backoff.where)
        try:
            while not self.stopping.is_set():
                worked = self.run_pass()
                if self.once:
                    break
                if not worked:
                    self._nap()
        finally:
            self.index.drain()
            self.archive.drain()
            self.index.warn_left_out()
            self.index.close()
            if self.fresh is not None:
                self.fresh.close()
            self.archive.close()
            ctx.res.close()
            ctx.qc.close()
            self.report.write_status()
            try:
                why = "" if self.counts["indexed"] else self.why_nothing_indexed()
            except Exception as exc:  # never hide why the porter stops
                why = f" (and why nothing was indexed could not be told: {exc})"
            ctx.state.close()
            if ctx.metrics is not None:
                ctx.metrics.close()
            log.info("Porter stopped: %d window(s) indexed, %d archived, %d pruned from bucks%s.",
                     self.counts["indexed"], self.counts["archived"], self.counts["pruned"], why)
        failed = (ctx.index_backoff.failures or ctx.archive_backoff.failures or ctx.quarantine_failed
                  or ctx.ledger_failed)
        no_buck = bool(ctx.bucks) and all(v != "ok" for v in ctx.bucks.values())
        if self.once and no_buck:
            log.error("No buck answered, so nothing was ported: %s",
                      "; ".join(f"{ep}: {why}" for ep, why in ctx.bucks.items()))
        return 1 if self.once and (failed or no_buck) else 0

    def why_nothing_indexed(self) -> str:
        """Why the last look at the bucks found no window to index, as the
        rest of the stop line: no buck answered, none holds a window, or
        what each window they hold waits for."""
        ctx = self.ctx
        answered = [ep for ep, st in ctx.bucks.items() if st == "ok"]
        if not answered:
            return "; no buck answered: " + "; ".join(f"{ep}: {st}" for ep, st in ctx.bucks.items())
        if not ctx.listed:
            envs = f" of {', '.join(self.cfg.environments)}" if self.cfg.environments else ""
            return f"; the bucks ({len(answered)} answered) hold no window{envs} yet"
        now = time.time()
        states = {ws.name: ws for ws in ctx.state.windows()}
        is_open = due_later = before = failed = 0
        soonest: int | None = None   # the end of the oldest window still open
        for name, held in ctx.listed:
            ws = states.get(name)
            if ws is not None and ws.indexed and not report.index_todo(name, held, ws, now, self.cfg.grace):
                before += 1
            elif any(e.open for e in held.values()):
                is_open += 1
                soonest = name.end if soonest is None else min(soonest, name.end)
            elif not win.due(name, now, self.cfg.grace):
                due_later += 1
            else:
                failed += 1
        parts = []
        if is_open and soonest is not None:
            when = (f"the oldest ends in {soonest - now:.0f} s" if soonest > now else
                    f"the oldest ended {now - soonest:.0f} s ago")
            parts.append(f"{is_open} still open on a buck (a buck closes a window two windows after its end; "
                         f"{when}), loaded once closed")
        if due_later:
            parts.append(f"{due_later} within the grace of {self.cfg.grace:g} s after their end")
        if before:
            parts.append(f"{before} indexed before")
        if failed:
            parts.append(f"{failed} due but not indexed: left for the next pass (an error logged above, or "
                         "another porter holds it)")
        return f"; of the {len(ctx.listed)} window(s) the bucks hold: " + ", ".join(parts) if parts else ""

    def _nap(self) -> None:
        now = time.time()
        wake = now + self.cfg.poll_interval
        for b in (self.ctx.index_backoff, self.ctx.archive_backoff):
            if b.failures:
                wake = min(wake, max(b.retry_at, now + 0.05))
        self.stopping.wait(max(0.0, wake - now))

    def run_pass(self) -> bool:
        """One look at the bucks and one round of each job; True if any job ran."""
        ctx = self.ctx
        ctx.listed_at = time.time()
        listings = ctx.qc.list_buckets(self.cfg.bucks)
        self._note_bucks(listings)
        wanted = set(self.cfg.environments)
        ctx.listed = [(n, h) for n, h in report.parse_listed(holders(listings))
                      if not wanted or n.environment in wanted]
        self._load_again(listings)
        p = Pass(listings, ctx.listed)
        worked = False
        if self.fresh is not None:
            self.fresh.run_pass(p)  # first, so a window loading does not hold it up; not "worked": naps go on
        for job in (self.index, self.archive, self.prune, self.retention, self.report):
            worked |= job.run_pass(p)
        return worked

    def _use_index(self) -> None:
        """Record the index this porter loads into; when it is not the one
        the state (or, for a state from before that was recorded, the last
        status.json) says the porter loaded into, say so: the windows the
        bucks still hold are loaded again (``_load_again``)."""
        ctx = self.ctx
        before = None
        try:
            where = (json.loads((self.state_dir / "status.json").read_text()).get("index") or {}).get("where")
            before = identity_of_where(where) if isinstance(where, str) else None
        except (OSError, ValueError, AttributeError):
            pass
        moved = ctx.state.use_index(ctx.index_identity, before=before)
        ctx.index_moved = ctx.state.moved()
        if moved is not None:
            self._moved_unsaid = True
            log.warning("This porter loads into %s; it loaded into %s before: the windows the bucks still hold "
                        "are loaded again into the new index (how many is said once the bucks answer).",
                        moved.now, moved.before)

    def _load_again(self, listings: dict[str, Result[list[BucketEntry]]]) -> None:
        """Mark the windows the bucks hold that went into another index to be
        loaded again into this one, and say how many."""
        ctx = self.ctx
        if not any(not isinstance(r, QueryError) for r in listings.values()):
            return   # no buck answered: nothing is loaded this pass, and what they hold is not known
        listed = {n for n, _ in ctx.listed or ()}
        again = ctx.state.load_again(listed, ctx.index_identity)
        if not again and self._moved_unsaid and ctx.index_moved is not None:
            again = {ctx.index_moved.before: 0}   # said once at start, even when the bucks hold none of them
        for before, n in sorted(again.items()):
            log.warning("index changed from %s to %s: %d windows the bucks still hold will be loaded again.",
                        before, ctx.index_identity, n)
            ctx.counts["windows_loaded_again"] += n
        self._moved_unsaid = False
        ctx.index_moved = ctx.state.moved()
        ctx.loaded_elsewhere = {window_key(n) for n in ctx.state.loaded_elsewhere(ctx.index_identity)
                                if n not in listed}

    def _note_bucks(self, listings: dict[str, Result[list[BucketEntry]]]) -> None:
        bucks = self.ctx.bucks
        for ep, result in listings.items():
            before = bucks.get(ep)
            if isinstance(result, QueryError):
                bucks[ep] = str(result)
                if before != bucks[ep] and (before is None or before == "ok"):
                    log.warning("Buck %s is not answering (%s); porting goes on with the others, and its "
                                "windows are fetched from it when it is back.", ep, result)
            else:
                bucks[ep] = "ok"
                if before not in (None, "ok"):
                    log.info("Buck %s answers again.", ep)

    def status(self) -> dict[str, Any]:
        return self.report.status()
