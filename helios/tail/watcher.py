"""The set of followed files, kept in step with the globs, rotations and restarts.

Readers come in two kinds: the *current* file at each matched path, and
*draining* files: rotated away, deleted while open, or left unfinished by a
previous run. A draining file is read to its end and let go only after it
has stayed at its end for ``rotate_wait`` seconds, so a writer that still
appends to its old file for a moment loses nothing (there is no fixed wait
after which bytes are dropped: any growth starts the wait again). Draining
files are read before current ones, so older lines go first.

Restart: every file the previous run knew is in the positions file, by
identity. A matched file whose identity is known resumes at its committed
offset. A known file that is no longer at its path is looked for among the
path's rotated siblings and finished from its offset; siblings that appeared
while the tailer was down (modified after the positions were saved, and
unknown) are read from their beginning; then the new file at the path is
read from 0. A copytruncate seen while running is handled the same way: the
copy is finished from where the original was read, then the original starts
again at 0.

Descriptors: with more than ``max_open`` readers, the current files idle the
longest are parked (closed, their state kept) and reopened by path and
identity when they grow.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass

from helios.tail import rotation
from helios.tail.files import Chunk, FollowedFile, key_of
from helios.tail.positions import Position, Positions

log = logging.getLogger(__name__)


@dataclass
class Options:
    start_at_end: bool = True
    max_line: int = 1024 * 1024
    partial_flush: float = 5.0
    rotate_wait: float = 5.0
    max_open: int = 512

    def reader_kw(self) -> dict:
        return {"max_line": self.max_line, "partial_flush": self.partial_flush}


class Watcher:
    def __init__(self, patterns: list[str], positions: Positions, opts: Options) -> None:
        self.patterns = list(patterns)
        self.positions = positions
        self.opts = opts
        self.current: dict[str, FollowedFile] = {}
        self.draining: list[FollowedFile] = []
        self.parked: dict[str, FollowedFile] = {}  # fd closed, state kept
        self.first_scan = True
        # A fresh start (no positions yet) follows start_at; a restart or a
        # start after a corrupt positions file does not skip anything.
        self.fresh = not positions.files and not positions.recovered
        self.from_beginning = positions.recovered

    # --- discovery ---

    def scan(self) -> None:
        """Open files that match now and are not followed yet; on the first
        scan, finish what the previous run left in rotated files."""
        matched = []
        for pattern in self.patterns:
            matched.extend(p for p in sorted(glob.glob(pattern)) if os.path.isfile(p))
        if self.first_scan and not self.fresh:
            self.recover(matched)
        for path in matched:
            if path not in self.current and path not in self.parked:
                self.follow(path)
        self.unpark()
        self.first_scan = False

    def follow(self, path: str) -> FollowedFile | None:
        try:
            f = FollowedFile.open(path, 0, **self.opts.reader_kw())
        except OSError as exc:
            log.warning("Cannot open %s to follow it: %s.", path, exc)
            return None
        known = self.known(f)
        if known is not None:
            f.generation = known.generation
            f.key = key_of(f.dev, f.ino, f.fingerprint, f.generation)
            if known.offset <= f.size():
                f.pos = f.committed = known.offset
            else:
                self.finish_copy(f, known.offset)
                f.restart()
        elif self.first_scan and self.fresh and self.opts.start_at_end and not self.from_beginning:
            f.close()
            f = FollowedFile.open(path, "end", **self.opts.reader_kw())
        self.current[path] = f
        log.info("Following %s from byte %d.", path, f.pos)
        return f

    def known(self, f: FollowedFile) -> Position | None:
        """The saved position of this very file (same device, inode, first line)."""
        if f.fingerprint is None:
            return None
        best = None
        for p in self.positions.files.values():
            if (p.dev, p.ino, p.fingerprint) == (f.dev, f.ino, f.fingerprint) and not p.done:
                if best is None or p.generation > best.generation:
                    best = p
        return best

    def recover(self, matched: list[str]) -> None:
        """Finish files the previous run left unread after a rotation."""
        here = {}
        for path in matched:
            try:
                f = FollowedFile.open(path, 0)
            except OSError:
                continue
            here[path] = (f.dev, f.ino, f.fingerprint)
            f.close()
        # Files accounted for: every known one, and the siblings found to be known ones.
        keyed = {(p.dev, p.ino) for p in self.positions.files.values()}
        families = {p.path for p in self.positions.files.values()} | set(matched)
        for key_hex, p in list(self.positions.files.items()):
            if p.done or here.get(p.path) == (p.dev, p.ino, p.fingerprint):
                continue
            s = rotation.find(p.path, p.dev, p.ino, p.fingerprint)
            if s is None:
                log.warning("%s (read up to byte %d) was rotated away and no rotated copy is left; "
                            "lines written after byte %d, if any, could not be read.", p.path, p.offset, p.offset)
                p.done = True
                continue
            keyed.add((s.dev, s.ino))
            r = rotation.open_rest(s, p.offset, bytes.fromhex(key_hex), p.fingerprint, p.generation,
                                   **self.opts.reader_kw())
            if r is not None:
                log.info("Finishing %s (formerly %s) from byte %d.", s.path, p.path, p.offset)
                self.draining.append(r)
        # Siblings written while we were down and never seen: read them whole.
        since = self.positions.saved_at
        for family in families:
            for s in rotation.siblings(family):
                if s.mtime <= since or (s.dev, s.ino) in keyed or s.gz:
                    continue
                r = rotation.open_rest(s, 0, b"", None, 0, **self.opts.reader_kw())
                if r is None:
                    continue
                r.key = None
                if r.identify() is None:
                    r.fingerprint = r.read_fingerprint() or b""
                    r.key = key_of(r.dev, r.ino, r.fingerprint, 0)
                log.info("Reading %s, rotated while the tailer was down, from its beginning.", s.path)
                self.draining.append(r)
                keyed.add((s.dev, s.ino))

    def finish_copy(self, f: FollowedFile, offset: int) -> None:
        """``f`` was truncated after being read to ``offset``: if a rotated copy
        of it exists (copytruncate), finish the copy from there."""
        s = rotation.find(f.path, -1, -1, f.fingerprint)
        if s is not None and f.key is not None:
            r = rotation.open_rest(s, offset, f.key, f.fingerprint, f.generation, **self.opts.reader_kw())
            if r is not None:
                log.info("%s was copied to %s and truncated; finishing the copy from byte %d.", f.path, s.path, offset)
                self.draining.append(r)
                return
        log.warning("%s was truncated after byte %d with no copy beside it; reading it again from the beginning.",
                    f.path, offset)

    # --- reading ---

    def readers(self) -> list[FollowedFile]:
        return self.draining + list(self.current.values())

    def at_end(self, f: FollowedFile, now: float) -> list[Chunk]:
        """Called when ``f`` reached its end: notice truncation and rotation,
        let go of drained files. Returns any last piece to hand out."""
        if f.rotated:
            if now - f.last_growth >= self.opts.rotate_wait:
                last = f.take_pending()
                self.let_go(f)
                return last
            return []
        if f.truncated():
            self.finish_copy(f, f.line_offset)
            f.restart()
            return []
        if f.replaced():
            log.info("%s was rotated or deleted; reading its old file to the end.", f.path)
            # The writer may go on writing to its old file until it reopens
            # (logrotate's postrotate): the wait starts now.
            f.rotated, f.last_growth = True, now
            del self.current[f.path]
            self.draining.append(f)
            if os.path.isfile(f.path) and self.matches(f.path):
                self.follow(f.path)
        return []

    def let_go(self, f: FollowedFile) -> None:
        f.close()
        if f in self.draining:
            self.draining.remove(f)
        if f.key is not None:
            p = self.positions.files.get(f.key.hex())
            if p is not None:
                p.done = True
        log.info("Finished %s at byte %d.", f.path, f.pos)

    def matches(self, path: str) -> bool:
        return any(path in glob.glob(p) for p in self.patterns)

    # --- descriptors ---

    def park_idle(self, now: float) -> None:
        over = len(self.current) + len(self.draining) - self.opts.max_open
        if over <= 0:
            return
        idle = sorted((f for f in self.current.values() if f.at_eof and not f.pending and f.key),
                      key=lambda f: f.last_growth)
        for f in idle[:over]:
            f.close()
            del self.current[f.path]
            self.parked[f.path] = f

    def unpark(self) -> None:
        for path, f in list(self.parked.items()):
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == (f.dev, f.ino):
                if st.st_size != f.pos:
                    f.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    del self.parked[path]
                    self.current[path] = f
                continue
            # Rotated while parked: find it by device and inode and finish it.
            del self.parked[path]
            s = rotation.find(path, f.dev, f.ino, f.fingerprint)
            if s is not None:
                r = rotation.open_rest(s, f.pos, f.key, f.fingerprint, f.generation, **self.opts.reader_kw())
                if r is not None:
                    self.draining.append(r)

    # --- state ---

    def commit(self, key: bytes, end: int) -> None:
        """Every event of the file ``key`` before ``end`` is safe now."""
        p = self.positions.files.get(key.hex())
        if p is None:
            f = next((r for r in self.readers() if r.key == key), None)
            if f is None:
                return
            p = self.positions.files[key.hex()] = Position(
                f.path, f.dev, f.ino, f.fingerprint or b"", f.generation, end, time.time())
        if end > p.offset:
            p.offset = end

    def remember(self, now_wall: float) -> None:
        """Record every reader's identity in the positions (offsets are set
        by the tailer as chunks become safe)."""
        for f in self.readers() + list(self.parked.values()):
            if f.key is None:
                continue
            k = f.key.hex()
            p = self.positions.files.get(k)
            if p is None:
                self.positions.files[k] = Position(f.path, f.dev, f.ino, f.fingerprint or b"", f.generation,
                                                   max(f.committed, 0), now_wall)
            else:
                p.path, p.seen = f.path, now_wall

    def close(self) -> None:
        for f in self.readers():
            f.close()
        self.current.clear()
        self.draining.clear()
