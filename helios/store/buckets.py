"""Open bucket files of one data directory: a writer per (environment, window).

Frames are filed by the window of their *arrival* (the writer's clock), not by
the event times inside them. An arrival window closes for good when the clock
passes its end, so "this bucket is complete" is a fact a reader can rely on,
however late events are (a tailer catching up after an outage, a spool
re-send). Event times are sorted out downstream, where the porter indexes each
event by its own time.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from helios.errors import RecordError
from helios.store import durable, layout
from helios.store.records import RecordWriter

log = logging.getLogger(__name__)


class BucketFiles:
    def __init__(self, root: str | Path, width: int, *, fsync: bool = False, keep_open: int = 2) -> None:
        self.root = Path(root)
        self.width = width
        self.fsync = fsync
        # Windows kept open behind the current one: a frame that arrives just
        # across a boundary does not reopen a file we just closed.
        self.keep_open = keep_open
        self._writers: dict[tuple[str, int], RecordWriter] = {}
        self._synced: dict[tuple[str, int], int] = {}  # size at the last sync()

    def writer(self, environment: str, now_s: float | None = None) -> RecordWriter:
        start = layout.window_start(int((time.time() if now_s is None else now_s) * 1e9), self.width)
        key = (environment, start)
        w = self._writers.get(key)
        if w is None:
            path = layout.bucket_path(self.root, environment, start, self.width)
            w = self._writers[key] = RecordWriter(path, fsync=self.fsync)
            log.debug("Opened bucket file %s.", path)
        return w

    def append(self, environment: str, payloads: list[bytes], now_s: float | None = None) -> None:
        w = self.writer(environment, now_s)
        if len(payloads) == 1:
            w.append(payloads[0])
        else:
            w.append_many(payloads)

    def close_idle(self, now_s: float | None = None) -> None:
        """Close writers whose window ended more than ``keep_open`` windows ago."""
        now = time.time() if now_s is None else now_s
        horizon = now - self.keep_open * self.width
        for key in [k for k in self._writers if k[1] + self.width < horizon]:
            self._writers.pop(key).close()
            self._synced.pop(key, None)

    def is_open(self, name: layout.BucketName) -> bool:
        """Does a writer still hold this bucket open (more may be appended)?"""
        return name.width == self.width and (name.environment, name.start) in self._writers

    def fsync_all(self) -> None:
        for w in self._writers.values():
            w.fsync()

    def sync(self) -> int:
        """Make every record appended so far durable, with one fsync per file
        written since the last sync (group commit: many appends, one fsync).
        The first sync of a file also fsyncs its directory and the day
        directory above, so that a new file survives a machine crash too.
        Returns how many files were synced; raises RecordError."""
        n = 0
        for key, w in self._writers.items():
            synced = self._synced.get(key)
            if synced == w.size:
                continue
            w.fsync()
            if synced is None:
                _fsync_dirs(w.path.parent, w.path.parent.parent)
            self._synced[key] = w.size
            n += 1
        return n

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()
        self._synced.clear()

    @property
    def open_count(self) -> int:
        return len(self._writers)


def _fsync_dirs(*paths: Path) -> None:
    """Make directory entries durable (POSIX needs the directory fsynced)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            durable.fsync(fd)
        except OSError as exc:
            raise RecordError(f"Cannot fsync directory {path}: {exc}.") from exc
        finally:
            os.close(fd)
