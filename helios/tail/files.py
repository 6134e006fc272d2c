"""Follow log files: find them by glob, read complete lines, notice rotation.

First cut (the tailer issue carries it further: positions file, spool,
rotated-file recovery, many-file descriptor limits).

A ``FollowedFile`` hands out chunks of *complete* lines with the byte offset
of their first line. Bytes after the last newline stay pending until their
newline arrives, so a line is never split by a read boundary.

Identity: (device, inode, first line) hashed into ``model.source_key``. The
first line is used because it is there as soon as any line can be emitted, it
is stable while the file grows, and it changes on a copytruncate or an inode
reuse. Line ids derive from this key and the offset, so every copy of a line,
whoever reads it and however often, has the same id.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field

from helios.model import source_key

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
# A "line" longer than this with no newline is handed out as it is, so one
# runaway writer cannot make the tailer hold unbounded memory.
MAX_PENDING = 4 * 1024 * 1024


@dataclass
class Chunk:
    path: str
    key: bytes
    offset: int  # file offset of the first byte of ``data``
    data: bytes  # complete lines, each ending with b"\n" (except a forced split)


@dataclass
class FollowedFile:
    path: str
    fd: int
    dev: int
    ino: int
    pos: int  # next byte to read
    pending: bytes = b""
    key: bytes | None = None
    at_eof: bool = False

    @classmethod
    def open(cls, path: str, from_end: bool) -> "FollowedFile":
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(fd)
        pos = 0
        if from_end and st.st_size:
            # Start after the last complete line, not in the middle of one.
            pos = st.st_size
            tail = os.pread(fd, min(st.st_size, 65536), st.st_size - min(st.st_size, 65536))
            cut = tail.rfind(b"\n")
            pos = st.st_size - len(tail) + cut + 1 if cut >= 0 else (0 if len(tail) == st.st_size else st.st_size)
        return cls(path, fd, st.st_dev, st.st_ino, pos)

    @property
    def line_offset(self) -> int:
        return self.pos - len(self.pending)

    def fingerprint(self) -> bytes | None:
        head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        nl = head.find(b"\n")
        if nl >= 0:
            return head[: nl + 1]
        return head if len(head) == FINGERPRINT_BYTES else None

    def read(self, limit: int) -> Chunk | None:
        """Read up to ``limit`` new bytes; return the complete lines among
        pending + new bytes, or None when there are none yet."""
        data = os.pread(self.fd, limit, self.pos)
        self.at_eof = len(data) < limit
        if not data:
            return None
        self.pos += len(data)
        buf = self.pending + data if self.pending else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) < MAX_PENDING:
            self.pending = buf
            return None
        if cut == 0:
            cut = len(buf)
        start = self.pos - len(buf)
        self.pending = buf[cut:]
        if self.key is None:
            fp = self.fingerprint()
            if fp is None:  # cannot happen once a newline exists; be safe
                fp = buf[:FINGERPRINT_BYTES]
            self.key = source_key(self.dev, self.ino, fp)
        return Chunk(self.path, self.key, start, buf[:cut])

    def take_pending(self) -> Chunk | None:
        """Hand out a last line that never got its newline (the file was
        rotated or deleted): it is kept as it is, never dropped."""
        if not self.pending:
            return None
        if self.key is None:
            self.key = source_key(self.dev, self.ino, self.fingerprint() or self.pending[:FINGERPRINT_BYTES])
        chunk = Chunk(self.path, self.key, self.line_offset, self.pending)
        self.pending = b""
        return chunk

    def truncated(self) -> bool:
        try:
            return os.fstat(self.fd).st_size < self.pos
        except OSError:
            return False

    def replaced(self) -> bool:
        """True when the path now names another file (rotated) or nothing."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != (self.dev, self.ino)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


@dataclass
class Watcher:
    """The set of followed files, kept in step with the globs."""

    patterns: list[str]
    start_at_end: bool  # for files found at the first scan
    files: dict[str, FollowedFile] = field(default_factory=dict)
    scanned_once: bool = False

    def scan(self) -> list[FollowedFile]:
        """Open files that match now and are not followed yet."""
        found = []
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                if path in self.files or not os.path.isfile(path):
                    continue
                try:
                    f = FollowedFile.open(path, from_end=self.start_at_end and not self.scanned_once)
                except OSError as exc:
                    log.warning("Cannot open %s to follow it: %s.", path, exc)
                    continue
                self.files[path] = f
                found.append(f)
                log.info("Following %s from byte %d.", path, f.pos)
        self.scanned_once = True
        return found

    def check_rotation(self, f: FollowedFile) -> Chunk | None:
        """At EOF: a truncated file is read again from 0; a rotated or
        deleted file has been read to its end, so let it go (handing out its
        unterminated last line, if any) and pick up whatever now has its name
        at the next scan, from the beginning."""
        if f.truncated():
            log.warning("%s was truncated; reading it again from the beginning.", f.path)
            f.pos, f.pending, f.key = 0, b"", None
        elif f.replaced():
            log.info("%s was rotated or deleted; its old file was read to its end.", f.path)
            last = f.take_pending()
            f.close()
            del self.files[f.path]
            return last
        return None

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files.clear()
