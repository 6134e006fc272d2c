"""What the porter has done, per environment and bucket window: durable.

One SQLite database, ``STATE_DIR/porter.db`` (WAL, ``synchronous=FULL``:
a mark that returned survives a crash of the machine, and the pruner
deletes bucks' data on the strength of these marks). A window is marked
only after its job succeeded:

- **indexed**: every event of the window, from the bucks in
  ``index_sources``, is in the index: ``index_events`` of them, counted as
  the index counts (``helios.index.base.searchable``), and
  ``index_inventory`` tailers' inventory records beside them, which the
  index leaves out (the audit reads them from the bucks; the archive keeps
  them; a window marked before this count existed has it None, and
  those records in ``index_events``);
- **archived**: the object ``archive_key`` (``archive_size`` bytes, xxh3-128
  ``archive_checksum``, ``archive_events`` events, from the bucks in
  ``archive_sources``) was written and read back intact; or **skipped**:
  the archive blacklist names it (``skipped`` is the entry);
- **pruned_from**: bucks that deleted the window at the porter's request.

Which index a window was loaded into is recorded with its mark
(``index_into``: kind, URL or directory and index name, never credentials;
``index_identity``), and the index the porter last started with in
``meta`` (key ``index``). When an operator points the porter at another
index, ``use_index`` says so at start, and ``load_again`` takes the index
marks off the windows the bucks still hold that went into another index,
so the index job loads them again into this one (a load is idempotent: an
event's id is its document id). A window no buck holds any more keeps its
mark and the name of the index it went into. ``left_out`` starts again at a
change of index: it counts what this index left out, as windows load into it.

A state written before ``index_into`` existed gains the column on open,
and its marks an index at the porter's first start (``use_index``): its
windows count as loaded into the index the old porter last said it loaded
into (``index.where`` in its ``status.json``, when it left one), or,
without that, into the index the config names at that first start. The first loses nothing when an
upgrade and a move of the index happen in one restart; the second loses
nothing when they happen in two (upgrade, then move), which
docs/operations.md asks for.

A window done with long ago is forgotten (``forget_before``), but what was
archived for it stays in the table ``archived`` (key, events, checksum,
when; a row per window, never forgotten): a window is only ever rewritten
with more events, so a reader refuses an object holding fewer than were
recorded, an older copy put back (``helios.porter.archiving.Recorded``).

Per environment, ``left_out`` counts the events an index load left out
because their times were before the first day the index keeps
(``recent_days``): how many, in how many windows, the oldest and newest
such time (ns). It is written with the window's index mark, in one
transaction, so a count is neither lost nor counted twice.

So a porter killed at any line redoes at most the job it was doing, and
every job is idempotent (the index keeps an event once by id, an archive
key is a function of the window, a re-put writes the same bytes).

Two porters may share a state directory: SQLite serialises the writes, and
a job takes a lease on its window first (``lease``), so the two do not do
the same work at once. A lease ends when it expires, or at once when the
porter that took it is known to be dead (same host, no such process), so a
porter killed with kill -9 and restarted takes its windows straight back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Iterator

from helios.errors import HeliosError
from helios.store import durable
from helios.store.layout import BucketName

__all__ = ["Moved", "State", "WindowState", "index_identity"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    environment TEXT NOT NULL, start INTEGER NOT NULL, width INTEGER NOT NULL,
    indexed_at REAL, index_events INTEGER, index_sources TEXT NOT NULL DEFAULT '[]',
    archived_at REAL, archive_key TEXT, archive_size INTEGER, archive_checksum TEXT,
    archive_events INTEGER, archive_sources TEXT NOT NULL DEFAULT '[]',
    skipped TEXT,
    pruned_at REAL, pruned_from TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (environment, start, width)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    job TEXT NOT NULL, environment TEXT NOT NULL, start INTEGER NOT NULL, width INTEGER NOT NULL,
    owner TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (job, environment, start, width)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archived (
    environment TEXT NOT NULL, start INTEGER NOT NULL, width INTEGER NOT NULL,
    archive_key TEXT NOT NULL, archive_events INTEGER NOT NULL, archive_checksum TEXT NOT NULL,
    archived_at REAL NOT NULL,
    PRIMARY KEY (environment, start, width)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS left_out (
    environment TEXT PRIMARY KEY, events INTEGER NOT NULL, windows INTEGER NOT NULL,
    oldest INTEGER NOT NULL, newest INTEGER NOT NULL, last_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped_days (
    environment TEXT NOT NULL, day INTEGER NOT NULL, dropped_at REAL NOT NULL,
    PRIMARY KEY (environment, day)
) WITHOUT ROWID;
"""


