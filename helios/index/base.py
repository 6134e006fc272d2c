"""The one small interface every index backend offers, and the factory.

An index keeps events of several environments, split by UTC day so that
retention drops whole days. Loading is idempotent: an event whose id is
already in the index (for that environment and day) is not added again, so
a porter that runs twice, or two porters at once, leave each event once.
What a search returns is each ``Event`` whole (message bytes untouched,
fields, ids), in time order, ties broken by id.

    index = open_index("sqlite", "/var/lib/helios/index")            # DIR/helios-recent/
    index = open_index("opensearch", "http://127.0.0.1:9200", name="helios-history-4f2a")
    index.load("prod", events)           # -> how many were new
    index.search(parse_query("error host:web1", environment="prod", start=t0, end=t1))
    index.histogram(q, step)             # -> [(bucket start ns, {severity: count})], buckets with events
    index.top(q, "host", 10)             # -> [(value, count)], most first (host, app, severity, a field key)
    index.context("prod", t, id, 10, 10) # -> (10 events before, the event, 10 after) of its source

Aggregations count what ``q`` matches (its limit and cursor ignored):
``histogram`` per bucket ``[k*step, (k+1)*step)`` (from the epoch, so
buckets are round times; ``step`` whole seconds) and per severity (None: unknown); ``top`` the most frequent values of ``host``,
``app``, ``severity`` (as its name: ``err``; ``-`` for unknown) or of an
extracted field (``field_pairs``'s text), ties by value. ``top_values``
adds ``environment`` (the same query in each environment). ``context`` is
what surrounds one event in its source: the events of the same source id
by offset (events without one, client events: by time), nearest first on
each side, returned in order.

Backends: ``sqlite`` (``helios.index.sqlite``, the embedded default; the
location is a directory holding named indexes), ``elasticsearch`` and
``opensearch`` (``helios.index.elastic``; the location is the server URL,
the name the prefix of its daily indices).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import replace
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

from helios.errors import IndexStoreError
from helios.index.query import Query
from helios.model import INVENTORY_APP, Event

__all__ = ["DEFAULT_NAME", "FACETS", "Index", "KINDS", "check_name", "histogram_step", "open_index", "scan",
           "top_values"]

KINDS = ("sqlite", "elasticsearch", "opensearch")
DEFAULT_NAME = "helios-recent"
# Lowercase because Elasticsearch index names must be; one rule for every
# backend, so a name moves between them unchanged.
NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,99}"
SCAN_PAGE = 10_000
FACETS = ("host", "app", "severity", "environment")     # besides extracted fields
MAX_TOP = 1000              # most values ``top`` returns
MAX_CONTEXT = 500           # most events ``context`` returns on each side
# Bucket widths a histogram picks from (ns): round numbers a person reads.
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
            2 * 86400, 7 * 86400, 30 * 86400)


@runtime_checkable
class Index(Protocol):
    kind: str
    name: str

    def load(self, environment: str, events: Sequence[Event]) -> int:
        """Add the events of one environment (Events, or rows of at least
        ``ROW_FIELDS`` values in Event field order, as ``codec.decode_rows``
        gives them); return how many were new. Searchable once it returns."""

    def search(self, q: Query) -> list[Event]:
        """Up to ``q.limit`` events matching ``q``, in ``q.order``, past ``q.after``."""

    def count(self, q: Query) -> int:
        """How many events match ``q``, whatever its limit and cursor."""

    def histogram(self, q: Query, step: int) -> list[tuple[int, dict[int | None, int]]]:
        """Counts of ``q``'s events per bucket of ``step`` ns (whole seconds,
        buckets from the epoch) and per severity: (bucket start, {severity: count}), buckets with
        events only, in time order."""

    def top(self, q: Query, field: str, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most frequent values of ``field`` (host, app, severity or
        an extracted field's key) among ``q``'s events, with their counts."""

    def tops(self, q: Query, fields: Sequence[str], n: int = 10) -> dict[str, list[tuple[str, int]]]:
        """``top`` of each of ``fields`` at once (one pass over the matches
        where the backend can): what the search page's sidebar asks."""

    def field_keys(self, q: Query, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` extracted field keys most of ``q``'s events have, with how many have each."""

    def context(self, environment: str, t: int, event_id: bytes, before: int = 10,
                after: int = 10) -> tuple[list[Event], Event | None, list[Event]]:
        """The event (time ``t``, id ``event_id``), with up to ``before`` and
        ``after`` events of its source around it; (``[]``, None, ``[]``) if
        the index does not hold it."""

    def days(self, environment: str) -> list[datetime.date]:
        """The UTC days holding events of ``environment``, oldest first."""

    def keys(self, environment: str, day: datetime.date) -> Iterator[list[tuple[bytes, int, int]]]:
        """(id, time, received) of every event of ``environment`` on ``day``,
        a page at a time: for ``helios audit --index``."""

    def contents(self, environment: str, day: datetime.date) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
        """(id, time, received, digest) as ``keys``, the digest of all the
        index stores of the event but its time: for ``helios audit --index
        --content``, against ``content_digests``."""

    def content_digests(self, environment: str, events: Sequence) -> list[bytes]:
        """The digest ``contents`` gives of each of ``events`` (as ``load``
        takes them) once loaded: the backend's own mapping of an event."""

    def drop_days(self, environment: str, before: datetime.date) -> list[datetime.date]:
        """Remove every day of ``environment`` before ``before``; return them."""

    def environments(self) -> list[str]:
        """The environments that have events, sorted."""

    def drop(self) -> None:
        """Remove this whole named index (all environments and days)."""

    def close(self) -> None:
        """Release connections; the index stays."""


def searchable(events: Sequence) -> Sequence:
    """What an index takes of ``events`` (Events or rows in Event field
    order): all but the tailers' inventory records. Those are for
    ``helios audit``, which reads them from the bucks (the archive keeps them
    too); in an index they would show in searches, counts and the field
    sidebar as if they were log lines."""
    if not any(e[4] == INVENTORY_APP for e in events):
        return events
    return [e for e in events if e[4] != INVENTORY_APP]


def scan(index: Index, q: Query, page: int = SCAN_PAGE) -> Iterator[Event]:
    """Every event matching ``q`` (past its cursor), in its order, fetched a
    page at a time: for exports, where a window does not fit in memory."""
    q = replace(q, limit=page)
    while q is not None:
        hits = index.search(q)
        yield from hits
        q = q.next_page(hits)


def histogram_step(start: int, end: int, buckets: int = 60) -> int:
    """A round bucket width (ns) giving about ``buckets`` buckets over [start, end)."""
    span = max(1, end - start)
    for s in _STEPS_S:
        if span / (s * 1_000_000_000) <= buckets:
            return s * 1_000_000_000
    return _STEPS_S[-1] * 1_000_000_000


def check_top(field: str, n: int) -> None:
    from helios.errors import SearchError
    from helios.index.query import _FIELD_KEY

    if type(n) is not int or not 1 <= n <= MAX_TOP:
        raise SearchError(f"top: give 1..{MAX_TOP} values, not {n!r}")
    if not isinstance(field, str) or not _FIELD_KEY.fullmatch(field):
        raise SearchError(f"top: {field!r} is not a field: host, app, severity, environment or an extracted "
                          "field's key (user, http.status)")


def check_step(q: Query, step: int, most: int = 10_000) -> None:
    from helios.errors import SearchError

    if type(step) is not int or step < 1_000_000_000 or step % 1_000_000_000:
        raise SearchError(f"histogram: a bucket is whole seconds, not {step!r} ns")
    if (q.end - q.start) // step > most:
        raise SearchError(f"histogram: a bucket of {step // 1_000_000_000} s gives more than {most} buckets "
                          "over the range")


def check_context(before: int, after: int) -> None:
    from helios.errors import SearchError

    for name, v in (("before", before), ("after", after)):
        if type(v) is not int or not 0 <= v <= MAX_CONTEXT:
            raise SearchError(f"context: {name} must be 0..{MAX_CONTEXT}, not {v!r}")


def top_values(index: Index, q: Query, field: str, n: int = 10, environments=None) -> list[tuple[str, int]]:
    """``index.top``, and for ``environment`` the count of the same query in
    each environment (of ``environments``, default every one the index has)."""
    if field != "environment":
        return index.top(q, field, n)
    check_top(field, n)
    names = index.environments() if environments is None else environments
    counts = [(e, index.count(replace(q, environment=e, after=None))) for e in names]
    return sorted(((e, c) for e, c in counts if c), key=lambda ec: (-ec[1], ec[0]))[:n]


def context_by_time(index: Index, e: Event, before: int, after: int) -> tuple[list[Event], Event, list[Event]]:
    """The context of an event without a source offset (a client event):
    the events of its host and app nearest in time, within a day each side."""
    from helios.index.query import Query as Q

    day = 86_400 * 1_000_000_000
    base = Q(e.environment, max(0, e.time - day), e.time + day, hosts=(e.host,) if e.host else (),
             apps=(e.app,) if e.app else ())
    older = index.search(replace(base, order="desc", after=(e.time, e.id), limit=before)) if before else []
    newer = index.search(replace(base, order="asc", after=(e.time, e.id), limit=after)) if after else []
    return older[::-1], e, newer


def merge_top(counts: dict, n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda vc: (-vc[1], vc[0]))[:n]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise IndexStoreError(f"index name {name!r} is not usable: lowercase letters, digits, '_', '.', '-', "
                              "starting with a letter or digit, at most 100 characters")
    return name


def day_of(t_ns: int) -> datetime.date:
    """The UTC day holding time ``t_ns``."""
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=t_ns // 86_400_000_000_000)


def open_index(kind: str, location: str, name: str = DEFAULT_NAME, **options: Any) -> Index:
    """Open (creating on first write) the index ``name`` of backend ``kind``
    at ``location``: a directory for sqlite, a server URL for elasticsearch
    and opensearch. ``options`` go to the backend (see its class)."""
    check_name(name)
    if kind == "sqlite":
        from helios.index.sqlite import SqliteIndex

        return SqliteIndex(location, name, **options)
    if kind in ("elasticsearch", "opensearch"):
        from helios.index.elastic import ElasticIndex

        return ElasticIndex(kind, location, name, **options)
    raise IndexStoreError(f"unknown index kind {kind!r}: use one of {', '.join(KINDS)}")
