"""``helios rebuild``: the recent index for a range, again, from the archive
and the bucks, spread over worker processes.

The windows of the range (``sources.plan``) are cut into ``workers``
contiguous slices of about equal bytes; each slice is filled by a process
of its own (``builder.fill``, its index loading in-process), so the work
spreads over the cores, and slices of a range that spans days mostly write
different day files. With one worker, the slice is filled here, the sqlite
index spreading its loads over ``[porter] workers`` loader processes.
Loading is idempotent: events already in the index stay once, so a
rebuild fills what is missing and can be run again.

Workers are started with ``spawn``: a fresh interpreter each, holding no
ZeroMQ context, lock or thread of this one. Each sends its progress
(after every window) on a queue; the parent adds them up.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Callable

from helios.errors import HeliosError, HistoryError
from helios.history import places
from helios.history.builder import Counts, fill
from helios.history.serve import open_sources
from helios.history.sources import Window, plan

__all__ = ["rebuild", "slices"]


def slices(windows: list[Window], n: int) -> list[list[Window]]:
    """``windows`` (in order) cut into at most ``n`` contiguous runs of about equal size."""
    n = max(1, min(n, len(windows)))
    total = sum(max(1, w.size) for w in windows)
    out: list[list[Window]] = [[]]
    done = 0
    for w in windows:
        if len(out) < n and out[-1] and done >= total * len(out) / n:
            out.append([])
        out[-1].append(w)
        done += max(1, w.size)
    return [s for s in out if s]


def _worker(cfg, environment: str, start: int, end: int, part: list[Window], k: int, q) -> None:
    index = places.recent_index(cfg, **({"workers": 1} if cfg.porter.index == "sqlite" else {}))
    try:
        def report(c: Counts) -> bool:
            q.put(("progress", k, c.progress(), c.warnings[-5:]))
            return True
        fill(index, environment, start, end, part, open_sources=open_sources(cfg), report=report)
        q.put(("done", k, None, None))
    except HeliosError as exc:
        q.put(("error", k, str(exc), None))
    except BaseException as exc:  # a bug: still tell the parent, which says so
        q.put(("error", k, f"{type(exc).__name__}: {exc}", None))
    finally:
        index.close()


def rebuild(cfg, environment: str, start: int, end: int, workers: int,
            show: Callable[[Counts], None] = lambda c: None) -> Counts:
    """Fill the recent index with ``[start, end)`` of ``environment``;
    returns the counts. Raises the first failure (a ``HeliosError``;
    ``HistoryError`` for one in a worker process)."""
    archive, qc, close = open_sources(cfg)()
    try:
        windows, warnings = plan(environment, start, end, archive=archive, qc=qc, bucks=list(cfg.porter.bucks),
                                 margin=cfg.history.margin, archived_before=time.time() - cfg.porter.archive_age)
    finally:
        close()
    total = Counts(windows_total=len(windows), bytes_total=sum(w.size for w in windows), warnings=list(warnings))
    parts = slices(windows, workers)
    if len(parts) <= 1:
        opts = {"workers": max(1, cfg.porter.workers)} if cfg.porter.index == "sqlite" else {}
        index = places.recent_index(cfg, **opts)
        try:
            def report(c: Counts) -> bool:
                show(c)
                return True
            return fill(index, environment, start, end, windows, open_sources=open_sources(cfg), report=report,
                        counts=total)
        finally:
            index.close()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, environment, start, end, part, k, q), daemon=True)
             for k, part in enumerate(parts)]
    for p in procs:
        p.start()
    per: dict[int, dict] = {}
    left = set(range(len(procs)))
    error = None
    try:
        while left:
            try:
                kind, k, value, warns = q.get(timeout=0.5)
            except queue.Empty:
                for k2 in list(left):
                    if not procs[k2].is_alive() and procs[k2].exitcode not in (0, None):
                        error = error or f"rebuild worker {k2} died (exit code {procs[k2].exitcode})"
                        left.discard(k2)
                continue
            if kind == "progress":
                per[k] = value
                total.warnings += [w for w in warns if w not in total.warnings]
                for key in ("windows_done", "events_loaded", "events_read", "bytes_read", "inventory_records"):
                    setattr(total, key, sum(p[key] for p in per.values()))
                show(total)
            else:
                left.discard(k)
                if kind == "error":
                    error = error or value
                    for p in procs:  # one failed: the others' work would be for nothing
                        p.terminate()
                    break
    finally:
        for p in procs:
            p.join(30)
    if error:
        raise HistoryError(error, status=500)
    return total
