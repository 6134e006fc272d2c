"""The embedded index: SQLite files with an FTS5 trigram index.

Layout on disk (``LOCATION/NAME/``)::

    index.json                    {"format": 1, "shards": 2, "term_index": false}   (META_FORMAT)
    ENV/YYYY-MM-DD/0.db, 1.db     one file per (environment, UTC day, shard), WAL mode

Why so many files:

- **Days**: retention drops whole days, and dropping a day is removing a
  directory: no DELETE, no VACUUM, no index left to rewrite.
- **Shards**: SQLite writes one transaction at a time per file, and FTS5
  indexing is CPU-bound (``../shared/anchors/sqlite``: about 72,000 rows/s
  per core with a trigram index), so 100,000 events/s takes both cores. An
  event's shard is the last byte of its id modulo the shard count, so it is
  a pure function of the id: every copy of an event meets the same unique
  index, whichever process loads it, and loading splits evenly over worker
  processes however the events are spread in time. A search reads each
  shard of each day in range and merges by (time, id).

Each file holds a table ``ev`` (the events, whole: id, times, host, app,
severity, source, offset, message bytes, fields as msgpack, source id) with
a unique index on ``(source id, offset, id)`` (the dedup key; see
``_schema``) and one on ``(t, id)``, and a contentless FTS5
trigram table ``tri`` (``detail=none``: it answers "which rows hold all of
these trigrams", the cheapest layout to build; ``columnsize=0`` in files made
since 2026-12: no per-row token counts, which only ranking reads), and ``fv``, the searchable
fields: one row (key, value text, event rowid) per pair of
``helios.index.query.field_pairs``, its primary key in that order
(``WITHOUT ROWID``), so ``key:value`` is one b-tree range and "does row n
have it" one lookup. With ``term_index`` a
second contentless FTS5 table ``words`` (unicode61) indexes words too;
whether it pays for itself is measured by ``bench/index.py``.

Loading: one transaction per (file, up to ``txn_rows`` events): ``INSERT
OR IGNORE`` the rows (the unique key drops an event already there),
then feed the new rows (rowid above the old maximum; the write lock makes
that exact) to FTS5 in one ``INSERT .. SELECT``, so the text index work
never leaves C. Only when some of the events have fields are the new rows'
fields read back and their pairs added to ``fv``. Two processes loading the same file take turns on its
write lock (busy timeout), so concurrent porters never duplicate. With
``workers`` > 1, ``load`` partitions by shard and hands each part to a
persistent worker process (frames of ``marshal`` data over a pipe); small
loads stay in-process.

Searching: the needles of a query (terms and substrings of 3 characters or
more that are UTF-8) become one FTS5 expression per file, an AND of the
trigrams of theirs that are rarest in that file (``_pick``: FTS5 reads each
trigram's whole list, so a common one costs more than it saves;
``detail=none`` cannot do phrases); the candidates are rechecked exactly:
``instr`` on the message bytes for substrings, ``LIKE`` then a whole-word
regex (``helios_word``) for terms. A file with few candidates (under
``MANY``) is answered from them. With many (common needles) and a limit,
rows are first walked in time order with the rechecks alone (a field is
rechecked by one ``fv`` lookup; with one host, that host's rows only, by
the index ``ev_host``), which finds
``limit`` hits after a few hundred rows; a walk that reads its budget of
rows without finding them falls back to the candidates. Shorter needles and
filters alone are answered by walking the time range.

Each file's ``PRAGMA user_version`` is its schema (``FORMAT``). A file of
format 1 (before fields were searchable) is brought to format 2 the first
time it is opened: ``fv`` is made and filled from the stored fields, in one
transaction, so an index built before keeps working and finds fields too.

Counting: the rollups (format 3) hold events per (minute, severity, host,
app) in ``agg``, per hour in ``agg_h`` and per (minute, severity) in
``agg_s``, added to in each load's transaction from the rows it added (the
events themselves when all were new, else the rows above the old maximum
rowid, as for FTS5), so they are exact under the dedup key. A histogram or
top values of a query with no needle and no field reads them for the whole
hours and minutes of the range and the events for the partial minutes at
its ends (``_rollup_parts``); other queries count the events by ``GROUP
BY``. A file of format 2 gets them from its events when first opened
(``_migrate_2_to_3``); one that cannot be written counts its events.

Events are deduplicated per (environment, day), by that key: a copy of an
event with a different time on another day is a different row.
"""

from __future__ import annotations

import datetime
import hashlib
import heapq
import json
import logging
import marshal
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from dataclasses import replace
from itertools import islice, zip_longest
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import msgpack

from helios.errors import IndexStoreError
from helios.gctune import tune_gc
from helios.index.base import (DEFAULT_NAME, check_context, check_name, check_step, check_top, context_by_time, searchable,
                               day_of, merge_top)
from helios.store import durable
from helios.index.query import DAY_NS, Query, field_pairs, word_regex
from helios.model import Event, severity_name
from helios.store.layout import valid_environment

__all__ = ["FORMAT", "SqliteIndex"]

log = logging.getLogger(__name__)

META_FORMAT = 1             # index.json "format"
FORMAT = 3                  # each file's PRAGMA user_version (2: the fv table of searchable fields; 3: agg)
MINUTE_NS = 60 * 10**9      # the rollup's unit of time (agg.m) ...
HOUR_NS = 3600 * 10**9      # ... and its coarser level's (agg_h.m)
META = "index.json"
DEFAULT_SHARDS = 2
TXN_ROWS = 100_000          # events per transaction: big enough to amortize the commit
PARALLEL_MIN = 4_000        # fewer events than this load in-process even with workers
FRAME_ROWS = 100_000        # most events handed to a loader process at once (one transaction each)
MANY = 2_000                # candidates in a file past which a limited search walks in time order first
WALK_MIN = 20_000           # rows such a walk may read before it gives up (at least) ...
WALK_PER_HIT = 100          # ... or this many per hit asked for
MAX_TRIGRAMS = 24           # an AND of more trigrams is rarely more selective, only slower
PICK_MIN, PICK_MAX = 3, 6   # trigrams of a query looked up in a file: the rarest there (see _pick)
PICK_SELECTIVE = 1e-7       # ... fewer than PICK_MAX once they are this rare together, by the sample
PICK_COST = 30              # ... and none more common than this times the rows the ones taken leave
SAMPLE_ROWS = 2_000         # newest messages of a file that estimate how common a trigram is there
BUSY_TIMEOUT = 120.0        # seconds a writer waits for another process's transaction
MAX_OPEN = 64               # connections kept open (LRU)
AUTOMERGE = 16              # FTS5 segments merged at once (its default is 4); see _schema
HASHSIZE = 64 << 20         # bytes of FTS5 pending terms before a flush to a new segment (its default is 1 MiB)
_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

_COLUMNS = "id, t, received, host, app, sev, source, off, msg, fields, source_id"
_INSERT = f"INSERT OR IGNORE INTO ev({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_ROW = itemgetter(*range(11))           # an Event (or its tuple) as the row above, in C
_FIELDS = attrgetter("fields")
_KEY = itemgetter(1, 0)                 # (t, id) of a row of _COLUMNS


