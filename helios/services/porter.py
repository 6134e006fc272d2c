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
"""

from __future__ import annotations

import datetime
import json
import logging
import operator
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from helios.errors import HeliosError, QueryError, ServiceError
from helios.porter import report
from helios.porter.archiving import archive_spec, describe_location
from helios.porter.merge import FrameOwners, Merger
from helios.porter.quarantine import Quarantine, problem_line, summarize as quarantine_summary
from helios.porter.seen import Seen
from helios.porter.state import State, WindowState
from helios.porter.windows import Blacklist, older_than
from helios.query.client import holders
from helios.store.atomic import write_atomic
from helios.store.durable import make_dirs
from helios.store.layout import BucketName

log = logging.getLogger(__name__)

NS = 1_000_000_000
LEASE_S = 900.0          # a job's hold on a window against a second porter; it expires if we die
PRUNE_BATCH = 500        # bucket ids per prune request
# Bucket ids in one record (one buck, one pass; the rest next pass): twice
# 2,000 ids of up to ~90 bytes stay well under a buck's query_max_request (1 MiB).
RECORD_MAX = 2_000
RETENTION_EVERY = 60.0   # seconds between looks at the index's days
QUARANTINE_EVERY = 60.0  # seconds between counts of the quarantine (unless it grew)
_TIME = operator.itemgetter(1)   # an event's (or row's) time


class Backoff:
    """Retry timing of one failing dependency (the index, the archive)."""

    def __init__(self, what: str, lo: float, hi: float) -> None:
        self.what, self.lo, self.hi = what, lo, hi
        self.failures = 0
        self.retry_at = 0.0
        self.since: float | None = None
        self.error: str | None = None

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, error: str, now: float) -> float:
        self.failures += 1
        delay = min(self.hi, self.lo * 2 ** min(self.failures - 1, 30))
        self.retry_at = now + delay
        self.since = self.since or now
        self.error = error
        return delay

    def succeeded(self) -> bool:
        """Reset; True if it had been failing."""
        was = self.failures > 0
        self.failures, self.retry_at, self.since, self.error = 0, 0.0, None, None
        return was

    def status(self, now: float, where: str) -> dict:
        if not self.failures:
            return {"state": "ok", "where": where}
        return {"state": "down", "where": where, "error": self.error, "since": self.since,
                "failures": self.failures, "retry_in": max(0.0, self.retry_at - now)}


def index_spec(cfg) -> dict:
    sqlite = cfg.index == "sqlite"
    return {"index": cfg.index, "index_location": cfg.index_dir if sqlite else cfg.index_url,
            "index_name": cfg.index_name,
            # The sqlite index spreads a load over its own loader processes.
            "index_options": {"workers": max(1, cfg.workers)} if sqlite else {}}


class Porter:
    """The service (see the module docstring) for one ``[porter]`` section;
    ``once``: a single pass, for cron and tests."""

    def __init__(self, cfg, *, once: bool = False) -> None:
        self.cfg = cfg
        self.once = once
        self.state_dir = Path(cfg.state_dir)
        try:
            make_dirs(self.state_dir)  # 0750 whatever the umask
        except OSError as exc:
            raise ServiceError(f"cannot use the porter state directory {self.state_dir}: {exc.strerror}") from None
        self.blacklist = Blacklist(cfg.archive_blacklist)
        self.quarantine = Quarantine(self.state_dir)
        self.quarantine_failed = False   # for ``once``: a window was left because its quarantine could not be written
        self._quarantine_summary = quarantine_summary(self.state_dir)
        self._quarantine_at = time.monotonic()
        self.spec = {**index_spec(cfg), **archive_spec(cfg)}
        self.index_where = f"{cfg.index} {self.spec['index_location']} ({cfg.index_name})"
        self.archive_where = f"{cfg.archive} {describe_location(self.spec)}"
        self.stopping = threading.Event()
        self.index_backoff = Backoff("index", cfg.backoff_min, cfg.backoff_max)
        self.archive_backoff = Backoff("archive", cfg.backoff_min, cfg.backoff_max)
        self.bucks: dict[str, str] = {}        # endpoint -> "ok" or why it is down
        self.counts: Counter[str] = Counter()
        self.started = time.time()
        self._retention_at = 0.0
        self.frame_owners = FrameOwners()
        self._listed: report.Listed | None = None
        self._listed_at: float | None = None     # when the bucks were last asked
        self._status_at = float("-inf")
        self._left_out: dict[str, tuple[int, int, int, int]] = {}   # this pass: env -> (events, oldest, newest, windows)

    @property
    def source(self) -> str:
        """This porter's name in its reports and records at the bucks."""
        return f"porter@{os.uname().nodename}:{self.state_dir.resolve()}"

    def stop(self) -> None:
        """Finish the jobs in flight, then return from ``run``; safe from a signal handler."""
        self.stopping.set()

    # ----------------------------------------------------------------- running

    def run(self) -> int:
        """Pass after pass until stopped (or one pass with ``once``); returns
        0, or 1 when ``once`` met an index or archive that failed, or a
        quarantine it could not write."""
        from helios.porter.workers import IndexLoader, Resources
        from helios.query.client import QueryClient

        self.pool = None  # the archive workers: started with the first archive job
        self.res = Resources(self.spec)
        self.loader = IndexLoader(self.res)
        try:
            self.state = State(self.state_dir / "porter.db")
            self.seen = Seen(self.state_dir / "seen", horizon=self.cfg.archive_age + self.cfg.dedup_horizon)
            self.qc = QueryClient(timeout=self.cfg.timeout)
        except BaseException:
            self.loader.close()
            raise
        self.metrics = None
        if self.cfg.metrics:
            from helios.metrics import Endpoint, porter_families

            self.metrics = Endpoint.start("porter", f"porter@{os.uname().nodename}", self.cfg.metrics,
                                          porter_families(self))
        log.info("Porter ports the windows of %d buck(s) into the %s index and the %s archive.",
                 len(self.cfg.bucks), self.index_where, self.archive_where)
        try:
            while not self.stopping.is_set():
                worked = self.run_pass()
                if self.once:
                    break
                if not worked:
                    self._nap()
        finally:
            self._drain()
            self._warn_left_out()
            self.loader.close()
            if self.pool is not None:
                self.pool.close()
            self.res.close()
            self.qc.close()
            self.write_status()
            self.state.close()
            if self.metrics is not None:
                self.metrics.close()
            log.info("Porter stopped: %d window(s) indexed, %d archived, %d pruned from bucks.",
                     self.counts["indexed"], self.counts["archived"], self.counts["pruned"])
        failed = self.index_backoff.failures or self.archive_backoff.failures or self.quarantine_failed
        return 1 if self.once and failed else 0

    def _nap(self) -> None:
        now = time.time()
        wake = now + self.cfg.poll_interval
        for b in (self.index_backoff, self.archive_backoff):
            if b.failures:
                wake = min(wake, max(b.retry_at, now + 0.05))
        self.stopping.wait(max(0.0, wake - now))

    def run_pass(self) -> bool:
        """One look at the bucks and one round of each job; True if any job ran."""
        self._listed_at = time.time()
        listings = self.qc.list_buckets(self.cfg.bucks)
        self._note_bucks(listings)
        wanted = set(self.cfg.environments)
        listed = [(n, h) for n, h in report.parse_listed(holders(listings))
                  if not wanted or n.environment in wanted]
        self._listed = listed
        worked = self.index_pass(listed)
        self._warn_left_out()
        worked |= self.archive_pass(listed)
        worked |= self.prune_pass(listed)
        self.retention()
        self.write_status()
        self.leave_report(listings)
        return worked

    def _note_bucks(self, listings: dict) -> None:
        for ep, result in listings.items():
            before = self.bucks.get(ep)
            if isinstance(result, QueryError):
                self.bucks[ep] = str(result)
                if before != self.bucks[ep] and (before is None or before == "ok"):
                    log.warning("Buck %s is not answering (%s); porting goes on with the others, and its "
                                "windows are fetched from it when it is back.", ep, result)
            else:
                self.bucks[ep] = "ok"
                if before not in (None, "ok"):
                    log.info("Buck %s answers again.", ep)

    # ----------------------------------------------------------------- the jobs

    def _states(self) -> dict[BucketName, WindowState]:
        return {ws.name: ws for ws in self.state.windows()}

    def index_pass(self, listed: report.Listed) -> bool:
        now = time.time()
        states = self._states()
        todo = []
        for name, held in listed:
            srcs = report.index_todo(name, held, states.get(name), now, self.cfg.grace)
            if srcs:
                todo.append((name, srcs, states.get(name)))
        return self._run_jobs("index", todo)

    def archive_pass(self, listed: report.Listed) -> bool:
        now = time.time()
        states = self._states()
        todo = []
        for name, held in listed:
            ws = states.get(name)
            srcs = report.archive_todo(name, held, ws, now, self.cfg.archive_age)
            if not srcs:
                continue
            entry = self.blacklist.matches(name)
            if entry is not None:
                self.state.mark_skipped(name, entry)
                log.info("Window %s is on the archive blacklist (%s): not archived.", _id(name), entry)
                continue
            todo.append((name, srcs, ws))
        return self._run_jobs("archive", todo)

    def _run_jobs(self, kind: str, todo: list) -> bool:
        if not todo:
            return False
        if kind == "index":
            runner = self.loader
        else:
            if self.pool is None:
                from helios.porter.workers import make_pool

                self.pool = make_pool(self.cfg.workers, self.spec)
            runner = self.pool
        backoff = self.index_backoff if kind == "index" else self.archive_backoff
        worked = False
        for name, srcs, ws in todo:
            if self.stopping.is_set() or not backoff.ready(time.time()):
                break
            while not runner.free():
                self._finish(kind, runner.wait(1.0))
            if not backoff.ready(time.time()):
                break  # a job in flight just failed: stop feeding that dependency
            if not self.state.lease(kind, name, LEASE_S):
                log.debug("Another porter holds the %s lease of window %s; leaving it to that one.", kind, _id(name))
                continue
            job = self._prepare(kind, name, srcs, ws)
            if job is None:
                self.state.release(kind, name)
                continue
            runner.submit(job)
            worked = True
            self._finish(kind, runner.wait(0))
        while runner.busy:
            self._finish(kind, runner.wait(1.0))
        return worked

    def _drain(self) -> None:
        for kind, runner in (("index", getattr(self, "loader", None)), ("archive", getattr(self, "pool", None))):
            while runner is not None and runner.busy:
                self._finish(kind, runner.wait(1.0))

    def _prepare(self, kind: str, name: BucketName, srcs: dict, ws: WindowState | None):
        from helios.porter.workers import Job

        t0 = time.monotonic()
        merger, ok, failed = self._fetch(name, srcs)
        if not ok:
            return None
        if merger.set_aside and not self._set_aside(name, merger):
            return None
        try:
            # The index sorts as it searches, so its loads take the rows as
            # decoded; the archive keeps events in (time, id) order.
            events, earlier = self.seen.claim(name, merger.rows() if kind == "index" else merger.events())
        except HeliosError as exc:
            log.error("Cannot record window %s in the dedup ledger: %s; it is left for the next pass.",
                      _id(name), exc)
            return None
        meta = {"name": name, "sources": ok, "failed": failed, "copies": merger.copies,
                "duplicates": merger.duplicates + merger.frame_copies, "frames_elsewhere": merger.frames_elsewhere,
                "earlier": earlier, "fetch_s": time.monotonic() - t0}
        if kind == "index":
            cutoff = self._index_cutoff_ns()
            if events and min(map(_TIME, events)) < cutoff:
                kept = [e for e in events if e[1] >= cutoff]
                old = [e[1] for e in events if e[1] < cutoff]
                meta["too_old"] = len(old)
                meta["left_out"] = (len(old), min(old), max(old))
                events = kept
            return Job("index", {"environment": name.environment}, events, meta)
        args = {"environment": name.environment, "start": name.start, "width": name.width,
                "level": self.cfg.archive_level}
        return Job("archive", args, events, meta)

    def _fetch(self, name: BucketName, srcs: dict) -> tuple[Merger, list[str], dict[str, str]]:
        merger = Merger(name.environment, window=name, owners=self.frame_owners)
        ok: list[str] = []
        failed: dict[str, str] = {}
        for ep, entry in srcs.items():
            if self.stopping.is_set():
                return merger, [], failed
            try:
                stream = self.qc.fetch_bucket(ep, entry.id)
                for frame in stream:
                    if self.stopping.is_set():
                        # Asked to stop: a window not yet handed to a job is
                        # dropped (nothing was marked), not fetched to its end.
                        return merger, [], failed
                    merger.add_frame(frame)
            except QueryError as exc:
                failed[ep] = str(exc)
                log.warning("Could not fetch window %s from buck %s (%s); the other bucks' copies go on, "
                            "and this one is fetched again later.", _id(name), ep, exc)
                continue
            if stream.corrupt_records or stream.skipped_bytes:
                log.warning("Buck %s's copy of window %s is damaged: %d corrupt record(s), %d byte(s) skipped; "
                            "the intact records were taken.", ep, _id(name), stream.corrupt_records,
                            stream.skipped_bytes)
            ok.append(ep)
        self.counts["fetched_copies"] += merger.copies
        return merger, ok, failed

    def _set_aside(self, name: BucketName, merger: Merger) -> bool:
        """Keep what the window holds that no index or archive can take in
        the quarantine (``helios.porter.quarantine``), before the window's
        job runs: once it is marked, the bucks may prune it. False when it
        cannot be written: the window waits for the next pass."""
        try:
            added = self.quarantine.put(name, merger.set_aside)
        except (OSError, HeliosError) as exc:
            log.error("Cannot keep %d frame(s) of window %s in the quarantine (%s): %s; the window is left "
                      "for the next pass, so nothing is pruned.", len(merger.set_aside), _id(name),
                      self.quarantine.dir, exc)
            self.counts["quarantine_failures"] += 1
            self.quarantine_failed = True
            return False
        if added:
            self.counts["quarantined_frames"] += added
            self._quarantine_at = float("-inf")  # counted again with the next status
            first = merger.set_aside[0][2][0] if merger.set_aside[0][2] else "?"
            log.warning("Window %s: %d event(s) that no index or archive can hold and %d frame(s) that do not "
                        "decode are kept in the quarantine (%s; first: %s); the rest of the window goes on.",
                        _id(name), merger.events_aside, merger.bad_frames, self.quarantine.dir, first)
        return True

    def _finish(self, kind: str, results: list) -> None:
        now = time.time()
        for job, (status, value) in results:
            m = job.meta
            name: BucketName = m["name"]
            took = time.monotonic() - job.started
            if status == "ok":
                if kind == "index":
                    self.state.mark_indexed(name, len(job.events), m["sources"], left_out=m.get("left_out"))
                    if m.get("left_out"):
                        self._note_left_out(name.environment, *m["left_out"])
                    new = (f"{value} new to the index" if not m.get("loaded_with") else
                           f"{value} new to the index with the {m['loaded_with']} window(s) loaded with it")
                    log.info("Indexed window %s: %d event(s), %s, from %d buck(s) "
                             "(dropped: %d duplicate frame(s) or event(s), %d frame(s) and %d event(s) ported "
                             "with an earlier window%s) in %.2f s.",
                             _id(name), len(job.events), new, len(m["sources"]), m["duplicates"],
                             m["frames_elsewhere"], m["earlier"],
                             f", {m['too_old']} event(s) older than the index keeps" if m.get("too_old") else "",
                             m["fetch_s"] + took)
                    self.counts["events_indexed"] += len(job.events)
                else:
                    key, size, checksum, count = value
                    self.state.mark_archived(name, key, size, checksum, count, m["sources"])
                    log.info("Archived window %s as %s: %d event(s), %d bytes, from %d buck(s), in %.2f s.",
                             _id(name), key, count, size, len(m["sources"]), m["fetch_s"] + took)
                    self.counts["events_archived"] += count
                self.counts["indexed" if kind == "index" else "archived"] += 1
                backoff = self.index_backoff if kind == "index" else self.archive_backoff
                if backoff.succeeded():
                    log.info("The %s works again (%s).", kind, self.index_where if kind == "index"
                             else self.archive_where)
            else:
                self._failed(kind, str(value), now, f"window {_id(name)}")
            self.state.release(kind, name)
        if results:
            self.write_status(at_most_every=1.0)

    def _note_left_out(self, environment: str, count: int, oldest: int, newest: int) -> None:
        self.counts["events_too_old"] += count
        n, lo, hi, windows = self._left_out.get(environment, (0, oldest, newest, 0))
        self._left_out[environment] = (n + count, min(lo, oldest), max(hi, newest), windows + 1)

    def _warn_left_out(self) -> None:
        """One WARNING per environment and pass for the events loads left out
        as older than the index keeps: they are not searchable."""
        for env, (count, oldest, newest, windows) in sorted(self._left_out.items()):
            log.warning("%d event(s) of %s in %d window(s) were left out of the index: their times (%s .. %s) are "
                        "before %s, the first day the index keeps (recent_days %d). They are archived with their "
                        "windows and `helios history request` can index them; if these times are wrong (a "
                        "sender's clock or time zone, syslog times without a year), fix the sender or raise "
                        "recent_days.", count, env, windows, report.iso(oldest / NS), report.iso(newest / NS),
                        report.iso(self._first_day())[:10], self.cfg.recent_days)
        self._left_out.clear()

    def _failed(self, kind: str, error: str, now: float, doing: str) -> None:
        backoff = self.index_backoff if kind == "index" else self.archive_backoff
        first = not backoff.failures
        delay = backoff.failed(error, now)
        self.counts[f"{kind}_failures"] += 1
        where = self.index_where if kind == "index" else self.archive_where
        (log.error if first else log.warning)(
            "The %s (%s) failed on %s: %s. Retrying in %.0f s; nothing is pruned until it succeeds.",
            kind, where, doing, error, delay)

    # ----------------------------------------------------------------- pruning and retention

    def prune_pass(self, listed: report.Listed) -> bool:
        now = time.time()
        age = max(self.cfg.prune_age, self.cfg.archive_age)
        states = self._states()
        per_buck: dict[str, list[tuple[BucketName, str]]] = {}
        for name, held in listed:
            if not older_than(name, now, age):
                continue
            for ep in report.prune_targets(held, states.get(name)):
                per_buck.setdefault(ep, []).append((name, held[ep].id))
        worked = False
        for ep, items in per_buck.items():
            # The buck prunes only what the porter's own record shows indexed
            # and archived from its copy (helios.query.server): leave it first.
            ids = [bid for _, bid in items[:RECORD_MAX]]
            kept = self.qc.record(ep, self.source, indexed=ids, archived=[
                bid for (name, bid) in items[:RECORD_MAX] if states[name].archived_at is not None],
                skipped=[bid for (name, bid) in items[:RECORD_MAX] if states[name].archived_at is None])
            if isinstance(kept, QueryError):
                log.warning("Could not leave the porter's record with buck %s, so it prunes nothing: %s.", ep, kept)
                continue
            items = items[:RECORD_MAX]
            for i in range(0, len(items), PRUNE_BATCH):
                if self.stopping.is_set():
                    return worked
                batch = items[i:i + PRUNE_BATCH]
                result = self.qc.prune([ep], [bid for _, bid in batch])[ep]
                if isinstance(result, QueryError):
                    log.warning("Could not prune buck %s: %s.", ep, result)
                    break
                gone = set(result.deleted) | set(result.not_found)
                for name, bid in batch:
                    if bid in gone:
                        self.state.mark_pruned(name, [ep])
                self.counts["pruned"] += len(result.deleted)
                worked |= bool(result.deleted)
                if result.deleted:
                    log.info("Buck %s pruned %d window(s), indexed and archived, up to %s.", ep,
                             len(result.deleted), max(result.deleted))
                for bid, why in list(result.refused.items())[:3]:
                    log.warning("Buck %s refused to prune %s: %s.", ep, bid, why)
        return worked

    def _index_cutoff_ns(self) -> int:
        """Events before this (the first day the index keeps) are not loaded."""
        return self._first_day() * NS

    def _first_day(self) -> int:
        today = int(time.time()) // 86400 * 86400
        return today - self.cfg.recent_days * 86400

    def retention(self) -> None:
        now = time.time()
        if self.loader.busy or not self.index_backoff.ready(now) or (
                not self.once and now - self._retention_at < RETENTION_EVERY):
            return
        self._retention_at = now
        self.forget(now)
        before = datetime.date(1970, 1, 1) + datetime.timedelta(days=self._first_day() // 86400)
        wanted = set(self.cfg.environments)
        try:
            index = self.res.index
            for env in index.environments():
                if wanted and env not in wanted:
                    continue
                for day in index.drop_days(env, before):
                    self.state.mark_day_dropped(env, (day - datetime.date(1970, 1, 1)).days * 86400)
                    self.counts["days_dropped"] += 1
        except Exception as exc:  # an index that is down: the same backoff as loads
            self._failed("index", f"{type(exc).__name__}: {exc}" if not isinstance(exc, HeliosError) else str(exc),
                         now, "dropping old days")

    def forget(self, now: float) -> None:
        """Prune the dedup ledger, and the state of windows done with long ago
        (an archive object found under a forgotten window's key is merged
        into, never overwritten: see ``helios.porter.archiving``)."""
        try:
            self.seen.prune(now)
        except OSError as exc:
            log.warning("Could not prune the porter's dedup ledger: %s.", exc)
        horizon = max(self.cfg.prune_age, self.cfg.archive_age) + self.cfg.dedup_horizon
        for env in self.state.environments():
            self.state.forget_before(env, int(now - horizon))

    # ----------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        now = time.time()
        if time.monotonic() - self._quarantine_at >= QUARANTINE_EVERY:
            # Also when an operator moved the quarantine away once it was looked into.
            self._quarantine_summary = quarantine_summary(self.state_dir)
            self._quarantine_at = time.monotonic()
        envs = report.summarize(self._listed, self.state.windows(), now, grace=self.cfg.grace,
                                archive_age=self.cfg.archive_age, prune_age=self.cfg.prune_age,
                                environments=self.cfg.environments, left_out=self.state.left_out())
        return {"pid": os.getpid(), "started": self.started, "updated": now, "listed_at": self._listed_at,
                "bucks": dict(self.bucks),
                "index": self.index_backoff.status(now, self.index_where),
                "archive": self.archive_backoff.status(now, self.archive_where),
                "environments": envs, "counts": dict(self.counts), "quarantine": self._quarantine_summary,
                "metrics": self.metrics.address if getattr(self, "metrics", None) is not None else None}

    def leave_report(self, listings: dict) -> None:
        """Leave this pass's progress with every buck that answered, for
        ``helios status`` on any host (``QueryClient.report``)."""
        now = time.time()
        states = self.state.windows()
        last: dict[str, dict[str, int | None]] = {}
        for ws in states:
            e = last.setdefault(ws.name.environment, {"indexed": None, "archived": None, "pruned": None})
            for key, done in (("indexed", ws.indexed), ("archived", ws.archived_at is not None),
                              ("pruned", bool(ws.pruned_from))):
                if done:
                    e[key] = max(e[key] or 0, ws.name.end)
        behind = report.summarize(self._listed, states, now, grace=self.cfg.grace, archive_age=self.cfg.archive_age,
                                  prune_age=self.cfg.prune_age, environments=self.cfg.environments)
        left_out = self.state.left_out()
        envs = {}
        for env in sorted(set(last) | set(behind)):
            b = behind.get(env, {})
            envs[env] = {**last.get(env, {"indexed": None, "archived": None, "pruned": None}),
                         "behind": f"index {b.get('index_behind', 0)}, archive {b.get('archive_behind', 0)}, "
                                   f"prune {b.get('prune_behind', 0)} window(s)",
                         "too_old": (left_out.get(env) or {}).get("events", 0)}
        problems = [f"the {b.what} ({w}) is failing since {report.iso(b.since)}: {b.error}; nothing is pruned "
                    "until it works" for b, w in ((self.index_backoff, self.index_where),
                                                 (self.archive_backoff, self.archive_where)) if b.failures]
        problems += [f"buck {ep} does not answer" for ep, st in self.bucks.items() if st != "ok"]
        held_aside = problem_line(self._quarantine_summary)
        if held_aside:
            problems.append(held_aside)
        live = [ep for ep, r in listings.items() if not isinstance(r, QueryError)]
        if not live:
            return
        body = {"environments": envs, "problems": problems, "pid": os.getpid(), "updated": now}
        try:
            self.qc.report(live, self.source, body,
                           timeout=min(self.cfg.timeout, 2.0))
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
            write_atomic(self.state_dir / "status.json", json.dumps(self.last_status, indent=1).encode(), durable=False)
        except (OSError, HeliosError) as exc:
            log.warning("Could not write the porter status file: %s.", exc)


def _id(name: BucketName) -> str:
    from helios.store.layout import bucket_id

    return bucket_id(name)

