"""What the porter loaded of a window early, while the bucks still held it
open (``helios.porter.jobs.fresh``), for the window's own load once it is
closed (``helios.porter.jobs.index``) to go on from.

For every buck, the byte offset up to which its copy was fetched (always
the end of a whole record: a fetch returns whole records only, and a buck
cuts only a torn tail past the last whole record), and the digests of the
frames taken. Everything before an offset, and every frame of ``frames``,
had its events claimed for this window in the dedup ledger (or dropped as
another window's) and the kept ones loaded into the index, before the
offset moved: a fetch, claim or load that fails leaves it where it was.
So the window's load fetches each copy from its offset on, skips the
frames taken, and what it loads and what was loaded early are the window
whole.

A buck's file is append-only while open, but one that lost what it had not
written to disk (its machine crashed) or its disk may have grown again past
an offset with other records. So a resumed fetch starts one record early,
at the last record taken, and goes on only if that record is the frame
taken there (by its digest); else the copy is fetched whole (the frames
taken are still skipped). Kept in memory only: a porter restarted meanwhile loads the window
whole, its claims giving the same events again and the index keeping each
once by its key."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator

import xxhash

from helios.query.protocol import BucketEntry
from helios.store.records import HEADER

__all__ = ["Early", "Mark", "Resumed"]

log = logging.getLogger("helios.services.porter")


@dataclass(frozen=True)
class Mark:
    """How far one buck's copy was loaded early."""

    bucket: str          # the bucket id fetched
    offset: int          # the end of the last whole record taken
    last: bytes = b""    # the xxh3-128 digest of that record's frame (b"": none taken)
    last_len: int = 0    # and its length

    @property
    def check_at(self) -> int:
        """Where that last record starts."""
        return self.offset - HEADER.size - self.last_len if self.last else self.offset


@dataclass
class Early:
    offsets: dict[str, Mark] = field(default_factory=dict)   # buck endpoint -> how far its copy was loaded
    frames: set[bytes] = field(default_factory=set)
    events: int = 0                                   # loaded into the index
    inventory: int = 0                                # inventory records taken, left out of the index
    left_out: tuple[int, int, int] | None = None      # too old for the index: (count, oldest ns, newest ns)

    def resume_at(self, endpoint: str, entry: BucketEntry) -> Mark | None:
        """Where a fetch of this buck's copy goes on from, or None: from its
        start (nothing loaded from it early, or the buck's file is not the
        one loaded from: another bucket id, or shorter than the offset)."""
        mark = self.offsets.get(endpoint)
        return mark if mark is not None and mark.bucket == entry.id and entry.size >= mark.offset else None

    def add_left_out(self, left_out: tuple[int, int, int] | None) -> None:
        if not left_out or not left_out[0]:
            return
        if self.left_out is None:
            self.left_out = left_out
        else:
            n, lo, hi = self.left_out
            self.left_out = (n + left_out[0], min(lo, left_out[1]), max(hi, left_out[2]))


class Resumed:
    """The frames of one buck's copy of a window past what ``early`` loaded
    of it (all of them without a mark), checking the last record taken
    first (see the module docstring). After the iteration: ``stream`` (the
    ``BucketStream`` read last: its ``next``, damage counts), ``mark`` (how
    far this copy is loaded once the frames given are) and ``whole`` (True
    when the copy was fetched from its start)."""

    def __init__(self, qc: Any, endpoint: str, entry: BucketEntry, early: Early | None) -> None:
        self.qc, self.endpoint, self.entry = qc, endpoint, entry
        self.start = early.resume_at(endpoint, entry) if early is not None else None
        self.whole = self.start is None
        self.stream: Any = None
        self.mark = self.start or Mark(entry.id, 0)

    def __iter__(self) -> Iterator[bytes]:
        start = self.start
        if start is not None and start.offset > 0:
            self.stream = self.qc.fetch_bucket(self.endpoint, self.entry.id, offset=start.check_at)
            frames = iter(self.stream)
            first = next(frames, None) if start.last else None
            if not start.last or (first is not None and xxhash.xxh3_128_digest(first) == start.last):
                yield from self._track(frames)
                return
            frames.close()   # another file under that name: fetch it whole
            log.warning("Buck %s's copy of window %s is not the one the porter loaded from while it was open "
                        "(the record at byte %d differs): fetching it whole.", self.endpoint, self.entry.id,
                        start.check_at)
        self.whole = True
        self.mark = Mark(self.entry.id, 0)
        self.stream = self.qc.fetch_bucket(self.endpoint, self.entry.id)
        yield from self._track(iter(self.stream))

    def _track(self, frames: Iterator[bytes]) -> Iterator[bytes]:
        last = None
        for frame in frames:
            yield frame
            last = frame
        if last is not None:   # else the mark stays: nothing new was taken
            self.mark = Mark(self.entry.id, self.stream.next, xxhash.xxh3_128_digest(last), len(last))
