"""Fill an index with the events of one environment and time range, from
the archive and the bucks: history builds and ``helios rebuild``.

The windows (``sources.plan``) are read oldest first by a reader thread,
up to ``prefetch`` windows ahead, while this thread loads the one before
into the index: reading (an archive object's zstd and columns, or a
bucket's frames) and loading (SQLite's FTS5, in the sqlite index's own
loader processes, or an HTTP bulk load) overlap. Each window's events come
deduplicated and in time order (``helios.porter.merge``, or the archive's
canonical order); an event in two windows (a spool re-send) is kept once
by the index, which loads by event id (``Index.load`` is idempotent), so a
build that is run again, or taken over, leaves each event once.

Windows read while a load runs go into the index together with the next
one (``helios.index.batches``), so a fast reader makes fewer, bigger
index transactions. After every load, ``report`` gets the progress so far;
when it returns False the build stops (the request was dropped or taken
over).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

from helios.history import sources
from helios.history.sources import Window
from helios.index.batches import TOGETHER, gather

__all__ = ["Counts", "Stopped", "fill"]

log = logging.getLogger(__name__)


@dataclass
class Counts:
    windows_total: int = 0
    windows_done: int = 0
    events_loaded: int = 0      # new to the index
    events_read: int = 0        # in the windows read, in range or not (not the inventory records)
    inventory_records: int = 0  # tailers' inventory records read, which the index leaves out
    bytes_read: int = 0
    bytes_total: int = 0
    warnings: list[str] = field(default_factory=list)

    def progress(self) -> dict:
        return {k: getattr(self, k) for k in ("windows_total", "windows_done", "events_loaded", "events_read",
                                              "bytes_read", "bytes_total", "inventory_records")}


class Stopped(Exception):
    """The build was asked to stop (``report`` returned False, or ``stop``)."""


_END = object()


def _ends(item) -> bool:
    """The reader is done: the end of the windows, or what it raised."""
    return item is _END or isinstance(item, BaseException)


def _events_in(item) -> int:
    return len(item[1][0])


def fill(index, environment: str, start: int, end: int, windows: list[Window], *, open_sources: Callable,
         report: Callable[[Counts], bool] = lambda c: True, counts: Counts | None = None, prefetch: int = 2,
         stop: threading.Event | None = None, together: int = TOGETHER) -> Counts:
    """Load the events in ``[start, end)`` (ns) of ``windows`` into ``index``.

    ``open_sources()`` -> (archive, query client, close) is called in the
    reader thread (ZeroMQ sockets belong to the thread that made them).
    Raises what reading or loading raised (``HeliosError``), or ``Stopped``."""
    c = counts or Counts()
    c.windows_total = len(windows)
    c.bytes_total = sum(w.size for w in windows)
    stop = stop or threading.Event()
    done = threading.Event()       # the reader's cue to stop: this call is over, or asked to stop
    todo: queue.Queue = queue.Queue(maxsize=max(1, prefetch))

    def put(item) -> bool:
        while not (stop.is_set() or done.is_set()):
            try:
                todo.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            archive, qc, close = open_sources()
        except BaseException as exc:  # handed to the loading thread, which raises it
            put(exc)
            return
        try:
            for w in windows:
                if stop.is_set() or done.is_set():
                    return
                try:
                    item = (w, sources.read(w, start, end, archive=archive, qc=qc))
                except BaseException as exc:
                    put(exc)
                    return
                if not put(item):
                    return
            put(_END)
        finally:
            close()

    thread = threading.Thread(target=reader, name="history-reader", daemon=True)
    thread.start()
    try:
        while True:
            if stop.is_set():
                raise Stopped()
            try:
                item = todo.get(timeout=0.2)
            except queue.Empty:
                continue
            # Windows read meanwhile go in with this one (helios.index.batches).
            items = gather(item, todo, _events_in, limit=together, last=_ends)
            last = items[-1]
            if _ends(last):
                items.pop()         # what was read before it is loaded first
            events = items[0][1][0] if len(items) == 1 else [e for _, (part, *_) in items for e in part]
            if events:
                c.events_loaded += index.load(environment, events)
            for _, (_, read_count, nbytes, warnings, inventory) in items:
                c.windows_done += 1
                c.events_read += read_count
                c.inventory_records += inventory
                c.bytes_read += nbytes
                c.warnings += warnings
                for text in warnings:
                    log.warning("%s.", text)
            if items and not report(c):
                raise Stopped()
            if isinstance(last, BaseException):
                raise last
            if last is _END:
                break
    finally:
        done.set()
        thread.join(30)
    return c

