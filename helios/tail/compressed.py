"""Compressed rotations (gzip, bzip2, zstd, xz): read as their uncompressed content.

A rotated file is recognised as compressed by its first bytes (its magic), not
its name, so ``compressext`` and odd suffixes do not matter and a compressed
file is never read as text. Its offsets are those of the uncompressed content,
so a file read up to byte O before it was compressed is resumed at O.

A compressed file that is cut short or damaged is read as far as it goes: the
bytes before the damage are handed out, and the damage is returned as a
sentence (the tailer's inventory records it as "corrupt"), never raised.
"""

from __future__ import annotations

import bz2
import lzma
import os
import tempfile
import zlib
from dataclasses import dataclass
from typing import Iterator

import zstandard

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"))
_BZ2_BLOCK = b"1AY&SY"  # after b"BZh" and the level digit: a text line cannot be taken for bzip2
CHUNK = 1 << 20
HEAD_CHUNK = 1 << 14


def kind(path: str) -> str | None:
    """'gzip', 'bzip2', 'zstd', 'xz' or None (plain), from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            magic = f.read(10)
    except OSError:
        return None
    if magic[:3] == b"BZh" and magic[3:4].isdigit() and (magic[4:] == _BZ2_BLOCK or magic[4:] == b"\x17rE8P\x90"):
        return "bzip2"  # (an empty bzip2 stream has the end-of-stream magic there)
    return next((name for m, name in _MAGIC if magic.startswith(m)), None)


def _decompressor(name: str):
    if name == "gzip":
        return zlib.decompressobj(wbits=31)
    if name == "bzip2":
        return bz2.BZ2Decompressor()
    if name == "zstd":
        return zstandard.ZstdDecompressor().decompressobj()
    return lzma.LZMADecompressor()


_ERRORS = (zlib.error, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, ValueError)


def stream(path: str, name: str, problems: list[str], chunk_size: int = CHUNK,
           fd: int | None = None) -> Iterator[bytes]:
    """The uncompressed bytes of ``path`` (or of the open descriptor ``fd``,
    read from its start, left open), every member or frame in turn; what goes
    wrong is appended to ``problems`` and ends the stream."""
    d = _decompressor(name)
    started = False
    try:
        with (open(path, "rb") if fd is None else os.fdopen(os.dup(fd), "rb")) as f:
            if fd is not None:
                f.seek(0)
            while chunk := f.read(chunk_size):
                while chunk:
                    out = d.decompress(chunk)
                    started = True
                    if out:
                        yield out
                    if not d.eof:
                        break
                    chunk = d.unused_data
                    if chunk.strip(b"\0"):
                        d = _decompressor(name)  # another member (gzip) or frame (zstd)
                    else:
                        chunk = b""
        if started and not d.eof:
            problems.append(f"the {name} stream ends early (the file is cut short)")
    except _ERRORS as exc:
        problems.append(f"the {name} data is damaged ({exc})")


def head(path: str, name: str, n: int, fd: int | None = None) -> tuple[bytes, list[str]]:
    """The first ``n`` uncompressed bytes (fewer if there are not that many)."""
    problems: list[str] = []
    got = bytearray()
    for block in stream(path, name, problems, HEAD_CHUNK, fd=fd):  # a small read: its first bytes only
        got += block
        if len(got) >= n:
            return bytes(got[:n]), []
    return bytes(got), problems


@dataclass
class Extracted:
    fd: int | None   # a temporary file holding the uncompressed bytes from ``base`` on
    base: int        # the uncompressed offset of the temporary file's byte 0
    size: int        # uncompressed bytes read in all
    problem: str     # "" when the whole file decompressed
    line_start: int = 0  # the uncompressed offset where the line holding byte ``base`` starts


def extract(path: str, name: str, skip: int, fd: int | None = None) -> Extracted:
    """Decompress ``path`` (or the open ``fd``: the very file that was looked
    at, whatever its name holds now) to an anonymous temporary file, leaving
    out its first ``skip`` bytes (already read): a file finished from near its
    end costs little disk."""
    problems: list[str] = []
    tmp = tempfile.TemporaryFile()
    total = start = 0
    try:
        for block in stream(path, name, problems, fd=fd):
            if total < skip:
                nl = block.rfind(b"\n", 0, skip - total)
                if nl >= 0:
                    start = total + nl + 1
            if total + len(block) > skip:
                tmp.write(block[max(0, skip - total):])
            total += len(block)
        tmp.flush()
        fd = os.dup(tmp.fileno())
    finally:
        tmp.close()
    return Extracted(fd, skip, total, "; ".join(problems), start if skip else 0)


def holds_exactly(path: str, name: str | None, n: int) -> bool:
    """True when the file's header or trailer says its uncompressed size is
    ``n`` (gzip: modulo 4 GiB), so that a content already read to ``n`` need
    not be decompressed again. False when it cannot be told cheaply."""
    hint = size_hint(path, name)
    return hint is not None and hint == (n & 0xFFFFFFFF if name == "gzip" else n)


def size_hint(path: str, name: str | None) -> int | None:
    """The uncompressed size as the gzip trailer or a zstd frame header says, or None."""
    try:
        with open(path, "rb") as f:
            if name == "gzip":
                f.seek(-4, os.SEEK_END)
                return int.from_bytes(f.read(4), "little")
            if name == "zstd":
                size = zstandard.frame_content_size(f.read(18))
                return size if size >= 0 else None
    except (OSError, zstandard.ZstdError, ValueError):
        return None
    return None