def _schema(term_index: bool) -> list[str]:
    ddl = [
        # n is the rowid: FTS5 rows point at it; it grows in insertion order.
        "CREATE TABLE ev(n INTEGER PRIMARY KEY, id BLOB NOT NULL, t INTEGER NOT NULL, received INTEGER NOT NULL,"
        " host TEXT NOT NULL, app TEXT NOT NULL, sev INTEGER, source TEXT NOT NULL, off INTEGER,"
        " msg BLOB NOT NULL, fields BLOB, source_id BLOB NOT NULL)",
        # The dedup key. A tailed line's id is a hash of its source and
        # offset, so (source, offset, id) is unique exactly when the id is,
        # and a client event (no source, no offset) is keyed by its id. Keys
        # of one file grow with the offset, so this index is written at one
        # place per active file, where an index of the ids (hashes) is written
        # at random: loading 200,000 lines of 100 files took 14.6 CPU µs per
        # event with this key and 16.0 with a unique index on the id.
        "CREATE UNIQUE INDEX ev_key ON ev(source_id, ifnull(off, -1), id)",
        "CREATE INDEX ev_t ON ev(t, id)",
        _HOST_DDL,
        # case_sensitive 0 (the default) folds case, so one index serves
        # case-insensitive terms and, rechecked, case-sensitive substrings.
        f"CREATE VIRTUAL TABLE tri USING fts5(msg, content='', tokenize='trigram', detail='none'{_NO_SIZES})",
        _FV_DDL,
        _AGG_DDL,
        _AGG_H_DDL,
        _AGG_S_DDL,
    ]
    if term_index:
        ddl.append("CREATE VIRTUAL TABLE words USING fts5(msg, content='',"
                   f" tokenize='unicode61 remove_diacritics 0', detail='none'{_NO_SIZES})")
    # FTS5 merges its b-tree segments as they pile up; merging 16 at a time
    # instead of 4 rewrites each posting fewer times (about 12 % less CPU per
    # event loaded, see bench/index.py) for a few more segments to read per
    # lookup, which costs a rare-needle query well under a millisecond.
    # FTS5 also writes a new segment each time its pending terms pass
    # ``hashsize`` (1 MiB by default: a few thousand log lines), so a
    # transaction of 50,000 lines made dozens of small segments that automerge
    # then rewrote. With 64 MiB a transaction flushes once, at its commit:
    # loading 1.5 M lines took 22 % less CPU and the file was 39 % smaller
    # (328 -> 200 MB; measured while building it). The pending terms live in
    # the loading process's memory only during a transaction.
    for table in ("tri", "words") if term_index else ("tri",):
        ddl.append(f"INSERT INTO {table}({table}, rank) VALUES('automerge', {AUTOMERGE})")
        ddl.append(f"INSERT INTO {table}({table}, rank) VALUES('hashsize', {HASHSIZE})")
    return ddl


# FTS5 keeps each row's token count (a table %_docsize) for ranking
# (bm25), which Helios never asks for: without it a file is about 2 % smaller
# and feeding FTS5 about 10 % cheaper (one b-tree insert less per row). Files
# made before keep theirs; both kinds are read and loaded the same way.
_NO_SIZES = ", columnsize=0"
# A host's rows in time order: "host:web-3 sev:warning bob" walks that
# host's rows of the range (its hits are ~13 times denser there than in all
# rows of a 13-host fleet) instead of every row, or every row holding "bob".
# Files made before it get it when first opened (_ensure_host_index).
_HOST_DDL = "CREATE INDEX IF NOT EXISTS ev_host ON ev(host, t)"
_FV_DDL = "CREATE TABLE fv(k TEXT NOT NULL, v TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY(k, v, n)) WITHOUT ROWID"
_FV_INSERT = "INSERT OR IGNORE INTO fv(k, v, n) VALUES (?,?,?)"
# The rollups (ROLLUPS, below): events per (time unit, severity[, host,
# app]), kept in the load's transaction from the rows it added, so they count
# exactly the rows ev holds. Severity None is -1 there (a primary key column
# cannot be NULL). No row of ev is ever deleted (a day goes whole, with its
# files), so additions are all they need.
def _agg_ddl(table: str, by_source: bool = True) -> str:
    source = " host TEXT NOT NULL, app TEXT NOT NULL," if by_source else ""
    return (f"CREATE TABLE {table}(m INTEGER NOT NULL, sev INTEGER NOT NULL,{source} n INTEGER NOT NULL,"
            f" PRIMARY KEY(m, sev{', host, app' if by_source else ''})) WITHOUT ROWID")


_T, _HOST, _APP, _SEV = itemgetter(1), itemgetter(3), itemgetter(4), itemgetter(5)


