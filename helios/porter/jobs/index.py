"""The index job: a window closed on every buck that holds it, ``grace``
seconds past its end and not yet loaded, is fetched from every buck that
holds it, merged, cleared of events an earlier window already ported and of
events older than the index keeps (counted as ``left_out``, warned about
once per environment and pass), and loaded by the index loader. A buck that
held the window but was down when it was loaded is fetched alone when it
comes back.

A window the fresh job loaded early while it was open
(``[porter] index_open_windows``) is fetched from where that left off on
each buck (``helios.porter.early``), and only the rest is claimed and
loaded; the window's counts add what was loaded early.

A window's events are counted as the index counts them: the tailers'
inventory records, which the index leaves out (``helios.index.base.searchable``;
the audit reads them from the bucks), are taken out before the load and
counted apart (``index_inventory`` in the state, ``inventory_records`` in
the porter's status), so what ``helios porter status`` and ``helios status``
call a window's events is what a search of it finds."""

from __future__ import annotations

import operator
import time
from typing import Any, Sequence

from helios.index.base import searchable
from helios.porter import report
from helios.porter.early import Early
from helios.porter.jobs.base import (
    NS,
    Backoff,
    Context,
    Pass,
    first_day,
    log,
    window_id,
)
from helios.porter.jobs.window import Todo, WindowJob
from helios.porter.merge import Merger, Record
from helios.porter.workers import IndexLoader, Job
from helios.store.layout import BucketName

_TIME = operator.itemgetter(1)   # an event's (or row's) time


class IndexJob(WindowJob):
    kind = "index"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.loader = IndexLoader(ctx.res)
        self._left_out: dict[str, tuple[int, int, int, int]] = {}   # this pass: env -> (events, oldest, newest, windows)

    @property
    def backoff(self) -> Backoff:
        return self.ctx.index_backoff

    def runner(self) -> IndexLoader:
        return self.loader

    @property
    def busy(self) -> int:
        return self.loader.busy

    def close(self) -> None:
        self.loader.close()

    def run_pass(self, p: Pass) -> bool:
        worked = super().run_pass(p)
        self.warn_left_out()
        return worked

    def todo(self, listed: report.Listed) -> Todo:
        now = time.time()
        states = self.states()
        todo: Todo = []
        for name, held in listed:
            srcs = report.index_todo(name, held, states.get(name), now, self.ctx.cfg.grace)
            if srcs:
                todo.append((name, srcs, states.get(name)))
        return todo

    def early(self, name: BucketName) -> Early | None:
        return self.ctx.early.get(name)

    def claim(self, name: BucketName, events: Sequence[Record]) -> tuple[list[Record], int]:
        return self.ctx.claim_for_index(name, list(events))

    def events(self, merger: Merger) -> Sequence[Record]:
        # The index sorts as it searches, so its loads take the rows as decoded.
        return merger.rows()

    def job(self, name: BucketName, events: Sequence[Record], meta: dict[str, Any]) -> Job:
        kept = searchable(events)
        meta["inventory"] = len(events) - len(kept)   # left out of the index: counted apart, never as events
        events = kept
        cutoff = first_day(self.ctx.cfg.recent_days) * NS   # events before the first day the index keeps
        if events and min(map(_TIME, events)) < cutoff:
            kept = [e for e in events if e[1] >= cutoff]
            old = [e[1] for e in events if e[1] < cutoff]
            meta["too_old"] = len(old)
            meta["left_out"] = (len(old), min(old), max(old))
            events = kept
        meta["early"] = early = self.early(name)
        if early is not None and early.left_out:
            lo = meta.get("left_out") or (0, early.left_out[1], early.left_out[2])
            meta["left_out"] = (lo[0] + early.left_out[0], min(lo[1], early.left_out[1]),
                                max(lo[2], early.left_out[2]))
        return Job("index", {"environment": name.environment}, events, meta)

    def done(self, job: Job, value: Any) -> None:
        ctx, m = self.ctx, job.meta
        name: BucketName = m["name"]
        took = time.monotonic() - job.started
        early: Early | None = m.get("early")
        before = early.events if early is not None else 0
        inventory = m.get("inventory", 0) + (early.inventory if early is not None else 0)
        ctx.state.mark_indexed(name, before + len(job.events), m["sources"], left_out=m.get("left_out"),
                               inventory=inventory, into=ctx.index_identity)
        if early is not None and ctx.early.get(name) is early:
            del ctx.early[name]   # the window is loaded: a buck fetched again later is fetched whole
        if m.get("left_out"):
            self._note_left_out(name.environment, *m["left_out"])
        new = (f"{value} new to the index" if not m.get("loaded_with") else
               f"{value} new to the index with the {m['loaded_with']} window(s) loaded with it")
        if before:
            new += f", and {before} loaded while it was open"
        if m.get("inventory"):
            new += f"; and {m['inventory']} inventory record(s) of tailers, for the audit (not indexed)"
        log.info("Indexed window %s: %d event(s), %s, from %d buck(s) "
                 "(dropped: %d duplicate frame(s) or event(s), %d frame(s) and %d event(s) ported "
                 "with an earlier window%s) in %.2f s.",
                 window_id(name), len(job.events), new, len(m["sources"]), m["duplicates"],
                 m["frames_elsewhere"], m["earlier"],
                 f", {m['too_old']} event(s) older than the index keeps" if m.get("too_old") else "",
                 m["fetch_s"] + took)
        ctx.counts["events_indexed"] += len(job.events)
        ctx.counts["inventory_records"] += m.get("inventory", 0)
        ctx.counts["indexed"] += 1

    def _note_left_out(self, environment: str, count: int, oldest: int, newest: int) -> None:
        self.ctx.counts["events_too_old"] += count
        n, lo, hi, windows = self._left_out.get(environment, (0, oldest, newest, 0))
        self._left_out[environment] = (n + count, min(lo, oldest), max(hi, newest), windows + 1)

    def warn_left_out(self) -> None:
        """One WARNING per environment and pass for the events loads left out
        as older than the index keeps: they are not searchable."""
        cfg = self.ctx.cfg
        for env, (count, oldest, newest, windows) in sorted(self._left_out.items()):
            log.warning("%d event(s) of %s in %d window(s) were left out of the index: their times (%s .. %s) are "
                        "before %s, the first day the index keeps (recent_days %d). They are archived with their "
                        "windows and `helios history request` can index them; if these times are wrong (a "
                        "sender's clock or time zone, syslog times without a year), fix the sender or raise "
                        "recent_days.", count, env, windows, report.iso(oldest / NS), report.iso(newest / NS),
                        (report.iso(first_day(cfg.recent_days)) or "")[:10], cfg.recent_days)
        self._left_out.clear()
