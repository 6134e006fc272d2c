"""History requests: the durable store and the state machine.

A request asks for the events of one environment in ``[start, end)`` (ns,
UTC) in a temporary index of their own, ``helios-history-ID``. Its id is a
pure function of (environment, start, end), so the same range asked twice,
by the CLI and the web at once, is one row and one build::

    queued ──claim──> building ──finish──> ready ──expire/drop──> expired
      ^                  │  └──fail──> failed                         │
      │                  └─ (its builder died: the lease runs out,    │
      │                     another builder claims it again)          │
      └──────────── retry, or the same range asked again ─────────────┘

- **queued**: waiting for a builder (``helios history serve``).
- **building**: a builder holds a lease on it, renewed with every progress
  report; a builder that dies stops renewing, and once the lease has run
  out another builder takes the request over from the start (loading is
  idempotent, so what the first one loaded is not loaded twice).
- **ready**: searchable until ``expires`` (``[history] expiry`` after it
  became ready; asking for the same range again starts the count again).
- **failed**: with a reason a person can act on (the archive could not be
  reached, a window could not be read from any buck). Asking again, or
  ``retry``, queues it again.
- **expired**: its index was deleted (expiry, or ``helios history drop``).

Progress of a build: windows done / total, events loaded (new to the
index), events read, bytes read / to read, and from those an estimate of
the time left (``eta_s``).

The store is one SQLite file, ``DIR/requests.db`` (WAL): the web process,
the CLI and any number of builders share it. Every change of state is one
``BEGIN IMMEDIATE`` transaction that reads the row and writes it, so two
processes never both move a request from one state to the next; a builder
writes progress only while the request is still its own (``owner``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from helios.errors import HistoryError
from helios.store import durable

__all__ = ["ACTIVE", "INDEX_PREFIX", "Request", "RequestStore", "STATES", "request_id"]

STATES = ("queued", "building", "ready", "failed", "expired")
ACTIVE = ("queued", "building")
INDEX_PREFIX = "helios-history-"
DB_NAME = "requests.db"
BUSY_TIMEOUT = 30.0
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, environment TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    state TEXT NOT NULL, reason TEXT, index_kind TEXT NOT NULL, index_name TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, started REAL, finished REAL, expires REAL,
    asked INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, lease_until REAL,
    windows_total INTEGER NOT NULL DEFAULT 0, windows_done INTEGER NOT NULL DEFAULT 0,
    events_loaded INTEGER NOT NULL DEFAULT 0, events_read INTEGER NOT NULL DEFAULT 0,
    bytes_read INTEGER NOT NULL DEFAULT 0, bytes_total INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    inventory_records INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state, created);
"""

# Progress columns, reset when a build (re)starts.
# events_read leaves out the tailers' inventory records (an index leaves them out): inventory_records counts them.
PROGRESS = ("windows_total", "windows_done", "events_loaded", "events_read", "bytes_read", "bytes_total",
            "inventory_records")


def request_id(environment: str, start: int, end: int) -> str:
    """The id of the request for this range: the same range, the same id."""
    return hashlib.sha256(f"{environment}\n{start}\n{end}".encode()).hexdigest()[:12]


@dataclass
class Request:
    id: str
    environment: str
    start: int                       # ns, inclusive
    end: int                         # ns, exclusive
    state: str
    index_kind: str
    index_name: str
    created: float
    updated: float
    reason: str | None = None
    started: float | None = None     # when the current (or last) build began
    finished: float | None = None    # when it became ready or failed
    expires: float | None = None     # when a ready index is deleted
    asked: int = 1                   # how many times the range was asked for
    attempts: int = 0                # builds started
    owner: str | None = None
    lease_until: float | None = None
    windows_total: int = 0
    windows_done: int = 0
    events_loaded: int = 0
    events_read: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    warnings: list[str] = field(default_factory=list)
    inventory_records: int = 0       # tailers' inventory records read (not in events_read: no index holds them)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds a build still needs, judged by its bytes (else its
        windows) so far; None when it is not building or has no measure yet."""
        if self.state != "building" or self.started is None:
            return None
        now = time.time() if now is None else now
        elapsed = max(0.0, now - self.started)
        if self.bytes_total > 0 and self.bytes_read > 0:
            return elapsed * max(0, self.bytes_total - self.bytes_read) / self.bytes_read
        if self.windows_total > 0 and self.windows_done > 0:
            return elapsed * (self.windows_total - self.windows_done) / self.windows_done
        return None

    def fraction(self) -> float:
        """How much of the build is done, 0..1 (1 once ready)."""
        if self.state == "ready":
            return 1.0
        if self.bytes_total > 0:
            return min(1.0, self.bytes_read / self.bytes_total)
        if self.windows_total > 0:
            return self.windows_done / self.windows_total
        return 0.0

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The request as archie and ``--json`` show it."""
        d = asdict(self)
        for k in ("owner", "lease_until"):
            d.pop(k)
        d["progress"] = {k: d.pop(k) for k in PROGRESS}
        d["progress"]["fraction"] = round(self.fraction(), 4)
        eta = self.eta(now)
        d["progress"]["eta_s"] = None if eta is None else round(eta, 1)
        return d


