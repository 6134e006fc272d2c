"""How Helios' bulk processes use CPython's cyclic garbage collector.

The hot paths (the tailer's parse and encode, the porter's decode and merge,
the index loaders, archive unpacking) make millions of short-lived tuples,
lists and bytes, and none of them forms a reference cycle: reference
counting frees them all. At CPython's default threshold (a collection every
700 net allocations) the collector still runs every few hundred events and
scans whatever is young, and its older generations rescan everything the
process holds (a porter holds a window of events, its dedup ledger's cache
and its frame digests). In profiles that was a fifth to a third of the
tailer's time and the largest single cost in the porter's thread.
"""

from __future__ import annotations

import gc

__all__ = ["no_gc", "tune_gc"]


def tune_gc() -> None:
    """For a long-running process: what exists at start-up is frozen out of
    the collector's view, and it runs far less often. Call once, after the
    imports and start-up objects are made."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class no_gc:
    """No collection at all inside the block (millions of new objects made
    at once, none in a cycle); the collector's previous state after it."""

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self.was:
            gc.enable()
