"""The archive job: a window ``archive_age`` past its end and not archived
is fetched and merged as for the index, packed and stored by the archive
workers (verified by the backend), unless the blacklist names it (then it
is marked skipped). The archive keeps the tailers' inventory records with
the events (the index leaves them out): its counts hold them, and say how
many (``inventory_archived``)."""

from __future__ import annotations

import time
from typing import Any, Sequence

from helios.index.base import searchable
from helios.porter import report
from helios.porter.jobs.base import Backoff, Context, log, window_id
from helios.porter.jobs.window import Todo, WindowJob
from helios.porter.merge import Merger, Record
from helios.porter.workers import Job, make_pool
from helios.store.layout import BucketName


class ArchiveJob(WindowJob):
    kind = "archive"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pool: Any = None  # the archive workers: started with the first archive job

    @property
    def backoff(self) -> Backoff:
        return self.ctx.archive_backoff

    def runner(self) -> Any:
        if self.pool is None:
            self.pool = make_pool(self.ctx.cfg.workers, self.ctx.spec)
        return self.pool

    @property
    def busy(self) -> int:
        return self.pool.busy if self.pool is not None else 0

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def todo(self, listed: report.Listed) -> Todo:
        ctx = self.ctx
        now = time.time()
        states = self.states()
        todo: Todo = []
        for name, held in listed:
            ws = states.get(name)
            srcs = report.archive_todo(name, held, ws, now, ctx.cfg.archive_age)
            if not srcs:
                continue
            entry = ctx.blacklist.matches(name)
            if entry is not None:
                ctx.state.mark_skipped(name, entry)
                log.info("Window %s is on the archive blacklist (%s): not archived.", window_id(name), entry)
                continue
            todo.append((name, srcs, ws))
        return todo

    def events(self, merger: Merger) -> Sequence[Record]:
        return merger.events()   # the archive keeps events in (time, id) order

    def job(self, name: BucketName, events: Sequence[Record], meta: dict[str, Any]) -> Job:
        args = {"environment": name.environment, "start": name.start, "width": name.width,
                "level": self.ctx.cfg.archive_level}
        meta["inventory"] = len(events) - len(searchable(events))
        return Job("archive", args, events, meta)

    def done(self, job: Job, value: Any) -> None:
        ctx, m = self.ctx, job.meta
        name: BucketName = m["name"]
        took = time.monotonic() - job.started
        key, size, checksum, count = value
        ctx.state.mark_archived(name, key, size, checksum, count, m["sources"])
        inventory = m.get("inventory", 0)
        log.info("Archived window %s as %s: %d event(s)%s, %d bytes, from %d buck(s), in %.2f s.",
                 window_id(name), key, count, f" ({inventory} of them tailers' inventory records)" if inventory else "",
                 size, len(m["sources"]), m["fetch_s"] + took)
        ctx.counts["events_archived"] += count
        ctx.counts["inventory_archived"] += inventory
        ctx.counts["archived"] += 1