@dataclass
class WindowState:
    """One window's marks (times are seconds since the epoch, None: not yet)."""

    name: BucketName
    indexed_at: float | None = None
    index_events: int | None = None
    index_sources: set[str] = field(default_factory=set)
    archived_at: float | None = None
    archive_key: str | None = None
    archive_size: int | None = None
    archive_checksum: str | None = None
    archive_events: int | None = None
    archive_sources: set[str] = field(default_factory=set)
    skipped: str | None = None
    pruned_at: float | None = None
    pruned_from: set[str] = field(default_factory=set)
    index_inventory: int | None = None   # inventory records of the window, left out of the index
    index_into: str | None = None   # the index it was loaded into (``index_identity``); None: not loaded

    @property
    def indexed(self) -> bool:
        return self.indexed_at is not None

    @property
    def archived(self) -> bool:
        """Archived, or skipped by the blacklist: the archiver is done with it."""
        return self.archived_at is not None or self.skipped is not None

    def to_dict(self) -> dict[str, Any]:
        n = self.name
        return {"environment": n.environment, "start": n.start, "width": n.width,
                "indexed_at": self.indexed_at, "index_events": self.index_events,
                "index_sources": sorted(self.index_sources), "archived_at": self.archived_at,
                "archive_key": self.archive_key, "archive_size": self.archive_size,
                "archive_checksum": self.archive_checksum, "archive_events": self.archive_events,
                "archive_sources": sorted(self.archive_sources), "skipped": self.skipped,
                "pruned_at": self.pruned_at, "pruned_from": sorted(self.pruned_from),
                "index_inventory": self.index_inventory, "index_into": self.index_into}


_COLUMNS = ("environment", "start", "width", "indexed_at", "index_events", "index_sources", "archived_at",
            "archive_key", "archive_size", "archive_checksum", "archive_events", "archive_sources", "skipped",
            "pruned_at", "pruned_from", "index_inventory", "index_into")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM windows"


def _row(r: tuple[Any, ...]) -> WindowState:
    env, start, width, *rest = r
    d = dict(zip(_COLUMNS[3:], rest))
    for k in ("index_sources", "archive_sources", "pruned_from"):
        d[k] = set(json.loads(d[k]))
    return WindowState(BucketName(env, start, width), **d)


def index_identity(kind: str, location: str, name: str) -> str:
    """The index a porter loads into, as its state records it: the kind,
    the directory (sqlite, made absolute) or the URL (without user and
    password, query or fragment) and the index name, as
    ``"opensearch http://search:9200 (helios-recent)"``."""
    if kind == "sqlite":
        where = str(Path(location).expanduser().absolute())
    else:
        u = urllib.parse.urlsplit(location.strip())
        host = (u.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"
        port = f":{u.port}" if u.port is not None else ""
        where = urllib.parse.urlunsplit((u.scheme.lower(), host + port, u.path.rstrip("/"), "", ""))
    return f"{kind} {where} ({name})"


def identity_of_where(where: str) -> str | None:
    """``index_identity`` of the ``where`` a porter's status.json gives its
    index (``"KIND LOCATION (NAME)"``); None when it is not one."""
    kind, _, rest = where.partition(" ")
    location, _, name = rest.rpartition(" (")
    if kind not in ("sqlite", "elasticsearch", "opensearch") or not location or not name.endswith(")"):
        return None
    try:
        return index_identity(kind, location, name[:-1])
    except ValueError:
        return None


@dataclass
class Moved:
    """The index changed: from ``before`` to ``now`` (identities), at ``at``;
    ``windows``: how many windows the bucks held were marked to be loaded
    again into ``now`` so far."""

    before: str
    now: str
    at: float
    windows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.before, "to": self.now, "at": self.at, "windows": self.windows}


