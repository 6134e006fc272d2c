"""Rotated files: a followed file's siblings, and what was left unread in them.

logrotate and friends move ``app.log`` to ``app.log.1`` (then ``.2``, ...),
to ``app.log-20261123``, or copy it there and truncate the original
(copytruncate), and may compress the old ones (``.gz``). When the tailer
finds that a file it had read up to offset O is gone from its path, or is
shorter than O, the lines after O are in one of these siblings: it finds the
sibling with the same identity (same device and inode: a rename; or the same
first line: a copy, compressed or not) and finishes it from O, under the old
identity, so the ids are those the lines would have had if read in place.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helios.tail.files import FINGERPRINT_BYTES, FollowedFile

log = logging.getLogger(__name__)


@dataclass
class Sibling:
    path: str
    dev: int
    ino: int
    size: int
    mtime: float

    @property
    def gz(self) -> bool:
        return self.path.endswith(".gz")

    def first_line(self) -> bytes | None:
        try:
            opener = gzip.open if self.gz else open
            with opener(self.path, "rb") as f:
                head = f.read(FINGERPRINT_BYTES)
        except (OSError, EOFError) as exc:
            log.warning("Cannot read rotated file %s: %s.", self.path, exc)
            return None
        nl = head.find(b"\n")
        return head[: nl + 1] if nl >= 0 else head


def siblings(path: str) -> list[Sibling]:
    """Rotated siblings of ``path`` (``path.1``, ``path-DATE``, ``.gz`` too),
    oldest first by modification time."""
    p = Path(path)
    found = []
    try:
        names = os.listdir(p.parent)
    except OSError:
        return []
    for name in names:
        if name == p.name or not (name.startswith(p.name + ".") or name.startswith(p.name + "-")):
            continue
        full = str(p.parent / name)
        try:
            st = os.stat(full)
        except OSError:
            continue
        if os.path.isfile(full):
            found.append(Sibling(full, st.st_dev, st.st_ino, st.st_size, st.st_mtime))
    return sorted(found, key=lambda s: (s.mtime, s.path))


def find(path: str, dev: int, ino: int, fingerprint: bytes | None) -> Sibling | None:
    """The sibling that is the file once known as (dev, ino, first line)."""
    for s in reversed(siblings(path)):
        if not s.gz and (s.dev, s.ino) == (dev, ino):
            return s
    if fingerprint:
        for s in reversed(siblings(path)):
            if s.first_line() == fingerprint:
                return s
    return None


def open_rest(s: Sibling, offset: int, key: bytes, fingerprint: bytes | None, generation: int,
              **kw) -> FollowedFile | None:
    """A reader of ``s`` from ``offset`` under a known identity. A compressed
    sibling is decompressed to an anonymous temporary file first."""
    try:
        if s.gz:
            tmp = tempfile.TemporaryFile()
            with gzip.open(s.path, "rb") as src:
                while block := src.read(1 << 20):
                    tmp.write(block)
            tmp.flush()
            fd = os.dup(tmp.fileno())
            tmp.close()
            st = os.stat(s.path)
            f = FollowedFile(s.path, fd, st.st_dev, st.st_ino, offset, generation, **kw)
        else:
            f = FollowedFile.open(s.path, offset, generation=generation, **kw)
    except (OSError, EOFError) as exc:
        log.error("Cannot read the rest of rotated file %s from byte %d: %s; those lines are lost.",
                  s.path, offset, exc)
        return None
    f.key, f.fingerprint, f.committed, f.rotated = key, fingerprint, offset, True
    return f
