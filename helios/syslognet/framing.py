"""Syslog over TCP: the framing of messages in a byte stream (RFC 6587). Pure, no I/O.

Two framings travel on the same ports, and a sender may even mix them, so
the framing is told apart per message, as rsyslog's imtcp does:

- **octet counting** (RFC 6587 3.4.1, RFC 5425 for TLS): ``LEN SP MSG``,
  where ``LEN`` is the message's length in bytes, in decimal. A message may
  hold newlines. A frame that starts with a digit is octet-counted.
- **newline framing** (non-transparent framing, RFC 6587 3.4.2): ``MSG LF``.
  A frame that starts with anything else (normally the ``<`` of a PRI).

``Deframer.feed(data)`` takes what a socket gave and returns the complete
messages in it; what is left (a message cut by the read) waits for the next
``feed``. ``finish()`` gives the last bytes of a stream that ended without its
newline (or in the middle of an octet-counted frame) as a last message.
``octet_frame`` and ``newline_frame`` are the senders' side: ``feed`` of
their output gives the messages back (tested as round trips).

What is not a well-formed frame is never fatal; it is counted in
``problems`` (reason -> count) and the stream goes on:

- ``oversized``: a message longer than ``max_size`` is truncated to its
  first ``max_size`` bytes and marked (its index is in ``truncated``): the
  head of a syslog message (priority, time, host, app) is what makes it
  findable, so an event with its head beats a dropped one. The rest of the
  message is skipped, however long (rsyslog does the same).
- ``malformed octet count``: a digit starts the frame but no ``LEN SP``
  follows (more than 9 digits, a non-digit before the space): rsyslog then
  reads the frame as newline-framed, and so does this.
- ``empty message``: an empty line or a zero-length frame is left out.
- ``incomplete frame``: the stream ended inside an octet-counted frame;
  what came is kept, marked truncated.

Speed: a stream of newline-framed messages (the common case: ``logger``,
most appliances) is cut with a handful of C calls per read, whatever the
number of messages; octet-counted frames take a short Python step each.
``feed_raw`` leaves that run of newline-framed messages uncut, as one block,
for ``split_block`` in another process (the relay's framing processes,
``helios.syslognet.workers``): the reading process then makes no object per
message.
"""

from __future__ import annotations

import re
from collections import Counter

MAX_DIGITS = 9            # a length of up to 999,999,999 bytes: more is not a length
_DIGIT_AFTER_LF = re.compile(rb"\n[0-9]")

try:    # the same test in C (helios/_speedups.c): the regex costs a quarter of the relay's own time
    from helios._speedups import digit_after_newline
except ImportError:     # pragma: no cover (a build without a C compiler)
    def digit_after_newline(data: bytes, end: int) -> bool:
        """Does a line of ``data[:end]`` other than the first start with a digit?"""
        return _DIGIT_AFTER_LF.search(data, 0, end) is not None


def octet_frame(messages: list[bytes]) -> bytes:
    """The octet-counted framing of ``messages`` (RFC 6587 3.4.1)."""
    return b"".join(b"%d %s" % (len(m), m) for m in messages)


def newline_frame(messages: list[bytes]) -> bytes:
    """The newline framing of ``messages``; none may hold a newline or be
    empty or start with a digit (such a message is not newline-framable)."""
    for m in messages:
        if not m or b"\n" in m or m[:1].isdigit():
            raise ValueError(f"message {m[:40]!r} cannot be sent newline-framed")
    return b"".join(m + b"\n" for m in messages)


def split_block(block: bytes, max_size: int) -> tuple[list[bytes], list[int], dict[str, int], int]:
    """The messages of a run of newline-framed ones (``Deframer.feed_raw``'s
    block: no frame in it starts with a digit, no trailing newline): (messages,
    indexes of the truncated ones, problems, bytes skipped). Empty lines are
    left out and lines over ``max_size`` are cut, as ``Deframer`` does."""
    out = block.split(b"\n")
    problems: dict[str, int] = {}
    cut: list[int] = []
    skipped = 0
    if b"" in out:
        n = len(out)
        out = [x for x in out if x]
        problems["empty message"] = n - len(out)
    if len(block) > max_size and out and max(map(len, out)) > max_size:
        for i, m in enumerate(out):
            if len(m) > max_size:
                cut.append(i)
                skipped += len(m) - max_size
                out[i] = m[:max_size]
        problems["oversized"] = len(cut)
    return out, cut, problems, skipped


