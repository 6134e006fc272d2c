"""Rotated files: a followed file's siblings, and what was left unread in them.

logrotate and friends move ``app.log`` to ``app.log.1`` (then ``.2``, ...),
to ``app.log-20261123``, or copy it there and truncate the original
(copytruncate), and may compress the old ones (gzip, bzip2, zstd, xz). A
sibling is matched to a known content by its first bytes
(``helios.tail.identity``), whatever its name, inode or compression, and
finished from the offset that content was read to, under the content's
identity, so the ids are those the lines would have had if read in place.
A compressed sibling is read decompressed (``helios.tail.compressed``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from helios.tail import compressed
from helios.tail.files import FollowedFile, pieces_before, resume_split
from helios.tail.identity import HEAD_BYTES

log = logging.getLogger(__name__)


@dataclass
class Sibling:
    path: str
    dev: int
    ino: int
    size: int
    mtime: float
    mtime_ns: int = 0
    _kind: str | None = field(default="?", repr=False)
    _head: tuple | None = field(default=None, repr=False)
    error: OSError | None = field(default=None, repr=False)  # why it could not be opened, if so

    @property
    def kind(self) -> str | None:
        """Its compression ('gzip', ...), None for a plain file."""
        if self._kind == "?":
            self._kind = compressed.kind(self.path)
        return self._kind

    @property
    def sealed(self) -> bool:
        return self.kind is not None

    @property
    def signature(self) -> str:
        return f"{self.dev}:{self.ino}:{self.size}:{self.mtime_ns}"

    def head(self) -> tuple[bytes, str]:
        """Its first uncompressed bytes (up to HEAD_BYTES), and a problem ("" if none).
        Nothing (and no problem) when its name holds another file by now (a
        rotation moved it on since it was listed): it is looked at under its new name."""
        if self._head is None:
            try:
                with open(self.path, "rb") as f:
                    st = os.fstat(f.fileno())
                    if (st.st_dev, st.st_ino) != (self.dev, self.ino):
                        self._head = (b"", "")
                    elif self.sealed:
                        data, problems = compressed.head(self.path, self.kind, HEAD_BYTES, fd=f.fileno())
                        self._head = (data, "; ".join(problems))
                    else:
                        self._head = (f.read(HEAD_BYTES), "")
            except OSError as exc:
                self.error = exc
                self._head = (b"", str(exc))
        return self._head


def stat_sibling(path: str) -> Sibling | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat as stat_mod

    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return Sibling(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime, st.st_mtime_ns)


def locate(path: str, dev: int, ino: int) -> Sibling | None:
    """The file (``dev``, ``ino``) last known at ``path``: there, or renamed
    in the same folder since (the next rotation moves ``.1.gz`` to ``.2.gz``
    and puts another file at ``.1.gz``). None when it is gone."""
    s = stat_sibling(path)
    if s is not None and (s.dev, s.ino) == (dev, ino):
        return s
    folder = os.path.dirname(path) or "."
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for name in names:
        s = stat_sibling(os.path.join(folder, name))
        if s is not None and (s.dev, s.ino) == (dev, ino):
            return s
    return None


def _same_file(s: Sibling) -> Sibling:
    """``s`` as it is now: where its file is (a rotation may have renamed it
    since it was listed); FileNotFoundError when it is gone."""
    now = locate(s.path, s.dev, s.ino)
    if now is None:
        raise FileNotFoundError(f"{s.path} is gone")
    if now.path != s.path:
        log.info("%s was renamed to %s meanwhile.", s.path, now.path)
    now._head = s._head if now.path == s.path else None
    return now


def siblings(path: str) -> list[Sibling]:
    """Rotated siblings of ``path`` (``path.1``, ``path-DATE``, compressed too),
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
        s = stat_sibling(str(p.parent / name))
        if s is not None:
            found.append(s)
    return sorted(found, key=lambda s: (s.mtime, s.path))


def open_rest(s: Sibling, offset: int, key: bytes | None, fingerprint: bytes | None, generation: int,
              head: bytes = b"", split_n: int = 0, **kw) -> FollowedFile | None:
    """A reader of ``s`` from ``offset`` under a known identity (``key`` None:
    decided by the reader from the content). A compressed sibling is
    decompressed to an anonymous temporary file first (from ``offset`` on).
    None if it cannot be opened (logged; the caller records why)."""
    try:
        s = _same_file(s)
        if s.sealed:
            fd = os.open(s.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (s.dev, s.ino):
                    raise FileNotFoundError(f"{s.path} names another file now")
                # The signature of what is decompressed, taken before (a file still
                # being written changes it, and is then looked at again).
                sig = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
                x = compressed.extract(s.path, s.kind, offset, fd=fd)
            finally:
                os.close(fd)
            f = FollowedFile(s.path, x.fd, s.dev, s.ino, offset, generation, base=offset, sealed=True,
                             problem=x.problem, signature=sig, **kw)
            f.head = head or s.head()[0]
            f.size_total = x.size
        else:
            f = FollowedFile.open(s.path, offset, generation=generation, **kw)
            if (f.dev, f.ino) != (s.dev, s.ino):
                f.close()
                raise FileNotFoundError(f"{s.path} names another file now")
    except (OSError, EOFError) as exc:
        log.error("Cannot read the rest of rotated file %s from byte %d: %s.", s.path, offset, exc)
        return None
    f.committed, f.rotated, f.split_n = offset, True, split_n
    if not split_n:
        # Resumed between the pieces of a long line (a restart): go on numbering them.
        if f.sealed:
            f.split_n = pieces_before(offset - x.line_start, f.max_line)
        else:
            resume_split(f)
    if key is not None:
        f.key, f.fingerprint = key, fingerprint
        if head and not f.sealed:
            f.head = head
    return f
