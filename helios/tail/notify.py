"""Wake the tailer when a followed file changes, instead of looking every 20 ms.

A ``Notifier`` holds one Linux inotify descriptor (through ctypes on libc:
no dependency) with one watch per DIRECTORY of followed files, never one per
file: a directory's watch reports its files' writes, truncations, creations,
renames and deletions by name, so a file parked without a descriptor is
watched too. ``wait`` sleeps in ``select`` on that descriptor (and on a pipe
that ``wake`` writes to, so a stop is not delayed); ``take`` says which paths
changed, whether something was created (a scan for new files is due), and
whether the kernel's queue overflowed (IN_Q_OVERFLOW: events were lost, so
every file must be looked at).

Polling stays: for directories on network and user-space filesystems (NFS,
CIFS/SMB, FUSE, 9p, ...: inotify does not see other hosts' writes there),
when a watch cannot be added (``fs.inotify.max_user_watches``), when inotify
is missing, and as a slow safety pass over every file that the tailer makes
whatever the events say. ``watch = "auto"`` picks all that; ``"inotify"``
trusts inotify on every filesystem; ``"poll"`` never uses it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import math
import os
import select
import struct
from typing import NamedTuple

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

MASK = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
        | IN_MOVE_SELF | IN_ONLYDIR)
CREATED = IN_CREATE | IN_MOVED_TO
_EVENT = struct.Struct("iIII")

# statfs f_type of filesystems whose changes inotify may not report (other hosts' writes).
REMOTE_FS = {
    0x6969: "nfs", 0xFF534D42: "cifs", 0xFE534D42: "smb2", 0x517B: "smb", 0x65735546: "fuse",
    0x01021997: "9p", 0x00C36400: "ceph", 0x47504653: "gpfs", 0x0BD00BD0: "lustre",
    0x73757245: "coda", 0x564C: "ncp", 0x6B414653: "afs", 0x5346414F: "afs",
}

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def fs_type(path: str) -> int | None:
    """The statfs f_type of the filesystem holding ``path`` (None if unknown)."""
    try:
        buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
        if _lib().statfs(os.fsencode(path), buf) != 0:
            return None
        return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF
    except (OSError, AttributeError):
        return None


def remote_fs(path: str) -> str | None:
    """The name of a network or user-space filesystem ``path`` is on, else None."""
    t = fs_type(path)
    return None if t is None else REMOTE_FS.get(t)


class Changes(NamedTuple):
    paths: set[str]      # files (dir/name) that changed in a watched directory
    created: bool        # something was created or moved in: a scan for new files is due
    overflow: bool       # events were lost: look at every file
    created_paths: frozenset = frozenset()   # the files (not directories) created or moved in
    rescan: bool = False  # a directory came, went or was renamed: only a scan of every glob finds what it brought


class Notifier:
    """One inotify descriptor, a watch per directory (see the module docstring)."""

    def __init__(self, trust_remote: bool = False) -> None:
        lib = _lib()
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.fd = fd
        self.trust_remote = trust_remote
        self.rpipe, self.wpipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wd_dir: dict[int, str] = {}
        self.dir_wd: dict[str, int] = {}
        self.polled: set[str] = set()     # directories polled instead (remote fs, no watch left)
        self.missing: set[str] = set()    # directories that did not exist when asked
        self._paths: set[str] = set()
        self._created = False
        self._overflow = False
        self._created_paths: set[str] = set()
        self._rescan = False
        self.full_warned = False

    def watch(self, directory: str) -> bool:
        """Watch ``directory`` (once); False if it is polled instead or missing."""
        if directory in self.dir_wd:
            return True
        if directory in self.polled:
            return False
        if not self.trust_remote:
            kind = remote_fs(directory)
            if kind is not None:
                log.info("%s is on %s: its files are polled, not watched.", directory, kind)
                self.polled.add(directory)
                return False
        wd = _lib().inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                self.missing.add(directory)
                return False
            if not self.full_warned:
                log.warning("Cannot watch %s (%s; see fs.inotify.max_user_watches): its files and any "
                            "others that cannot be watched are polled.", directory, os.strerror(e))
                self.full_warned = True
            self.polled.add(directory)
            return False
        self.missing.discard(directory)
        old = self.wd_dir.get(wd)
        if old is not None and old != directory:
            self.dir_wd.pop(old, None)  # the same directory under two names: keep the last
        self.wd_dir[wd] = directory
        self.dir_wd[directory] = wd
        return True

    def watches(self) -> int:
        return len(self.dir_wd)

    def fileno(self) -> int:
        return self.fd

    def wait(self, timeout: float, also: int | None = None) -> bool:
        """Sleep until an event, a ``wake``, ``also`` (a descriptor) readable
        or ``timeout`` seconds; True if woken."""
        fds = [self.fd, self.rpipe] if also is None else [self.fd, self.rpipe, also]
        # poll, not select: a descriptor numbered 1024 or more (a tailer holding
        # thousands of files open) is beyond select's reach, which then fails at once.
        p = select.poll()
        for fd in fds:
            p.register(fd, select.POLLIN)
        try:
            r = [fd for fd, _ in p.poll(None if math.isinf(timeout) else max(0, math.ceil(timeout * 1000)))]
        except (OSError, ValueError):
            return False
        if self.rpipe in r:
            try:
                while os.read(self.rpipe, 4096):
                    pass
            except OSError:
                pass
        return bool(r)

    def wake(self) -> None:
        """Make a ``wait`` return now (safe from a signal handler or another thread)."""
        try:
            os.write(self.wpipe, b"x")
        except OSError:
            pass  # full (a wake is pending anyway) or closed

    def read(self) -> None:
        """Take in what the kernel queued (non-blocking)."""
        while True:
            try:
                data = os.read(self.fd, 256 * 1024)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                self._overflow = True
                return
            if not data:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i + _EVENT.size <= n:
            wd, mask, _cookie, length = _EVENT.unpack_from(data, i)
            name = data[i + _EVENT.size:i + _EVENT.size + length].split(b"\0", 1)[0]
            i += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                self._overflow = True
                continue
            directory = self.wd_dir.get(wd)
            if directory is None:
                continue
            if mask & IN_IGNORED:
                # The directory went away (or was unmounted): watched again if it comes back.
                del self.wd_dir[wd]
                if self.dir_wd.get(directory) == wd:
                    del self.dir_wd[directory]
                self._created = self._rescan = True
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                self._created = self._rescan = True  # a directory renamed or removed: scan
                continue
            path = os.path.join(directory, os.fsdecode(name)) if name else None
            if mask & CREATED:
                self._created = True
                if mask & IN_ISDIR or path is None:
                    self._rescan = True     # a new directory may hold files already
                else:
                    self._created_paths.add(path)
            elif mask & IN_MOVED_FROM and mask & IN_ISDIR:
                self._rescan = True
            if path is not None:
                self._paths.add(path)

    def take(self) -> Changes:
        """What changed since the last ``take`` (reads the queue first)."""
        self.read()
        out = Changes(self._paths, self._created, self._overflow, frozenset(self._created_paths), self._rescan)
        self._paths, self._created, self._overflow = set(), False, False
        self._created_paths, self._rescan = set(), False
        return out

    def close(self) -> None:
        for fd in (self.fd, self.rpipe, self.wpipe):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = self.rpipe = self.wpipe = -1


def open_notifier(mode: str) -> Notifier | None:
    """A Notifier for ``mode`` ("auto", "inotify"), None for "poll" or when
    inotify is not there (then the tailer polls, and says so)."""
    if mode == "poll":
        return None
    try:
        return Notifier(trust_remote=(mode == "inotify"))
    except (OSError, AttributeError) as exc:
        log.warning("No inotify here (%s): the tailer polls its files.", exc)
        return None


def pattern_dirs(pattern: str) -> list[str]:
    """Directories whose changes can bring new files for a glob: the
    directory part of ``pattern`` and every level of it that has a wildcard
    (expanded), so a new pod's directory is seen as it is created."""
    import glob

    parts = (os.path.dirname(pattern) or ".").split(os.sep)
    out: list[str] = []
    for k in range(1, len(parts) + 1):
        prefix = os.sep.join(parts[:k]) or os.sep
        if glob.has_magic(prefix):
            out.extend(p for p in glob.glob(prefix) if os.path.isdir(p))
        elif k == len(parts) or glob.has_magic(parts[k] if k < len(parts) else ""):
            out.append(prefix)
    return out
