"""What the index and archive jobs share: a window is leased, fetched from
every buck that holds it, merged (``helios.porter.merge``), its unusable
frames kept in the quarantine, its events claimed in the dedup ledger,
handed to a runner (the index loader, the archive workers), and marked in
the state once its job succeeded. A failing dependency is retried with the
job's ``Backoff``; nothing is fed to it meanwhile."""

from __future__ import annotations

import time
from typing import Any, Sequence

from helios.errors import HeliosError, QueryError
from helios.porter import report
from helios.porter.jobs.base import LEASE_S, Backoff, Context, Pass, log, window_id
from helios.porter.early import Early, Resumed
from helios.porter.merge import Merger, Record
from helios.porter.state import WindowState
from helios.porter.workers import Job
from helios.query.protocol import BucketEntry
from helios.store.layout import BucketName

# A window due for a job: its name, the bucks whose copies to fetch, and its state (None: never marked).
Todo = list[tuple[BucketName, dict[str, BucketEntry], WindowState | None]]
# What a runner hands back: each job finished, with ("ok", its value) or ("error", why).
Results = list[tuple[Job, tuple[str, Any]]]


class WindowJob:
    """A job run window by window on a runner; subclasses say which
    windows are due, how a window becomes a ``Job`` and what its result marks."""

    kind = ""   # the job's name in the state's leases and in the log

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # What a subclass says.
    @property
    def backoff(self) -> Backoff:
        raise NotImplementedError

    def runner(self) -> Any:
        raise NotImplementedError

    def todo(self, listed: report.Listed) -> Todo:
        raise NotImplementedError

    def events(self, merger: Merger) -> Sequence[Record]:
        raise NotImplementedError

    def job(self, name: BucketName, events: Sequence[Record], meta: dict[str, Any]) -> Job:
        raise NotImplementedError

    def done(self, job: Job, value: Any) -> None:
        raise NotImplementedError

    @property
    def busy(self) -> int:
        return 0

    def early(self, name: BucketName) -> Early | None:
        """What was loaded of the window while it was open, to go on from
        (``helios.porter.early``); None: the window is fetched whole."""
        return None

    # The round.
    def run_pass(self, p: Pass) -> bool:
        return self.run(self.todo(p.listed))

    def states(self) -> dict[BucketName, WindowState]:
        return {ws.name: ws for ws in self.ctx.state.windows()}

    def run(self, todo: Todo) -> bool:
        if not todo:
            return False
        ctx, runner, backoff = self.ctx, self.runner(), self.backoff
        worked = False
        for name, srcs, ws in todo:
            if ctx.stopping.is_set() or not backoff.ready(time.time()):
                break
            while not runner.free():
                ctx.busy_with(f"{self.kind}: {runner.busy} window(s) in flight, waiting for one to finish")
                self.finish(runner.wait(1.0))
            if not backoff.ready(time.time()):
                break  # a job in flight just failed: stop feeding that dependency
            if not ctx.state.lease(self.kind, name, LEASE_S):
                log.debug("Another porter holds the %s lease of window %s; leaving it to that one.", self.kind,
                          window_id(name))
                continue
            job = self.prepare(name, srcs, ws)
            if job is None:
                ctx.state.release(self.kind, name)
                continue
            runner.submit(job)
            worked = True
            self.finish(runner.wait(0))
        self.drain()
        return worked

    def drain(self) -> None:
        runner = self.runner() if self.busy else None
        while runner is not None and runner.busy:
            self.ctx.busy_with(f"{self.kind}: {runner.busy} window(s) in flight, waiting for them to finish")
            self.finish(runner.wait(1.0))
        self.ctx.busy_with(None)

    def prepare(self, name: BucketName, srcs: dict[str, BucketEntry], ws: WindowState | None) -> Job | None:
        t0 = time.monotonic()
        merger, ok, failed = self.fetch(name, srcs)
        if not ok:
            return None
        if merger.set_aside and not self.set_aside(name, merger):
            return None
        try:
            events, earlier = self.claim(name, self.events(merger))
        except HeliosError as exc:
            log.error("Cannot record window %s in the dedup ledger: %s; it is left for the next pass.",
                      window_id(name), exc)
            self.ctx.counts["ledger_failures"] += 1
            self.ctx.ledger_failed = True
            return None
        merger.claimed(earlier)
        meta = {"name": name, "sources": ok, "failed": failed, "copies": merger.copies,
                "duplicates": merger.duplicates + merger.frame_copies, "frames_elsewhere": merger.frames_elsewhere,
                "earlier": earlier, "fetch_s": time.monotonic() - t0}
        return self.job(name, events, meta)

    def claim(self, name: BucketName, events: Sequence[Record]) -> tuple[list[Record], int]:
        """The window's events that belong to it (``helios.porter.seen``)."""
        return self.ctx.seen.claim(name, events)

    def fetch(self, name: BucketName, srcs: dict[str, BucketEntry]) -> tuple[Merger, list[str], dict[str, str]]:
        ctx = self.ctx
        early = self.early(name)
        merger = Merger(name.environment, window=name, owners=ctx.frame_owners,
                        taken=early.frames if early is not None else frozenset())
        ok: list[str] = []
        failed: dict[str, str] = {}
        for i, (ep, entry) in enumerate(srcs.items()):
            if ctx.stopping.is_set():
                return merger, [], failed
            doing = f"{self.kind}: fetching window {window_id(name)} from buck {ep} ({i + 1} of {len(srcs)})"
            ctx.busy_with(doing)
            try:
                resumed = Resumed(ctx.qc, ep, entry, early)
                for n, frame in enumerate(resumed, 1):
                    if ctx.stopping.is_set():
                        # Asked to stop: a window not yet handed to a job is
                        # dropped (nothing was marked), not fetched to its end.
                        return merger, [], failed
                    merger.add_frame(frame)
                    if not n % 64:
                        ctx.busy_with(doing)   # the status stays fresh through a big window
            except QueryError as exc:
                failed[ep] = str(exc)
                log.warning("Could not fetch window %s from buck %s (%s); the other bucks' copies go on, "
                            "and this one is fetched again later.", window_id(name), ep, exc)
                continue
            stream = resumed.stream
            if stream is not None and (stream.corrupt_records or stream.skipped_bytes):
                log.warning("Buck %s's copy of window %s is damaged: %d corrupt record(s), %d byte(s) skipped; "
                            "the intact records were taken.", ep, window_id(name), stream.corrupt_records,
                            stream.skipped_bytes)
            ok.append(ep)
        ctx.counts["fetched_copies"] += merger.copies
        return merger, ok, failed

    def set_aside(self, name: BucketName, merger: Merger) -> bool:
        """Keep what the window holds that no index or archive can take in
        the quarantine (``helios.porter.quarantine``), before the window's
        job runs: once it is marked, the bucks may prune it. False when it
        cannot be written: the window waits for the next pass."""
        return keep_aside(self.ctx, name, merger)

    def finish(self, results: Results) -> None:
        now = time.time()
        backoff = self.backoff
        for job, (status, value) in results:
            name: BucketName = job.meta["name"]
            if status == "ok":
                self.done(job, value)
                if backoff.succeeded():
                    log.info("The %s works again (%s).", backoff.what, backoff.where)
            else:
                self.ctx.failed(backoff, str(value), now, f"window {window_id(name)}")
            self.ctx.state.release(self.kind, name)
        if results:
            self.ctx.progressed()


def keep_aside(ctx: Context, name: BucketName, merger: Merger) -> bool:
    """``WindowJob.set_aside``, for any job that ports a window's events."""
    try:
        added = ctx.quarantine.put(name, merger.set_aside)
    except (OSError, HeliosError) as exc:
        log.error("Cannot keep %d frame(s) of window %s in the quarantine (%s): %s; the window is left "
                  "for the next pass, so nothing is pruned.", len(merger.set_aside), window_id(name),
                  ctx.quarantine.dir, exc)
        ctx.counts["quarantine_failures"] += 1
        ctx.quarantine_failed = True
        return False
    if added:
        ctx.counts["quarantined_frames"] += added
        ctx.quarantine_at = float("-inf")  # counted again with the next status
        first = merger.set_aside[0][2][0] if merger.set_aside[0][2] else "?"
        log.warning("Window %s: %d event(s) that no index or archive can hold and %d frame(s) that do not "
                    "decode are kept in the quarantine (%s; first: %s); the rest of the window goes on.",
                    window_id(name), merger.events_aside, merger.bad_frames, ctx.quarantine.dir, first)
    return True
