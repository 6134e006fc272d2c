"""The comparison of ``helios audit --index``: the ids the bucks hold
against the ids the index holds, and nothing else (no sockets, no index,
no porter state: the callers feed it rows, it answers with counts and ids).

Memory stays bounded whatever the windows' size: the ids go into a scratch
SQLite database (a temporary file, or ``:memory:`` in tests), the
differences are SQL queries over it.

Two tables. ``held``: every id a buck holds, with its time, the window
``w`` (a small int, the caller's) of the first LOADED copy that holds it
(None: held only by copies not loaded) and ``pending`` (1: also held by a
copy not loaded of another window; the porter's dedup ledger,
``helios.porter.seen``, may have given it to that one, so it is looked for
once that one is loaded) and ``odd`` (1: the bucks' copies of it differ in
time: a copy was altered, the audit cannot say which is right). ``idx``:
every id the index holds, with its time, receive time and how many times it
is there.

What it compares is ids and event times, and with ``--content`` a digest
of the rest of each event as the index stores it (``d``: the backend's
``content_digests`` of a loaded copy's row, its ``contents`` of the index's
document; None when not asked). ``held.cdiff`` (1: the loaded copies of it
differ in content: the audit cannot say which is right). Without it, an
event the index holds under its id and time but with another message, host
or fields is not seen (README, "The index against the bucks").
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from helios.indexaudit.results import EXAMPLES, NS

# A copy the porter loaded: the event must be in the index, the first window
# loaded that holds it says where (but see ``pending``).
_HELD = ("INSERT INTO held VALUES (?, ?, ?, 0, 0, ?, 0) ON CONFLICT(id) DO UPDATE SET "
         "w = coalesce(held.w, excluded.w), odd = held.odd OR held.t != excluded.t, "
         "d = coalesce(held.d, excluded.d), "
         "cdiff = held.cdiff OR coalesce(held.d != excluded.d, 0)")
# A copy not loaded (yet): its event need not be in the index, and one a
# loaded copy of ANOTHER window holds too may be the ledger's for this one
# (helios.porter.seen): ``pending``, looked for once this one is loaded.
_NOT_LOADED = ("INSERT INTO held VALUES (?, ?, NULL, 1, 0, NULL, 0) ON CONFLICT(id) DO UPDATE SET "
               "pending = CASE WHEN held.w IS ? THEN held.pending ELSE 1 END, odd = held.odd OR held.t != excluded.t")
_IDX = "INSERT INTO idx VALUES (?, ?, ?, 1, ?) ON CONFLICT(id) DO UPDATE SET n = n + 1"

# An event whose content is compared: a digest on both sides, held once by
# the index, the loaded copies on the bucks agreeing (``content_checked``, ``changed``).
_CONTENT_COMPARED = "held.cdiff = 0 AND idx.n = 1 AND held.d IS NOT NULL AND idx.d IS NOT NULL"

FOREVER = 2**63 - 1


class Scratch:
    """One environment's comparison. Rows are anything indexable whose
    [0] is the id and [1] the time (``codec.decode_rows``'s rows, tuples);
    index pages are (id, time, received) as ``Index.keys`` gives them."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        db = self.db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-65536")   # 64 MiB at most, whatever the windows' size
        db.execute("CREATE TABLE held (id BLOB PRIMARY KEY, t INTEGER NOT NULL, w INTEGER, "
                   "pending INTEGER NOT NULL, odd INTEGER NOT NULL, d BLOB, cdiff INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("CREATE TABLE idx (id BLOB PRIMARY KEY, t INTEGER NOT NULL, received INTEGER NOT NULL, "
                   "n INTEGER NOT NULL, d BLOB) WITHOUT ROWID")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction (a window's copies, an index day): far faster than a commit a row."""
        self.db.execute("BEGIN")
        yield
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ feeding it

    def loaded(self, rows: Iterable[Sequence], w: int | None, digests: Iterable[bytes | None] | None = None) -> None:
        """Rows of a copy the porter loaded, of window ``w`` (None: a window
        not checked); ``digests``: of their content, one a row (None: not compared)."""
        if digests is None:
            self.db.executemany(_HELD, ((r[0], r[1], w, None) for r in rows))
        else:
            self.db.executemany(_HELD, ((r[0], r[1], w, d) for r, d in zip(rows, digests, strict=True)))

    def not_loaded(self, rows: Iterable[Sequence], w: int | None) -> None:
        """Rows of a copy not loaded (yet), of window ``w`` (None: not one checked)."""
        self.db.executemany(_NOT_LOADED, ((r[0], r[1], w) for r in rows))

    def indexed(self, page: Iterable[Sequence]) -> None:
        """(id, time, received[, content digest]) the index holds."""
        self.db.executemany(_IDX, ((p[0], p[1], p[2], p[3] if len(p) > 3 else None) for p in page))

    # ------------------------------------------------------------------ the answers

    def _one(self, sql: str, *args: object) -> int:
        return self.db.execute(sql, args).fetchone()[0]

    def size(self) -> int:
        """Bytes of the scratch database."""
        return self._one("PRAGMA page_count") * self._one("PRAGMA page_size")

    def index_events(self) -> int:
        """Distinct ids the index holds."""
        return self._one("SELECT count(*) FROM idx")

    def looked_for(self, cutoff: int) -> int:
        """Events of loaded copies the index must hold: kept by it (time >= ``cutoff``), not pending."""
        return self._one("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ?", cutoff)

    def too_old(self, cutoff: int) -> int:
        return self._one("SELECT count(*) FROM held WHERE w IS NOT NULL AND t < ?", cutoff)

    def pending(self, cutoff: int) -> int:
        return self._one("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 1 AND t >= ?", cutoff)

    def missing(self, cutoff: int, examples: int = EXAMPLES) -> list[tuple[int, int, list[bytes]]]:
        """(w, how many, the first ids) per window whose looked-for events the index lacks, by w."""
        per_w: dict[int, list] = {}
        for w, id_ in self.db.execute(
                "SELECT w, id FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ? AND "
                "NOT EXISTS (SELECT 1 FROM idx WHERE idx.id = held.id) ORDER BY w, t, id", (cutoff,)):
            d = per_w.setdefault(w, [0, []])
            d[0] += 1
            if len(d[1]) < examples:
                d[1].append(id_)
        return [(w, count, ids) for w, (count, ids) in sorted(per_w.items())]

    def moved(self, cutoff: int, examples: int = EXAMPLES) -> list[tuple[int, int, list[tuple[bytes, int, int]]]]:
        """(w, how many, the first (id, the bucks' time, the index's time))
        per window, of the looked-for events the index holds once, at
        another time than every copy on the bucks (all agreeing) says."""
        return self._per_window("held.odd = 0 AND idx.n = 1 AND idx.t != held.t", cutoff, examples)

    def _per_window(self, where: str, cutoff: int, examples: int) -> list[tuple[int, int, list[tuple[bytes, int, int]]]]:
        """``moved`` and ``changed``: the looked-for events held by the
        index too that meet ``where``, grouped by window: (w, how many, the
        first (id, the bucks' time, the index's time))."""
        per_w: dict[int, list] = {}
        for w, id_, t, it in self.db.execute(
                "SELECT held.w, held.id, held.t, idx.t FROM held JOIN idx ON idx.id = held.id "
                f"WHERE held.w IS NOT NULL AND held.pending = 0 AND held.t >= ? AND {where} "
                "ORDER BY held.w, held.t, held.id", (cutoff,)):
            d = per_w.setdefault(w, [0, []])
            d[0] += 1
            if len(d[1]) < examples:
                d[1].append((id_, t, it))
        return [(w, count, ids) for w, (count, ids) in sorted(per_w.items())]

    def disagreeing(self, cutoff: int) -> int:
        """Looked-for events whose copies on the bucks differ in time."""
        return self._one("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ? AND odd = 1",
                         cutoff)

    def content_checked(self, cutoff: int) -> int:
        """Looked-for events whose content was compared: a digest on both
        sides, held once by the index, the loaded copies agreeing."""
        return self._one("SELECT count(*) FROM held JOIN idx ON idx.id = held.id WHERE held.w IS NOT NULL "
                         f"AND held.pending = 0 AND held.t >= ? AND {_CONTENT_COMPARED}", cutoff)

    def content_disagreeing(self, cutoff: int) -> int:
        """Looked-for events whose loaded copies on the bucks differ in content."""
        return self._one("SELECT count(*) FROM held WHERE w IS NOT NULL AND pending = 0 AND t >= ? AND cdiff = 1",
                         cutoff)

    def changed(self, cutoff: int, examples: int = EXAMPLES) -> list[tuple[int, int, list[tuple[bytes, int, int]]]]:
        """(w, how many, the first (id, the bucks' time, the index's time))
        per window, of the looked-for events the index holds once with
        another content (but the time: ``moved``) than every loaded copy on
        the bucks (all agreeing) has."""
        return self._per_window(f"{_CONTENT_COMPARED} AND idx.d != held.d", cutoff, examples)

    def duplicates(self, examples: int = EXAMPLES) -> tuple[int, list[tuple[bytes, int]]]:
        """How many ids the index holds more than once, and the first (id, time)."""
        n = self._one("SELECT count(*) FROM idx WHERE n > 1")
        if not n:
            return 0, []
        return n, list(self.db.execute("SELECT id, t FROM idx WHERE n > 1 ORDER BY t, id LIMIT ?", (examples,)))

    def unchecked(self, lo: int, hi: int = FOREVER) -> int:
        """Index events received outside [lo, hi) ns: not checked for extras."""
        return self._one("SELECT count(*) FROM idx WHERE received < ? OR received >= ?", lo, hi)

    def extras(self, lo: int, hi: int, width: int,
               examples: int = EXAMPLES) -> list[tuple[int, int, list[tuple[int, bytes]]]]:
        """(window start s, how many, the first (time, id)) per window of
        ``width`` s, by receive time, of the index events received in [lo,
        hi) ns that no buck holds, by window start."""
        per_r: dict[int, list] = {}
        for id_, t, received in self.db.execute(
                "SELECT id, t, received FROM idx WHERE received >= ? AND received < ? AND "
                "NOT EXISTS (SELECT 1 FROM held WHERE held.id = idx.id) ORDER BY received, id", (lo, hi)):
            ws_start = received // NS // width * width
            d = per_r.setdefault(ws_start, [0, []])
            d[0] += 1
            if len(d[1]) < examples:
                d[1].append((t, id_))
        return [(s, count, ids) for s, (count, ids) in sorted(per_r.items())]
