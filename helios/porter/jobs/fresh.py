"""The fresh job (``[porter] index_open_windows``): the newest events,
searchable within seconds instead of once their window closed.

Each pass, for every window a buck still holds open, it fetches what each
buck appended since the last pass (the fetch is by byte offset, so only the
new records travel), merges the copies, leaves out what the index job
would (events it cannot hold, events older than the index keeps) and loads
the rest into the recent index.

Exactly once: the index job still loads every window whole once it is
closed, with the dedup ledger's claims, and marks it; that is what the
state, the archive and pruning go by. The fresh job marks nothing and
claims nothing: it only puts events in the index early. The index keeps an
event once by its key (source id, offset, id: ``INSERT OR IGNORE`` in
SQLite, ``_id`` with op type create in Elasticsearch and OpenSearch), so
the window's load later adds nothing twice. What it costs: the newest
events are fetched and decoded twice (here, then with their window), and
the index looks up each once more.

A fetch or load that fails is logged and left: the window's own load later
makes up for it. Offsets are kept in memory only; after a restart a window
still open is fetched from its start (loaded again, kept once)."""

from __future__ import annotations

import time

from helios.errors import HeliosError, QueryError
from helios.porter.jobs.base import NS, Context, Pass, first_day, log, window_id
from helios.porter.merge import Merger
from helios.porter.workers import Resources
from helios.store.layout import BucketName


class FreshJob:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Its own index handle, in the porter's thread (the index loader has its
        # own on its thread), loading in-process: the fresh loads are small.
        spec = dict(ctx.spec)
        spec["index_options"] = {k: v for k, v in spec.get("index_options", {}).items() if k != "workers"}
        self.res = Resources(spec)
        self.offsets: dict[tuple[str, str], int] = {}   # (bucket id, buck endpoint) -> bytes fetched
        self._failed_logged = 0.0

    def run_pass(self, p: Pass) -> bool:
        ctx = self.ctx
        if not ctx.index_backoff.ready(time.time()) or ctx.index_backoff.failures:
            return False  # the index is failing: the index job retries it, not us
        wanted = set(ctx.cfg.environments)
        open_ids = set()
        worked = False
        for name, held in p.listed:
            if ctx.stopping.is_set():
                break
            if wanted and name.environment not in wanted:
                continue
            if not any(e.open for e in held.values()):
                continue
            open_ids.update(e.id for e in held.values())
            worked |= self.load_new(name, held)
        # Forget the offsets of windows no longer open: their own load took over.
        self.offsets = {k: v for k, v in self.offsets.items() if k[0] in open_ids}
        return worked

    def load_new(self, name: BucketName, held: dict) -> bool:
        ctx = self.ctx
        merger = Merger(name.environment, window=name)
        moved: dict[tuple[str, str], int] = {}
        for ep, entry in held.items():
            key = (entry.id, ep)
            start = self.offsets.get(key, 0)
            if entry.size <= start:
                continue
            try:
                stream = ctx.qc.fetch_bucket(ep, entry.id, offset=start)
                for frame in stream:
                    merger.add_frame(frame)
            except QueryError as exc:
                self._note_failure(f"fetching window {window_id(name)} from {ep}: {exc}")
                continue
            moved[key] = stream.next
        if not moved:
            return False
        cutoff = first_day(ctx.cfg.recent_days) * NS
        events = [e for e in merger.rows() if e[1] >= cutoff]
        try:
            if events:
                self.res.index.load(name.environment, events)
        except (HeliosError, OSError, ValueError) as exc:
            self._note_failure(f"loading {len(events)} event(s) of window {window_id(name)}: {exc}")
            return False
        self.offsets.update(moved)
        ctx.counts["fresh_loaded"] += len(events)
        return bool(events)

    def _note_failure(self, what: str) -> None:
        now = time.monotonic()
        if now - self._failed_logged >= 60:
            self._failed_logged = now
            log.warning("Indexing open windows early: failed %s; the window's own load, once it is closed, "
                        "makes up for it.", what)

    def close(self) -> None:
        self.res.close()
