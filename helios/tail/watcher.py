"""The set of followed files, kept in step with the globs, rotations and restarts.

Readers come in two kinds: the *current* file at each matched path, and
*draining* files: rotated away, deleted while open, copies left by a
copytruncate, compressed rotations, or contents left unfinished by a previous
run. A draining file is read to its end and let go only after it has stayed
at its end for ``rotate_wait`` seconds, so a writer that still appends to its
old file for a moment loses nothing (there is no fixed wait after which bytes
are dropped: any growth starts the wait again). A compressed one cannot grow
and is let go at its end. Draining files are read before current ones, so
older lines go first.

Identity is the content (``helios.tail.identity``): ``resolve`` gives each
new reader the identity of the known content it holds, or a new one, and
records it in the positions at once (the tailer saves them right away), so a
crash a moment after a rotation still knows every content it had seen.

Rotations: when a followed path is truncated or names another file, its old
content is finished from a sibling that holds it (``finish_copy``), and then
every sibling of the path is *swept*: a sibling holding a known content with
bytes after its committed offset is read from there; a sibling whose content
is unknown and that was modified since the path was first followed was
written while the tailer was not looking (a second copytruncate inside its
lag, a rotation while it was down) and is read from its beginning. A restart
does the same for every path the previous run knew. A glob that matches the
siblings themselves (``app.log*``) follows them as files, and each content is
still read once: same content, same identity, same position.

Inventory: each position also records what was seen of its content (paths,
largest size, first byte read) and how reading ended (``positions.END_*``);
the tailer sends it to the bucks.

Descriptors: with more than ``max_open`` readers, the current files idle the
longest are parked (closed, their state kept) and reopened by path and
identity when they grow.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from helios.tail import compressed, rotation
from helios.tail.discover import match_files, path_matches
from helios.tail.files import Chunk, FollowedFile, _after_last_newline, resume_split
from helios.tail.identity import content_key, default_scope, head_hash, prefix_of
from helios.tail.positions import (END_CORRUPT, END_DELETED, END_DENIED, END_READ, END_READING, END_SKIPPED,
                                   END_UNREADABLE, Position, Positions)

log = logging.getLogger(__name__)

PRUNE_AFTER = 14 * 86400  # s: a finished content not seen this long, whose files are gone, is forgotten
PRUNE_EVERY = 3600.0
UNSEEN_S = 2.0  # s without a look at a file (the tailer stopped): a truncation then may have hidden bytes
SEEN_EVERY = 60.0  # s: an entry's "seen" time is moved on by a walk at most this often (prune counts days)
STILL_WRITTEN = 10.0  # s: a compressed file cut short and changed this recently may still be being written


@dataclass
class Options:
    start_at_end: bool = True
    max_line: int = 1024 * 1024
    partial_flush: float = 5.0
    rotate_wait: float = 5.0
    max_open: int = 512
    fd_cap: int = 0       # open readers the descriptor limit allows (0: no cap); beyond it new files wait parked

    def reader_kw(self) -> dict:
        return {"max_line": self.max_line, "partial_flush": self.partial_flush}


_continued = [float("-inf")]  # monotonic time of the last SIGCONT: the process was stopped before it


def _on_continue(signum, frame) -> None:
    _continued[0] = time.monotonic()


def watch_continue() -> None:
    """Note when the process is continued after a stop (SIGSTOP, SIGTSTP):
    a truncation the tailer finds just after that may have taken bytes
    written while it was stopped, however short the stop (see finish_copy).
    Only the main thread can set a handler; an existing one is kept."""
    if threading.current_thread() is not threading.main_thread():
        return
    before = signal.getsignal(signal.SIGCONT)
    if before in (_on_continue, None) or getattr(before, "__name__", "") == "_chained_continue":
        return
    if callable(before):
        def _chained_continue(signum, frame):
            _on_continue(signum, frame)
            before(signum, frame)
        signal.signal(signal.SIGCONT, _chained_continue)
    else:
        signal.signal(signal.SIGCONT, _on_continue)


def stopped_since(t: float) -> bool:
    """Was the process continued after a stop since monotonic time ``t``?"""
    return _continued[0] > t


def unread_key(path: str) -> bytes:
    """The inventory key of a file that could not be read at all (no content known)."""
    return content_key(b"\0unreadable\0" + path.encode(errors="surrogateescape"))


class _Current(dict):
    """path -> the current reader there; remembers the readers put in since
    the tailer last took them (``take_added``), so that with inotify it reads a
    newly opened or reopened file without walking every open one."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[FollowedFile] = []
        self.keys: set | None = None    # during a scan: every reader's key (Watcher.scan)

    def __setitem__(self, path: str, f: FollowedFile) -> None:
        super().__setitem__(path, f)
        self.added.append(f)
        if self.keys is not None:
            self.keys.add(f.key)

    def take_added(self) -> list[FollowedFile]:
        out, self.added = self.added, []
        return out


