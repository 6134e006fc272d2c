"""The bucket file format: append-only records that survive a crash at any byte.

One module owns the format; the tailer spool, the bucks and the porter all go
through it.

Format
------
A bucket file is a sequence of records and nothing else (no file header, so
any byte offset where a record starts is a valid place to start reading)::

    +----------------+----------------+---------------------+
    | length: u32 BE | crc: u32 BE    | payload: length B   |
    +----------------+----------------+---------------------+

- ``length`` is the payload size in bytes, ``0 <= length <= MAX_RECORD``. A
  larger value is corruption, never a record.
- ``crc`` is ``zlib.crc32`` of the four ``length`` bytes followed by the
  payload. Covering the length, not only the payload, matters for one case:
  after a machine crash some filesystems (XFS, famously) can leave the
  tail of a file zero-filled. With a checksum of the payload alone,
  eight zero bytes would be a valid empty record, and a zeroed tail would read
  as a run of empty records. ``crc32(b"\\0\\0\\0\\0")`` is not zero, so a zeroed
  region is recognised as damage.
- The payload is opaque here (the tailer spool and the bucks store codec
  frames in it).

Crash safety
------------
One process writes a file (a ``RecordWriter``); any number read it.

1. Bytes before the end of the file are never rewritten: a record, once
   complete, stays as it is. The only mutation other than appending is
   truncating an invalid tail.
2. A record goes to the kernel in one ``write`` (header and payload together,
   ``O_APPEND``). If the process dies, the file ends with either the whole
   record or a prefix of it. If the machine dies, the file can also end with
   a record of the full length whose bytes never reached the disk (zeros or
   stale data), so its crc does not match. Either way only the *last* record
   is damaged.
3. The reader stops at a record that runs past the end of the file (a torn
   tail: the cut-off last record, or a record still being appended) and
   reports it in ``ReadStats``. It never returns a damaged payload: every
   payload it yields passed its crc.
4. When a writer opens an existing file, it scans it and truncates everything
   after the last valid record, so a torn record never ends up in the middle
   of the file, where every later reader would have to step over it.
5. A failed append (``ENOSPC``, ``EIO``) truncates the file back to where the
   record started before raising ``RecordError``, so "append raised" means
   "the record is not in the file". If that truncation fails too, the writer
   retries it before its next append and refuses to append until it works.
6. ``fsync=True`` makes each append durable when it returns (and the file's
   directory entry when the file is created). Without it, an append survives
   a process crash as soon as ``write`` returns, and a machine crash once the
   kernel flushes it; the writer's truncation on open cleans up either way.

Damage in the middle of a file (a bad disk block, a stray write) is handled
by resynchronising. A record whose whole length is in the file but whose crc
does not match (or whose length is over ``MAX_RECORD``) is *corrupt*: the
reader counts it, scans forward from its second byte for the first offset
where a valid record starts, counts the bytes in between as skipped and goes
on. It does not trust the damaged record's length to say where the next
record starts: a damaged length can point past good records, or land on a
later one by chance and hide those in between. (The price: a damaged payload
that itself holds encoded records would be read through. Payloads here are
codec frames, which never do.) A record whose length runs past the end of the
file is the torn tail, unless a valid record is found after it: then its
length field was damaged and it counts as corrupt. That matters for the
writer: a damaged length in the middle of a file must not make it truncate
the good records after it.

A candidate found by scanning must have a plausible length (``<= MAX_RECORD``
and within the file), a matching crc, and a chain of up to ``_CHAIN_HOPS``
headers after it whose lengths keep them inside the file (or end exactly at
its end). The chain is cheap to check and turns away nearly every false
candidate in random-looking payloads (lz4 output) before paying for a crc over
a large claimed length; without it, a scan through compressed data in a large
file costs about quadratic time (seconds per damaged megabyte). Its price,
when damage meets more damage: a good record within ``_CHAIN_HOPS`` records
before a second damaged record or before a torn tail fails the chain and is
skipped with the damage.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

from helios.errors import RecordError
from helios.store import durable

__all__ = [
    "HEADER",
    "MAX_RECORD",
    "ReadStats",
    "RecordReader",
    "RecordWriter",
    "encode_record",
    "read_records",
    "valid_end",
]

log = logging.getLogger(__name__)

HEADER = struct.Struct(">II")
MAX_RECORD: int = 256 * 1024 * 1024  # a length above this is corruption, not a record

_LENGTH = struct.Struct(">I")
_CHAIN_HOPS = 3
_SCAN_BLOCK = 1 << 16  # bytes searched per read while looking for the next valid record

PathLike = Union[str, "os.PathLike[str]"]


def _crc(length_bytes: bytes | memoryview, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(length_bytes))


def encode_record(payload: bytes) -> bytes:
    """One record (header and payload) as bytes, exactly as a writer appends it."""
    n = memoryview(payload).nbytes
    if n > MAX_RECORD:
        raise RecordError(f"A record payload of {n} bytes is over the limit of {MAX_RECORD} bytes.")
    length = _LENGTH.pack(n)
    return length + _LENGTH.pack(_crc(length, payload)) + bytes(payload)


# --------------------------------------------------------------------------- writing


class RecordWriter:
    """Appends records to one bucket file. One writer per file; not thread-safe.

    Opening an existing file truncates whatever follows its last valid record
    (``truncated`` is the number of bytes cut), so appends always follow a
    valid record.
    """

    def __init__(self, path: PathLike, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.truncated = 0
        self._fsync = fsync
        self._dirty = False  # a failed append left bytes after self._size
        try:
            durable.make_dirs(self.path.parent)
            created = not self.path.exists()
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_BINARY", 0),
                durable.FILE_MODE,
            )
            if created:
                durable.created(self._fd)  # 0640 whatever the umask
        except OSError as exc:
            raise RecordError(f"Cannot open bucket file {self.path} for appending: {exc}.") from exc
        try:
            self._size = self._recover()
            if fsync and created:
                _fsync_dir(self.path.parent)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise

    def _recover(self) -> int:
        """Find the end of the last valid record; cut off anything after it."""
        fd = self._checked_fd()
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return 0
            stats = valid_end(self.path)
            if stats.end < size:
                os.ftruncate(fd, stats.end)
                if self._fsync:
                    durable.fsync(fd)
                self.truncated = size - stats.end
                log.warning(
                    "Truncated %d bytes after the last valid record of bucket file %s "
                    "(a torn or damaged tail; %d records before it are intact).",
                    self.truncated,
                    self.path,
                    stats.records,
                )
            return stats.end
        except OSError as exc:
            raise RecordError(f"Cannot recover bucket file {self.path}: {exc}.") from exc

    @property
    def size(self) -> int:
        """Offset just after the last record written: where the next one starts."""
        return self._size

    def append(self, payload: bytes) -> int:
        """Append one record; return its start offset.

        One ``writev`` of header and payload: one syscall, and no copy of a
        large payload."""
        n = memoryview(payload).nbytes
        if n > MAX_RECORD:
            raise RecordError(f"A record payload of {n} bytes is over the limit of {MAX_RECORD} bytes.")
        length = _LENGTH.pack(n)
        header = length + _LENGTH.pack(_crc(length, payload))
        return self._write([header, payload], HEADER.size + n)

    def append_many(self, payloads: Iterable[bytes]) -> int:
        """Append several records in one write; return the first one's offset.

        Nothing is written for an empty iterable (the current ``size`` is
        returned). Either all the records are appended or, on error, none."""
        parts = []
        pack = _LENGTH.pack
        for payload in payloads:
            n = memoryview(payload).nbytes
            if n > MAX_RECORD:
                raise RecordError(f"A record payload of {n} bytes is over the limit of {MAX_RECORD} bytes.")
            length = pack(n)
            parts.append(length)
            parts.append(pack(_crc(length, payload)))
            parts.append(payload)
        if not parts:
            return self._size
        # One buffer, one write: writev would avoid the copy but takes at most
        # IOV_MAX (1024) pieces, and batches of small records are the usual case.
        data = b"".join(parts)
        return self._write([data], len(data))

    def _write(self, parts: list[bytes], total: int) -> int:
        fd = self._checked_fd()
        start = self._size
        try:
            if self._dirty:
                os.ftruncate(fd, start)
                self._dirty = False
            written = os.writev(fd, parts) if len(parts) > 1 else os.write(fd, parts[0])
            if written < total:  # short write (a signal, a nearly full disk): finish it
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    k = os.write(fd, rest)
                    rest = rest[k:]
            if self._fsync:
                durable.fsync(fd)
        except OSError as exc:
            # Leave no torn record behind that a later append would bury in
            # the middle of the file (crash-safety rule 5 above).
            try:
                os.ftruncate(fd, start)
            except OSError:
                self._dirty = True
            raise RecordError(
                f"Cannot append {total} bytes to bucket file {self.path} at offset {start}: {exc}."
            ) from exc
        self._size = start + total
        return start

    def fsync(self) -> None:
        """Flush appended records to disk."""
        try:
            durable.fsync(self._checked_fd())
        except OSError as exc:
            raise RecordError(f"Cannot fsync bucket file {self.path}: {exc}.") from exc

    def _checked_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"The writer of bucket file {self.path} is closed.")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        """Close the file. Closing twice is fine."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"size={self._size}"
        return f"<RecordWriter {str(self.path)!r} {state}>"


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (POSIX needs the directory fsynced)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not supported here (e.g. Windows); nothing more we can do
    try:
        durable.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading


@dataclass
class ReadStats:
    """What a reader saw. ``end`` is the offset just after the last valid record."""

    records: int = 0
    bytes: int = 0  # payload bytes yielded
    skipped_bytes: int = 0
    corrupt_records: int = 0
    torn_tail: bool = False
    end: int = 0


class _Source:
    """Positioned reads over a seekable binary file."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read_at(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        data = self._f.read(n)
        if data is None:
            data = b""
        if len(data) < n and data:  # a raw file may return less than asked: loop until EOF
            parts = [data]
            got = len(data)
            while got < n:
                more = self._f.read(n - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def size(self) -> int:
        return self._f.seek(0, os.SEEK_END)


class RecordReader:
    """Iterates over the payloads (bytes) of a bucket file, from ``start``.

    Takes a path or a seekable binary file (which it does not close). Reads in
    chunks of ``chunk_size`` (a record larger than that is read whole), so
    memory stays at about one chunk plus one record. ``stats`` describes what
    was read so far, including the payload just yielded (``stats.end`` is
    where it ends); iterating again starts over with fresh stats. I/O errors
    raise ``RecordError``; damage in the file never does (it is skipped and
    counted, see the module docstring).
    """

    def __init__(self, source: PathLike | BinaryIO, start: int = 0, *, chunk_size: int = 1 << 20) -> None:
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
        self._source = source
        self._start = start
        self._chunk = max(chunk_size, HEADER.size)
        self.stats = ReadStats(end=start)

    @property
    def name(self) -> str:
        if isinstance(self._source, (str, os.PathLike)):
            return os.fspath(self._source)
        return str(getattr(self._source, "name", repr(self._source)))

    def __iter__(self) -> Iterator[bytes]:
        return self._run(keep=True)

    def _run(self, keep: bool) -> Iterator[bytes]:
        self.stats = ReadStats(end=self._start)
        source = self._source
        owned = isinstance(source, (str, os.PathLike))
        f: BinaryIO
        try:
            f = open(source, "rb", buffering=0) if isinstance(source, (str, os.PathLike)) else source
        except OSError as exc:
            raise RecordError(f"Cannot open bucket file {self.name} for reading: {exc}.") from exc
        try:
            yield from self._parse(_Source(f), keep)
        except OSError as exc:
            raise RecordError(f"Cannot read bucket file {self.name}: {exc}.") from exc
        finally:
            if owned:
                f.close()

    def _parse(self, src: _Source, keep: bool) -> Iterator[bytes]:
        stats = self.stats
        chunk = self._chunk
        unpack = HEADER.unpack_from
        crc32 = zlib.crc32
        offset = self._start  # file offset of the next record
        buf = b""  # bytes read ahead; buf[pos] is at file offset `offset`
        pos = 0
        view = memoryview(buf)
        while True:
            avail = len(buf) - pos
            if avail < 8:
                buf = buf[pos:] + src.read_at(offset + avail, chunk)
                pos, avail, view = 0, len(buf), memoryview(buf)
                if avail < 8:
                    if avail:  # a partial header: the torn tail
                        stats.torn_tail = True
                        stats.skipped_bytes += avail
                    return
            length, crc = unpack(buf, pos)
            total = 8 + length
            if length <= MAX_RECORD:
                if avail < total:
                    # Check the size before reading: a damaged length must not
                    # make us read hundreds of megabytes only to hit EOF.
                    size = src.size()
                    if offset + total > size:
                        resume = self._past_eof(src, offset, length, size)
                        if resume is None:
                            return
                        buf, pos, view, offset = b"", 0, memoryview(b""), resume
                        continue
                    buf = buf[pos:] + src.read_at(offset + avail, max(chunk, total - avail))
                    pos, avail, view = 0, len(buf), memoryview(buf)
                    if avail < total:  # the file shrank under us: stop as at a torn tail
                        stats.torn_tail = True
                        stats.skipped_bytes += avail
                        return
                body = pos + 8
                end = pos + total
                if crc32(view[body:end], crc32(view[pos : pos + 4])) == crc:
                    # Stats first, then the payload: while the caller holds a
                    # record, stats.end is where it ends, so a reader that
                    # stops early (a chunked fetch) knows where to resume.
                    offset += total
                    pos = end
                    stats.records += 1
                    stats.bytes += length
                    stats.end = offset
                    if keep:
                        yield buf[body:end]
                    continue
            # Corrupt: a length over the limit, or a whole record with a bad crc.
            resume = self._corrupt(src, offset)
            if resume is None:
                return
            buf, pos, view, offset = b"", 0, memoryview(b""), resume

    # The two damage paths count what they skip and return the offset where
    # reading goes on, or None when nothing valid is left to read.

    def _corrupt(self, src: _Source, offset: int) -> int | None:
        stats = self.stats
        stats.corrupt_records += 1
        size = src.size()
        # Scan from the next byte rather than jump to where the record claims
        # to end: if its length was damaged, that claim may point past good
        # records (or land on one by chance, hiding the ones in between).
        q = _resync(src, offset + 1, size)
        if q is None:
            stats.skipped_bytes += size - offset
            log.warning(
                "Bucket file %s has a damaged record at offset %d and no valid record after it; "
                "skipped its last %d bytes.",
                self.name,
                offset,
                size - offset,
            )
            return None
        stats.skipped_bytes += q - offset
        log.warning(
            "Bucket file %s has a damaged record at offset %d; skipped %d bytes to the next valid record.",
            self.name,
            offset,
            q - offset,
        )
        return q

    def _past_eof(self, src: _Source, offset: int, length: int, size: int) -> int | None:
        """A record running past EOF: the torn tail (return None: stop), unless
        a valid record follows, which means its length field was damaged."""
        stats = self.stats
        q = _resync(src, offset + 1, size)
        if q is None:
            stats.torn_tail = True
            stats.skipped_bytes += size - offset
            log.debug(
                "Bucket file %s ends with a torn record at offset %d (%d of %d bytes present).",
                self.name,
                offset,
                size - offset,
                8 + length,
            )
            return None
        stats.corrupt_records += 1
        stats.skipped_bytes += q - offset
        log.warning(
            "Bucket file %s has a record at offset %d whose length runs past the end of the file, "
            "yet valid records follow; skipped %d bytes to the next one.",
            self.name,
            offset,
            q - offset,
        )
        return q


def _resync(src: _Source, frm: int, size: int) -> int | None:
    """The first offset >= frm where a valid, corroborated record starts."""
    q0 = frm
    while size - q0 >= 8:
        block = memoryview(src.read_at(q0, _SCAN_BLOCK + 7))
        # A plausible length is <= min(MAX_RECORD, bytes left), so its first
        # byte is at most that bound >> 24: the regex engine skips, in C, every
        # position that cannot start a header (in a file under 16 MB, all but
        # the zero bytes), and every run of zeros, which is never a header.
        bound = min(MAX_RECORD, size - q0 - 8)
        candidates = _candidate_pattern(min(bound >> 24, 0xFF))
        for m in candidates.finditer(block, 0, min(_SCAN_BLOCK, len(block) - 7)):
            i = m.start()
            length, crc = HEADER.unpack_from(block, i)
            if _is_record(src, q0 + i, length, crc, size, block, q0):
                return q0 + i
        q0 += _SCAN_BLOCK
    return None


def _is_record(src: _Source, q: int, length: int, crc: int, size: int, block: memoryview, block_start: int) -> bool:
    """Does a valid record start at offset q? Cheapest tests first."""
    end = q + 8 + length
    if length > MAX_RECORD or end > size:
        return False
    i = q - block_start
    if end - block_start <= len(block):  # in memory: its crc is cheap, check it first
        return _crc(block[i : i + 4], block[i + 8 : i + 8 + length]) == crc and _chain_plausible(
            src, end, size, block, block_start
        )
    if not _chain_plausible(src, end, size, block, block_start):
        return False
    c = zlib.crc32(block[i : i + 4])
    pos, left = q + 8, length
    while left:
        data = src.read_at(pos, min(left, 1 << 20))
        if not data:
            return False
        c = zlib.crc32(data, c)
        pos += len(data)
        left -= len(data)
    return c == crc


def _chain_plausible(src: _Source, n: int, size: int, block: memoryview, block_start: int) -> bool:
    """Do the _CHAIN_HOPS headers from offset n on have lengths that keep
    them inside the file (or end exactly at its end)?"""
    for _ in range(_CHAIN_HOPS):
        if size - n < 8:
            return True  # the end of the file, or a torn header
        j = n - block_start
        if j + 4 <= len(block):
            length = _LENGTH.unpack_from(block, j)[0]
        else:
            length = _LENGTH.unpack(src.read_at(n, 4))[0]
        n += 8 + length
        # A hop past the end could be a genuine torn tail, but random bytes
        # do that one time in 16 when the file is much smaller than
        # MAX_RECORD, far too often to be evidence.
        if length > MAX_RECORD or n > size:
            return False
    return True


_candidate_patterns: dict[int, re.Pattern[bytes]] = {}


def _candidate_pattern(top: int) -> re.Pattern[bytes]:
    """Positions whose first byte is <= top, not starting eight zero bytes."""
    p = _candidate_patterns.get(top)
    if p is None:
        p = _candidate_patterns[top] = re.compile(b"(?!\\x00{8})[\\x00-\\x%02x]" % top)
    return p


# --------------------------------------------------------------------------- helpers


def read_records(path: PathLike | BinaryIO, start: int = 0) -> RecordReader:
    """The payloads of a bucket file from ``start``; see ``RecordReader``."""
    return RecordReader(path, start)


def valid_end(path: PathLike | BinaryIO) -> ReadStats:
    """Scan a whole bucket file without keeping payloads. ``end`` is where the
    valid records end: what a writer truncates to on open."""
    reader = RecordReader(path)
    for _ in reader._run(keep=False):
        pass
    return reader.stats