def _add_to_rollups(conn: sqlite3.Connection, above: int, events: Sequence | None = None) -> None:
    """Add the rows of ev with rowid above ``above`` to the rollups: counted
    by (minute, severity, host, app) into a temporary table of a few hundred
    rows, then each rollup from that. ``events``: exactly those rows, when
    known (every event of the load was new): counted in memory (a Counter
    over zips, nearly all in C), which costs less than the GROUP BY over the
    rows just written (its sort); bench/rollup.py."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS agg_new(m INTEGER, sev INTEGER, host TEXT, app TEXT, n INTEGER)")
    conn.execute("DELETE FROM agg_new")
    if events is not None and min(map(_T, events)) >= 0:      # floor is SQLite's truncation for t >= 0
        counts = Counter(zip([e[1] // MINUTE_NS for e in events], map(_SEV, events), map(_HOST, events),
                             map(_APP, events)))
        conn.executemany("INSERT INTO agg_new VALUES (?, ifnull(?, -1), ?, ?, ?)",
                         [(*k, n) for k, n in counts.items()])
    else:
        conn.execute(f"INSERT INTO agg_new SELECT t / {MINUTE_NS}, ifnull(sev, -1), host, app, count(*) FROM ev"
                     " WHERE n > ? GROUP BY 1, 2, 3, 4", (above,))
    for table, grain, by_source in ROLLUPS:
        source = ", host, app" if by_source else ""
        conn.execute(f"INSERT INTO {table}(m, sev{source}, n) SELECT m / {grain // MINUTE_NS}, sev{source}, sum(n)"
                     f" FROM agg_new WHERE true GROUP BY 1, 2{source} ON CONFLICT DO UPDATE SET n = n + excluded.n")


# Per hour too (agg_h), and per minute by severity alone (agg_s): a day
# holds a few hundred (severity, host, app) a minute, so 24 h of agg alone is
# some hundreds of thousands of rows to add up; whole hours of agg_h are 60
# times fewer, and agg_s (a histogram with no host or app filter) 8 rows a
# minute at most. (table, grain, has host and app), coarsest first.
ROLLUPS = (("agg_h", HOUR_NS, True), ("agg_s", MINUTE_NS, False), ("agg", MINUTE_NS, True))
_AGG_DDL, _AGG_H_DDL, _AGG_S_DDL = _agg_ddl("agg"), _agg_ddl("agg_h"), _agg_ddl("agg_s", False)


def _fv_rows(conn: sqlite3.Connection, above: int) -> list[tuple]:
    """The fv rows of the events with rowid above ``above`` that have fields."""
    out = []
    for n, blob in conn.execute("SELECT n, fields FROM ev WHERE n > ? AND fields IS NOT NULL", (above,)):
        try:
            fields = _unpack(blob)
        except ValueError:          # not msgpack (cannot come from this code): nothing to search by
            continue
        out += [(k, v, n) for k, v in field_pairs(fields)]
    return out


def _fv_of(rows: list, events: Sequence, top: int) -> list[tuple]:
    """The fv rows of ``events`` when every one of them was just inserted:
    the i-th then has rowid ``top + 1 + i`` (SQLite gives a new row the
    largest rowid plus one, and we hold the write lock), so the fields are
    read from memory, not back from the table."""
    out = []
    for i, (row, e) in enumerate(zip(rows, events)):
        if row[9] is not None:
            n = top + 1 + i
            out += [(k, v, n) for k, v in field_pairs(e[9])]
    return out


def _pack(fields) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def _unpack(blob: bytes):
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


def _rows(events: Sequence) -> tuple[Iterable[tuple], bool]:
    """The rows to insert, and whether any has fields."""
    fields = list(map(_FIELDS, events)) if isinstance(events[0], Event) else [e[9] for e in events]
    if fields.count(None) == len(fields):       # the usual case: no structured fields, all in C
        return map(_ROW, events), False
    return [(*e[:9], None if e[9] is None else _pack(e[9]), e[10]) for e in events], True


def content_digest(row: Sequence) -> bytes:
    """A digest of a row of ``_COLUMNS`` (as ``_rows`` makes it and ``ev``
    stores it) but its time: ``helios audit --index`` compares times apart
    (an event at another time is MOVED), the rest by this (CHANGED)."""
    return hashlib.blake2b(msgpack.packb([row[0], *row[2:11]], use_bin_type=True), digest_size=16).digest()


def _word(msg: bytes, term: str) -> int:
    return 1 if word_regex(term).search(msg) else 0


def _trigrams(text: str) -> list[str]:
    grams = list(dict.fromkeys(text[i:i + 3] for i in range(len(text) - 2)))
    if len(grams) > MAX_TRIGRAMS:   # spread the ones kept over the whole needle
        step = len(grams) / MAX_TRIGRAMS
        grams = [grams[int(i * step)] for i in range(MAX_TRIGRAMS - 1)] + [grams[-1]]
    return grams


def _fts_quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts_and(tokens: Iterable[str]) -> str:
    return " AND ".join(_fts_quote(g) for g in dict.fromkeys(tokens))


class _Conn(sqlite3.Connection):
    """A connection to one index file, with a sample of its newest messages
    (lowercase, as the trigram index folds case) and what it says of the
    trigrams asked so far."""

    agg = False             # the file has the rollups (format 3)

    sample: str | None = None
    sample_rows = 0
    gram_counts: dict[str, int]


def _sample(conn: _Conn) -> None:
    """Take the file's newest messages as its sample, once it has enough
    (a file still filling up is sampled again at each query)."""
    if conn.sample is None or conn.sample_rows < SAMPLE_ROWS:
        rows = conn.execute(f"SELECT msg FROM ev ORDER BY n DESC LIMIT {SAMPLE_ROWS}").fetchall()
        if conn.sample is None or len(rows) > conn.sample_rows:
            conn.sample = "\n".join(bytes(r[0]).decode("utf-8", "replace") for r in rows).lower()
            conn.sample_rows = len(rows)
            conn.gram_counts = {}


def _gram_count(conn: _Conn, gram: str) -> int:
    n = conn.gram_counts.get(gram)
    if n is None:
        n = conn.gram_counts[gram] = conn.sample.count(gram.lower())
    return n


def _pick(needles: list[list[str]], conn: _Conn) -> list[str]:
    """The trigrams of a query to look up in this file: its rarest there.

    FTS5 answers an AND of trigrams by reading every one's whole list of
    rows, so a needle such as "from 203.0.97.230 port 35587" cost the sum of
    its common trigrams' lists ("por", " po", "fro": a fifth of all rows
    each) although two of its rare ones alone leave a handful of rows.
    Which are rare is estimated from the file's newest messages; trigrams
    that overlap one already taken (in the same needle) add little and are
    taken only when too few others are. Every needle is rechecked exactly,
    so any choice gives the same answer; only its speed depends on it."""
    grams = [(k, i, g) for k, needle in enumerate(needles) for i, g in enumerate(needle)]
    if len(grams) <= PICK_MIN:
        return [g for _, _, g in grams]
    _sample(conn)
    rows = max(conn.sample_rows, 1)
    ranked = sorted(grams, key=lambda x: (_gram_count(conn, x[2]), x[0], x[1]))
    chosen: list[tuple[int, int, str]] = []
    estimate = 1.0
    # Reading a trigram's list costs far less per row than rechecking a
    # candidate row, so one is worth adding while it is no more common than
    # PICK_COST times the fraction of rows the ones taken leave.
    for overlapping in (False, True):
        for k, i, g in ranked:
            if (k, i, g) in chosen or (not overlapping and any(k == ck and abs(i - ci) < 3 for ck, ci, _ in chosen)):
                continue
            share = (_gram_count(conn, g) + 0.5) / rows
            if chosen and share > PICK_COST * estimate:
                break
            chosen.append((k, i, g))
            estimate *= share
            if len(chosen) >= PICK_MAX or (len(chosen) >= PICK_MIN and estimate < PICK_SELECTIVE):
                break
        if len(chosen) >= PICK_MIN or estimate < PICK_SELECTIVE:
            break
    return [g for _, _, g in chosen]


class _Plan:
    """The SQL pieces of one query, the same for every file it reads."""

    def __init__(self, q: Query, term_index: bool) -> None:
        self.q = q
        where, params = [], []
        for name, column in (("hosts", "host"), ("apps", "app")):
            values = getattr(q, name)
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                params += values
        if q.severity is not None:
            where.append("sev <= ?")
            params.append(q.severity)
        # Each field is a lookup of fv's primary key: (key, value) gives the
        # rowids holding it, and (key, value, n) says if row n holds it.
        fields: list[tuple[str, list]] = []
        for key, values in q.fields:
            marks = ",".join("?" * len(values))
            fields.append((f"SELECT n FROM fv WHERE k = ? AND v IN ({marks})", [key, *values]))
            where.append(f"EXISTS (SELECT 1 FROM fv WHERE k = ? AND v IN ({marks}) AND fv.n = ev.n)")
            params += [key, *values]
        grams: list[list[str]] = []        # per needle
        for s in q.substrings:
            where.append("instr(msg, ?) > 0")
            params.append(s)
            try:
                text = s.decode("utf-8")
            except UnicodeDecodeError:
                continue                            # not UTF-8: the recheck alone finds it
            if len(text) >= 3 and "\x00" not in text:      # FTS5 reads a NUL as the end of the text
                grams.append(_trigrams(text))
        words: list[str] = []
        for t in q.terms:
            # LIKE (C, ASCII case-insensitive, as terms are) weeds out most
            # rows before the whole-word regex runs in Python.
            where += ["CAST(msg AS TEXT) LIKE ?", "helios_word(msg, ?)"]
            params += [f"%{t}%", t]
            if term_index and t.isalnum():          # a unicode61 token exactly
                words.append(t)
            elif len(t) >= 3:
                grams.append(_trigrams(t))
        self.filters, self.params = where, params
        # One host: walks read that host's rows only (the index ev_host).
        self.host = q.hosts[0] if len(q.hosts) == 1 else None
        # (SQL giving rowids, its params) of the index lookups: fields first
        # (exact, and a b-tree range), then the FTS5 tables.
        self.matches: list[tuple[str, list]] = list(fields)
        self._grams = [needle for needle in grams if needle]
        self._tri: int | None = None
        if self._grams:
            self._tri = len(self.matches)
            self.matches.append(("SELECT rowid FROM tri WHERE tri MATCH ?",
                                 [_fts_and(g for needle in self._grams for g in needle)]))
        if words:
            self.matches.append(("SELECT rowid FROM words WHERE words MATCH ?",
                                 [" AND ".join(_fts_quote(w) for w in words)]))

    def lookups(self, conn: sqlite3.Connection) -> list[tuple[str, list]]:
        """``matches`` with the trigrams looked up in this file (``_pick``)."""
        if self._tri is None or not isinstance(conn, _Conn):
            return self.matches
        out = list(self.matches)
        out[self._tri] = (out[self._tri][0], [_fts_and(_pick(self._grams, conn))])
        return out

    def _range(self, t: str) -> tuple[list[str], list]:
        """The time range and cursor, on column expression ``t``."""
        q = self.q
        where, params = [f"{t} >= ?", f"{t} < ?"], [q.start, q.end]
        if q.after is not None:
            where.append(f"({t}, id) {'<' if q.descending else '>'} (?, ?)")
            params += q.after
        return where, params

    def _order(self) -> str:
        d = "DESC" if self.q.descending else "ASC"
        return f" ORDER BY t {d}, id {d}"

    def _candidates(self, select: str, matches: list, rowids: list[int] | None = None) -> tuple[str, list]:
        # "+t": look up the candidate rowids; never walk the time index instead.
        where, params = self._range("+t")
        if rowids is not None:              # the first lookup's rowids, already known: no second FTS5 pass
            where.append(f"n IN ({','.join(map(str, rowids))})")
            matches = matches[1:]
        for lookup, lookup_params in matches:
            where.append(f"n IN ({lookup})")
            params += lookup_params
        return f"SELECT {select} FROM ev WHERE {' AND '.join(where + self.filters)}", params + self.params

    def _walk(self, select: str) -> tuple[str, list]:
        where, params = self._range("t")
        return f"SELECT {select} FROM ev WHERE {' AND '.join(where + self.filters)}", params + self.params

    def fetch(self, conn: sqlite3.Connection, limit: int | None) -> list[tuple]:
        """Up to ``limit`` matching rows of one file, in the query's order."""
        order = self._order()
        lim = "" if limit is None else f" LIMIT {int(limit)}"
        matches = self.lookups(conn)
        rowids = self._few_candidates(conn, matches) if matches else None
        if matches and limit is not None and rowids is None:
            # Common needles: rows in time order hold hits often, so a walk
            # that rechecks each finds `limit` soon, where fetching and
            # sorting every candidate would not. The walk is bounded: if its
            # budget of rows runs out first, the hits are rarer in this
            # range than in the file, and the candidates answer after all.
            budget = max(WALK_MIN, WALK_PER_HIT * limit)
            where, params = self._range("t")
            if self.host is not None:
                where.append("host = ?")
                params.append(self.host)
            inner = f"SELECT {_COLUMNS}, n FROM ev WHERE {' AND '.join(where)}{order} LIMIT {budget}"
            filters = " AND ".join(self.filters) or "1"
            # No outer ORDER BY: it would make SQLite read the whole budget
            # before answering. The inner rows stream in order; sorting the
            # few hits again costs nothing and makes that order certain.
            rows = conn.execute(f"SELECT {_COLUMNS} FROM ({inner}) AS ev WHERE {filters}{lim}",
                                params + self.params).fetchall()
            rows.sort(key=_KEY, reverse=self.q.descending)
            if len(rows) == limit or conn.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM ev WHERE {' AND '.join(where)} LIMIT {budget + 1})",
                    params).fetchone()[0] <= budget:
                return rows
        sql, params = self._candidates(_COLUMNS, matches, rowids) if matches else self._walk(_COLUMNS)
        return conn.execute(sql + order + lim, params).fetchall()

    def count(self, conn: sqlite3.Connection) -> int:
        sql, params = self.matching("count(*)", self.lookups(conn))
        return conn.execute(sql, params).fetchone()[0]

    def matching(self, select: str, matches: list | None = None) -> tuple[str, list]:
        """SELECT ``select`` over every matching row of a file (no order, no
        limit); ``matches``: the lookups for that file (``lookups``), else
        all of them (the same rows: every needle is rechecked in SQL)."""
        matches = self.matches if matches is None else matches
        return self._candidates(select, matches) if matches else self._walk(select)

    def _few_candidates(self, conn: sqlite3.Connection, matches: list) -> list[int] | None:
        """The rowids the first lookup finds, or None when there are ``MANY`` or more."""
        lookup, params = matches[0]
        rowids = [r[0] for r in conn.execute(f"{lookup} LIMIT ?", (*params, MANY))]
        return rowids if len(rowids) < MANY else None


