"""The prune job: a window indexed and archived and past the buck retention
age is deleted from the bucks whose copy went into both. The porter's
record (what it indexed and archived from each buck's copy) is left with a
buck first: the buck prunes only what that record shows."""

from __future__ import annotations

import time

from helios.errors import QueryError
from helios.porter import report
from helios.porter.jobs.base import Context, Pass, log
from helios.porter.state import WindowState
from helios.porter.windows import older_than
from helios.store.layout import BucketName

PRUNE_BATCH = 500        # bucket ids per prune request
# Bucket ids in one record (one buck, one pass; the rest next pass): twice
# 2,000 ids of up to ~90 bytes stay well under a buck's query_max_request (1 MiB).
RECORD_MAX = 2_000


class PruneJob:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def run_pass(self, p: Pass) -> bool:
        return self.prune(p.listed)

    def due(self, listed: report.Listed, now: float,
            states: dict[BucketName, WindowState]) -> dict[str, list[tuple[BucketName, str]]]:
        """Endpoint -> the (window, bucket id) it may prune, oldest first."""
        cfg = self.ctx.cfg
        age = max(cfg.prune_age, cfg.archive_age)
        per_buck: dict[str, list[tuple[BucketName, str]]] = {}
        for name, held in listed:
            if not older_than(name, now, age):
                continue
            for ep in report.prune_targets(held, states.get(name)):
                per_buck.setdefault(ep, []).append((name, held[ep].id))
        return per_buck

    def prune(self, listed: report.Listed) -> bool:
        ctx = self.ctx
        states = {ws.name: ws for ws in ctx.state.windows()}
        per_buck = self.due(listed, time.time(), states)
        worked = False
        for ep, items in per_buck.items():
            # The buck prunes only what the porter's own record shows indexed
            # and archived from its copy (helios.query.server): leave it first.
            ids = [bid for _, bid in items[:RECORD_MAX]]
            kept = ctx.qc.record(ep, ctx.source, indexed=ids, archived=[
                bid for (name, bid) in items[:RECORD_MAX] if states[name].archived_at is not None],
                skipped=[bid for (name, bid) in items[:RECORD_MAX] if states[name].archived_at is None])
            if isinstance(kept, QueryError):
                log.warning("Could not leave the porter's record with buck %s, so it prunes nothing: %s.", ep, kept)
                continue
            items = items[:RECORD_MAX]
            for i in range(0, len(items), PRUNE_BATCH):
                if ctx.stopping.is_set():
                    return worked
                batch = items[i:i + PRUNE_BATCH]
                result = ctx.qc.prune([ep], [bid for _, bid in batch])[ep]
                if isinstance(result, QueryError):
                    log.warning("Could not prune buck %s: %s.", ep, result)
                    break
                gone = set(result.deleted) | set(result.not_found)
                for name, bid in batch:
                    if bid in gone:
                        ctx.state.mark_pruned(name, [ep])
                ctx.counts["pruned"] += len(result.deleted)
                worked |= bool(result.deleted)
                if result.deleted:
                    log.info("Buck %s pruned %d window(s), indexed and archived, up to %s.", ep,
                             len(result.deleted), max(result.deleted))
                for bid, why in list(result.refused.items())[:3]:
                    log.warning("Buck %s refused to prune %s: %s.", ep, bid, why)
        return worked