class RequestStore:
    """The requests under ``directory`` (made if missing)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        try:
            durable.make_dirs(self.dir)
            self.path = self.dir / DB_NAME
            durable.precreate(self.path)  # 0640 whatever the umask, and so its -wal and -shm
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            # Added to version 1: a store an older Helios made has no such column.
            if "inventory_records" not in {r[1] for r in self.db.execute("PRAGMA table_info(requests)")}:
                self.db.execute("ALTER TABLE requests ADD COLUMN inventory_records INTEGER NOT NULL DEFAULT 0")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise HistoryError(f"the history request store {self.path} is of version {version}; this "
                                   f"Helios reads version {SCHEMA_VERSION}", status=500)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot use the history request store in {self.dir}: {exc}", status=500) from None
        self._columns = [f.name for f in fields(Request)]
        # One connection, shared by the threads of a web process: one at a time.
        self._lock = threading.RLock()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "RequestStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ reading

    def _row(self, row: tuple | None) -> Request | None:
        if row is None:
            return None
        values = dict(zip(self._columns, row))
        values["warnings"] = json.loads(values["warnings"] or "[]")
        return Request(**values)

    def _select(self, where: str = "", params: tuple = ()) -> list[Request]:
        cols = ", ".join(f'"{c}"' for c in self._columns)
        with self._lock:
            rows = self.db.execute(f"SELECT {cols} FROM requests {where}", params).fetchall()
        return [self._row(r) for r in rows]

    def get(self, request_id: str) -> Request:
        """The request ``request_id``; HistoryError (404) if there is none."""
        found = self._select("WHERE id = ?", (request_id,))
        if not found:
            raise HistoryError(f"no history request has the id {request_id!r} (`helios history list` lists them)",
                               status=404)
        return found[0]

    def list(self, states: tuple[str, ...] = ()) -> list[Request]:
        """Requests, newest first; only those in ``states`` when given."""
        if states:
            return self._select(f"WHERE state IN ({','.join('?' * len(states))}) ORDER BY created DESC, id",
                                tuple(states))
        return self._select("ORDER BY created DESC, id")

    # ------------------------------------------------------------ changing

    def _txn(self) -> "_Txn":
        return _Txn(self.db, self._lock)

    def _write(self, sql: str, params: tuple) -> int:
        with self._lock:
            return self.db.execute(sql, params).rowcount

    def _set(self, request_id: str, **values: Any) -> None:
        """Inside a ``_txn``."""
        if "warnings" in values:
            values["warnings"] = json.dumps(values["warnings"])
        sets = ", ".join(f'"{k}" = ?' for k in values)
        self.db.execute(f"UPDATE requests SET {sets} WHERE id = ?", (*values.values(), request_id))

    def submit(self, environment: str, start: int, end: int, index_kind: str, *, expiry: float,
               now: float | None = None) -> tuple[Request, bool]:
        """Ask for a range: (the request, True if this call queued a build).
        A range already queued, building or ready is shared (a ready one's
        expiry starts again); a failed or expired one is queued again."""
        now = time.time() if now is None else now
        rid = request_id(environment, start, end)
        with self._txn():
            found = self._select("WHERE id = ?", (rid,))
            if not found:
                self.db.execute(
                    'INSERT INTO requests (id, environment, start, "end", state, index_kind, index_name, created, '
                    "updated) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (rid, environment, start, end, index_kind, INDEX_PREFIX + rid, now, now))
                queued = True
            else:
                r = found[0]
                changes: dict[str, Any] = {"asked": r.asked + 1, "updated": now}
                queued = r.state in ("failed", "expired")
                if queued:
                    changes.update(self._requeue(index_kind))
                elif r.state == "ready":
                    changes["expires"] = now + expiry
                self._set(rid, **changes)
        return self.get(rid), queued

    @staticmethod
    def _requeue(index_kind: str) -> dict[str, Any]:
        return {"state": "queued", "reason": None, "finished": None, "expires": None, "owner": None,
                "lease_until": None, "warnings": [], "index_kind": index_kind, **{k: 0 for k in PROGRESS}}

    def retry(self, request_id: str, index_kind: str | None = None, now: float | None = None) -> Request:
        """Queue a failed or expired request again; HistoryError (409) otherwise."""
        now = time.time() if now is None else now
        with self._txn():
            r = self.get(request_id)
            if r.state not in ("failed", "expired"):
                raise HistoryError(f"history request {request_id} is {r.state}: only a failed or expired "
                                   "request can be retried", status=409)
            self._set(request_id, updated=now, **self._requeue(index_kind or r.index_kind))
        return self.get(request_id)

    def claim(self, owner: str, lease: float, now: float | None = None) -> Request | None:
        """The oldest queued request (or one whose builder's lease ran out),
        now ``building`` by ``owner``; None when there is nothing to build."""
        now = time.time() if now is None else now
        with self._txn():
            found = self._select("WHERE state = 'queued' OR (state = 'building' AND lease_until < ?) "
                                 "ORDER BY created, id LIMIT 1", (now,))
            if not found:
                return None
            r = found[0]
            self._set(r.id, state="building", owner=owner, lease_until=now + lease, started=now, updated=now,
                      attempts=r.attempts + 1, reason=None, warnings=[], **{k: 0 for k in PROGRESS})
        return self.get(r.id)

    def progress(self, request_id: str, owner: str, lease: float, now: float | None = None,
                 **counts: Any) -> bool:
        """Record a build's progress and renew its lease; False when the
        request is no longer this builder's (dropped, or taken over): stop."""
        now = time.time() if now is None else now
        unknown = set(counts) - set(PROGRESS) - {"warnings"}
        if unknown:
            raise ValueError(f"not progress counts: {sorted(unknown)}")
        if "warnings" in counts:
            counts["warnings"] = json.dumps(counts["warnings"])
        sets = ", ".join(f'"{k}" = ?' for k in counts)
        sets = (sets + ", " if sets else "") + "lease_until = ?, updated = ?"
        return self._write(f"UPDATE requests SET {sets} WHERE id = ? AND state = 'building' AND owner = ?",
                           (*counts.values(), now + lease, now, request_id, owner)) == 1

    def finish(self, request_id: str, owner: str, expiry: float, now: float | None = None) -> bool:
        """building -> ready; False if the request is no longer ours."""
        now = time.time() if now is None else now
        return self._write("UPDATE requests SET state = 'ready', finished = ?, expires = ?, updated = ?, "
                           "lease_until = NULL WHERE id = ? AND state = 'building' AND owner = ?",
                           (now, now + expiry, now, request_id, owner)) == 1

    def fail(self, request_id: str, owner: str, reason: str, now: float | None = None) -> bool:
        """building -> failed(reason); False if the request is no longer ours."""
        now = time.time() if now is None else now
        return self._write("UPDATE requests SET state = 'failed', reason = ?, finished = ?, updated = ?, "
                           "lease_until = NULL WHERE id = ? AND state = 'building' AND owner = ?",
                           (reason, now, now, request_id, owner)) == 1

    def release(self, request_id: str, owner: str, now: float | None = None) -> bool:
        """building -> queued (a builder shutting down): the next builder
        starts it again at once instead of waiting for the lease to run out."""
        now = time.time() if now is None else now
        return self._write("UPDATE requests SET state = 'queued', owner = NULL, lease_until = NULL, updated = ? "
                           "WHERE id = ? AND state = 'building' AND owner = ?", (now, request_id, owner)) == 1

    def due(self, now: float | None = None) -> list[Request]:
        """Ready requests whose expiry has come."""
        now = time.time() if now is None else now
        return self._select("WHERE state = 'ready' AND expires <= ? ORDER BY expires", (now,))

    def expire(self, request_id: str, reason: str, now: float | None = None,
               only_if_due: bool = False) -> Request | None:
        """-> expired (its index is the caller's to delete, after this
        returns, so that nobody searches it meanwhile). With ``only_if_due``,
        only a ready request whose expiry has come (None otherwise: it was
        asked for again meanwhile)."""
        now = time.time() if now is None else now
        with self._txn():
            r = self.get(request_id)
            if only_if_due and not (r.state == "ready" and r.expires is not None and r.expires <= now):
                return None
            self._set(request_id, state="expired", reason=reason, owner=None, lease_until=None, updated=now,
                      expires=min(now, r.expires) if r.expires is not None else now)
        return self.get(request_id)

    def delete(self, request_id: str) -> None:
        """Forget an expired request altogether."""
        with self._txn():
            r = self.get(request_id)
            if r.state != "expired":
                raise HistoryError(f"history request {request_id} is {r.state}: drop it first", status=409)
            self.db.execute("DELETE FROM requests WHERE id = ?", (request_id,))


class _Txn:
    """BEGIN IMMEDIATE .. COMMIT (ROLLBACK on an exception): the write lock
    is taken before the row is read, so a read-then-write is atomic."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.lock.release()
