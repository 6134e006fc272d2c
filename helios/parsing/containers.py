"""Container log records: Docker's json-file driver and the CRI format
(containerd, CRI-O, Kubernetes' /var/log/pods), unwrapped and joined.

A Docker json-file line is ``{"log": "text\\n", "stream": "stdout", "time":
"2024-03-11T08:15:02.118Z"}``: the application's line is ``log``, without its
newline. Docker splits a line longer than 16 KiB into records whose ``log``
does not end in a newline; the record that does ends the line.

A CRI line is ``TIME STREAM TAG text``: ``2024-03-11T08:15:02.118Z stdout F
text``; TAG ``P`` marks a partial record, ``F`` the last (or only) one.

``record`` reads one line of either kind. ``join_lines`` is what the tailer
calls with the raw lines of a container log file in order, carrying its
``pending`` list from call to call: it gives one event per application line
(records split by the runtime joined), ready for ``Chunk.events`` (see its
docstring); ``join_partials`` does the same on records already read.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, NamedTuple

_CRI = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)) (stdout|stderr) ([PF])(?: (.*))?",
                  re.S)


class Record(NamedTuple):
    time: bytes        # the runtime's timestamp, as written (RFC 3339)
    stream: str        # "stdout" or "stderr"
    text: bytes        # the application's bytes, without a final newline
    partial: bool      # more of the same line follows in the next record


def cri(line: bytes) -> Record | None:
    m = _CRI.fullmatch(line.rstrip(b"\r"))
    if m is None:
        return None
    return Record(m[1], m[2].decode(), m[4] or b"", m[3] == b"P")


def docker(line: bytes) -> Record | None:
    if line[:1] != b"{":
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(obj, dict) and isinstance(obj.get("log"), str) and "stream" in obj):
        return None
    text = obj["log"]
    partial = not text.endswith("\n")
    if not partial:
        text = text[:-1]
    return Record(str(obj.get("time", "")).encode(), str(obj.get("stream", "")),
                  text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8"), partial)


def record(line: bytes) -> Record | None:
    """The container record of a line (Docker json-file or CRI), else None."""
    return docker(line) if line[:1] == b"{" else cri(line)


MAX_JOINED = 1024 * 1024


def join_partials(pending: list[tuple[int, Record]], items: Iterable[tuple[int, Record]],
                  max_bytes: int = MAX_JOINED) -> tuple[list[tuple[int, Record]], list[tuple[int, Record]]]:
    """Joins partial records into whole lines.

    ``items`` are (offset of the record's line in the file, record) in file
    order; ``pending`` is what the previous call returned as pending (partial
    records whose line has not ended yet: [] at first). Returns (lines,
    pending): each line is (offset of its first record, a Record whose text
    is the joined text, partial False). Pieces of stdout and stderr are
    joined separately, as the runtimes write them. A line that grows past
    ``max_bytes`` is given out as it is, marked partial, so memory is bounded.
    Pure: the same inputs give the same outputs; nothing is dropped.
    """
    out: list[tuple[int, Record]] = []
    open_: dict[str, list[tuple[int, Record]]] = {}
    for offset, rec in pending:
        open_.setdefault(rec.stream, []).append((offset, rec))
    for offset, rec in items:
        pieces = open_.setdefault(rec.stream, [])
        pieces.append((offset, rec))
        size = sum(len(r.text) for _, r in pieces)
        if not rec.partial or size >= max_bytes:
            first_offset, first = pieces[0]
            text = b"".join(r.text for _, r in pieces)
            out.append((first_offset, Record(first.time, rec.stream, text, rec.partial)))
            pieces.clear()
    still = sorted((p for pieces in open_.values() for p in pieces), key=lambda p: p[0])
    return out, still


class Joined(NamedTuple):
    """One event of a container log file, for the tailer's slow path
    (``Chunk.events``): ``head`` is its first raw line (what the parser
    reads: the runtime's time, stream, and the start of the text),
    ``message`` the application's whole line, ``fields`` what the audit and
    a reader need (``line_bytes``: the raw bytes it covers, newlines between
    its records included; ``pieces``)."""

    offset: int
    head: bytes
    message: bytes
    fields: dict


def join_lines(pending: list[tuple[int, bytes, Record]], lines: Iterable[tuple[int, bytes]],
               max_bytes: int = MAX_JOINED) -> tuple[list[Joined], list[tuple[int, bytes, Record]]]:
    """The tailer's entry point: raw lines of a container log file, (offset,
    line without its newline) in file order, to events; records split by
    the runtime are joined. A line that is no container record is an event
    of its own. ``pending`` carries the records of a line not ended yet from
    one call to the next (start with []); their offsets are not to be
    committed until they come back joined. Pure."""
    out: list[Joined] = []
    open_: dict[str, list[tuple[int, bytes, Record]]] = {}
    for item in pending:
        open_.setdefault(item[2].stream, []).append(item)

    def close(pieces: list[tuple[int, bytes, Record]], partial: bool) -> None:
        first_offset, first_line, _ = pieces[0]
        last_offset, last_line, _ = pieces[-1]
        fields = {"line_bytes": last_offset + len(last_line) - first_offset}
        if len(pieces) > 1:
            fields["pieces"] = len(pieces)
        if partial or len(pieces) > 1:
            # Said either way: the parser, reading the head alone, calls it partial.
            fields["partial"] = partial
        out.append(Joined(first_offset, first_line, b"".join(r.text for _, _, r in pieces), fields))

    for offset, line in lines:
        rec = record(line)
        if rec is None:
            out.append(Joined(offset, line, line, {}))
            continue
        pieces = open_.setdefault(rec.stream, [])
        pieces.append((offset, line, rec))
        if not rec.partial or sum(len(r.text) for _, _, r in pieces) >= max_bytes:
            close(pieces, rec.partial)
            pieces.clear()
    still = sorted((p for pieces in open_.values() for p in pieces), key=lambda p: p[0])
    return out, still
