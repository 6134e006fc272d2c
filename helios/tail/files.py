"""One followed file: read complete lines and know where they came from.

A ``FollowedFile`` hands out ``Chunk``s of lines with the byte offset of
their first line. Bytes after the last newline stay pending until their
newline arrives, so a read boundary never splits a line. Two exceptions, both
marked in the event's fields and never dropped:

- a line longer than ``max_line`` is handed out in pieces of ``max_line``
  bytes, marked ``{"split": n}`` (n from 1), the last ``{"split": n, "last": True}``;
- a last line whose newline does not come within ``partial_flush`` seconds, or
  whose file was rotated or deleted, is handed out as it is, marked
  ``{"unterminated": True}``; what the writer adds later starts a new line.

Identity: drawn from the content, never the inode (``helios.tail.identity``
states the rule): the prefix (first line, up to ``PREFIX_BYTES``) and a number
``n`` (``generation``) that tells apart contents sharing a prefix, hashed into
the key. The prefix is there as soon as any line can be emitted and never
changes as the file grows. Who follows the file gives a ``resolve`` hook that
picks ``n`` from what is known (the positions); alone, a file takes n = 0, and
the next number after a truncation that starts again with the same first
line. The first bytes read (``head``, up to ``HEAD_BYTES``) are kept to tell
contents apart. Event ids derive from the key and the offset, so every copy of
a line, whoever reads it, through whichever name or compression, and however
often, has the same id.

A *sealed* reader reads a compressed rotation decompressed to a temporary file
(``helios.tail.compressed``) whose byte 0 is the content's byte ``base``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field

from typing import Callable

from helios.tail.identity import HEAD_BYTES, PREFIX_BYTES, content_key, default_scope, prefix_of

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = PREFIX_BYTES


@dataclass
class Chunk:
    """Lines of one file. Fast path: ``data`` holds complete lines, each
    ending with a newline, and offsets follow from their lengths. Slow path
    (split, unterminated or multiline events): ``messages``, ``offsets`` and
    ``fields`` are given one per event, and ``data`` holds only the first line
    of each, for the parser. A fast-path chunk may carry in ``fields`` one
    mapping added to every line's fields (a container's, from its path)."""

    path: str
    key: bytes
    offset: int
    end: int            # the file offset after this chunk: committed once it is safe
    data: bytes
    messages: list[bytes] | None = None
    offsets: list[int] | None = None
    fields: list[dict | None] | None = None
    lines: int = -1     # newlines in ``data`` when already counted (-1: not yet)

    @classmethod
    def events(cls, path: str, key: bytes, end: int, items: list[tuple[int, bytes, dict | None]]) -> "Chunk":
        """A slow-path chunk of (offset, message, fields) events."""
        heads = b"".join(m.split(b"\n", 1)[0] + b"\n" for _, m, _ in items)
        return cls(path, key, items[0][0], end, heads, [m for _, m, _ in items],
                   [o for o, _, _ in items], [f for _, _, f in items])


@dataclass
class FollowedFile:
    path: str
    fd: int | None
    dev: int
    ino: int
    pos: int                      # next byte to read
    generation: int = 0
    fingerprint: bytes | None = None
    key: bytes | None = None
    pending: bytes = b""
    pending_since: float = 0.0
    split_n: int = 0              # pieces already handed out of the current long line
    at_eof: bool = False
    last_growth: float = field(default_factory=time.monotonic)
    rotated: bool = False         # its path names another file now: read to the end, then let go
    rewritten: bool = False       # read() found another first line: truncated and written again
    committed: int = -1           # first byte not yet safe (-1: nothing read yet)
    max_line: int = 1024 * 1024
    partial_flush: float = 5.0
    head: bytes = b""             # the first bytes read, up to HEAD_BYTES
    base: int = 0                 # content offset of the descriptor's byte 0 (sealed readers)
    sealed: bool = False          # a compressed rotation: never grows, never truncated
    problem: str = ""             # why a sealed reader ends early (damaged compressed data)
    signature: str = ""           # a sealed reader: its file's device, inode, size and mtime when decompressed
    last_read_at: float = -1.0    # monotonic time of the last read
    gap: float = 0.0              # seconds between the last two reads (long: the tailer was stopped)
    behind_size: int = 0          # the file's size when a read last left bytes after it (seen, not read yet)
    matched: bool = False         # its identity is a content known before (resume at its offset)
    size_total: int = -1          # a sealed reader: the uncompressed size read in all
    avoid: bytes | None = None    # a key it must not take (the content it had before a truncation)
    resolve: Callable[["FollowedFile"], None] | None = field(default=None, repr=False)
    remembered: tuple = ()        # (key, pos) when the positions last heard of it (Watcher.remember_files)

    @classmethod
    def open(cls, path: str, pos: int | str = 0, **kw) -> "FollowedFile":
        """Open ``path`` at byte ``pos``, or at "end" (after its last complete line)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if pos == "end":
                pos = _after_last_newline(fd, st.st_size)
            f = cls(path, fd, st.st_dev, st.st_ino, pos, **kw)
            f.committed = pos
            f.identify()
        except BaseException:
            os.close(fd)
            raise
        return f

    @property
    def line_offset(self) -> int:
        return self.pos - len(self.pending)

    def read_head(self) -> bytes:
        return self.head if self.base else os.pread(self.fd, HEAD_BYTES, 0)

    def read_fingerprint(self) -> bytes | None:
        """The prefix, None while the file has no complete first line yet."""
        return prefix_of(self.read_head(), self.sealed)

    def identify(self, complete: bool = False) -> bytes | None:
        """Decide the identity once the prefix is there (see the module docstring)."""
        if self.key is None:
            head = self.read_head()
            prefix = prefix_of(head, complete or self.sealed)
            if prefix is not None:
                self.fingerprint, self.head = prefix, head
                if self.resolve is not None:
                    self.resolve(self)
                else:
                    self.key = content_key(prefix, self.generation, default_scope())
                    if self.key == self.avoid:
                        self.generation += 1
                        self.key = content_key(prefix, self.generation, default_scope())
                self.avoid = None
        return self.key

    def read(self, limit: int, now: float | None = None) -> list[Chunk]:
        """Read up to ``limit`` new bytes; return what is ready to hand out."""
        now = time.monotonic() if now is None else now
        if self.last_read_at >= 0:
            self.gap = now - self.last_read_at
        self.last_read_at = now
        data = os.pread(self.fd, limit, self.pos - self.base)
        self.at_eof = len(data) < limit
        if data and self.head and not self.base and (
                os.pread(self.fd, len(self.head), 0) != self.head if self.pos else
                data[:len(self.head)] != self.head[:len(data)] or (self.at_eof and len(data) < len(self.head))):
            # Other first bytes than when it was identified (even at offset 0:
            # truncated between its identification and its first read): the
            # file was truncated and written again, maybe past our offset
            # already. These bytes are not a continuation.
            self.rewritten, self.at_eof = True, True
            return []
        if not self.at_eof and not self.base:
            # Behind the writer: the bytes after this read were seen on disk. If the
            # file is truncated before they are read, they are a loss to report.
            try:
                self.behind_size = max(self.behind_size, os.fstat(self.fd).st_size)
            except OSError:
                pass
        if not data:
            if self.pending and now - self.pending_since >= self.partial_flush and not self.shrunk():
                # (A file that shrank was truncated: its copy may hold the rest of the line.)
                return self.take_pending()
            return []
        self.last_growth = now
        start = self.line_offset
        if len(self.head) < HEAD_BYTES and self.key is not None and not self.base \
                and self.pos <= len(self.head) < self.pos + len(data):
            self.head += data[len(self.head) - self.pos:HEAD_BYTES - self.pos]
        self.pos += len(data)
        buf = self.pending + data if self.pending else data
        if self.key is None and self.identify() is None:
            # No complete first line yet: nothing can be handed out either.
            self._keep(buf, now)
            return []
        out: list[Chunk] = []
        if self.split_n:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) >= self.max_line:
                    self._split_pieces(buf, start, out, now)
                else:
                    self.pending = b""
                    self._keep(buf, now)
                return out
            items = self._pieces(buf[:nl], start, last=True)
            out.append(Chunk.events(self.path, self.key, start + nl + 1, items))
            buf, start = buf[nl + 1:], start + nl + 1
        cut = buf.rfind(b"\n") + 1
        if cut:
            self.pending = b""              # what is left is a new line: its wait starts now
            complete = buf[:cut]
            if len(complete) > self.max_line and _long_line(self.max_line).search(complete):
                out.append(self._split_complete(complete, start))
            else:
                out.append(Chunk(self.path, self.key, start, start + cut, complete))
        rest = buf[cut:]
        if len(rest) >= self.max_line:
            self._split_pieces(rest, start + cut, out, now)
        else:
            self._keep(rest, now)
        return out

    def _keep(self, rest: bytes, now: float) -> None:
        if rest and not self.pending:
            self.pending_since = now
        self.pending = rest

    def _pieces(self, line: bytes, start: int, last: bool) -> list[tuple[int, bytes, dict]]:
        """A long line (without its newline) as marked pieces of max_line bytes."""
        items = []
        for i in range(0, max(len(line), 1), self.max_line):
            self.split_n += 1
            items.append((start + i, line[i:i + self.max_line], {"split": self.split_n}))
        if last:
            items[-1][2]["last"] = True
            self.split_n = 0
        return items

    def _split_pieces(self, rest: bytes, start: int, out: list[Chunk], now: float) -> int:
        """Hand out whole max_line pieces of an unfinished long line; keep the remainder."""
        whole = len(rest) - len(rest) % self.max_line
        items = self._pieces(rest[:whole], start, last=False)
        out.append(Chunk.events(self.path, self.key, start + whole, items))
        self.pending = b""
        self._keep(rest[whole:], now)
        return start + whole

    def _split_complete(self, complete: bytes, start: int) -> Chunk:
        items: list[tuple[int, bytes, dict | None]] = []
        off = start
        for line in complete[:-1].split(b"\n"):
            if len(line) > self.max_line:
                items.extend(self._pieces(line, off, last=True))
            else:
                items.append((off, line, None))
            off += len(line) + 1
        return Chunk.events(self.path, self.key, start + len(complete), items)

    def take_pending(self) -> list[Chunk]:
        """Hand out the last line although its newline never came (timeout,
        rotation, deletion): kept as it is, never dropped."""
        if not self.pending:
            return []
        if self.key is None:
            self.identify(complete=True)
        start = self.line_offset
        marker: dict = {"unterminated": True}
        if self.split_n:
            self.split_n += 1
            marker.update(split=self.split_n, last=True)
            self.split_n = 0
        chunk = Chunk.events(self.path, self.key, self.pos, [(start, self.pending, marker)])
        self.pending = b""
        return [chunk]

    def size(self) -> int:
        return os.fstat(self.fd).st_size + self.base

    def shrunk(self) -> bool:
        """Smaller than what was read (truncated)."""
        if self.sealed or self.fd is None:
            return False
        try:
            return self.size() < self.pos
        except OSError:
            return False

    def truncated(self) -> bool:
        """Smaller than what was read, or (found by ``read``, which checks the
        first line before it takes new bytes) written again with another
        first line: the file was truncated."""
        if self.rewritten:
            return True
        if self.sealed:
            return False
        try:
            return self.size() < self.pos
        except OSError:
            return False

    def restart(self) -> None:
        """After a truncation: read again from 0 as another content (never
        under the identity it had: its old lines keep their ids)."""
        self.avoid = self.key
        self.pos, self.pending, self.split_n, self.committed, self.rewritten = 0, b"", 0, 0, False
        self.behind_size = 0
        self.key = self.fingerprint = None
        self.head = b""
        self.identify()

    def replaced(self) -> bool:
        """True when its path now names another file, or nothing."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != (self.dev, self.ino)

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def pieces_before(run: int, max_line: int) -> int:
    """How many pieces of a long line were handed out when a reader stopped
    ``run`` bytes into it (its committed offset): pieces are whole
    ``max_line`` bytes, so a run that is not a multiple of them ended with
    a last line flushed without its newline (what follows is a new line)."""
    return run // max_line if run > 0 and max_line > 0 and run % max_line == 0 else 0


def line_start(fd: int, offset: int, base: int = 0) -> int:
    """The offset of the first byte of the line that holds byte ``offset``
    (``offset`` itself after a newline), read backwards from ``fd`` (whose
    byte 0 is the content's byte ``base``)."""
    at = offset
    while at > base:
        n = min(at - base, 1 << 20)
        block = os.pread(fd, n, at - n - base)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return at - n + nl + 1
        at -= n
    return base


def resume_split(f: "FollowedFile") -> None:
    """A reader resumed at its committed offset in the middle of a long line
    (a restart between its pieces) goes on numbering the pieces, so that the
    last one is still marked ``{"split": n, "last": True}``."""
    if f.fd is not None and f.pos > f.base and not f.split_n:
        f.split_n = pieces_before(f.pos - line_start(f.fd, f.pos, f.base), f.max_line)


_LONG: dict[int, re.Pattern] = {}


def _long_line(n: int) -> re.Pattern:
    rx = _LONG.get(n)
    if rx is None:
        rx = _LONG[n] = re.compile(rb"[^\n]{%d}" % (n + 1))
    return rx


def _after_last_newline(fd: int, size: int) -> int:
    if not size:
        return 0
    back = min(size, 65536)
    tail = os.pread(fd, back, size - back)
    cut = tail.rfind(b"\n")
    if cut >= 0:
        return size - back + cut + 1
    # No newline in the last 64 KiB: a file of one partial line starts at 0;
    # otherwise skip the giant line in progress.
    return 0 if back == size else size
