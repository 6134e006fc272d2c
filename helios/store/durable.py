"""Every fsync Helios makes goes through ``fsync`` here, so that its latency
can be watched (``helios.metrics`` observes it as ``helios_fsync_seconds``).

An fsync costs milliseconds, so timing it costs nothing that matters; with
nobody watching (no metrics endpoint), it is a plain ``os.fsync``.

Files that hold events or state (bucket and spool files, indexes, positions,
stats) are created ``FILE_MODE`` (0640: owner writes, group reads, others
nothing) whatever the process's umask: a service started with umask 000
must not leave its events readable by every user of the host. A file that
exists keeps the mode an operator gave it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

# Called with the seconds each fsync took. A process runs one service, so one
# list serves it; ``helios.metrics`` adds to it when it serves an endpoint.
observers: list[Callable[[float], None]] = []

FILE_MODE = 0o640
DIR_MODE = 0o750  # directories they are created in: with umask 000, others could delete or plant files


def created(fd: int) -> None:
    """Give a file just created on ``fd`` its ``FILE_MODE``, whatever the umask."""
    os.fchmod(fd, FILE_MODE)


def make_dirs(path: str | os.PathLike[str]) -> None:
    """``mkdir -p`` whose new directories are ``DIR_MODE`` whatever the umask
    (existing ones keep theirs). Raises OSError as ``Path.mkdir`` does."""
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # made meanwhile by another process: theirs
        os.chmod(directory, DIR_MODE)


def precreate(path: str | os.PathLike[str]) -> None:
    """Create ``path`` empty with ``FILE_MODE`` unless it exists, for files
    another library creates (SQLite: its -wal and -shm files take the
    database file's mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    try:
        created(fd)
    finally:
        os.close(fd)


def fsync(fd: int) -> None:
    if not observers:
        os.fsync(fd)
        return
    start = time.perf_counter()
    try:
        os.fsync(fd)
    finally:
        took = time.perf_counter() - start
        for observe in observers:
            observe(took)
