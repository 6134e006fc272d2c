"""The fresh job (``[porter] index_open_windows``, on by default): the
newest events, searchable within seconds instead of once their window
closed.

Each pass, for every window a buck still holds open, it fetches what each
buck appended since the last pass (the fetch is by byte offset, so only the
new records travel), merges the copies (skipping, undecoded, frames it took
in an earlier pass of the window), claims the events for the window in the
dedup ledger as the window's own load does (dropping those the ledger
gives to another window), leaves out those older than the index keeps
and the tailers' inventory records (each counted, as the index job counts
them) and loads the rest into the recent index.

Exactly once: what it loaded is remembered per window (``ctx.early``,
``helios.porter.early``): per buck the offset loaded up to, and the frames
taken. Once the window is closed, the index job fetches each buck's copy
from that offset on only, skips those frames, claims and loads the rest,
and marks the window (what the state, the archive and pruning go by), its
count adding what was loaded early. An offset moves only once its events
were claimed and loaded; a fetch, claim or load that fails leaves it, to
be fetched again (the next pass, or the window's own load). A porter
killed meanwhile forgets the offsets and loads the window whole: the
ledger gives it the same events again and the index keeps each once by its
key (source id, offset, id: ``INSERT OR IGNORE`` in SQLite, ``_id`` with
op type create in Elasticsearch and OpenSearch). What unusable frames a
fetch brings are kept in the quarantine first, as the window's load would.

What it costs: one fetch and decode per event, as with the window loads
alone, but in more, smaller loads (a transaction a pass per open window).
"""

from __future__ import annotations

import time

from helios.errors import HeliosError, QueryError
from helios.index.base import searchable
from helios.porter.early import Early, Mark, Resumed
from helios.porter.jobs.base import NS, Context, Pass, first_day, log, window_id
from helios.porter.jobs.window import keep_aside
from helios.porter.merge import Merger
from helios.porter.workers import Resources
from helios.query.protocol import BucketEntry
from helios.store.layout import BucketName


class FreshJob:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        # Its own index handle, in the porter's thread (the index loader has its
        # own on its thread), loading in-process: the fresh loads are small.
        spec = dict(ctx.spec)
        spec["index_options"] = {k: v for k, v in spec.get("index_options", {}).items() if k != "workers"}
        self.res = Resources(spec)
        self._failed_logged = 0.0

    def run_pass(self, p: Pass) -> bool:
        ctx = self.ctx
        listed = {name for name, _ in p.listed}
        # Forget the windows no buck holds any more (pruned, or dropped by an operator).
        for name in [n for n in ctx.early if n not in listed]:
            del ctx.early[name]
        if not ctx.index_backoff.ready(time.time()) or ctx.index_backoff.failures:
            return False  # the index is failing: the index job retries it, not us
        wanted = set(ctx.cfg.environments)
        worked = False
        for name, held in p.listed:
            if ctx.stopping.is_set():
                break
            if wanted and name.environment not in wanted:
                continue
            if not any(e.open for e in held.values()):
                continue
            worked |= self.load_new(name, held)
        return worked

    def load_new(self, name: BucketName, held: dict[str, BucketEntry]) -> bool:
        ctx = self.ctx
        early = ctx.early.get(name) or Early()
        merger = Merger(name.environment, window=name, owners=ctx.frame_owners, taken=early.frames)
        moved: dict[str, Mark] = {}
        for ep, entry in held.items():
            if ctx.stopping.is_set():
                return False  # asked to stop: nothing of this pass is marked (the window's load makes up for it)
            resumed = Resumed(ctx.qc, ep, entry, early)
            if entry.size <= resumed.mark.offset:
                continue
            try:
                for frame in resumed:
                    if ctx.stopping.is_set():
                        return False
                    merger.add_frame(frame)
            except QueryError as exc:
                # What this buck's stream gave before it failed is loaded below
                # (claimed and kept once); its offset stays, so it is fetched again.
                self._note_failure(f"fetching window {window_id(name)} from {ep}: {exc}")
                continue
            moved[ep] = resumed.mark
        if not moved and not merger.digests:
            return False
        if merger.set_aside and not keep_aside(ctx, name, merger):
            return False
        try:
            rows, dropped = ctx.claim_for_index(name, merger.rows())
        except HeliosError as exc:
            self._note_failure(f"recording window {window_id(name)} in the dedup ledger: {exc}")
            return False
        merger.claimed(dropped)
        kept = searchable(rows)   # as the index counts: the inventory records are counted apart
        inventory = len(rows) - len(kept)
        cutoff = first_day(ctx.cfg.recent_days) * NS
        events = [e for e in kept if e[1] >= cutoff]
        old = [e[1] for e in kept if e[1] < cutoff] if len(events) < len(kept) else []
        try:
            if events:
                self.res.index.load(name.environment, events)
        except (HeliosError, OSError, ValueError) as exc:
            self._note_failure(f"loading {len(events)} event(s) of window {window_id(name)}: {exc}")
            return False
        # Claimed and loaded: the window's own load goes on from here.
        early.offsets.update(moved)
        early.frames |= merger.digests
        early.events += len(events)
        early.inventory += inventory
        if old:
            early.add_left_out((len(old), min(old), max(old)))
        ctx.early[name] = early
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
