"""Which window each event was first ported from: dedup across windows.

Within a window, ``merge`` keeps each event once. Across windows it cannot:
bucks file frames by arrival time, so a tailer's spool re-send (after the
spool bucket's window, and once more before the spool prunes it, up to a
day later) puts a second copy of an event in a later window, and so does a
batch that reached one buck just before a window boundary and the other
just after. The index and the archive must still hold each event once.

The rule: an event belongs to the first window it was ported from. This
ledger remembers, for every event ported, that window; ``claim`` drops from
a window the events the ledger gives to another one, and records the rest
as this window's. Claiming a window twice (a restart after kill -9, the
archiver fetching the window again days later) keeps the same events, so
the index and the archive agree on what each window holds.

Where an id is looked up
------------------------
Every copy of an event carries the same ``received`` time (set once, where
the event was first read; spool re-sends carry it unchanged), so the ledger
is partitioned by it: an event's entry lives in the partition of
``received // PART_S``, whatever window holds it, and a lookup reads one
partition however late the copy came. Partitions are files,
``ROOT/ENV/YYYYMMDD/HHMMSS.ids``, of fixed 24-byte records (id, then the
window as ``start << 17 | width``, big-endian), appended in one write per
claim; a torn last record (a crash mid-append) is cut off when the file is
next read. A partition not written for ``horizon`` seconds is deleted: a
copy that comes later than that is ported again (and so held twice).

Events whose copies carry different ``received`` times (an application
that retried an HTTP post to another buck) are not recognised here; within
one window ``merge`` still keeps them once, and the index keeps them once
by id.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from helios.errors import HeliosError
from helios.porter.merge import Record
from helios.store import durable
from helios.store.layout import BucketName

__all__ = ["PART_S", "RECORD", "Seen", "window_key"]

log = logging.getLogger(__name__)

PART_S = 60
RECORD = 24
_KEY = struct.Struct(">Q")
NS = 1_000_000_000

R = TypeVar("R", bound=Record)   # an Event, or a row as decoded (helios.porter.merge)


def window_key(name: BucketName) -> int:
    """A window as one integer (start in seconds, then width: widths are < 2**17)."""
    return name.start << 17 | name.width


class Seen:
    """The ledger of one porter state directory (``STATE_DIR/seen``).

    ``max_cached`` bounds the entries kept in memory (about 100 bytes each;
    partitions are read back from their files when needed again, and the
    lookups of a window mostly hit the few partitions of its own minutes)."""

    def __init__(self, root: str | Path, *, horizon: float = 3 * 86400, max_cached: int = 500_000) -> None:
        self.root = Path(root)
        self.horizon = horizon
        self.max_cached = max_cached
        self._cache: OrderedDict[tuple[str, int], dict[bytes, int]] = OrderedDict()
        self._cached = 0

    def path(self, environment: str, part: int) -> Path:
        t = datetime.fromtimestamp(part * PART_S, timezone.utc)
        return self.root / environment / f"{t:%Y%m%d}" / f"{t:%H%M%S}.ids"

    def claim(self, name: BucketName, events: Iterable[R], *,
              keep: Callable[[int], bool] | None = None) -> tuple[list[R], int]:
        """The events of window ``name`` that belong to it (in the order
        given), and how many belong to another window. Records the new ones
        as ``name``'s before returning. Raises HeliosError when the ledger
        cannot be written (nothing is kept then: the caller retries).

        ``keep(owner)`` (owner as ``window_key``): an event another window
        owns is kept anyway when it says True (the index job, for owners
        loaded into an index the porter no longer loads and that no buck
        holds any more); the ledger still gives it to its owner."""
        key = window_key(name)
        packed = _KEY.pack(key)
        part_ns = PART_S * NS
        groups: dict[int, list[int]] = {}
        events = events if isinstance(events, list) else list(events)
        for i, e in enumerate(events):
            groups.setdefault(e[2] // part_ns, []).append(i)
        drop: set[int] = set()
        for part, idx in groups.items():
            owners = self._load(name.environment, part)
            get = owners.get
            new: list[bytes] = []
            for i in idx:
                id_ = events[i][0]
                owner = get(id_)
                if owner is None:
                    owners[id_] = key
                    new.append(id_)
                elif owner != key and (keep is None or not keep(owner)):
                    drop.add(i)
            if new:
                self._cached += len(new)
                self._append(name.environment, part, packed.join(new) + packed)
        self._trim()
        if not drop:
            return events, 0
        return [e for i, e in enumerate(events) if i not in drop], len(drop)

    def _load(self, environment: str, part: int) -> dict[bytes, int]:
        ck = (environment, part)
        owners = self._cache.get(ck)
        if owners is not None:
            self._cache.move_to_end(ck)
            return owners
        path = self.path(environment, part)
        owners = {}
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise HeliosError(f"cannot read the porter's dedup ledger {path}: {exc.strerror or exc}") from None
        whole = len(data) - len(data) % RECORD
        if whole != len(data):
            log.warning("Cut a torn record (%d bytes) off the end of the dedup ledger %s.", len(data) - whole, path)
            try:
                os.truncate(path, whole)
            except OSError as exc:
                raise HeliosError(f"cannot repair the dedup ledger {path}: {exc.strerror or exc}") from None
        view = memoryview(data)
        keys: dict[int, int] = {}  # one int object per window, not one per entry
        for off in range(0, whole, RECORD):
            id_ = bytes(view[off:off + 16])
            k = _KEY.unpack_from(view, off + 16)[0]
            k = keys.setdefault(k, k)
            # Two entries for one id (two porters on one state dir): the
            # earlier window wins, as it would have for one porter.
            if id_ not in owners or k < owners[id_]:
                owners[id_] = k
        self._cache[ck] = owners
        self._cached += len(owners)
        return owners

    def _append(self, environment: str, part: int, data: bytes) -> None:
        path = self.path(environment, part)
        try:
            durable.make_dirs(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, durable.FILE_MODE)
            try:
                if os.fstat(fd).st_size == 0:
                    durable.created(fd)  # 0640 whatever the umask
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as exc:
            # The cache may now say more than the file: forget it.
            self._cache.pop((environment, part), None)
            raise HeliosError(f"cannot write the porter's dedup ledger {path}: {exc.strerror or exc}") from None

    def _trim(self) -> None:
        while self._cached > self.max_cached and len(self._cache) > 1:
            _, owners = self._cache.popitem(last=False)
            self._cached -= len(owners)

    def prune(self, now: float) -> int:
        """Delete the partitions not written for ``horizon`` seconds (an entry
        lives that long after its window was last claimed, however old the
        events' receive times), and day directories left empty; returns how
        many partitions were deleted."""
        cutoff = now - self.horizon
        removed = 0
        try:
            env_dirs = [p for p in self.root.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return 0
        for env_dir in env_dirs:
            for day_dir in [p for p in env_dir.iterdir() if p.is_dir()]:
                for part in day_dir.iterdir():
                    try:
                        if part.stat().st_mtime < cutoff:
                            part.unlink()
                            removed += 1
                            stamp = datetime.strptime(day_dir.name + part.stem, "%Y%m%d%H%M%S")
                            ck = (env_dir.name, int(stamp.replace(tzinfo=timezone.utc).timestamp()) // PART_S)
                            if ck in self._cache:
                                self._cached -= len(self._cache.pop(ck))
                    except (OSError, ValueError):
                        continue
                try:
                    day_dir.rmdir()  # only if empty
                except OSError:
                    pass
        return removed
