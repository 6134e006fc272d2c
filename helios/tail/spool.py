"""The tailer's local spool: every frame on local disk before its offset is saved.

The spool is a bucket directory like a buck's (``helios.store.layout``:
``SPOOL/ENV/YYYYMMDD/HHMMSS-Ws.bkt``, records of codec frames, filed by the
time they were read). It serves two purposes:

- Durability: a file's offset is saved only once the frames of its lines are
  in the spool, so a crash re-reads, never skips.
- Completeness: after a spool bucket's window has passed (plus a random
  delay, so that a fleet does not re-send in step), the whole bucket is sent
  to one random buck as a run of messages of at most ``message_bytes``,
  a slice at a time (``helios.tail.resend``), so memory stays bounded. Whatever a buck missed live (it was down, its
  queue was lost) arrives this way; the duplicates cost nothing downstream,
  where events are deduplicated by id.

Making appends durable need not stop the tailer's loop: ``unsynced`` hands
out a duplicate descriptor of every file written since the last call, and
the positions' saver thread (``helios.tail.positions.Saver``) fsyncs them,
and the directories of new files, before it writes the positions that
commit their offsets. ``sync`` still does it at once (the relay, tests).

The spool is pruned by total size and by age, oldest first; a bucket is sent
once more just before it is deleted. A bucket that could never be sent (no
buck reachable all along) and must go for lack of room is reported loudly and
counted.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from pathlib import Path
from typing import Iterator

from helios.errors import RecordError
from helios.store import durable, layout
from helios.store.buckets import BucketFiles
from helios.store.records import RecordReader

log = logging.getLogger(__name__)

LISTING_TTL = 1.0


class Spool:
    def __init__(self, root: str | Path, window: int, *, max_bytes: int, max_age: float,
                 jitter: float, message_bytes: int = 1024 * 1024) -> None:
        self.root = Path(root)
        durable.make_dirs(self.root)  # 0750 whatever the umask
        self.window = window
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.jitter = jitter
        self.message_bytes = message_bytes
        self.files = BucketFiles(self.root, window, keep_open=1)
        self.dirty = False
        self.counts = {"dropped_buckets": 0, "dropped_bytes": 0}
        # Descriptors (dups) of files written and closed since the last ``unsynced``, with their directories.
        self._closed_unsynced: list[tuple[int, Path, list[Path]]] = []
        self._handed: set[Path] = set()   # open files handed out by ``unsynced`` already (their directories synced)
        self._listing: list | None = None
        self._listed_at = 0.0

    def append(self, environment: str, frame: bytes, now: float | None = None) -> None:
        opened = self.files.open_count
        self.files.append(environment, [frame], now)
        self.dirty = True
        if self.files.open_count != opened:
            # A new window: close the writers of past ones (one file a
            # window would pile up otherwise), and list the spool again.
            # What they hold is made durable with the next positions' save:
            # their descriptors are duplicated before they close.
            if self.dirty:
                self._closed_unsynced += self._dups()
                # (The open writers are handed out again with the next call: a
                # second fsync of a file costs little when nothing is new.)
            self.files.close_idle(now)
            self._listing = None

    def sync(self) -> None:
        """Make what was appended durable now (the relay, before it acknowledges)."""
        if self.dirty or self._closed_unsynced:
            fsync_handed(self.unsynced())

    def unsynced(self) -> list[tuple[int, Path, list[Path]]]:
        """What ``sync`` would make durable, handed out for another thread to
        do it (``fsync_handed``): a duplicate descriptor of each file written
        to since the last call (open or closed since; the caller closes it),
        its path, and the directories to fsync with it (the first time a file
        is made in them). Taken on the loop: costs a ``dup`` per file."""
        out, self._closed_unsynced = self._closed_unsynced, []
        if self.dirty:
            out += self._dups()
            self.dirty = False
        return out

    def _dups(self) -> list[tuple[int, Path, list[Path]]]:
        out = []
        known = self._handed
        for w in self.files._writers.values():
            if w.closed:
                continue
            # A file handed out the first time: its directory entry, and those of
            # the day and environment directories above it, are made durable too.
            p = w.path
            dirs = [] if p in known else [p.parent, p.parent.parent, p.parent.parent.parent]
            out.append((os.dup(w._checked_fd()), p, dirs))
        self._handed = {w.path for w in self.files._writers.values()}
        return out

    def buckets(self) -> list[tuple[layout.BucketName, Path, int]]:
        """Every spool bucket with its size. Listed at most once a second: a
        day's spool is ~1,440 files, and the tailer asks four times a second."""
        now = time.monotonic()
        if self._listing is not None and now - self._listed_at < LISTING_TTL:
            return self._listing
        out = []
        for name, path in layout.list_buckets(self.root):
            try:
                out.append((name, path, path.stat().st_size))
            except OSError:
                pass
        self._listing, self._listed_at = out, now
        return out

    def due(self, name: layout.BucketName, now: float) -> bool:
        """A bucket is re-sent once its window has passed plus its own delay."""
        delay = (zlib.crc32(name.relpath().encode() + os.uname().nodename.encode()) % 1000) / 1000 * self.jitter
        return now >= name.end + delay

    def messages(self, path: Path) -> Iterator[list[bytes]]:
        """The bucket's frames, as messages of at most ``message_bytes``."""
        batch: list[bytes] = []
        size = 0
        for frame in RecordReader(path):
            if batch and size + len(frame) > self.message_bytes:
                yield batch
                batch, size = [], 0
            batch.append(frame)
            size += len(frame)
        if batch:
            yield batch

    def to_prune(self, now: float, buckets: list | None = None) -> list[tuple[layout.BucketName, Path]]:
        """Closed buckets over the age limit, then the oldest while over the size limit."""
        every = self.buckets() if buckets is None else buckets
        total = sum(size for *_, size in every)
        buckets = [b for b in every if b[0].end <= now]
        out = []
        for name, path, size in buckets:
            if now - name.end > self.max_age or total > self.max_bytes:
                out.append((name, path))
                total -= size
        return out

    def delete(self, name: str, path: Path, never_sent: bool) -> None:
        size = path.stat().st_size if path.exists() else 0
        if never_sent:
            self.counts["dropped_buckets"] += 1
            self.counts["dropped_bytes"] += size
            log.error("Spool bucket %s (%d bytes) is deleted to stay within the spool's limits without ever "
                      "reaching a buck: its events are lost unless a buck got them live.", name, size)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        self._listing = None

    def close(self) -> None:
        for fd, _, _ in self._closed_unsynced:
            os.close(fd)
        self._closed_unsynced = []
        self.files.close()


def fsync_handed(handed: list[tuple[int, Path, list[Path]]]) -> None:
    """fsync what ``Spool.unsynced`` handed out (in the saver's thread), and
    close the descriptors, all of them even on failure. Raises RecordError
    naming the first file that could not be made durable."""
    error = None
    for fd, path, dirs in handed:
        try:
            if error is None:
                durable.fsync(fd)
                for d in dirs:
                    _fsync_dir(d)
        except OSError as exc:
            error = RecordError(f"Cannot fsync spool file {path}: {exc}.")
        finally:
            os.close(fd)
    if error is not None:
        raise error


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return      # pruned meanwhile
    try:
        durable.fsync(fd)
    finally:
        os.close(fd)