class Watcher:
    def __init__(self, patterns: list[str], positions: Positions, opts: Options, scope: str | None = None) -> None:
        self.patterns = list(patterns)
        # The host: part of every identity (two hosts' files never share one).
        self.scope = default_scope() if scope is None else scope.encode()
        self.positions = positions
        self.opts = opts
        self.current: _Current = _Current()
        self.draining: list[FollowedFile] = []
        self.parked: dict[str, FollowedFile] = {}  # fd closed, state kept
        self.behind: set[str] = set()  # parked files with bytes to read, waiting for a descriptor
        self.first_scan = True
        # A fresh start (no positions yet) follows start_at; a restart or a
        # start after a corrupt positions file does not skip anything.
        self.fresh = not positions.files and not positions.recovered
        self.from_beginning = positions.recovered
        self.dirty = False   # a new identity or an inventory end: save (and send) now
        self.pruned_at = float("-inf")
        self.recheck: dict[str, tuple[str, str]] = {}  # compressed file cut short -> (its signature, key hex)
        # Files (by signature) not to read again -> the content read from them ("": none of ours).
        self.done_sigs: dict[str, str] = {sig: k for k, p in positions.files.items() for sig in p.sealed}
        watch_continue()
        self.verified: set[str] = set()  # signatures whose first bytes were checked against their content
        self.links: set[str] = set()     # matched paths that are symlinks (at the last scan)

    def kw(self, resolve: bool = True) -> dict:
        kw = self.opts.reader_kw()
        if resolve:
            kw["resolve"] = self.resolve
        return kw

    # --- identity ---

    def agrees(self, p: Position, head: bytes, sealed: bool, dev: int, ino: int, live: bool) -> bool:
        """Does a file starting with ``head`` hold the content ``p``? (Its
        prefix is already known to be the same.)"""
        if p.legacy:
            # Version 1 entries: the same inode, or a copy (not a live file) with the same first line.
            return (p.dev, p.ino) == (dev, ino) or not live
        h = head[:p.head_len]
        if len(h) == p.head_len:
            return head_hash(h) == p.head_hash
        return sealed  # shorter than what was read of it: only a compressed copy can be

    def match(self, prefix: bytes, head: bytes, sealed: bool, dev: int, ino: int, live: bool,
              avoid: bytes | None = None) -> tuple[str, Position] | None:
        best = None
        avoid_hex = avoid.hex() if avoid else None
        for k, p in list(self.positions.files.with_prefix(prefix).items()):
            if p.fingerprint != prefix or k == avoid_hex or not self.agrees(p, head, sealed, dev, ino, live):
                continue
            if live and not sealed and self.held_elsewhere(k, dev, ino):
                continue
            rank = (p.head_len, not p.done, p.generation)
            if best is None or rank > best[0]:
                best = (rank, k, p)
        return None if best is None else (best[1], best[2])

    def held_elsewhere(self, key_hex: str, dev: int, ino: int) -> bool:
        """A content drained from its old inode right now (a rename rotation)
        is not the new file at its path, even if that starts the same."""
        return any(r.key is not None and r.key.hex() == key_hex and not r.sealed and (r.dev, r.ino) != (dev, ino)
                   for r in self.draining)

    def resolve(self, f: FollowedFile) -> None:
        """Give ``f`` the identity of the known content it holds, or a new one
        (recorded at once)."""
        m = self.match(f.fingerprint, f.head, f.sealed, f.dev, f.ino, live=not f.rotated, avoid=f.avoid)
        if m is not None:
            k, p = m
            f.key, f.generation, f.matched = bytes.fromhex(k), p.generation, True
            if not p.legacy and len(f.head) > p.head_len:
                p.head_len, p.head_hash = len(f.head), head_hash(f.head)
            return
        taken = {p.generation for p in self.positions.files.with_prefix(f.fingerprint).values()}
        n = 0
        while n in taken or content_key(f.fingerprint, n, self.scope) == f.avoid or \
                content_key(f.fingerprint, n, self.scope).hex() in self.positions.files:
            n += 1
        f.key, f.generation, f.matched = content_key(f.fingerprint, n, self.scope), n, False
        self.register(f)

    def register(self, f: FollowedFile) -> Position:
        k = f.key.hex()
        p = self.positions.files.get(k)
        if p is None:
            p = self.positions.files[k] = Position(
                f.path, f.dev, f.ino, f.fingerprint or b"", f.generation, max(f.committed, 0), time.time(),
                head_len=len(f.head), head_hash=head_hash(f.head), first=max(f.committed, 0))
            p.changed += 1
            self.dirty = True
        return p

    def position(self, f: FollowedFile) -> Position | None:
        return None if f.key is None else self.positions.files.get(f.key.hex())

    # --- discovery ---

    def scan(self, unpark_all: bool = True) -> None:
        """Open files that match now and are not followed yet; on the first
        scan, finish what the previous run left in rotated files. Parked
        files that grew are reopened (without ``unpark_all``: the tailer
        looks at them itself, woken by inotify and a slice at a time)."""
        matched = []
        self.pattern_hits: dict[str, int] = {}  # files each pattern matched at this scan (for the tailer's log)
        links: set[str] = set()
        for pattern in self.patterns:
            hits, found = match_files(pattern)
            self.pattern_hits[pattern] = len(hits)
            matched.extend(hits)
            links |= found
        self.links = links
        now = time.time()
        seen_at: dict[str, float] | None = None
        for path in matched:
            if path not in self.positions.watching:
                # Known from positions that have no watch time (the first format):
                # watched since it was last read, so that siblings written while
                # the tailer was down count as new. (Entries by path: made once a scan.)
                if seen_at is None:
                    seen_at = {}
                    for p in self.positions.files.values():
                        seen_at[p.path] = min(seen_at.get(p.path, now), p.seen)
                self.positions.watching[path] = min(seen_at.get(path, now), now)
        if now - self.pruned_at >= PRUNE_EVERY:
            self.prune(now)
        if self.first_scan and not self.fresh:
            self.recover(matched)
        self._follow_all(matched)
        if unpark_all:
            self.unpark()
        if self.recheck:
            self.look_again(now)
        self.first_scan = False

    def _follow_all(self, paths) -> None:
        """Follows each of ``paths`` not yet followed or parked. The keys of the open
        readers are kept for adopt meanwhile (no reader's key changes during a scan;
        those opened meanwhile are added): 10,000 new files do not walk every reader each."""
        self.current.keys = {r.key for r in self.current.values()}
        try:
            for path in paths:
                if path not in self.current and path not in self.parked:
                    self.follow(path)
        finally:
            self.current.keys = None

    def follow_new(self, paths: set[str] | frozenset[str]) -> bool:
        """What ``scan`` does, for the files at ``paths`` only (inotify said they
        were created or moved in): those a glob matches are followed, with
        no listing of thousands of others. False (nothing done) when only a
        full scan will do: a symlink among them (its target's directory needs
        a watch) or a glob that matched nothing so far (its first file is said)."""
        if self.first_scan or not all(getattr(self, "pattern_hits", {}).get(p) for p in self.patterns):
            return False
        hits = sorted(p for p in paths if any(path_matches(p, pattern) for pattern in self.patterns)
                      and p not in self.current and p not in self.parked and os.path.isfile(p))
        if any(os.path.islink(p) for p in hits):
            return False
        now = time.time()
        for path in hits:
            self.positions.watching.setdefault(path, now)
        self._follow_all(hits)
        if self.recheck:
            self.look_again(now)
        return True

    def look_again(self, now: float) -> None:
        """Compressed files read cut short while they were new: read again
        from where they ended if they changed; corrupt if they stopped changing."""
        for path, (sig, k) in list(self.recheck.items()):
            dev, ino = (int(x) for x in sig.split(":")[:2])
            s = rotation.locate(path, dev, ino)  # by inode: a rotation may have renamed it
            if not k:
                # A compressed sibling too new to show its first line: looked at
                # again once it changed or stopped changing.
                if s is None:
                    del self.recheck[path]
                elif s.signature != sig or now - s.mtime >= STILL_WRITTEN:
                    del self.recheck[path]
                    self.sweep_files([s], float("-inf"))
                continue
            p = self.positions.files.get(k)
            if p is None or p.done:
                del self.recheck[path]
            elif s is None:
                del self.recheck[path]
                self.sweep(path)  # renamed when done (a temporary name): its siblings say where
            elif s.signature != sig:
                del self.recheck[path]
                self.sweep_files([s], float("-inf"))
            elif now - s.mtime >= STILL_WRITTEN:
                del self.recheck[path]
                p.done = True
                p.sealed = (p.sealed + [sig])[-8:]
                self.done_sigs[sig] = k
                p.ended(END_CORRUPT, f"{path}: it ends early (the compressed data is cut short)")
                log.warning("%s ends early and did not change for %d s: read as far as it goes.",
                            path, STILL_WRITTEN)
                self.dirty = True

    def follow(self, path: str) -> FollowedFile | None:
        s = rotation.stat_sibling(path)
        if s is None:
            return None
        if s.sealed:
            return self.follow_sealed(s)
        try:
            f = FollowedFile.open(path, 0, **self.kw())
        except OSError as exc:
            self.unreadable(path, exc, s.size)
            return None
        self.forget_unreadable(path)
        p = self.position(f)
        if p is not None:
            p.saw(path, f.size())
        if f.matched and p is not None:
            if p.offset <= f.size():
                f.pos = f.committed = p.offset
                resume_split(f)  # resumed between the pieces of a long line: still numbered
                p.done = False
                p.ended(END_READING)
            else:
                # Shorter than what was read of this content: truncated and
                # written again with the same first bytes. Finish its copy.
                self.finish_copy(f, p.offset)
                f.restart()
                self.sweep(path)
        elif f.key is not None and self.first_scan and self.fresh and self.opts.start_at_end \
                and not self.from_beginning:
            f.pos = f.committed = _after_last_newline(f.fd, f.size())
            if p is not None:
                p.offset = p.first = f.pos
        adopted = self.adopt(path, f)
        if adopted is not None:
            return adopted
        if self.opts.fd_cap and len(self.current) + len(self.draining) >= self.opts.fd_cap:
            # No descriptor to spare (ulimit -n): parked at once, opened when there is room.
            f.close()
            self.parked[path] = f
            self.behind.add(path)
            log.info("Following %s from byte %d (parked: %d files open).", path, f.pos, self.opts.fd_cap)
            return f
        self.current[path] = f
        log.info("Following %s from byte %d.", path, f.pos)
        return f

    def adopt(self, path: str, f: FollowedFile) -> FollowedFile | None:
        """A draining reader of this very file (a glob that matches where it
        was renamed to) goes on as the current reader of ``path``."""
        keys = self.current.keys
        if keys is not None and f.key is not None and f.key not in keys \
                and all(r.key != f.key for r in self.draining):
            return None     # no reader holds this content (the common case: a new file)
        for r in self.draining + list(self.current.values()):
            if r.key is None or r.key != f.key or (r.dev, r.ino) != (f.dev, f.ino) or r.sealed:
                continue
            if r in self.draining:
                self.draining.remove(r)
            elif not r.replaced():
                continue  # the same file under two names (a hard link): read through one
            else:
                # Renamed to this path before its reader noticed: it goes on here,
                # and its old path is followed anew.
                del self.current[r.path]
                old = r.path
                r.path = path
                self.current[path] = r
                f.close()
                log.info("Following %s (formerly %s) from byte %d.", path, old, r.pos)
                if os.path.isfile(old) and self.matches(old):
                    self.follow(old)
                return r
            f.close()
            r.path, r.rotated = path, False
            self.current[path] = r
            log.info("Following %s (the same file, renamed) from byte %d.", path, r.pos)
            return r
        other = next((r for r in self.readers() if r.key == f.key and r is not f), None)
        if other is not None and not other.split_n and other.line_offset > f.pos:
            f.pos = f.committed = other.line_offset  # the other reader has these lines
        return None

    def follow_sealed(self, s: rotation.Sibling) -> None:
        """A compressed file matched by a glob: read once, decompressed, like
        a swept sibling (the same content as a plain file: the same identity)."""
        if self.first_scan and self.fresh and self.opts.start_at_end and not self.from_beginning:
            self.done_sigs[s.signature] = ""
            return
        self.sweep_files([s], float("-inf"))

    def unreadable(self, path: str, exc: OSError, size: int) -> None:
        """Record a file that cannot be opened in the inventory: by its known
        content if the previous run read it, else by its path."""
        end = END_DENIED if exc.errno in (errno.EACCES, errno.EPERM) else END_UNREADABLE
        p = max((q for q in self.positions.files.values() if q.path == path and not q.done
                 and q.end in (END_READING, end)), key=lambda q: q.seen, default=None)
        if p is None:
            k = unread_key(path).hex()
            p = self.positions.files.get(k)
            if p is None:
                p = self.positions.files[k] = Position(path, 0, 0, b"", 0, 0, time.time(), first=0)
        before = (p.end, p.size, p.detail)
        p.saw(path, size)
        p.ended(end, f"cannot open {path}: {exc.strerror or exc}")
        if (p.end, p.size, p.detail) != before:
            self.dirty = True  # the inventory says so (its size too)
            if (p.end, p.detail) != (before[0], before[2]):  # said once, not at each growth of the file
                log.warning("Cannot open %s to follow it: %s; looked at again every rescan, said again "
                            "only if the reason changes.", path, exc)

    def forget_unreadable(self, path: str) -> None:
        """A file once unreadable is read now: its placeholder says so."""
        p = self.positions.files.get(unread_key(path).hex())
        if p is not None and p.end != END_READ:
            p.size, p.done = 0, True
            p.ended(END_READ)
            self.dirty = True

    def recover(self, matched: list[str]) -> None:
        """Finish contents the previous run left unread after a rotation, and
        read what was written while it was down."""
        here = set()
        for path in matched:
            s = rotation.stat_sibling(path)
            if s is None or s.sealed:
                continue
            head, _ = s.head()
            prefix = prefix_of(head)
            m = prefix and self.match(prefix, head, False, s.dev, s.ino, live=True)
            if m:
                here.add(m[0])
        families = set(matched) | {p.path for p in self.positions.files.values()}
        for key_hex, p in list(self.positions.files.items()):
            if p.done or key_hex in here or not p.fingerprint:
                continue
            at = rotation.stat_sibling(p.path)
            if at is not None and (at.dev, at.ino) == (p.dev, p.ino) and at.head()[1] and at.error is not None:
                continue  # still there but cannot be opened: follow() records why
            s = self.find(p, families)
            if s is None:
                # Gone while the tailer was down: what was written after the
                # last byte read, if anything, was never seen. Said, not assumed away.
                self.lost(p, f"its file was gone (deleted, or truncated with no copy) when the tailer started "
                             f"again; anything written after byte {p.offset} was not seen", always=True)
                continue
            self.finish(s, key_hex, p)
        for family in sorted(families):
            self.sweep(family)

    def find(self, p: Position, families) -> rotation.Sibling | None:
        """The file that holds the known content ``p`` now: where it was last
        seen, or a sibling (plain files before compressed ones)."""
        candidates = []
        for family in {p.path} | {f for f in families if os.path.dirname(f) == os.path.dirname(p.path)}:
            here = rotation.stat_sibling(family)
            candidates.extend(([here] if here else []) + rotation.siblings(family))
        seen = set()
        for s in sorted(candidates, key=lambda s: (s.sealed, (s.dev, s.ino) != (p.dev, p.ino))):
            if s.path in seen:
                continue
            seen.add(s.path)
            head, _ = s.head()
            if head[:len(p.fingerprint)] == p.fingerprint and \
                    self.agrees(p, head, s.sealed, s.dev, s.ino, live=False):
                if not s.sealed and (s.dev, s.ino) != (p.dev, p.ino) and s.size < p.offset and p.legacy:
                    continue
                return s
        return None

    def finish(self, s: rotation.Sibling, key_hex: str, p: Position, split_n: int = 0) -> FollowedFile | None:
        r = rotation.open_rest(s, p.offset, bytes.fromhex(key_hex), p.fingerprint, p.generation,
                               split_n=split_n, **self.kw(resolve=False))
        if r is None:
            self.lost(p, f"{s.path} could not be opened", END_UNREADABLE)
            return None
        p.saw(s.path, r.size_total if r.sealed else r.size())
        p.ended(END_READING)
        log.info("Finishing %s (formerly %s) from byte %d.", s.path, p.path, p.offset)
        self.draining.append(r)
        return r

    def lost(self, p: Position, why: str, end: str = END_DELETED, always: bool = False) -> None:
        """A content whose rest cannot be read any more (reported as ``end``
        when bytes seen were not read, or ``always``: the tailer was not looking)."""
        p.done = True
        if p.offset < p.size or always:
            log.warning("%s (read up to byte %d of %d seen) cannot be finished: %s; bytes %d..%d are lost.",
                        p.path, p.offset, p.size, why, p.offset, p.size)
            p.ended(end, why)
        else:
            p.ended(END_READ)
        self.dirty = True

    def sweep(self, family: str) -> None:
        """Read what no reader reads among the siblings of ``family``: the
        rest of known contents, and unknown contents written since the path
        was first followed."""
        since = self.positions.watching.get(family)
        if since is None:
            since = min(self.positions.watching.values(), default=self.positions.saved_at)
        self.sweep_files(rotation.siblings(family), since)

    def sweep_files(self, files: list[rotation.Sibling], since: float) -> None:
        # Readers are compared by file (device, inode: sealed ones too), as they
        # keep the name they were opened by.
        busy = {(r.dev, r.ino) for r in self.readers()}
        active = {r.key for r in self.readers() if r.key is not None}
        for s in files:
            if s.path in self.current or s.path in self.parked or (s.dev, s.ino) in busy \
                    or self.already_read(s):
                continue
            head, problem = s.head()
            # A compressed file cut short decides no prefix before its first newline.
            prefix = prefix_of(head, complete=not problem)
            if prefix is None:
                if problem and s.sealed and time.time() - s.mtime < STILL_WRITTEN:
                    # Still being compressed (the plain file beside it is read meanwhile).
                    self.recheck.setdefault(s.path, (s.signature, ""))
                elif problem:
                    self.unreadable_sibling(s, problem)
                continue
            m = self.match(prefix, head, s.sealed, s.dev, s.ino, live=False)
            if m is not None:
                k, p = m
                if bytes.fromhex(k) in active:
                    continue
                if (s.sealed and compressed.holds_exactly(s.path, s.kind, p.offset)) \
                        or (not s.sealed and s.size <= p.offset):
                    self.done_sigs[s.signature] = k
                    self.verified.add(s.signature)
                    continue
                if self.finish(s, k, p) is not None:
                    active.add(bytes.fromhex(k))
            elif s.mtime >= since:
                r = rotation.open_rest(s, 0, None, None, 0, **self.kw())
                if r is None:
                    continue
                if r.identify() is not None:
                    active.add(r.key)
                    p = self.position(r)
                    if p is not None:
                        p.saw(s.path, r.size_total if r.sealed else r.size())
                log.info("Reading %s, written while the tailer was not looking, from its beginning.", s.path)
                self.draining.append(r)
            else:
                self.done_sigs[s.signature] = ""  # older than our watch: not ours to read

    def already_read(self, s: rotation.Sibling) -> bool:
        """Is ``s`` a file already read (or not ours)? Taken from what was
        recorded, once checked against its first bytes: a file recorded under
        a content it does not hold (its name reused by the next rotation while
        it was read) is read, never skipped unseen."""
        k = self.done_sigs.get(s.signature)
        if k is None:
            return False
        if not k or s.signature in self.verified:
            return True
        p = self.positions.files.get(k)
        if p is None:
            return True  # forgotten: finished long ago
        head, _ = s.head()
        if head[:len(p.fingerprint)] == p.fingerprint and self.agrees(p, head, s.sealed, s.dev, s.ino, live=False):
            self.verified.add(s.signature)
            return True
        del self.done_sigs[s.signature]
        p.sealed = [sig for sig in p.sealed if sig != s.signature]
        self.dirty = True
        log.error("%s was recorded as read as %s, but it holds another content: it is read now.", s.path, p.path)
        return False

    def unreadable_sibling(self, s: rotation.Sibling, problem: str) -> None:
        if s.mtime < min(self.positions.watching.values(), default=0.0):
            return
        k = unread_key(s.path).hex()
        p = self.positions.files.get(k)
        if p is None:
            p = self.positions.files[k] = Position(s.path, s.dev, s.ino, b"", 0, 0, time.time(), first=0)
        p.saw(s.path, s.size)
        p.done = True
        end = END_DENIED if "denied" in problem.lower() else END_CORRUPT if s.sealed else END_UNREADABLE
        p.ended(end, problem)
        self.done_sigs[s.signature] = ""
        self.dirty = True

    def finish_copy(self, f: FollowedFile, offset: int, unseen: float = 0.0, stopped: bool = False) -> bool:
        """``f`` was truncated after being read to ``offset``: if a rotated copy
        of it exists (copytruncate), finish the copy from there. With no copy,
        bytes seen and not read are lost, and so may be bytes never seen if
        the tailer had not looked at the file for ``unseen`` >= UNSEEN_S seconds,
        or was ``stopped`` (SIGSTOP, then SIGCONT) since its last look, however
        briefly: both are reported."""
        p = self.position(f)
        if p is None:
            return False
        p.offset = max(p.offset, min(offset, f.committed if f.committed >= 0 else offset))
        p.saw(f.path, max(f.pos, f.behind_size))  # bytes it knew were there count as seen
        for s in rotation.siblings(f.path):
            # (A draining reader keeps the name it was opened by: compare files, not names.)
            if (s.dev, s.ino) == (f.dev, f.ino) or any((r.dev, r.ino) == (s.dev, s.ino) for r in self.draining):
                continue
            head, _ = s.head()
            if head[:len(p.fingerprint)] != p.fingerprint or not self.agrees(p, head, s.sealed, s.dev, s.ino,
                                                                              live=False):
                continue
            r = rotation.open_rest(s, offset, f.key, f.fingerprint, f.generation, split_n=f.split_n,
                                   **self.kw(resolve=False))
            if r is not None:
                log.info("%s was copied to %s and truncated; finishing the copy from byte %d.",
                         f.path, s.path, offset)
                p.saw(s.path, r.size_total if r.sealed else r.size())
                self.draining.append(r)
                return True
        p.done = True
        if f.pending and offset == f.line_offset:
            offset = f.pos  # the caller hands out the unfinished last line it read: all there is of it
        blind = unseen >= UNSEEN_S or stopped
        if offset < p.size or blind:
            p.ended(END_DELETED, f"{f.path} was truncated after byte {offset} of {p.size} seen, "
                                 f"and no copy of it was found"
                    + (f"; the tailer had not looked at it for {unseen:.1f} s"
                       + (" (it was stopped)" if stopped else "") + ", so anything written meanwhile was not seen"
                       if blind else ""))
            log.warning("%s was truncated after byte %d of %d seen, with no copy beside it: bytes %d..%d are "
                        "lost; reading it again from the beginning.", f.path, offset, p.size, offset, p.size)
        else:
            p.ended(END_READ)
            log.info("%s was truncated after byte %d (all of it read); reading it again from the beginning.",
                     f.path, offset)
        self.dirty = True
        return False

    # --- reading ---

    def readers(self) -> list[FollowedFile]:
        return self.draining + list(self.current.values())

    def at_end(self, f: FollowedFile, now: float) -> list[Chunk]:
        """Called when ``f`` reached its end: notice truncation and rotation,
        let go of drained files. Returns any last piece to hand out."""
        if f.sealed:
            # The last piece of a compressed file cut short is not a line: it is
            # read whole if the file is completed (then under the same id).
            last = f.take_pending() if not f.problem else []
            self.let_go(f)
            return last
        if f.rotated:
            if now - f.last_growth >= self.opts.rotate_wait:
                last = f.take_pending()
                self.let_go(f)
                return last
            return []
        if f.truncated():
            # Stopped between its last two reads (a SIGCONT came): whatever the
            # stop lasted, bytes written then may be gone unseen.
            copied = self.finish_copy(f, f.line_offset, unseen=f.gap, stopped=stopped_since(f.last_read_at - f.gap))
            # With no copy, an unfinished last line read before the truncation is all there is of it.
            last = [] if copied else f.take_pending()
            f.restart()
            self.sweep(f.path)
            return last
        if f.replaced():
            log.info("%s was rotated or deleted; reading its old file to the end.", f.path)
            # The writer may go on writing to its old file until it reopens
            # (logrotate's postrotate): the wait starts now.
            f.rotated, f.last_growth = True, now
            del self.current[f.path]
            self.draining.append(f)
            if os.path.isfile(f.path) and self.matches(f.path):
                self.follow(f.path)
            self.sweep(f.path)
        return []

    def let_go(self, f: FollowedFile) -> None:
        f.close()
        if f in self.draining:
            self.draining.remove(f)
        p = self.position(f)
        if p is not None:
            p.done = True
            p.saw(f.path, f.pos)
            if f.sealed:
                # The file read, by its inode: its name may hold another file by
                # now (the next rotation moved it on), which is not done.
                s = rotation.locate(f.path, f.dev, f.ino)
                if f.problem and s is not None and (s.signature != f.signature
                                                    or time.time() - s.mtime < STILL_WRITTEN):
                    # Cut short, but maybe still being compressed: looked at again
                    # by scan() until it stops changing.
                    p.done = False
                    self.recheck[s.path] = (f.signature, f.key.hex())
                    log.info("%s ends early (%s); it may still be being written: it is read again "
                             "once it stops changing.", s.path, f.problem)
                    return
                # Done is what was decompressed (its signature then), nothing else.
                p.sealed = (p.sealed + [f.signature])[-8:]
                self.done_sigs[f.signature] = f.key.hex()
                if f.problem:
                    p.ended(END_CORRUPT, f"{f.path}: {f.problem}")
                    log.warning("%s was read as far as it goes (%d bytes): %s.", f.path, f.pos, f.problem)
            if not (f.sealed and f.problem):
                p.ended(END_READ)
            self.dirty = True
        log.info("Finished %s at byte %d.", f.path, f.pos)

    def matches(self, path: str) -> bool:
        return any(path_matches(path, p) for p in self.patterns)

    # --- descriptors ---

    def park_idle(self, now: float) -> None:
        over = len(self.current) + len(self.draining) - self.opts.max_open
        if self.behind:  # parked files wait for a descriptor: make room among the idle ones
            over += min(len(self.behind), max(1, self.opts.max_open // 4))
        if over <= 0:
            return
        idle = sorted((f for f in self.current.values() if f.at_eof and not f.pending and f.key),
                      key=lambda f: f.last_growth)
        for f in idle[:over]:
            f.close()
            del self.current[f.path]
            self.parked[f.path] = f

    def unpark(self, only: set[str] | None = None) -> None:
        """Reopen parked files that grew (only those at ``only``, when given: inotify said so)."""
        items = list(self.parked.items()) if only is None else [(p, self.parked[p]) for p in only if p in self.parked]
        for path, f in items:
            self.behind.discard(path)
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == (f.dev, f.ino):
                if st.st_size != f.pos:
                    if self.opts.fd_cap and len(self.current) + len(self.draining) >= self.opts.fd_cap:
                        self.behind.add(path)  # no descriptor to spare: opened once idle ones are parked
                        continue
                    try:
                        f.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    except OSError as exc:
                        self.unreadable(path, exc, st.st_size)
                        continue
                    del self.parked[path]
                    self.current[path] = f
                continue
            # Rotated while parked: finish its content from a sibling.
            del self.parked[path]
            p = self.position(f)
            if p is not None:
                s = self.find(p, {path})
                if s is not None:
                    self.finish(s, f.key.hex(), p)
                else:
                    self.lost(p, "it was rotated away while its descriptor was parked and no copy is left")
            self.sweep(path)

    # --- state ---

    def prune(self, now_wall: float) -> int:
        """Forget finished contents not seen for PRUNE_AFTER seconds whose
        files are gone (no path of theirs, nor a sibling, holds their inode), so the
        positions file does not grow with every rotation. One whose file is
        still there is kept: a glob that matches it must not read it again."""
        self.pruned_at = now_wall
        reading = {r.key.hex() for r in self.readers() + list(self.parked.values()) if r.key is not None}
        gone = 0
        for k, p in list(self.positions.files.items()):
            if not p.done or now_wall - p.seen < PRUNE_AFTER or k in reading:
                continue
            inodes = {(p.dev, p.ino)} | {tuple(int(x) for x in sig.split(":")[:2]) for sig in p.sealed}
            if any((s.dev, s.ino) in inodes for path in p.paths
                   for s in [rotation.stat_sibling(path), *rotation.siblings(path)] if s is not None):
                continue
            del self.positions.files[k]
            gone += 1
        if gone:
            log.info("Forgot %d finished file(s) not seen for %d days whose files are gone.",
                     gone, PRUNE_AFTER // 86400)
        return gone

    def commit(self, key: bytes, end: int) -> None:
        """Every event of the file ``key`` before ``end`` is safe now."""
        p = self.positions.files.get(key.hex())
        if p is None:
            f = next((r for r in self.readers() if r.key == key), None)
            if f is None:
                return
            p = self.register(f)
        if end > p.offset:
            p.offset = end

    def remember(self, now_wall: float, parked: bool = True, full: bool | None = None) -> None:
        """Record every reader's identity, head and size seen in the
        positions (offsets are set by the tailer as chunks become safe).
        Parked files (closed, idle: nothing of theirs moves) only with ``parked``.
        Unless ``full`` (by default: with ``parked``), only readers that moved
        since they were last remembered are looked at: with thousands of idle
        files, a save then touches (and the saver serializes) a few entries,
        not every open one for its "seen" time alone (that is refreshed by the
        tailer's periodic full round)."""
        full = parked if full is None else full
        self.remember_files(self.readers() + (list(self.parked.values()) if parked else []), now_wall, full)

    def remember_files(self, files: list[FollowedFile], now_wall: float, full: bool = True) -> None:
        """``remember`` for these files only (the tailer walks the parked ones a slice a turn)."""
        entries = self.positions.files
        for f in files:
            if f.key is None:
                continue
            p = entries.get(f.key.hex())
            if p is None:
                p = self.register(f)
            elif not full and f.at_eof and f.remembered == (f.key, f.pos) and p.path == f.path:
                continue    # nothing of it moved: its entry stays as it is
            f.remembered = (f.key, f.pos)
            if p.path != f.path:
                p.path = f.path
            if not 0 <= now_wall - p.seen < SEEN_EVERY:
                # (Coarse on purpose: a walk over files just met or seen a moment ago
                # leaves their entries as they are, so no save serializes them again.)
                p.seen = now_wall
            if not f.sealed and (p.dev, p.ino) != (f.dev, f.ino):
                p.dev, p.ino = f.dev, f.ino
            size = f.pos
            if not f.at_eof and f.fd is not None:
                try:
                    size = max(size, f.size())
                except OSError:
                    pass
            p.saw(f.path, size)
            if not p.legacy and not f.sealed and len(f.head) > p.head_len:
                p.head_len, p.head_hash = len(f.head), head_hash(f.head)

    def close(self) -> None:
        for f in self.readers():
            f.close()
        self.current.clear()
        self.draining.clear()


_ = (END_SKIPPED,)  # the inventory's "skipped by a limit": no limit skips bytes today
