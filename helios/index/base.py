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
from helios.model import Event

__all__ = ["DEFAULT_NAME", "Index", "KINDS", "check_name", "open_index", "scan"]

KINDS = ("sqlite", "elasticsearch", "opensearch")
DEFAULT_NAME = "helios-recent"
# Lowercase because Elasticsearch index names must be; one rule for every
# backend, so a name moves between them unchanged.
NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]{0,99}"
SCAN_PAGE = 10_000


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

    def days(self, environment: str) -> list[datetime.date]:
        """The UTC days holding events of ``environment``, oldest first."""

    def drop_days(self, environment: str, before: datetime.date) -> list[datetime.date]:
        """Remove every day of ``environment`` before ``before``; return them."""

    def environments(self) -> list[str]:
        """The environments that have events, sorted."""

    def drop(self) -> None:
        """Remove this whole named index (all environments and days)."""

    def close(self) -> None:
        """Release connections; the index stays."""


def scan(index: Index, q: Query, page: int = SCAN_PAGE) -> Iterator[Event]:
    """Every event matching ``q`` (past its cursor), in its order, fetched a
    page at a time: for exports, where a window does not fit in memory."""
    q = replace(q, limit=page)
    while q is not None:
        hits = index.search(q)
        yield from hits
        q = q.next_page(hits)


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
