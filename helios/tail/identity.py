"""What a tailed file *is*: an identity drawn from its content, not its inode.

A line's id is ``model.line_id(identity, offset)``, so every copy of a line
(read through the live file, its copytruncate copy, its renamed or compressed
rotation, a glob that matches them all, after any restart) must get the same
identity, and two different contents must never share one.

The rule
--------
- The **prefix** of a file is its first line, newline included, up to
  ``PREFIX_BYTES``; a file whose first line is longer has its first
  ``PREFIX_BYTES`` bytes as prefix. A file has no identity until its prefix is
  complete (its first newline arrived, or ``PREFIX_BYTES`` are there; a file
  that never gets there is given the bytes it has when its last line is
  flushed): no line can be handed out before that anyway, and from then on the
  prefix does not change as the file grows. That is how a short file's
  identity stays stable: it is decided by bytes that never change.
- The identity of a new content is ``content_key(prefix, n, host)``: a 128-bit
  hash of the tailer's host name (two hosts never share an identity), the
  prefix and a number ``n``, 0 for the first content seen with this
  prefix, the next free number for another content with the same prefix
  (files that share a fixed first line, a file truncated and written again).
- Each known identity also records its **head**: the first bytes read of it,
  up to ``HEAD_BYTES`` (as a length and a hash: the positions file stays
  small). A file is *that* content when its prefix is the same and its first
  bytes agree with the head: all ``head_len`` of them; or, for a sealed file
  (compressed, so it can only be a copy), as many as it has. A live file
  shorter than a known head, or whose bytes differ within it, is another
  content that shares the first line: it gets its own ``n``. When several
  known contents agree, the one with the longest head wins (then the newest).
- A known content whose file is open right now under another inode, still
  holding it, is not the file looked at: that is a rename rotation whose new
  file starts with the same line as the old one.

Limits, said plainly: two files whose first ``HEAD_BYTES`` are identical and
that were only ever read that far look like one content; and a file that is
truncated and written again *while the tailer is down* with the same first
``HEAD_BYTES`` as before, and grows past the old offset, is taken for the old
one. Both need headers of 4 KiB that repeat byte for byte.

Entries written by the first positions format (keyed by device, inode and
first line) keep their keys, so lines read again after an upgrade get the ids
they had before it; they match a live file by device, inode and first line,
and a copy by first line, as that version did.
"""

from __future__ import annotations

import socket

import xxhash

PREFIX_BYTES = 1024
HEAD_BYTES = 4096


def prefix_of(head: bytes, complete: bool = False) -> bytes | None:
    """The prefix of a file that starts with ``head``, or None while it is not
    decided yet (no newline and fewer than PREFIX_BYTES bytes). ``complete``:
    the file will not grow (sealed, or its last line is being flushed)."""
    nl = head.find(b"\n", 0, PREFIX_BYTES)
    if nl >= 0:
        return head[: nl + 1]
    if len(head) >= PREFIX_BYTES:
        return head[:PREFIX_BYTES]
    return head if complete and head else None


def content_key(prefix: bytes, n: int = 0, scope: bytes = b"") -> bytes:
    """The identity of the ``n``-th content seen that starts with ``prefix``,
    on the host ``scope`` (two hosts' files that start alike are two contents)."""
    return xxhash.xxh3_128_digest(b"helios-content\0" + scope + b"\0" + prefix + (b"\0%d" % n if n else b""))


def default_scope() -> bytes:
    """The scope of a tailer that names no host: this machine's name (the
    host its events carry)."""
    return socket.gethostname().encode()


def head_hash(head: bytes) -> int:
    return xxhash.xxh3_64_intdigest(head)