def _alive(owner: str) -> bool:
    """Is the porter that took a lease still running? Known only for one on
    this host (a porter killed with kill -9 must not hold its windows until
    the lease expires); one elsewhere is taken to be alive."""
    host, _, pid = owner.rpartition(":")
    if host != os.uname().nodename or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class State:
    """The porter's state database. Not thread-safe: one per thread."""

    def __init__(self, path: str | Path, *, owner: str | None = None) -> None:
        self.path = Path(path)
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}"
        try:
            durable.make_dirs(self.path.parent)
            durable.precreate(self.path)  # 0640 whatever the umask, and so its -wal and -shm
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            with self._tx():
                # executescript would commit the transaction: one statement at a time.
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                # Added to version 1 (an older porter names its columns, so it reads the table as before).
                if "index_inventory" not in {r[1] for r in self.db.execute("PRAGMA table_info(windows)")}:
                    self.db.execute("ALTER TABLE windows ADD COLUMN index_inventory INTEGER")
                if "index_into" not in {r[1] for r in self.db.execute("PRAGMA table_info(windows)")}:
                    self.db.execute("ALTER TABLE windows ADD COLUMN index_into TEXT")
                row = self.db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                if row is None:
                    self.db.execute("INSERT INTO meta VALUES ('version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise HeliosError(f"the porter state {self.path} is of version {row[0]}; this Helios "
                                      f"reads version {SCHEMA_VERSION} (a newer porter wrote it)")
        except sqlite3.Error as exc:
            raise HeliosError(f"cannot open the porter state {self.path}: {exc}") from None

    # ----------------------------------------------------------------- plumbing

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                     tb: TracebackType | None) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _tx(self) -> "State._Tx":
        return State._Tx(self.db)

    def _ensure(self, db: sqlite3.Connection, name: BucketName) -> WindowState:
        db.execute("INSERT OR IGNORE INTO windows (environment, start, width) VALUES (?, ?, ?)",
                   (name.environment, name.start, name.width))
        return _row(db.execute(_SELECT + " WHERE environment=? AND start=? AND width=?",
                               (name.environment, name.start, name.width)).fetchone())

    def _set(self, db: sqlite3.Connection, name: BucketName, **values: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in values)
        args = [json.dumps(sorted(v)) if isinstance(v, set) else v for v in values.values()]
        db.execute(f"UPDATE windows SET {sets} WHERE environment=? AND start=? AND width=?",
                   (*args, name.environment, name.start, name.width))

    def close(self) -> None:
        self.db.close()

    # ----------------------------------------------------------------- reading

    def get(self, name: BucketName) -> WindowState | None:
        r = self.db.execute(_SELECT + " WHERE environment=? AND start=? AND width=?",
                            (name.environment, name.start, name.width)).fetchone()
        return None if r is None else _row(r)

    def windows(self, environment: str | None = None) -> list[WindowState]:
        """Every window the state knows, sorted by (environment, start, width)."""
        q = _SELECT + ("" if environment is None else " WHERE environment=?") + " ORDER BY environment, start, width"
        return [_row(r) for r in self.db.execute(q, () if environment is None else (environment,))]

    def environments(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT environment FROM windows ORDER BY 1")]

    def left_out(self) -> dict[str, dict[str, Any]]:
        """Per environment, the events index loads left out as too old:
        {"events", "windows", "oldest", "newest" (ns), "last_at" (s)}."""
        return {r[0]: {"events": r[1], "windows": r[2], "oldest": r[3], "newest": r[4], "last_at": r[5]}
                for r in self.db.execute("SELECT environment, events, windows, oldest, newest, last_at FROM left_out "
                                         "ORDER BY environment")}

    def moved(self) -> Moved | None:
        """The last change of index ``use_index`` saw (None: never)."""
        r = self.db.execute("SELECT value FROM meta WHERE key='index_moved'").fetchone()
        if r is None:
            return None
        d = json.loads(r[0])
        return Moved(d["from"], d["to"], d["at"], d.get("windows", 0))

    def index(self) -> str | None:
        """The index the porter last started with (``index_identity``)."""
        r = self.db.execute("SELECT value FROM meta WHERE key='index'").fetchone()
        return None if r is None else str(r[0])

    def dropped_days(self, environment: str) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT day FROM dropped_days WHERE environment=?", (environment,))}

    # ----------------------------------------------------------------- the index

    def use_index(self, identity: str, *, before: str | None = None, now: float | None = None) -> Moved | None:
        """The porter loads into ``identity`` from now on; a Moved when the
        index it last started with differs (recorded here, or, in a state
        that recorded none, ``before``: the index the previous porter's
        status.json names). Windows marked loaded with no index recorded (a
        state from before ``index_into``, or an older porter's marks) count
        as loaded into that previous index, else into ``identity``."""
        now = time.time() if now is None else now
        with self._tx() as db:
            r = db.execute("SELECT value FROM meta WHERE key='index'").fetchone()
            previous = str(r[0]) if r is not None else before
            db.execute("UPDATE windows SET index_into=? WHERE indexed_at IS NOT NULL AND index_into IS NULL",
                       (previous or identity,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('index', ?)", (identity,))
            if previous is None or previous == identity:
                return None
            moved = Moved(previous, identity, now)
            # What the old index left out as too old is counted again as the windows are loaded into this one.
            db.execute("DELETE FROM left_out")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('index_moved', ?)", (json.dumps(moved.to_dict()),))
            return moved

    def load_again(self, names: Iterable[BucketName], identity: str) -> dict[str, int]:
        """Take the index marks off the windows of ``names`` (those the bucks
        hold) that were loaded into another index than ``identity``, so the
        index job loads them again; returns, per index they were in, how many."""
        wanted = set(names)
        out: dict[str, int] = {}
        with self._tx() as db:
            rows = db.execute("SELECT environment, start, width, index_into FROM windows WHERE indexed_at IS NOT "
                              "NULL AND index_into IS NOT NULL AND index_into != ?", (identity,)).fetchall()
            for env, start, width, into in rows:
                name = BucketName(env, start, width)
                if name in wanted:
                    self._set(db, name, indexed_at=None, index_events=None, index_sources=set(),
                              index_inventory=None, index_into=None)
                    out[into] = out.get(into, 0) + 1
            if out:
                r = db.execute("SELECT value FROM meta WHERE key='index_moved'").fetchone()
                d: dict[str, Any] = (json.loads(r[0]) if r is not None else
                                     {"from": ", ".join(sorted(out)), "to": identity, "at": time.time(), "windows": 0})
                d["windows"] = int(d.get("windows", 0)) + sum(out.values())
                db.execute("INSERT OR REPLACE INTO meta VALUES ('index_moved', ?)", (json.dumps(d),))
        return out

    def loaded_elsewhere(self, identity: str) -> set[BucketName]:
        """The windows marked loaded into another index than ``identity``."""
        return {BucketName(*r) for r in self.db.execute(
            "SELECT environment, start, width FROM windows WHERE indexed_at IS NOT NULL AND index_into IS NOT NULL "
            "AND index_into != ?", (identity,))}

    # ----------------------------------------------------------------- marking

    def mark_indexed(self, name: BucketName, events: int, sources: Iterable[str], now: float | None = None,
                     left_out: tuple[int, int, int] | None = None, inventory: int = 0,
                     into: str | None = None) -> None:
        """The events of ``name`` from ``sources`` are in the index (sources
        add to those of earlier loads of the window; events and ``inventory``,
        the inventory records the index leaves out, too), and ``left_out``
        (count, oldest ns, newest ns) were left out as too old; ``into``: the
        index they went into (``index_identity``)."""
        now = time.time() if now is None else now
        with self._tx() as db:
            w = self._ensure(db, name)
            self._set(db, name, indexed_at=now,
                      index_events=(w.index_events or 0) + events, index_sources=w.index_sources | set(sources),
                      index_inventory=(w.index_inventory or 0) + inventory,
                      index_into=into if into is not None else w.index_into)
            if left_out and left_out[0]:
                count, oldest, newest = left_out
                db.execute("INSERT INTO left_out VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (environment) DO UPDATE SET "
                           "events=events+excluded.events, windows=windows+1, oldest=min(oldest, excluded.oldest), "
                           "newest=max(newest, excluded.newest), last_at=excluded.last_at",
                           (name.environment, count, oldest, newest, now))

    def mark_archived(self, name: BucketName, key: str, size: int, checksum: str, events: int,
                      sources: Iterable[str], now: float | None = None) -> None:
        """The object ``key`` holds the window's events from ``sources`` (it
        replaces what an earlier archiving of the window wrote)."""
        with self._tx() as db:
            w = self._ensure(db, name)
            at = time.time() if now is None else now
            self._set(db, name, archived_at=at, archive_key=key,
                      archive_size=size, archive_checksum=checksum, archive_events=events,
                      archive_sources=w.archive_sources | set(sources))
            db.execute("INSERT OR REPLACE INTO archived VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (name.environment, name.start, name.width, key, events, checksum, at))

    def mark_skipped(self, name: BucketName, entry: str) -> None:
        with self._tx() as db:
            self._ensure(db, name)
            self._set(db, name, skipped=entry)

    def mark_pruned(self, name: BucketName, bucks: Iterable[str], now: float | None = None) -> None:
        with self._tx() as db:
            w = self._ensure(db, name)
            self._set(db, name, pruned_at=time.time() if now is None else now, pruned_from=w.pruned_from | set(bucks))

    def mark_day_dropped(self, environment: str, day: int, now: float | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO dropped_days VALUES (?, ?, ?)",
                       (environment, day, time.time() if now is None else now))

    # ----------------------------------------------------------------- leases

    def lease(self, job: str, name: BucketName, seconds: float, now: float | None = None) -> bool:
        """Take (or renew) the lease of ``job`` on ``name`` for ``seconds``;
        False when another porter holds it."""
        now = time.time() if now is None else now
        key = (job, name.environment, name.start, name.width)
        with self._tx() as db:
            r = db.execute("SELECT owner, until FROM leases WHERE job=? AND environment=? AND start=? AND width=?",
                           key).fetchone()
            if r is not None and r[0] != self.owner and r[1] > now and _alive(r[0]):
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)", (*key, self.owner, now + seconds))
            return True

    def release(self, job: str, name: BucketName) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE job=? AND environment=? AND start=? AND width=? AND owner=?",
                       (job, name.environment, name.start, name.width, self.owner))

    def forget_before(self, environment: str, start: int) -> int:
        """Drop the records of windows of ``environment`` starting before
        ``start`` that are done with (indexed, archived and pruned)."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM windows WHERE environment=? AND start<? AND indexed_at IS NOT NULL "
                             "AND (archived_at IS NOT NULL OR skipped IS NOT NULL) AND pruned_at IS NOT NULL",
                             (environment, start))
            return cur.rowcount

    def __iter__(self) -> Iterator[WindowState]:
        return iter(self.windows())