class Deframer:
    """Cuts one stream into messages (see the module docstring)."""

    def __init__(self, max_size: int = 64 * 1024) -> None:
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        self.rest = b""
        self.skip = 0             # bytes still to skip of an oversized octet-counted frame
        self.skip_line = False    # skipping to the next newline (an oversized newline-framed message)
        self.problems: Counter[str] = Counter()
        self.truncated: list[int] = []   # indexes, in the last result, of the truncated messages
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The complete messages of what the stream has given so far."""
        block, out = self.feed_raw(data)
        if not block:
            return out
        first, cut, problems, skipped = split_block(block, self.max_size)
        self.problems.update(problems)
        self.skipped_bytes += skipped
        self.truncated = cut + [len(first) + i for i in self.truncated]
        return first + out

    def feed_raw(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """As ``feed``, but the leading run of newline-framed messages comes
        uncut, as one block for ``split_block`` (which another process may
        run): (block, the messages after it). ``truncated`` indexes the
        messages after the block."""
        self.truncated = []
        rest = self.rest
        if rest:
            if not (self.skip or self.skip_line) and b"\n" not in rest and not rest[:1].isdigit():
                # The common case: the start of a message, then a read that ends
                # it and holds more: the read is searched apart and joined to it
                # once (not joined, then cut).
                last = data.rfind(b"\n")
                if last >= 0 and not digit_after_newline(data, last):
                    self.rest = b""
                    tail = data[last + 1:]
                    return b"".join((rest, memoryview(data)[:last])), (self._slow(tail) if tail else [])
            data = rest + data
            self.rest = b""
        if self.skip or self.skip_line:
            data = self._skip(data)
        if not data:
            return b"", []
        # The common case in C: a run of newline-framed messages, none
        # starting with a digit (which would be octet counting).
        last = data.rfind(b"\n")
        if last >= 0 and not data[:1].isdigit() and not digit_after_newline(data, last):
            tail = data[last + 1:]
            return data[:last], (self._slow(tail) if tail else [])
        return b"", self._slow(data)

    def finish(self) -> list[bytes]:
        """The end of the stream: what is left becomes a last message."""
        self.truncated = []
        rest, self.rest = self.rest, b""
        if self.skip or self.skip_line or not rest:
            return []
        if rest[:1].isdigit():
            m = re.match(rb"([0-9]{1,9}) ", rest)
            if m and int(m[1]) > 0:
                self.problems["incomplete frame"] += 1
                self.truncated = [0]
                return [rest[m.end():][: self.max_size]]
        if len(rest) > self.max_size:
            self.problems["oversized"] += 1
            self.truncated = [0]
            rest = rest[: self.max_size]
        return [rest]

    # -- the slow path: one frame at a time ----------------------------------

    def _skip(self, data: bytes) -> bytes:
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                self.skipped_bytes += len(data)
                return b""
            self.skipped_bytes += self.skip
            data, self.skip = data[self.skip:], 0
        if self.skip_line:
            nl = data.find(b"\n")
            if nl < 0:
                self.skipped_bytes += len(data)
                return b""
            self.skipped_bytes += nl + 1
            data, self.skip_line = data[nl + 1:], False
        return data

    def _slow(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos, n, limit = 0, len(data), self.max_size
        while pos < n:
            if 48 <= data[pos] <= 57:            # a digit: octet counting
                sp = data.find(b" ", pos, pos + MAX_DIGITS + 1)
                if sp < 0 and n - pos <= MAX_DIGITS:
                    break                        # the length is not all here yet
                length = int(data[pos:sp]) if sp > pos and data[pos:sp].isdigit() else 0
                if length > 0:
                    start = sp + 1
                    end = start + length
                    if length > limit:
                        if n - start < limit:
                            break                # wait for the head of it
                        self.problems["oversized"] += 1
                        self.truncated.append(len(out))
                        out.append(data[start:start + limit])
                        if end > n:
                            self.skip = end - n
                            self.skipped_bytes += n - start - limit
                            pos = n
                            break
                        self.skipped_bytes += length - limit
                        pos = end
                        continue
                    if end > n:
                        break                    # the rest of the frame is still to come
                    out.append(data[start:end])
                    pos = end
                    continue
                if sp == pos + 1 and data[pos] == 48:   # "0 ": an empty frame
                    self.problems["empty message"] += 1
                    pos = sp + 1
                    continue
                self.problems["malformed octet count"] += 1
                # rsyslog's fallback: this frame is newline-framed.
            nl = data.find(b"\n", pos)
            if nl < 0:
                if n - pos > limit:
                    self.problems["oversized"] += 1
                    self.truncated.append(len(out))
                    out.append(data[pos:pos + limit])
                    self.skipped_bytes += n - pos - limit
                    self.skip_line = True
                    pos = n
                break
            if nl == pos:
                self.problems["empty message"] += 1
            elif nl - pos > limit:
                self.problems["oversized"] += 1
                self.truncated.append(len(out))
                out.append(data[pos:pos + limit])
                self.skipped_bytes += nl - pos - limit
            else:
                out.append(data[pos:nl])
            pos = nl + 1
        self.rest = data[pos:]
        return out
