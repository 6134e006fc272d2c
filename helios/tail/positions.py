"""The tailer's positions file: how far each content's events are safe, and
what the tailer saw of it (its inventory).

An entry is keyed by the content's identity (``helios.tail.identity``), never
by path or inode, so a renamed, copied or compressed file keeps its place and
a new file at an old path does not inherit it. The offset saved is the
*committed* offset: the first byte whose event is not yet in the spool (or,
with the spool off, not yet taken by a buck). An offset never runs ahead of
data that is safe on disk, so a crash at any line re-reads, never skips.

Each entry also holds the inventory of that content: the paths it was seen
at, the largest size seen (uncompressed), the first byte read, and how reading
ended (``END_*``). Beside the files, ``journal`` holds the committed cursor
of each journal source (``helios.tail.journal_reader``): like an offset, it
never runs ahead of the spool. The tailer sends these records to the bucks
(``helios.tail.inventory``), so that ``helios audit`` knows what existed.

The file is JSON with a version, replaced with ``write_atomic`` (temporary
file, fsync, rename, fsync of the directory). Version 1 (keys hashed from
device, inode and first line) is read and converted: its entries keep their
keys (``legacy``), so lines read again after an upgrade keep their ids. A file
that cannot be read as either format is never silently reset: ``load`` moves
it aside and reports it, and the tailer then reads every file from its
beginning (ids are derived from identity and offset, so what is read twice is
deduplicated downstream).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from helios.store.atomic import write_atomic
from helios.tail.identity import head_hash

log = logging.getLogger(__name__)

VERSION = 2
MAX_PATHS = 8

# How reading a content ended (the inventory's "end"); "" while it is followed.
END_READING = ""
END_READ = "read"                 # read to its end
END_DELETED = "deleted"           # gone (deleted, or truncated with no copy left) before its end was read
END_CORRUPT = "corrupt"           # a compressed file that ends early or is damaged: read as far as it goes
END_DENIED = "permission-denied"  # could not be opened or read: permission denied
END_UNREADABLE = "unreadable"     # could not be opened or read for another reason
END_SKIPPED = "skipped"           # left out on purpose (a limit, or start_at = "end")
ENDS = (END_READING, END_READ, END_DELETED, END_CORRUPT, END_DENIED, END_UNREADABLE, END_SKIPPED)


@dataclass
class Position:
    path: str          # where the content was last seen
    dev: int           # device and inode it was last seen at (a hint, not the identity)
    ino: int
    fingerprint: bytes  # the prefix: its first line (up to PREFIX_BYTES)
    generation: int    # n: which content with this prefix
    offset: int        # committed: every event before it is safe
    seen: float        # wall time the content was last read (s)
    done: bool = False  # rotated away and read to its end: nothing left to finish
    head_len: int = 0   # how many first bytes the head covers (up to HEAD_BYTES)
    head_hash: int = 0  # identity.head_hash of those bytes
    legacy: bool = False  # converted from version 1: matched by device, inode and first line
    # The inventory of this content.
    paths: list[str] = field(default_factory=list)
    size: int = 0      # the largest size seen (uncompressed)
    first: int = -1    # the first byte read (-1: none yet)
    end: str = END_READING
    detail: str = ""   # why, for an end other than "read"
    sealed: list[str] = field(default_factory=list)  # compressed files read to their end: "dev:ino:size:mtime_ns"
    changed: int = 0   # bumped at each inventory change worth sending; not saved

    def __setattr__(self, name: str, value) -> None:
        # Each change is told to the Positions holding it (``_owner``): a save
        # serializes, and the inventory walks, only the entries that changed.
        object.__setattr__(self, name, value)
        owner = self.__dict__.get("_owner")
        if owner is not None and name in _WATCHED:
            owner.touch(self, name)

    def saw(self, path: str, size: int | None = None) -> None:
        if path not in self.paths:
            self.paths.append(path)
            del self.paths[:-MAX_PATHS]
            self.changed += 1
            owner = self.__dict__.get("_owner")
            if owner is not None:
                owner.touch(self, "paths")   # (changed in place)
        if size is not None and size > self.size:
            self.size = size

    def ended(self, end: str, detail: str = "") -> None:
        """Record how reading ended; a failure is not overwritten by a later
        'read' of a shorter copy, but a content read to its end after all is."""
        if end == END_READ and self.end not in (END_READING, END_READ) and self.offset < self.size:
            return
        if (self.end, self.detail) != (end, detail):
            self.end, self.detail = end, detail
            self.changed += 1


_SAVED = [f.name for f in fields(Position) if f.name != "changed"]
_WATCHED = frozenset(_SAVED) | {"changed"}
# Fields whose change alone is not worth a save (the old fingerprint ignored them).
_MINOR = frozenset({"seen", "path", "dev", "ino", "size"})
# Fields an inventory record carries (``Tailer.send_inventory``).
_INVENTORY = frozenset({"paths", "first", "end", "detail", "size", "offset", "changed"})


class _Files(dict):
    """key hex -> Position; an entry put in is owned by its Positions, which
    then hears of each change to it."""

    def __init__(self, owner: "Positions", items: dict) -> None:
        super().__init__()
        self.owner = owner
        # prefix -> {key: entry}: the contents that may hold a file starting with
        # that prefix, so identifying a new file does not walk every entry (at
        # 10,000 files the first scan did 50 M comparisons). A prefix never changes.
        self.by_prefix: dict[bytes, dict[str, Position]] = {}
        for key, p in items.items():
            self[key] = p

    def __setitem__(self, key: str, p: Position) -> None:
        old = self.get(key)
        if old is not None and old is not p:
            self._unindex(key, old)
        super().__setitem__(key, p)
        self.by_prefix.setdefault(p.fingerprint, {})[key] = p
        object.__setattr__(p, "_owner", self.owner)
        object.__setattr__(p, "_key", key)
        self.owner.touch(p, "offset")

    def _unindex(self, key: str, p: Position) -> None:
        same = self.by_prefix.get(p.fingerprint)
        if same is not None and same.get(key) is p:
            del same[key]
            if not same:
                del self.by_prefix[p.fingerprint]

    def __delitem__(self, key: str) -> None:
        p = self[key]
        super().__delitem__(key)
        self._unindex(key, p)

    def pop(self, key, *default):  # type: ignore[override]
        if key in self:
            p = self[key]
            del self[key]
            return p
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self):  # type: ignore[override]
        key, p = super().popitem()
        self._unindex(key, p)
        return key, p

    def clear(self) -> None:
        super().clear()
        self.by_prefix.clear()

    def with_prefix(self, prefix: bytes) -> dict[str, Position]:
        """The entries whose content starts with ``prefix`` (do not change it)."""
        return self.by_prefix.get(prefix, {})

    def setdefault(self, key, default=None):  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kw) -> None:  # type: ignore[override]
        for key, p in dict(*args, **kw).items():
            self[key] = p


@dataclass
class Positions:
    files: dict[str, Position] = field(default_factory=dict)   # key hex -> position
    spool: dict[str, int] = field(default_factory=dict)        # spool bucket relpath -> times sent
    saved_at: float = 0.0
    recovered: bool = False  # the file was corrupt and moved aside: read everything again
    watching: dict[str, float] = field(default_factory=dict)   # followed path -> wall time first followed
    # journal source -> {"cursor": committed cursor, "after": {seqnum id: last seqnum sent},
    #                    "first": {seqnum id: first seqnum sent}} (tail.journal_reader; the inventory)
    journal: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.moves = 0                            # bumped by each change worth a save
        self.touched: dict[str, Position] = {}    # changed since the last snapshot
        self.inventory_touched: dict[str, Position] = {}  # changed since taken by the inventory
        self.files = _Files(self, self.files)

    def __setattr__(self, name: str, value) -> None:
        if name == "files" and "touched" in self.__dict__ and not isinstance(value, _Files):
            value = _Files(self, value)
        object.__setattr__(self, name, value)

    def touch(self, p: Position, name: str) -> None:
        key = p.__dict__["_key"]
        self.touched[key] = p
        if name not in _MINOR:
            self.moves += 1
        if name in _INVENTORY:
            self.inventory_touched[key] = p

    def take_inventory_touched(self) -> dict[str, Position]:
        """The entries whose inventory may have changed since the last call
        (every entry at the first)."""
        out, self.inventory_touched = self.inventory_touched, {}
        files = self.files
        return {k: p for k, p in out.items() if files.get(k) is p}

    def fingerprint(self) -> tuple:
        """What changes when there is something new to save (offsets, files,
        spool state), without walking the entries."""
        return (self.moves, len(self.files), tuple(sorted(self.spool.items())),
                len(self.watching), tuple(sorted((k, v["cursor"]) for k, v in self.journal.items())))

    def touch_all(self) -> None:
        """Every entry goes into the next snapshot (after a failed one)."""
        self.touched = dict(self.files)

    def snapshot(self) -> "Snapshot":
        """A copy of what a save writes, cheap to take on the tailer's loop:
        the entries that changed since the last snapshot are copied, the others
        are known to the ``Saver`` already (as serialized fragments)."""
        files = self.files
        changed = {}
        for key, p in self.touched.items():
            if files.get(key) is p:
                d = p.__dict__.copy()
                d["paths"], d["sealed"] = list(p.paths), list(p.sealed)
                changed[key] = d
        self.touched = {}
        journal = {k: {"cursor": v["cursor"], "after": dict(v["after"]), "first": dict(v.get("first", {}))}
                   for k, v in self.journal.items()}
        return Snapshot(list(files), changed, dict(self.spool), dict(self.watching), journal)

    def to_bytes(self) -> bytes:
        files = {}
        for key, p in self.files.items():
            d = asdict(p)
            del d["changed"]
            d["fingerprint"] = base64.b64encode(p.fingerprint).decode()
            files[key] = d
        return json.dumps({"version": VERSION, "saved_at": time.time(), "files": files,
                           "spool": self.spool, "watching": self.watching, "journal": self.journal}, indent=0, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Positions":
        doc = json.loads(data)
        version = doc.get("version") if isinstance(doc, dict) else None
        if version not in (1, VERSION):
            raise ValueError(f"unknown positions format version {version!r}")
        files = {}
        for key, d in doc["files"].items():
            d = dict(d)
            d["fingerprint"] = base64.b64decode(d["fingerprint"])
            if version == 1:
                d = _from_v1(d)
            unknown = set(d) - set(_SAVED)
            if unknown:
                raise ValueError(f"unknown position fields {sorted(unknown)}")
            files[key] = Position(**d)
        spool = {str(k): int(v) for k, v in doc.get("spool", {}).items()}
        watching = {str(k): float(v) for k, v in doc.get("watching", {}).items()}
        journal = {str(k): {"cursor": str(v["cursor"]), "after": {str(s): int(n) for s, n in v["after"].items()},
                            "first": {str(s): int(n) for s, n in v.get("first", {}).items()}}
                   for k, v in doc.get("journal", {}).items()}
        if version == 1:
            # Watched since each path was last read: siblings written while the
            # tailer was down (for the upgrade) are then read as new.
            for p in files.values():
                watching[p.path] = min(watching.get(p.path, p.seen), p.seen)
        return cls(files, spool, float(doc.get("saved_at", 0.0)), watching=watching, journal=journal)


def _from_v1(d: dict) -> dict:
    """A version 1 entry: same key, matched as that version matched (device,
    inode, first line); its inventory starts at its committed offset."""
    fp = d["fingerprint"]
    return dict(d, head_len=len(fp), head_hash=head_hash(fp), legacy=True, paths=[d["path"]],
                size=d["offset"], first=d["offset"], end=END_READ if d.get("done") else END_READING)


def load(path: Path) -> Positions:
    """Read the positions file; a missing one is empty, a corrupt one is moved
    aside (reported at ERROR) and marked ``recovered``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Positions()
    try:
        return Positions.from_bytes(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        path.rename(aside)
        log.error("The positions file %s is corrupt (%s); it was moved to %s, and every followed file "
                  "will be read again from its beginning (duplicates are removed downstream by id).",
                  path, exc, aside)
        return Positions(recovered=True)


def save(path: Path, positions: Positions) -> None:
    write_atomic(path, positions.to_bytes())


@dataclass
class Snapshot:
    keys: list[str]                 # every entry's key
    changed: dict[str, dict]        # key -> the fields of an entry changed since the last snapshot
    spool: dict[str, int]
    watching: dict[str, float]
    journal: dict[str, dict]


_SORTED = sorted(_SAVED)
_NAMES = {name: json.dumps(name) + ": " for name in _SORTED}


def _fragment(d: dict) -> str:
    """An entry as ``json.dumps(entry, indent=0, sort_keys=True)`` writes it, made
    from its values with json's C encoder: the indenting encoder is pure Python,
    ~50 us an entry, and leaves reference cycles behind (closures) that made the
    collector stop the loop for 50-100 ms after each few thousand entries saved."""
    out = []
    for name in _SORTED:
        v = base64.b64encode(d["fingerprint"]).decode() if name == "fingerprint" else d[name]
        if isinstance(v, list):
            out.append(_NAMES[name] + ("[\n" + ",\n".join(map(json.dumps, v)) + "\n]" if v else "[]"))
        else:
            out.append(_NAMES[name] + json.dumps(v))
    return "{\n" + ",\n".join(out) + "\n}"


class Saver:
    """Writes positions files in a thread of its own, so the tailer's loop
    does not wait for JSON, write and fsync: at most one save in flight, the
    newest snapshot waiting wins. Each entry is kept serialized (a fragment)
    and serialized again only when it changed, so a save joins strings.

    A snapshot holds only offsets whose frames were appended to the spool
    before it was taken; the spool files written until then come with it
    (``before``: descriptors from ``Spool.unsynced``) and are fsynced here
    before the positions are written, so a save never runs ahead of the
    spool, and the loop never waits for the disk. If that fsync fails, the
    positions are not written and ``sync_error`` holds why (the tailer
    stops on it, as it did when the loop fsynced). ``close`` waits for the
    last snapshot to be on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fragments: dict[str, str] = {}    # key -> '"key": {entry}', as written
        self._keys: list[str] = []              # the last snapshot's keys, and them sorted
        self._order: list[str] = []
        self._watching: tuple[dict | None, str] = (None, "")   # the last watching map, and it serialized
        self.failed = False          # the last write failed: the tailer saves again
        self.need_full = False       # the fragments may be incomplete: the next snapshot holds every entry
        self.saves = 0               # files written
        self._pending: Snapshot | None = None
        self._before: list = []      # spool descriptors to fsync before the pending snapshot is written
        self._staged: dict[str, dict] = {}   # entries to go with the next snapshot (``stage``)
        self.sync_error: Exception | None = None
        self._extra: tuple[Path, bytes] | None = None   # a guide file (not durable) written after positions
        self._busy = False
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="positions-saver", daemon=True)
        self._thread.start()

    def submit(self, snap: Snapshot, before: list | None = None) -> None:
        """Write ``snap`` (later, never earlier) once the spool files in
        ``before`` (``Spool.unsynced``: this thread closes them) are fsynced."""
        with self._cond:
            old = self._pending
            if old is not None:
                # The older snapshot is dropped: its changed entries are not.
                snap.changed = {**old.changed, **snap.changed}
            elif self._staged:
                snap.changed = {**self._staged, **snap.changed}
                self._staged = {}
            self._pending = snap
            if before:
                # One descriptor per file waiting (its fsync, not yet begun, covers every
                # write before it), so a stuck disk does not pile up descriptors.
                waiting = {path: i for i, (_, path, _) in enumerate(self._before)}
                for fd, path, dirs in before:
                    i = waiting.get(path)
                    if i is None:
                        waiting[path] = len(self._before)
                        self._before.append((fd, path, dirs))
                    else:
                        old_fd, _, old_dirs = self._before[i]
                        self._before[i] = (old_fd, path, old_dirs + [d for d in dirs if d not in old_dirs])
                        os.close(fd)
            self._cond.notify_all()

    def stage(self, snap: Snapshot) -> None:
        """Keep the changed entries of ``snap`` for the next ``submit``, with
        no write of their own (the tailer's walk over parked files hands its
        slices here: one write at the end, not one a slice). An entry changed
        again since goes with that later snapshot, which wins."""
        with self._cond:
            if self._pending is not None:
                self._pending.changed = {**self._pending.changed, **snap.changed}
            else:
                self._staged.update(snap.changed)

    def write_later(self, path: Path, data: bytes) -> None:
        """Write a file that is only a guide (not durable: no fsync), e.g. the
        stats, in this thread: its rename does not wait on the loop for the
        positions' fsync. The newest wins."""
        with self._cond:
            self._extra = (path, data)
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Until every snapshot submitted is written (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and self._extra is None and not self._busy,
                                       timeout)

    def close(self, timeout: float | None = None) -> bool:
        done = self.wait(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return done

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._extra is not None or self._closing)
                if self._pending is None and self._extra is None:
                    return
                snap, self._pending, extra, self._extra, self._busy = self._pending, None, self._extra, None, True
                before, self._before = self._before, []
            try:
                if before:
                    from helios.tail.spool import fsync_handed

                    try:
                        fsync_handed(before)
                    except Exception as exc:
                        # Never write offsets past what may not be on disk.
                        log.error("%s; the positions are not saved past it.", str(exc).rstrip("."))
                        self.sync_error, snap = exc, None
                        self.failed = self.need_full = True
                if snap is not None and self.sync_error is None:
                    self.write(snap)
                if extra is not None:
                    try:
                        write_atomic(extra[0], extra[1], durable=False)
                    except OSError as exc:
                        log.warning("Cannot write %s: %s.", extra[0], exc)
            except Exception:   # never the end of the thread: close() must not wait forever
                log.exception("Cannot save positions to %s.", self.path)
                self.failed = self.need_full = True
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def render(self, snap: Snapshot, saved_at: float | None = None) -> bytes:
        """The file's bytes: the same as ``Positions.to_bytes`` gives."""
        frags = self.fragments
        for key, d in snap.changed.items():
            frags[key] = json.dumps(key) + ": " + _fragment(d)   # the entry as the file holds it
        if len(frags) > len(snap.keys):
            keep = set(snap.keys)
            for key in [k for k in frags if k not in keep]:
                del frags[key]
        if snap.keys != self._keys:
            # (Sorted again only when entries came or went: 10,000 keys cost ~5 ms.)
            self._keys, self._order = snap.keys, sorted(snap.keys)
        entries = [frags[k] for k in self._order]

        def dump(v) -> str:
            return json.dumps(v, indent=0, sort_keys=True)

        if snap.watching != self._watching[0]:
            # One path per followed file: 10,000 cost ~40 ms through json's indenting
            # encoder (pure Python), so serialized again only when a path came or went.
            self._watching = (snap.watching, dump(snap.watching))
        saved_at = time.time() if saved_at is None else saved_at
        # One join (the entries are megabytes at 10,000 files: each "+" would copy them all).
        files = ["{\n", ",\n".join(entries), "\n}"] if entries else ["{}"]
        return "".join(["{\n\"files\": ", *files,
                        ",\n\"journal\": ", dump(snap.journal), ",\n\"saved_at\": ", dump(saved_at),
                        ",\n\"spool\": ", dump(snap.spool), ",\n\"version\": ", dump(VERSION),
                        ",\n\"watching\": ", self._watching[1], "\n}"]).encode()

    def write(self, snap: Snapshot) -> None:
        try:
            data = self.render(snap)
        except Exception:
            # (Never seen; the fragments are then rebuilt from a full snapshot.)
            log.exception("Cannot serialize positions for %s.", self.path)
            self.failed = self.need_full = True
            return
        try:
            write_atomic(self.path, data)
            self.failed = False
            self.saves += 1
        except OSError as exc:
            self.failed = True
            log.error("Cannot save positions to %s: %s; a restart would read again from older positions.",
                      self.path, exc)
