"""Where a build reads: the windows a time range needs, and each window's events.

Bucks file events by the time they arrive, so the events of ``[start,
end)`` lie in the windows that overlap that range, and in later ones for
events that arrived late (batching, spool re-sends); a clock a little
ahead puts some in earlier ones. ``plan`` therefore takes every window
overlapping the range widened by ``margin`` seconds on both sides, from
two places:

- the **archive** (``helios.archive``): objects listed day by day under
  ``ENV/YYYY/MM/DD/``; an archived window is read from the archive only,
  which holds it whole (the porter archived every buck's copy, merged);
- the **bucks** (``helios.query``): windows not archived (yet), read from
  every buck that holds them and merged (``helios.porter.merge``), each
  event once.

``read`` returns a window's events in the range, in time order. A window
that cannot be read (the archive is unreachable, no buck holding it
answers) raises, and the build fails with that reason; a buck that does
not answer while another holding the same window does is a warning, since
the copies of the others may lack some of its batches.
"""

from __future__ import annotations

import bisect
import datetime
from dataclasses import dataclass, field

from helios import archive as archive_mod
from helios.archive.store import window_of
from helios.errors import ArchiveError, HistoryError, QueryError
from helios.model import INVENTORY_APP, Event
from helios.porter.merge import Merger
from helios.query.client import holders
from helios.query.protocol import BucketEntry
from helios.store.layout import DAY, BucketName, bucket_id

__all__ = ["Window", "plan", "read"]

NS = 1_000_000_000


@dataclass(frozen=True)
class Window:
    name: BucketName
    key: str | None = None                                    # its archive object, when archived
    held: dict[str, BucketEntry] = field(default_factory=dict)  # else: bucks holding it
    size: int = 0                                             # bytes to read (the object, or every copy)

    @property
    def id(self) -> str:
        return bucket_id(self.name)

    @property
    def where(self) -> str:
        return f"archive {self.key}" if self.key else f"{len(self.held)} buck(s)"


def _days(lo: int, hi: int) -> list[datetime.date]:
    first = datetime.date(1970, 1, 1) + datetime.timedelta(days=max(0, lo) // DAY)
    last = datetime.date(1970, 1, 1) + datetime.timedelta(days=max(0, hi - 1) // DAY)
    return [first + datetime.timedelta(days=i) for i in range((last - first).days + 1)]


def bounds(start: int, end: int, margin: float) -> tuple[int, int]:
    """The seconds [lo, hi) whose windows a range [start, end) (ns) reads."""
    return start // NS - int(margin), -(-end // NS) + int(margin)


def plan(environment: str, start: int, end: int, *, archive, qc, bucks: list[str], margin: float,
         archived_before: float | None = None, timeout: float | None = None) -> tuple[list[Window], list[str]]:
    """The windows to read for ``[start, end)`` (ns), oldest first, and
    warnings (bucks that did not answer). ``ArchiveError`` if the archive
    cannot be listed. Windows that end after ``archived_before`` (seconds;
    the porter's archive age ago) cannot be in the archive yet: if the range
    reaches them and no buck answers, ``HistoryError``; an older range is
    built from the archive alone, with a warning."""
    lo, hi = bounds(start, end, margin)
    archived: dict[BucketName, str] = {}
    for day in _days(lo, hi):
        for key in archive.list(f"{environment}/{day:%Y/%m/%d}/"):
            try:
                w = window_of(key)
                name = BucketName(w.environment, w.start_ns // NS, w.width_s)
            except (ArchiveError, ValueError):
                continue  # not an object key (a stray file): nothing of ours
            if name.environment == environment and name.start < hi and name.end > lo:
                archived[name] = key
    warnings: list[str] = []
    held: dict[BucketName, dict[str, BucketEntry]] = {}
    if bucks:
        listings = qc.list_buckets(bucks, environment, lo * NS, hi * NS, timeout=timeout)
        failed = {ep: r for ep, r in listings.items() if isinstance(r, QueryError)}
        if failed and len(failed) == len(listings) and (archived_before is None or hi > archived_before):
            raise HistoryError("no buck answered, so the windows not archived yet cannot be read: "
                               + "; ".join(f"{ep}: {r}" for ep, r in failed.items()), status=503)
        warnings += [f"buck {ep} did not answer when the windows were listed ({r}); what it alone holds "
                     "is missing" for ep, r in failed.items()]
        for on in holders(listings).values():
            entry = next(iter(on.values()))
            held[BucketName(entry.environment, entry.start // NS, entry.width)] = on
    windows = []
    for name in sorted(set(archived) | set(held)):
        key = archived.get(name)
        if key is not None:
            stored = archive.head(key)
            windows.append(Window(name, key=key, size=stored.size if stored else 0))
        else:
            on = held[name]
            windows.append(Window(name, held=on, size=sum(e.size for e in on.values())))
    return windows, warnings


def in_range(events: list[Event], start: int, end: int) -> list[Event]:
    """The events with ``start <= time < end`` of a list sorted by time."""
    times = [e[1] for e in events]
    i, j = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
    return events if (i, j) == (0, len(events)) else events[i:j]


def inventory_in(events: list[Event]) -> int:
    """How many of ``events`` are tailers' inventory records (the index
    leaves them out: ``helios.index.base.searchable``)."""
    return sum(1 for e in events if e[4] == INVENTORY_APP)


def read(window: Window, start: int, end: int, *, archive, qc) -> tuple[list[Event], int, int, list[str], int]:
    """(events of the window in [start, end) in time order, events read,
    bytes read, warnings, tailers' inventory records read). The inventory
    records are counted apart, as the porter counts them
    (``inventory_records``): an index leaves them out, so "events read" is
    what a search of the window can find."""
    env = window.name.environment
    if window.key is not None:
        events = archive_mod.load(archive, window.key)      # sorted by time first (canonical order)
        inventory = inventory_in(events)
        return in_range(events, start, end), len(events) - inventory, window.size, [], inventory
    merger = Merger(env)
    got, failed, nbytes = [], {}, 0
    for ep, entry in window.held.items():
        try:
            stream = qc.fetch_bucket(ep, entry.id)
            for frame in stream:
                merger.add_frame(frame)
            nbytes += stream.bytes
            got.append(ep)
        except QueryError as exc:
            failed[ep] = str(exc)
    if not got:
        raise HistoryError(f"window {window.id} could not be read from any buck holding it: "
                           + "; ".join(f"{ep}: {why}" for ep, why in failed.items()), status=503)
    warnings = [f"window {window.id}: buck {ep} did not answer ({why}); the other copies were read"
                for ep, why in failed.items()]
    if merger.bad_frames:
        warnings.append(f"window {window.id}: {merger.bad_frames} frame(s) could not be decoded "
                        f"(first: {merger.problems[0]})")
    if merger.events_aside:
        first = next(why for _, n, why in merger.set_aside if n)[0]
        warnings.append(f"window {window.id}: {merger.events_aside} event(s) no index can hold were left out "
                        f"(first: {first}; the porter keeps such events in its quarantine)")
    events = merger.events()
    inventory = inventory_in(events)
    return in_range(events, start, end), len(events) - inventory, nbytes, warnings, inventory