def _rollup_parts(q: Query, ev_part, agg_part, unit: int | None = None,
                  by_source: bool = True) -> tuple[list, list]:
    """The statements (sql, params) that count ``q`` in a file with the
    rollups, and in one without. A query of environment, time, hosts, apps
    and severity only (no needle, no field) is counted from agg_h over its
    whole hours, from agg over the whole minutes left at either end
    (``agg_part(table, grain, where, params)``) and from the events over the
    partial minutes at its ends (``ev_part(query)``), so the answer is exact
    for any range; any other query reads the events (``ev_part(q)``).
    ``unit``: the answer's grain (a histogram's step), if any; a rollup
    serves only if its grain divides it. ``by_source``: the answer needs
    host or app (agg_s has neither)."""
    full = [ev_part(q)]
    if q.terms or q.substrings or q.fields or q.start < 0:
        return full, full
    levels: list[tuple[str, int]] = []
    for table, grain, has_source in ROLLUPS:
        if ((unit is None or unit % grain == 0) and (has_source or not (by_source or q.hosts or q.apps))
                and grain not in [g for _, g in levels]):
            levels.append((table, grain))
    where, params = ["m >= ?", "m < ?"], []
    for name, column in (("hosts", "host"), ("apps", "app")):
        values = getattr(q, name)
        if values:
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params += values
    if q.severity is not None:
        where.append("sev BETWEEN 0 AND ?")         # -1 (None) is never "this severe or worse", as NULL in ev
        params.append(q.severity)
    filters = " AND ".join(where)
    rolled: list = []

    def split(start: int, end: int, levels: list) -> None:
        if start >= end:
            return
        if not levels:
            rolled.append(ev_part(q if (start, end) == (q.start, q.end) else replace(q, start=start, end=end)))
            return
        (table, grain), finer = levels[0], levels[1:]
        lo, hi = -(-start // grain), end // grain      # the whole units of this level: [lo, hi)
        if lo >= hi:
            split(start, end, finer)
            return
        rolled.append(agg_part(table, grain, filters, [lo, hi, *params]))
        split(start, lo * grain, finer)
        split(hi * grain, end, finer)

    split(q.start, q.end, levels)
    return rolled, full


class SqliteIndex:
    """A named sqlite index under the directory ``location``.

    ``shards`` and ``term_index`` fix the layout when the index is created
    (later opens read them from ``index.json``; asking for a different one
    is an error). ``workers`` > 1 loads through that many worker processes.
    ``txn_rows`` is the most events per transaction, ``cache_mb`` the page
    cache per open file."""

    kind = "sqlite"

    def __init__(self, location, name: str = DEFAULT_NAME, *, shards: int | None = None,
                 term_index: bool | None = None, workers: int = 1, txn_rows: int = TXN_ROWS,
                 cache_mb: int = 64, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.name = check_name(name)
        self.location = Path(location)
        self.root = self.location / name
        if shards is not None and (type(shards) is not int or not 1 <= shards <= 64):
            raise IndexStoreError(f"sqlite index: shards must be 1..64, not {shards!r}")
        if type(workers) is not int or workers < 1:
            raise IndexStoreError(f"sqlite index: workers must be 1 or more, not {workers!r}")
        self._want = {"shards": shards, "term_index": term_index}
        self.workers = workers
        self.txn_rows = txn_rows
        self.cache_mb = cache_mb
        self.busy_timeout = busy_timeout
        self._meta: dict | None = None
        self._conns: OrderedDict[tuple[str, str, int], sqlite3.Connection] = OrderedDict()
        self._lock = threading.RLock()          # the connections (searches, in-process loads)
        self._pool_lock = threading.Lock()      # the loader processes
        self._pool: _Pool | None = None

    def __repr__(self) -> str:
        return f"SqliteIndex({str(self.root)!r})"

    def __enter__(self) -> "SqliteIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ layout

    @property
    def shards(self) -> int:
        meta = self._read_meta()
        return meta["shards"] if meta else (self._want["shards"] or DEFAULT_SHARDS)

    @property
    def term_index(self) -> bool:
        meta = self._read_meta()
        return meta["term_index"] if meta else bool(self._want["term_index"])

    def _read_meta(self) -> dict | None:
        if self._meta is None:
            path = self.root / META
            try:
                meta = json.loads(path.read_text())
            except FileNotFoundError:
                return None
            except (OSError, ValueError) as exc:
                raise IndexStoreError(f"sqlite index {self.root}: cannot read {META}: {exc}") from None
            if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
                raise IndexStoreError(f"sqlite index {self.root}: {META} is of format {meta.get('format')!r}; "
                                      f"this Helios reads format {META_FORMAT}")
            for key, want in self._want.items():
                if want is not None and meta.get(key) != want:
                    raise IndexStoreError(f"sqlite index {self.root} was created with {key}={meta.get(key)!r}, "
                                          f"not {want!r}: use that, or a new index")
            self._meta = meta
        return self._meta

    def _ensure_meta(self) -> dict:
        meta = self._read_meta()
        if meta is not None:
            return meta
        try:
            durable.make_dirs(self.root)  # 0750 whatever the umask
            tmp = self.root / f".{META}.{os.getpid()}.{threading.get_ident()}"
            tmp.write_text(json.dumps({"format": META_FORMAT, "shards": self._want["shards"] or DEFAULT_SHARDS,
                                       "term_index": bool(self._want["term_index"])}) + "\n")
            try:
                os.link(tmp, self.root / META)      # fails if another process made it first: theirs wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        except OSError as exc:
            raise IndexStoreError(f"sqlite index {self.root}: cannot create it: {exc}") from None
        meta = self._read_meta()
        assert meta is not None
        return meta

    def _day_dirs(self, environment: str) -> list[tuple[datetime.date, str]]:
        try:
            names = os.listdir(self.root / environment)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise IndexStoreError(f"sqlite index {self.root}: cannot list {environment}: {exc}") from None
        out = []
        for n in names:
            m = _DAY_RE.fullmatch(n)
            if m:
                try:
                    out.append((datetime.date(int(m[1]), int(m[2]), int(m[3])), n))
                except ValueError:
                    continue
        return sorted(out)

    def _open(self, environment: str, day: str, shard: int, create: bool) -> sqlite3.Connection | None:
        key = (environment, day, shard)
        conn = self._conns.get(key)
        if conn is not None:
            self._conns.move_to_end(key)
            return conn
        path = self.root / environment / day / f"{shard}.db"
        if not create and not path.exists():
            return None
        try:
            if create:
                durable.make_dirs(path.parent)
                durable.precreate(path)  # 0640 whatever the umask, and so its -wal and -shm
            conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False,
                                   factory=_Conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{self.cache_mb * 1024}")
            conn.create_function("helios_word", 2, _word, deterministic=True)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                if not create:              # being created by another process right now: empty
                    conn.close()
                    return None
                self._create_schema(conn)
            elif version in (1, 2):
                if version == 1:
                    self._migrate_1_to_2(conn, path)
                self._migrate_2_to_3(conn, path)
            elif version != FORMAT:
                conn.close()
                raise IndexStoreError(f"sqlite index file {path} is of format {version}; "
                                      f"this Helios reads format {FORMAT}")
            self._ensure_host_index(conn, path)
            conn.agg = conn.execute("PRAGMA user_version").fetchone()[0] == FORMAT
        except sqlite3.Error as exc:
            raise IndexStoreError(f"sqlite index file {path}: {exc}") from None
        self._conns[key] = conn
        while len(self._conns) > MAX_OPEN:
            self._conns.popitem(last=False)[1].close()
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL does not wait on the busy timeout: a second process
        # creating the same file at that moment gets "database is locked" at
        # once. Wait for it here, as every other statement does.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:     # not made meanwhile
                for ddl in _schema(self.term_index):
                    conn.execute(ddl)
                conn.execute(f"PRAGMA user_version={FORMAT}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _ensure_host_index(self, conn: sqlite3.Connection, path: Path) -> None:
        """Add ev_host to a file made before it (same format: the index only
        makes some searches faster, and a file without it answers the same)."""
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ev_host'").fetchone():
            return
        t = time.monotonic()
        try:
            conn.execute(_HOST_DDL)
        except sqlite3.OperationalError as exc:        # a read-only file: searched without it
            log.warning("The sqlite index file %s has no index of hosts and cannot get one (%s); searches "
                        "by host read more rows.", path, exc)
            return
        log.info("The sqlite index file %s now has an index of hosts (made in %.1f s).", path, time.monotonic() - t)

    def _migrate_1_to_2(self, conn: sqlite3.Connection, path: Path) -> None:
        """Format 1 had no fv table: make it and fill it from the stored
        fields, in one transaction (another process may be doing the same:
        the second finds format 2 and leaves it)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 1:
                conn.execute(_FV_DDL)
                rows = _fv_rows(conn, 0)
                conn.executemany(_FV_INSERT, rows)
                conn.execute("PRAGMA user_version=2")   # not FORMAT: _migrate_2_to_3 comes next
                log.info("The sqlite index file %s now has its fields searchable (format 1 to 2: %d field "
                         "values indexed).", path, len(rows))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _migrate_2_to_3(self, conn: sqlite3.Connection, path: Path) -> None:
        """Format 2 had no rollup: make agg from the rows there, in one
        transaction. A file that cannot be written (read-only) stays at
        format 2 and its histograms and top values are counted from ev."""
        t = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            log.warning("The sqlite index file %s has no rollup of counts and cannot get one (%s); its "
                        "histograms and top values read every event.", path, exc)
            return
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 2:
                for table, _, by_source in ROLLUPS:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                    conn.execute(_agg_ddl(table, by_source))
                _add_to_rollups(conn, 0)
                conn.execute(f"PRAGMA user_version={FORMAT}")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "readonly" not in str(exc).replace(" ", "").lower():
                raise
            log.warning("The sqlite index file %s has no rollup of counts and cannot get one (%s); its "
                        "histograms and top values read every event.", path, exc)
            return
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("The sqlite index file %s now has a rollup of counts (format 2 to 3, made in "
                 "%.1f s).", path, time.monotonic() - t)

    def _close_matching(self, environment: str | None = None, day: str | None = None) -> None:
        for key in [k for k in self._conns if (environment is None or k[0] == environment)
                    and (day is None or k[1] == day)]:
            self._conns.pop(key).close()

    # ------------------------------------------------------------ loading

    def load(self, environment: str, events: Sequence[Event]) -> int:
        """Add events of one environment (Events, or tuples in Event field
        order); return how many were new. Idempotent; see the module docstring."""
        if not valid_environment(environment):
            raise IndexStoreError(f"sqlite index: {environment!r} is not a valid environment name")
        events = searchable(events)
        if not len(events):
            return 0
        meta = self._ensure_meta()
        if self.workers > 1 and len(events) >= PARALLEL_MIN:
            with self._pool_lock:               # one load at a time on the workers' pipes
                self.start_workers()
                return self._pool.load(environment, events, meta["shards"])
        return self._load_here(environment, events, meta["shards"])

    def start_workers(self) -> None:
        """Start the loader processes now (else the first big load does)."""
        if self._pool is not None and not self._pool.procs:     # closed after a loader died
            self._pool = None
        if self.workers > 1 and self._pool is None:
            self._pool = _Pool(self.workers, self.location, self.name, self.txn_rows, self.cache_mb)

    def worker_pids(self) -> list[int]:
        """Process ids of the running loader processes (for resource figures)."""
        return [p.pid for p in self._pool.procs] if self._pool is not None else []

    def _load_here(self, environment: str, events: Sequence, shards: int) -> int:
        groups: dict[tuple[int, int], list] = defaultdict(list)
        try:
            for e in events:
                groups[(e[1] // DAY_NS, e[0][-1] % shards)].append(e)
        except (IndexError, TypeError) as exc:
            raise IndexStoreError(f"sqlite index: events must be Events with a 16-byte id and an integer time "
                                  f"({exc})") from None
        new = 0
        with self._lock:
            for (day_number, shard), part in sorted(groups.items()):
                day = (datetime.date(1970, 1, 1) + datetime.timedelta(days=day_number)).isoformat()
                conn = self._open(environment, day, shard, create=True)
                for i in range(0, len(part), self.txn_rows):
                    new += self._insert(conn, part[i:i + self.txn_rows])
        return new

    def _insert(self, conn: sqlite3.Connection, events: Sequence) -> int:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                top = conn.execute("SELECT coalesce(max(n), 0) FROM ev").fetchone()[0]
                rows, with_fields = _rows(events)
                added = conn.executemany(_INSERT, rows).rowcount
                if added:
                    # Rows above the old maximum are exactly the ones just added: we hold the write lock.
                    conn.execute("INSERT INTO tri(rowid, msg) SELECT n, msg FROM ev WHERE n > ?", (top,))
                    if getattr(conn, "agg", False):
                        _add_to_rollups(conn, top, events if added == len(events) else None)
                    if with_fields:
                        conn.executemany(_FV_INSERT, _fv_of(rows, events, top) if added == len(rows)
                                         else _fv_rows(conn, top))
                    if self.term_index:
                        conn.execute("INSERT INTO words(rowid, msg) SELECT n, msg FROM ev WHERE n > ?", (top,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise IndexStoreError(f"sqlite index {self.root}: loading failed: {exc}") from None
        return added

    # ------------------------------------------------------------ searching

    def _shard_conns(self, environment: str, day: str) -> list[sqlite3.Connection]:
        conns = []
        for shard in range(self.shards):
            conn = self._open(environment, day, shard, create=False)
            if conn is not None:
                conns.append(conn)
        return conns

    def _days_in(self, q: Query) -> list[str]:
        first, last = day_of(q.start), day_of(max(q.start, q.end - 1))
        days = [name for day, name in self._day_dirs(q.environment) if first <= day <= last]
        return days[::-1] if q.descending else days

    def search(self, q: Query) -> list[Event]:
        if q.end <= q.start or self._read_meta() is None:
            return []
        plan = _Plan(q, self.term_index)
        env = q.environment
        hits: list[Event] = []
        with self._lock:
            try:
                for day in self._days_in(q):
                    need = None if q.limit is None else q.limit - len(hits)
                    parts = []
                    for conn in self._shard_conns(env, day):
                        parts.append(plan.fetch(conn, need))
                    rows = heapq.merge(*parts, key=_KEY, reverse=q.descending) if len(parts) > 1 else iter(
                        parts[0] if parts else ())
                    for r in islice(rows, need):
                        hits.append(Event(*r[:9], None if r[9] is None else _unpack(r[9]), r[10], env))
                    if q.limit is not None and len(hits) >= q.limit:
                        break
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: search failed: {exc}") from None
        return hits

    def count(self, q: Query) -> int:
        if q.end <= q.start or self._read_meta() is None:
            return 0
        q = replace(q, after=None)
        plan = _Plan(q, self.term_index)
        total = 0
        with self._lock:
            try:
                for day in self._days_in(q):
                    for conn in self._shard_conns(q.environment, day):
                        total += plan.count(conn)
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: count failed: {exc}") from None
        return total

    # ------------------------------------------------------------ aggregations

    def _each_file(self, q: Query):
        """(connection) of every file holding days of ``q``'s range."""
        for day in self._days_in(replace(q, order="asc")):
            yield from self._shard_conns(q.environment, day)

    def histogram(self, q: Query, step: int) -> list[tuple[int, dict[int | None, int]]]:
        check_step(q, step)
        if q.end <= q.start or self._read_meta() is None:
            return []
        q = replace(q, after=None)
        step = int(step)

        def ev_part(part: Query) -> tuple[str, list]:
            # GROUP BY in SQLite, over the rows the query's plan reads: the
            # bucket is integer arithmetic on t, so nothing leaves C but one
            # row per (bucket, severity) of each file.
            sql, params = _Plan(part, self.term_index).matching(f"t / {step} AS b, sev, count(*)")
            return sql + " GROUP BY b, sev", params

        def agg_part(table: str, grain: int, where: str, params: list) -> tuple[str, list]:
            return (f"SELECT m * {grain} / {step} AS b, nullif(sev, -1), sum(n) FROM {table} WHERE {where} "
                    "GROUP BY b, sev", params)

        rolled, full = _rollup_parts(q, ev_part, agg_part, step, by_source=False)
        out: dict[int, dict] = defaultdict(dict)
        with self._lock:
            try:
                for conn in self._each_file(q):
                    for sql, params in rolled if getattr(conn, "agg", False) else full:
                        for b, sev, c in conn.execute(sql, params):
                            bucket = out[b * step]
                            bucket[sev] = bucket.get(sev, 0) + c
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: histogram failed: {exc}") from None
        return sorted(out.items())

    def top(self, q: Query, field: str, n: int = 10) -> list[tuple[str, int]]:
        check_top(field, n)
        if q.end <= q.start or self._read_meta() is None:
            return []
        q = replace(q, after=None)
        column = {"host": "host", "app": "app", "severity": "sev"}.get(field)
        if column is not None:
            rolled, full = self._column_parts(q, column)
        else:                       # an extracted field: its fv rows whose event matches
            inner, inner_params = _Plan(q, self.term_index).matching("n")
            rolled = full = [(f"SELECT v, count(*) FROM fv WHERE k = ? AND n IN ({inner}) GROUP BY v",
                              [field, *inner_params])]
        counts: dict[str, int] = defaultdict(int)
        with self._lock:
            try:
                for conn in self._each_file(q):
                    for sql, params in rolled if getattr(conn, "agg", False) else full:
                        for v, c in conn.execute(sql, params):
                            counts[severity_name(v) if column == "sev" else v] += c
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: top values failed: {exc}") from None
        return merge_top(counts, n)

    def _column_parts(self, q: Query, column: str) -> tuple[list, list]:
        """(sql, params) counting rows of ``q`` by ``column`` (host, app or
        sev), with the rollup and without (``_rollup_parts``)."""
        def ev_part(part: Query) -> tuple[str, list]:
            sql, params = _Plan(part, self.term_index).matching(f"{column} AS v, count(*)")
            return sql + " GROUP BY v", params

        def agg_part(table: str, grain: int, where: str, params: list) -> tuple[str, list]:
            v = "nullif(sev, -1)" if column == "sev" else column
            return f"SELECT {v} AS v, sum(n) FROM {table} WHERE {where} GROUP BY {column}", params

        return _rollup_parts(q, ev_part, agg_part, by_source=column != "sev")

    def tops(self, q: Query, fields: Sequence[str], n: int = 10) -> dict[str, list[tuple[str, int]]]:
        """The columns (host, app, severity), and the extracted fields in one
        pass over fv rather than one each."""
        for f in fields:
            check_top(f, n)
        columns = [f for f in fields if f in ("host", "app", "severity")]
        keys = [f for f in fields if f not in columns]
        counts: dict[str, dict] = {f: defaultdict(int) for f in fields}
        if q.end <= q.start or self._read_meta() is None or not fields:
            return {f: [] for f in fields}
        q = replace(q, after=None)
        names = {"host": "host", "app": "app", "severity": "sev"}
        rolled: list[tuple] = []
        full: list[tuple] = []
        # A GROUP BY per column: one GROUP BY of (host, app, sev) read the
        # rows once but sorted far more groups, and took longer than three
        # (bench/aggregations.py: 4.4 s against 3.7 s for a day of 1 M events).
        for c in columns:
            with_agg, without = self._column_parts(q, names[c])
            rolled += [(c, *st) for st in with_agg]
            full += [(c, *st) for st in without]
        if keys:
            inner, inner_params = _Plan(q, self.term_index).matching("n")
            marks = ",".join("?" * len(keys))
            st = ("fields", f"SELECT k, v, count(*) FROM fv WHERE k IN ({marks}) AND n IN ({inner}) "
                            "GROUP BY k, v", [*keys, *inner_params])
            rolled.append(st)
            full.append(st)
        with self._lock:
            try:
                for conn in self._each_file(q):
                    for kind, sql, params in rolled if getattr(conn, "agg", False) else full:
                        for row in conn.execute(sql, params):
                            if kind == "fields":
                                counts[row[0]][row[1]] += row[2]
                                continue
                            counts[kind][severity_name(row[0]) if kind == "severity" else row[0]] += row[1]
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: top values failed: {exc}") from None
        return {f: merge_top(counts[f], n) for f in fields}

    def field_keys(self, q: Query, n: int = 10) -> list[tuple[str, int]]:
        check_top("key", n)
        if q.end <= q.start or self._read_meta() is None:
            return []
        plan = _Plan(replace(q, after=None), self.term_index)
        inner, params = plan.matching("n")
        # One event counts once per key, whatever the number of its values (a list).
        sql = f"SELECT k, count(DISTINCT n) FROM fv WHERE n IN ({inner}) GROUP BY k"
        counts: dict[str, int] = defaultdict(int)
        with self._lock:
            try:
                for conn in self._each_file(q):
                    for k, c in conn.execute(sql, params):
                        counts[k] += c
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: field keys failed: {exc}") from None
        return merge_top(counts, n)

    def context(self, environment: str, t: int, event_id: bytes, before: int = 10,
                after: int = 10) -> tuple[list[Event], Event | None, list[Event]]:
        check_context(before, after)
        if self._read_meta() is None or not valid_environment(environment):
            return [], None, []
        day = day_of(t).isoformat()
        with self._lock:
            try:
                row = None
                for conn in self._shard_conns(environment, day):
                    row = conn.execute(f"SELECT {_COLUMNS} FROM ev WHERE t = ? AND id = ?", (t, event_id)).fetchone()
                    if row is not None:
                        break
                if row is None:
                    return [], None, []
                event = self._event(row, environment)
                if not event.source_id or event.offset is None:
                    return context_by_time(self, event, before, after)
                # The source's lines are spread over the shards (by id) and
                # may be over days; the dedup key (source_id, offset, id)
                # walks each file's part in offset order.
                key = "ifnull(off, -1)"
                sides = []
                for op, order, want in (("<", "DESC", before), (">", "ASC", after)):
                    rows: list = []
                    if want:
                        sql = (f"SELECT {_COLUMNS} FROM ev WHERE source_id = ? AND ({key}, id) {op} (?, ?) "
                               f"ORDER BY source_id {order}, {key} {order}, id {order} LIMIT {int(want)}")
                        days = [d for _, d in self._day_dirs(environment)]
                        near = [d for d in days if (d <= day if op == "<" else d >= day)]
                        for d in (near[::-1] if op == "<" else near):
                            for conn in self._shard_conns(environment, d):
                                rows += conn.execute(sql, (event.source_id, event.offset, event.id)).fetchall()
                            if len(rows) >= want and d != day:
                                break
                    rows.sort(key=lambda r: (-1 if r[7] is None else r[7], r[0]))
                    sides.append(rows[-want:] if op == "<" else rows[:want])
            except sqlite3.Error as exc:
                raise IndexStoreError(f"sqlite index {self.root}: context failed: {exc}") from None
        return ([self._event(r, environment) for r in sides[0]] if before else [], event,
                [self._event(r, environment) for r in sides[1]] if after else [])

    @staticmethod
    def _event(r, environment: str) -> Event:
        return Event(*r[:9], None if r[9] is None else _unpack(r[9]), r[10], environment)

    def keys(self, environment: str, day: datetime.date, page: int = 50_000) -> Iterator[list[tuple[bytes, int, int]]]:
        """(id, time, received) of every event of ``environment`` on ``day``,
        a page at a time, in no particular order: what ``helios audit
        --index`` compares with the bucks. Each page is its own read, so a
        loader is never held up for the whole day."""
        for rows in self._pages(environment, day, "id, t, received", page):
            yield [r[1:] for r in rows]

    def contents(self, environment: str, day: datetime.date,
                 page: int = 10_000) -> Iterator[list[tuple[bytes, int, int, bytes]]]:
        """(id, time, received, content digest) of every event of
        ``environment`` on ``day``, a page at a time, as ``keys``: what
        ``helios audit --index --content`` compares with ``content_digests``
        of the bucks' rows. The digest is of every column the index stores
        but the time (``content_digest``); it reads every message."""
        for rows in self._pages(environment, day, _COLUMNS, page):
            yield [(r[1], r[2], r[3], content_digest(r[1:])) for r in rows]

    def content_digests(self, environment: str, events: Sequence) -> list[bytes]:
        """The digest (``content_digest``) of each of ``events`` (rows as
        ``load`` takes them) as this index is meant to store it: mapped by
        the function ``load`` maps them with (``_rows``)."""
        if not len(events):
            return []
        rows, _ = _rows(events)
        return [content_digest(r) for r in rows]

    def _pages(self, environment: str, day: datetime.date, columns: str, page: int) -> Iterator[list[tuple]]:
        """(rowid, ``columns``...) of every row of ``environment`` on ``day``, a page (its own read) at a time."""
        if self._read_meta() is None or not valid_environment(environment):
            return
        with self._lock:
            conns = self._shard_conns(environment, day.isoformat())
        for conn in conns:
            last = 0
            while True:
                with self._lock:
                    try:
                        rows = conn.execute(f"SELECT rowid, {columns} FROM ev WHERE rowid > ? ORDER BY rowid "
                                            "LIMIT ?", (last, page)).fetchall()
                    except sqlite3.Error as exc:
                        raise IndexStoreError(f"sqlite index {self.root}: listing events failed: {exc}") from None
                if not rows:
                    break
                last = rows[-1][0]
                yield rows

    # ------------------------------------------------------------ days and environments

    def days(self, environment: str) -> list[datetime.date]:
        out = []
        for day, name in self._day_dirs(environment):
            try:
                if any(n.endswith(".db") for n in os.listdir(self.root / environment / name)):
                    out.append(day)
            except FileNotFoundError:       # dropped meanwhile
                continue
        return out

    def drop_days(self, environment: str, before: datetime.date) -> list[datetime.date]:
        """Remove every day of ``environment`` before ``before`` (a whole
        directory each: renamed away first, so nobody sees half a day)."""
        if not valid_environment(environment):
            raise IndexStoreError(f"sqlite index: {environment!r} is not a valid environment name")
        dropped = []
        with self._lock:
            for day, name in self._day_dirs(environment):
                if day >= before:
                    break
                self._close_matching(environment, name)
                self._remove(self.root / environment / name)
                dropped.append(day)
        if dropped:
            log.info("Dropped %d day(s) of %s from the sqlite index %s, up to %s.",
                     len(dropped), environment, self.root, dropped[-1])
        return dropped

    def environments(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if valid_environment(n) and (self.root / n).is_dir() and self.days(n)]

    def _remove(self, path: Path) -> None:
        doomed = path.with_name(f".drop-{path.name}-{os.getpid()}-{threading.get_ident()}")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise IndexStoreError(f"sqlite index: cannot remove {path}: {exc}") from None
        shutil.rmtree(doomed, ignore_errors=True)

    def drop(self) -> None:
        """Remove the whole named index."""
        with self._lock:
            self.close()
            self._remove(self.root)
            self._meta = None

    def close(self) -> None:
        with self._lock:
            self._close_matching()
            if self._pool is not None:
                self._pool.close()
                self._pool = None


# ---------------------------------------------------------------- loader worker processes

_FRAME = struct.Struct(">I")


def _read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the pipe closed")
    return data


def _read_frame(stream) -> bytes:
    return _read_exact(stream, _FRAME.unpack(_read_exact(stream, _FRAME.size))[0])


def _write_frame(stream, data: bytes) -> None:
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def worker_main(argv: list[str] | None = None) -> None:
    """A loader process (``python -m helios.index.sqlite LOCATION NAME
    TXN_ROWS CACHE_MB``): reads frames of msgpack [environment, shards,
    events] on stdin, loads them, answers ["ok", new] or ["error", message]."""
    location, name, txn_rows, cache_mb = (argv if argv is not None else sys.argv[1:])
    index = SqliteIndex(location, name, txn_rows=int(txn_rows), cache_mb=int(cache_mb))
    tune_gc()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    try:
        while True:
            try:
                data = _read_frame(stdin)
            except EOFError:
                return
            try:
                environment, shards, rows = marshal.loads(data)
                reply = ["ok", index._load_here(environment, rows, shards)]
            except Exception as exc:  # reported to the parent, which raises it
                reply = ["error", str(exc)]
            try:
                _write_frame(stdout, msgpack.packb(reply))
            except BrokenPipeError:
                return  # the parent is gone (killed): what was loaded is kept, and nobody waits for the reply
    finally:
        index.close()


def _marshal_rows(environment: str, shards: int, rows: list) -> bytes:
    """A loader's frame: rows as given when they are plain lists (the
    porter's decoded rows), else each as a tuple (marshal takes no Event)."""
    try:
        return marshal.dumps((environment, shards, rows))
    except ValueError:
        return marshal.dumps((environment, shards, list(map(tuple, rows))))


def _frames(rows: list) -> list[list]:
    """``rows`` in frames of at most FRAME_ROWS, all of about the same size
    (a frame is a transaction: 100,000 + 20,000 would make one small one)."""
    if not rows:
        return []
    count = -(-len(rows) // FRAME_ROWS)
    size = -(-len(rows) // count)
    return [rows[i:i + size] for i in range(0, len(rows), size)]


class _Pool:
    """Persistent loader processes, one per part of the shards. Each is a
    fresh interpreter (``python -m helios.index.sqlite``), so it inherits no
    SQLite state, locks or threads from the parent (a porter has ZeroMQ
    threads), and does not depend on how the parent was started."""

    def __init__(self, workers: int, location: Path, name: str, txn_rows: int, cache_mb: int) -> None:
        root = str(Path(__file__).resolve().parents[2])         # so the child imports this very helios
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.procs = [subprocess.Popen([sys.executable, "-m", "helios.index.sqlite", str(location), name,
                                        str(txn_rows), str(cache_mb)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=env) for _ in range(workers)]

    def load(self, environment: str, events: Sequence, shards: int) -> int:
        n = len(self.procs)
        parts: list[list] = [[] for _ in range(n)]
        for e in events:
            parts[e[0][-1] % shards % n].append(e)
        # Frames of at most FRAME_ROWS go out round-robin, so every worker
        # starts on its first frame while this process packs the next ones.
        per_worker = [_frames(part) for part in parts]
        sent = [0] * n
        try:
            for round_ in zip_longest(*per_worker):
                for k, rows in enumerate(round_):
                    if rows:
                        # marshal: the cheapest to read back (the workers' time is what counts), and
                        # safe here, as both ends are the same interpreter (sys.executable).
                        _write_frame(self.procs[k].stdin, _marshal_rows(environment, shards, rows))
                        sent[k] += 1
            new, errors = 0, []
            for k, count in enumerate(sent):
                for _ in range(count):
                    status, value = msgpack.unpackb(_read_frame(self.procs[k].stdout), raw=False)
                    if status == "ok":
                        new += value
                    else:
                        errors.append(value)
        except ValueError as exc:              # marshal: fields holding something it cannot carry
            raise IndexStoreError(f"events cannot be handed to a loader process: {exc}") from None
        except (EOFError, OSError) as exc:
            self.close()
            raise IndexStoreError(f"an index loader process died ({exc}); what it loaded is kept, "
                                  "and loading the same events again is safe") from None
        if errors:
            raise IndexStoreError(errors[0])
        return new

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.close()                 # the worker's cue to finish and exit
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
        self.procs = []


if __name__ == "__main__":
    worker_main()
