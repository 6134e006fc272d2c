"""Merge the copies of one bucket window fetched from several bucks.

Every buck that holds a window has its own copy of the frames that reached
it: the same batch twice (a tailer sends each batch to two bucks), a spool
bucket re-sent whole, frames in a different order. ``Merger`` takes those
frames in any order, from any number of bucks, decodes them
(``helios.codec.decode``; the ids of tailed lines, sent empty, are derived
there), keeps each event id once and hands the events back sorted by
(time, id): a total order, so any porter merging the same frames produces
the same list.

Copies of one event are identical (the mesh never rewrites an event); if
two copies with one id differ anyway, the first one given is kept.

The merge holds one window's events in memory: its cost is the window's
distinct events, not the number of copies.

Whole frames are deduplicated before any is decoded: the two live copies of
a batch are the same bytes (a tailer encodes a batch once and sends that
frame to two bucks), and so is a spool re-send (the spool keeps the frames
as sent). So a frame whose bytes were already taken in this window is
skipped, and so is one that ``FrameOwners`` gives to another window of
the porter's recent past: every event of it was claimed for that window
in the dedup ledger (``helios.porter.seen``; this only spares the
decoding). On a tailer's usual three copies of every batch, this decodes
each batch once.

A frame becomes a window's in ``FrameOwners`` only once the window's claim
kept every event the merge decoded (``Merger.claimed``), never on sight:
the ledger outlives the porter and ``FrameOwners`` does not, so a later
window may own a frame's events from an earlier run (its early load, then
kill -9) while this run meets the frame first in an older window. Taken
on sight, the older window dropped the events (the ledger's are the later
window's) and the later one skipped the frame as the older one's: the
events were in no index (11,133 of 24,871 lines of the fault harness's
seed 3).
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any, Iterable

import xxhash

from helios import codec
from helios.errors import FrameError
from helios.model import Event

__all__ = ["FrameOwners", "Merger", "Record", "merge_events", "merge_frames"]

# One event as a merge holds it: an Event, or (a Merger with an environment)
# the row as decoded, a list of ``ROW_FIELDS`` values in Event field order.
# Both index alike: [0] the id, [1] the time, [4] the app.
Record = Event | list[Any]

_BY_TIME_ID = operator.itemgetter(1, 0)


class FrameOwners:
    """Which window each recent frame (by its xxh3-128 digest) was first
    taken in; the oldest entries are forgotten past ``max_frames``."""

    def __init__(self, max_frames: int = 1_000_000) -> None:
        self.max_frames = max_frames
        self._owner: OrderedDict[bytes, object] = OrderedDict()

    def owner(self, digest: bytes) -> object:
        """The window whose claim kept every event of this frame, or None."""
        return self._owner.get(digest)

    def take(self, digests: Iterable[bytes], window: object) -> None:
        """Give ``window`` the frames of ``digests`` no window has yet: call
        it only once the window's claim kept every event of them."""
        owners = self._owner
        for digest in digests:
            if digest not in owners:
                owners[digest] = window
        while len(owners) > self.max_frames:
            owners.popitem(last=False)


class Merger:
    """Accumulates frames (or events) of one window; ``events()`` is the
    result, sorted, and ``rows()`` the same records unsorted and as decoded
    (what an index load takes: no Event made, no sort).

    Counts: ``frames`` (decoded), ``frame_copies`` (skipped: taken already
    in this window), ``frames_elsewhere`` (skipped: taken in another window,
    see ``FrameOwners``), ``copies`` (events decoded, copies included),
    ``bad_frames`` (frames that did not decode: counted and skipped, their
    reasons in ``problems``, at most ten kept), ``events_aside`` (events
    that decoded but no index or archive could hold: left out). Both kinds
    of frame are in ``set_aside``, for the porter's quarantine.

    ``window`` names the window for ``owners`` (any value that compares
    equal for the same window). ``taken``: digests of frames of this window
    whose events were already ported (by the porter's early loads of an open
    window, ``helios.porter.jobs.fresh``); they are skipped like a copy
    (``frame_copies``). It is only read: the digests this merge takes are in
    ``digests``."""

    def __init__(self, environment: str | None = None, *, window: object = None,
                 owners: FrameOwners | None = None, taken: set[bytes] | frozenset[bytes] = frozenset()) -> None:
        self.environment = environment
        self.window = window
        self.owners = owners
        self.frames = 0
        self.frame_copies = 0
        self.frames_elsewhere = 0
        self.copies = 0
        self.bad_frames = 0
        self.problems: list[str] = []
        # Frames holding what cannot be indexed or archived, for the porter's
        # quarantine: (frame, events left out or None when it does not decode, reasons).
        self.set_aside: list[tuple[bytes, int | None, list[str]]] = []
        self.events_aside = 0
        self._by_id: dict[bytes, Record] = {}
        self._digests: set[bytes] = set()
        self._decoded: list[bytes] = []   # digests of the frames decoded here, for ``claimed``
        self._taken = taken

    @property
    def digests(self) -> set[bytes]:
        """The digests of the frames this merge took (decoded or not)."""
        return self._digests

    def add_frame(self, frame: bytes) -> None:
        """Decode one frame and add its events, unless the same bytes were
        taken already (see the module docstring). A frame that does not
        decode (the bucks checked it on arrival, so this means damage on the
        way) is counted in ``bad_frames``; the others go on."""
        digest = xxhash.xxh3_128_digest(frame)
        if digest in self._digests or digest in self._taken:
            self.frame_copies += 1
            return
        self._digests.add(digest)
        if self.owners is not None and self.owners.owner(digest) not in (None, self.window):
            self.frames_elsewhere += 1
            return
        aside: list[tuple[int, Any, str]] = []   # (position, row as sent, problem): codec.decode_rows
        try:
            # With the environment known, rows stay as decoded (lists): an
            # Event each costs about a microsecond in the porter's busiest thread.
            header, events = (codec.decode(frame, set_aside=aside) if self.environment is None
                              else codec.decode_rows(frame, set_aside=aside))
        except FrameError as exc:
            self._bad(frame, str(exc))
            return
        if self.environment is not None and header.environment != self.environment:
            self._bad(frame, f"a frame of environment {header.environment!r} in a bucket of {self.environment!r}")
            return
        if aside:
            self.events_aside += len(aside)
            self.set_aside.append((frame, len(aside), [f"event {i} of the batch: {why}" for i, _, why in aside[:3]]))
        self.frames += 1
        self._decoded.append(digest)
        self.add_events(events)

    def claimed(self, dropped: int) -> None:
        """The window's claim in the dedup ledger is made, ``dropped`` events
        of this merge given to other windows: with none dropped, the frames
        decoded here are the window's in ``owners`` (skipped, undecoded, in
        other windows); with some, they stay nobody's and are decoded again
        wherever they come (the ledger keeps each event once)."""
        if self.owners is not None and not dropped:
            self.owners.take(self._decoded, self.window)

    def _bad(self, frame: bytes, why: str) -> None:
        self.bad_frames += 1
        if len(self.problems) < 10:
            self.problems.append(why)
        self.set_aside.append((frame, None, [why]))

    def add_events(self, events: list[Event] | list[list[Any]]) -> None:
        """Add Events (or rows of ``ROW_FIELDS`` values in Event field order,
        when the Merger has an environment)."""
        self.copies += len(events)
        by_id = self._by_id
        # setdefault keeps the first copy; one C call per event.
        setdefault = by_id.setdefault
        for e in events:
            setdefault(e[0], e)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def duplicates(self) -> int:
        return self.copies - len(self._by_id)

    def events(self) -> list[Event]:
        """The distinct events, sorted by (time, id)."""
        out = self.rows()
        out.sort(key=_BY_TIME_ID)
        env, make = self.environment, tuple.__new__
        return [e if type(e) is Event else make(Event, (*e, env)) for e in out]

    def rows(self) -> list[Record]:
        """The distinct events in no particular order, each an Event or a
        row (a list of ``ROW_FIELDS`` values in Event field order)."""
        return list(self._by_id.values())


def merge_frames(frames: Iterable[bytes], environment: str | None = None) -> list[Event]:
    """The distinct events of ``frames`` sorted by (time, id); frames that do
    not decode are skipped (``Merger`` counts them)."""
    m = Merger(environment)
    for frame in frames:
        m.add_frame(frame)
    return m.events()


def merge_events(*copies: Iterable[Event]) -> list[Event]:
    """The distinct events of several lists of events, sorted by (time, id)."""
    m = Merger()
    for events in copies:
        m.add_events(list(events))
    return m.events()
