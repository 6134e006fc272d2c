"""The systemd journal's export format, and journal entries as events. Pure.

``journalctl -o export`` writes entries one after another, each a run of
fields ended by an empty line (``man systemd.journal-export-formats``)::

    KEY=value\\n                          a text field (no newline, printable)
    KEY\\n <64-bit LE length> <bytes> \\n  a binary field (anything else)
    \\n                                   the end of the entry

``parse`` and ``serialize`` are inverses (tested as round trips): an entry is
a list of (name, value bytes), in order, a name possibly repeated. ``parse``
takes a buffer that may end inside an entry and says how much it used, so a
reader of a pipe keeps the rest for the next read.

An entry becomes an event (``to_row``):

    MESSAGE               message (bytes as stored: a binary MESSAGE stays bytes)
    PRIORITY              severity (0..7; anything else: unknown)
    _HOSTNAME             host (else the tailer's)
    SYSLOG_IDENTIFIER, else _SYSTEMD_UNIT   app (else the tailer's app)
    _PID                  fields["pid"] (an integer)
    __REALTIME_TIMESTAMP  time (microseconds in the journal, ns in the event)
    __CURSOR              source_id and offset, hence the id (below)

Every other field is kept in ``fields`` under its journal name (a text value
as a string, a value that is not UTF-8 as bytes, a repeated name as a list;
a mapped field that is repeated is mapped from its first value and kept too),
except those in ``DROPPED``: the entry's address (kept as the id), and
trusted fields that are the same on every entry of a host or mean nothing
off it (capabilities, cgroup paths, SELinux context, stream ids).

Identity: the cursor's sequence number id (``s=``, random, 128 bits, drawn
when a journal starts a new numbering) and sequence number (``i=``, +1 per
entry written under that id, never reused). ``source_id`` is a hash of the
seqnum id and ``offset`` is the seqnum, so the id is ``line_id(source_id,
seqnum)`` like a tailed line's: the same for every read of the same entry of
the same journal files, whatever the tailer's restarts, filters or cursor.
Chosen over a hash of boot id, monotonic time and content (``b=``, ``m=``,
``x=``): two identical messages of one process in the same microsecond (a
burst, or imported entries) would share that id and the porter would keep
only one. (An entry copied into another journal, by systemd-journal-remote
for instance, is numbered again there: it has another id.)

For ``helios audit``: seqnums stand where a file's bytes stand. An entry's
span is ``(after, seqnum]``, ``after`` (``fields["journal_after"]``) being
the seqnum of the entry the tailer read before it in the same numbering
(itself minus one when none): the entries in between were filtered out or
are in journal files this tailer does not read (another user's, say), not
lost. So the spans of everything a tailer read join without a hole, and a
hole is an entry it read that no buck holds. The tailer's inventory has a
record per numbering (``JournalReader.inventory``: first and last seqnum
sent), so the last entries read, which no later span follows, are checked too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Mapping

import xxhash

from helios.errors import HeliosError

Entry = list[tuple[str, bytes]]

_LEN = struct.Struct("<Q")
MAX_FIELD = 768 * 1024 * 1024  # larger than journald's own limit; anything over it is a broken stream

# Addresses and noise: never kept as fields (see the module docstring).
ADDRESS = frozenset({"__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "__SEQNUM", "__SEQNUM_ID"})
MAPPED = frozenset({"MESSAGE", "PRIORITY", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_PID"})
NOISY = frozenset({"_CAP_EFFECTIVE", "_SELINUX_CONTEXT", "_SYSTEMD_CGROUP", "_SYSTEMD_SLICE",
                   "_SYSTEMD_OWNER_UID", "_STREAM_ID", "_SOURCE_MONOTONIC_TIMESTAMP", "_AUDIT_SESSION",
                   "_AUDIT_LOGINUID", "_MACHINE_ID", "_SYSTEMD_INVOCATION_ID"})
DROPPED = ADDRESS | MAPPED | NOISY
AFTER = "journal_after"   # the field that makes an event's audit span (module docstring)
CUT = "journal_cut"       # {field name: length as read} of values too long to carry (``to_row``)
MAX_VALUE = 1024 * 1024


class ExportFormatError(HeliosError):
    """The bytes are not journal export format."""


def parse(data: bytes | memoryview, final: bool = False) -> tuple[list[Entry], int]:
    """The complete entries at the start of ``data``, and how many bytes they
    took. With ``final``, the data ends there: a last entry without its empty
    line is taken as it is. ``ExportFormatError`` for data that is not the
    format (a field without a name, a binary field without its newline)."""
    data = bytes(data)
    entries: list[Entry] = []
    pos = used = 0
    end = len(data)
    names = _NAMES
    while pos < end:
        # Fast path: an entry of text fields only, up to its empty line, split at once. A
        # binary field's name line has no "=", so "every line has one" proves there is none
        # (and so that this empty line is not inside a binary value).
        stop = data.find(b"\n\n", pos)
        if stop > pos:
            pairs = [line.partition(b"=") for line in data[pos:stop].split(b"\n")]
            if all(sep and k for k, sep, _ in pairs):
                entries.append([(names.get(k) or _name(k), v) for k, _, v in pairs])
                pos = used = stop + 2
                continue
        got = _one(data, pos, end, final)
        if got is None:
            break
        entry, pos = got
        if entry:
            entries.append(entry)
        used = pos
    return entries, used


def _one(data: bytes, pos: int, end: int, final: bool) -> tuple[Entry, int] | None:
    """The entry at ``pos``, read field by field, and where the next one
    starts; None when it is not complete yet (an empty entry: a stray empty
    line). ``ExportFormatError`` as ``parse``."""
    entry: Entry = []
    while pos < end:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        if nl == pos:  # the empty line: the entry ends
            return entry, pos + 1
        eq = data.find(b"=", pos, nl)
        if eq >= 0:
            if eq == pos:
                raise ExportFormatError(f"a field without a name at byte {pos}")
            entry.append((data[pos:eq].decode("ascii", "replace"), data[eq + 1:nl]))
            pos = nl + 1
            continue
        # A binary field: its name, then length, value and a newline.
        start = nl + 1
        if start + 8 > end:
            return None
        (size,) = _LEN.unpack_from(data, start)
        if size > MAX_FIELD:
            raise ExportFormatError(f"a binary field of {size} bytes at byte {pos}")
        stop = start + 8 + size
        if stop + 1 > end:
            return None
        if data[stop] != 0x0A:
            raise ExportFormatError(f"the binary field {data[pos:nl][:64]!r} at byte {pos} does not end "
                                    "with a newline")
        entry.append((data[pos:nl].decode("ascii", "replace"), data[start + 8:stop]))
        pos = stop + 1
    return (entry, end) if final and entry else None


_NAMES: dict[bytes, str] = {}


def _name(raw: bytes) -> str:
    name = raw.decode("ascii", "replace")
    if len(_NAMES) < 4096:  # field names repeat; a stream of odd ones cannot grow this for ever
        _NAMES[raw] = name
    return name


def _is_text(value: bytes) -> bool:
    """What journalctl writes as ``KEY=value``: no control character but tab."""
    return not any(b < 0x20 and b != 0x09 or b == 0x7F for b in value)


CUT_PREFIX = "~cut "   # a pseudo field "~cut NAME=LENGTH": a value dropped while read (``oversized``)


def oversized(data: bytes, max_value: int) -> tuple[int, int, str, int] | None:
    """In ``data``, the start of an entry not complete yet, the first binary
    field longer than ``max_value``: (where its name starts, where its value
    starts, its name, its length), or None. A reader of a pipe uses it to drop
    such a value (a core dump can be hundreds of MB) as it streams by, instead
    of holding it whole: it puts a ``CUT_PREFIX`` text field in its place."""
    pos, end = 0, len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        if nl < 0 or nl == pos:
            return None
        if data.find(b"=", pos, nl) >= 0:
            pos = nl + 1
            continue
        if nl + 9 > end:
            return None
        (size,) = _LEN.unpack_from(data, nl + 1)
        if size > MAX_FIELD:
            raise ExportFormatError(f"a binary field of {size} bytes at byte {pos}")
        if size > max_value:
            return pos, nl + 9, data[pos:nl].decode("ascii", "replace"), size
        pos = nl + 9 + size + 1
    return None


def binary_field(name: str, value: bytes) -> bytes:
    return name.encode() + b"\n" + _LEN.pack(len(value)) + value + b"\n"


def serialize(entries: list[Entry]) -> bytes:
    """Export format of ``entries`` (the inverse of ``parse``)."""
    out = bytearray()
    for entry in entries:
        for name, value in entry:
            if _is_text(value):
                out += name.encode() + b"=" + value + b"\n"
            else:
                out += binary_field(name, value)
        out += b"\n"
    return bytes(out)


# --- cursors ---

@dataclass(frozen=True)
class Cursor:
    text: str
    seqnum_id: str
    seqnum: int


def parse_cursor(text: str) -> Cursor:
    """``s=SEQNUM_ID;i=SEQNUM(hex);b=...;m=...;t=...;x=...`` -> Cursor;
    ValueError when it is not one."""
    head = text.split(";", 2)
    if len(head) >= 2 and head[0][:2] == "s=" and head[1][:2] == "i=":   # journalctl's own order
        parts = {"s": head[0][2:], "i": head[1][2:]}
    else:
        parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    try:
        sid, seq = parts["s"], int(parts["i"], 16)
    except (KeyError, ValueError):
        raise ValueError(f"not a journal cursor: {text[:120]!r}") from None
    if not sid or len(sid) > 64:
        raise ValueError(f"not a journal cursor: {text[:120]!r}")
    return Cursor(text, sid, seq)


def series_key(seqnum_id: str) -> bytes:
    """The ``source_id`` of every entry numbered under ``seqnum_id``."""
    return xxhash.xxh3_128_digest(b"helios-journal\0" + seqnum_id.encode())


# --- entries to events ---

def _text(value: bytes) -> str | bytes:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _int(value: bytes | str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def unit_name(name: str) -> str:
    """A unit as journalctl names it: "nginx" is "nginx.service"."""
    return name if "." in name else name + ".service"


@dataclass(frozen=True)
class Filter:
    """Units and identifiers to include (only those: journalctl matches) and
    to exclude (dropped here, after reading)."""

    include_units: tuple[str, ...] = ()
    include_identifiers: tuple[str, ...] = ()
    exclude_units: tuple[str, ...] = ()
    exclude_identifiers: tuple[str, ...] = ()

    def matches(self) -> list[str]:
        """journalctl match arguments: the included units OR the included
        identifiers (matches on one field are ORed, ``+`` ORs two groups)."""
        units = [f"_SYSTEMD_UNIT={unit_name(u)}" for u in self.include_units]
        idents = [f"SYSLOG_IDENTIFIER={i}" for i in self.include_identifiers]
        return units + (["+"] if units and idents else []) + idents

    def excluded(self, entry: Entry) -> bool:
        """Is this entry one of an excluded unit or identifier?"""
        if not (self.exclude_units or self.exclude_identifiers):
            return False
        units = {unit_name(u).encode() for u in self.exclude_units}
        idents = {i.encode() for i in self.exclude_identifiers}
        return any(name == "_SYSTEMD_UNIT" and value in units or name == "SYSLOG_IDENTIFIER" and value in idents
                   for name, value in entry)


def to_row(entry: Entry, received: int, host: str, app: str, source: str, after: dict[str, int],
           max_value: int = MAX_VALUE) -> tuple[Any, ...] | None:
    """The event row (``helios.model.Event`` fields in order, id empty: it is
    derived from source_id and offset) of one entry; None for an entry
    without a cursor (not one journalctl wrote). ``after`` maps each seqnum
    id to the last seqnum read under it, and is updated.

    A value longer than ``max_value`` bytes (a core dump in ``COREDUMP``, say)
    would make a batch no buck takes: such a field is left out, a MESSAGE is
    cut to ``max_value`` bytes, and ``fields["journal_cut"]`` names each with
    its length as read."""
    cut: dict[str, int] = {}
    # Both checks in C: the longest value, and the greatest name ("~" sorts after every journal name).
    if max(map(len, map(itemgetter(1), entry)), default=0) > max_value or \
            max(map(itemgetter(0), entry), default="") >= "~":
        for name, value in entry:
            if len(value) > max_value:
                cut[name] = cut.get(name, 0) + len(value)
            elif name.startswith(CUT_PREFIX):   # dropped while read (oversized)
                cut[name[len(CUT_PREFIX):]] = cut.get(name[len(CUT_PREFIX):], 0) + int(value)
    if cut:
        entry = [(n, v[:max_value] if n == "MESSAGE" else v) for n, v in entry
                 if (n not in cut or n == "MESSAGE") and not n.startswith(CUT_PREFIX)]
    first = dict(entry)             # names in order; a repeated name's value is fixed below
    fields: dict[str, Any] = {name: _text(value) for name, value in first.items() if name not in DROPPED}
    if len(first) != len(entry):    # a name repeated: its first value maps, all are kept as a list
        seen: dict[str, list[bytes]] = {}
        for name, value in entry:
            seen.setdefault(name, []).append(value)
        for name, values in seen.items():
            first[name] = values[0]
            if len(values) > 1 and (name not in DROPPED or name in MAPPED):   # no value is lost
                fields[name] = [_text(v) for v in values]
    try:
        cursor = parse_cursor(first["__CURSOR"].decode("ascii"))
    except (KeyError, UnicodeDecodeError, ValueError):
        return None
    seq = cursor.seqnum
    prev = after.get(cursor.seqnum_id)
    fields[AFTER] = prev if prev is not None and prev < seq else seq - 1
    if cut:
        fields[CUT] = cut
    after[cursor.seqnum_id] = seq
    pid = _int(first.get("_PID"))
    if pid is not None:
        fields["pid"] = pid
    usec = _int(first.get("__REALTIME_TIMESTAMP"))
    time_ns = usec * 1000 if usec is not None and usec >= 0 else received
    prio = _int(first.get("PRIORITY"))
    severity = prio if prio is not None and 0 <= prio <= 7 else None
    h = first.get("_HOSTNAME")
    a = first.get("SYSLOG_IDENTIFIER") or first.get("_SYSTEMD_UNIT")
    return (b"", time_ns, received, h.decode("utf-8", "replace") if h else host,
            a.decode("utf-8", "replace") if a else app, severity, source, seq,
            first.get("MESSAGE", b""), fields, series_key(cursor.seqnum_id))


# --- entries to events in one pass (the reader's) ---

@dataclass
class Taken:
    """What ``take`` made of a buffer."""

    rows: list[tuple[Any, ...]]
    used: int                  # bytes of the entries taken (the rest waits for more)
    cursor: str | None         # that of the last entry taken, sent or excluded
    excluded: int = 0
    errors: int = 0            # entries without a cursor
    error: ExportFormatError | None = None   # the bytes at ``used`` are not the format


_KEYS: dict[str, bytes] = {}


def take(data: bytes, received: int, host: str, app: str, source: str, filter: Filter, after: dict[str, int],
         first: dict[str, int], max_value: int = MAX_VALUE) -> Taken:
    """The event rows of the complete entries at the start of ``data``: what
    ``parse``, ``Filter.excluded`` and ``to_row`` make of them, in one pass.
    ``after`` is updated as by ``to_row``; ``first`` gets the first seqnum
    of each numbering met for the first time. A format error ends the pass:
    the rows before it are kept (``Taken.error``).

    Most entries are text fields only, names not repeated, values short:
    such an entry is decoded and split into a dict at once (in C), and its
    row made from that dict, the dict itself becoming the fields (about
    half the CPU of ``parse`` and ``to_row``; bench/journal_ingest.py).
    Any other entry goes the field-by-field way, with the same result."""
    rows: list[tuple[Any, ...]] = []
    pos = used = excluded = errors = 0
    end = len(data)
    cursor: str | None = None
    units = {unit_name(u) for u in filter.exclude_units}
    idents = set(filter.exclude_identifiers)
    dropped = DROPPED.intersection
    try:
        while pos < end:
            stop = data.find(b"\n\n", pos)
            d: dict[str, Any] | None = None
            # Not here: an entry with a value that may be too long (to_row cuts it), with a
            # value dropped while read ("~cut NAME=LENGTH": to_row counts it), or not complete.
            if pos < stop and stop - pos <= max_value and data[pos] != 0x7E and data.find(b"\n~", pos, stop) < 0:
                try:
                    parts = data[pos:stop].decode().split("\n")
                    d = dict([p.split("=", 1) for p in parts])   # ValueError: a line without "=" (binary)
                except (UnicodeDecodeError, ValueError):
                    pass
                if d is not None and (len(d) != len(parts) or "" in d):   # a name repeated, or none
                    d = None
            if d is None:
                got = _one(data, pos, end, False)
                if got is None:
                    break
                entry, pos = got
                used = pos
                if not entry:
                    continue
                if filter.excluded(entry):
                    raw = next((v for k, v in entry if k == "__CURSOR"), None)
                    if raw is not None:
                        cursor = raw.decode("ascii", "replace")
                    excluded += 1
                    continue
                numberings = len(after)
                row = to_row(entry, received, host, app, source, after, max_value)
                if row is None:
                    errors += 1
                    continue
                if len(after) > numberings:
                    first.setdefault(next(reversed(after)), row[9][AFTER] + 1)
                cursor = next(v for k, v in entry if k == "__CURSOR").decode("ascii")
                rows.append(row)
                continue
            pos = used = stop + 2
            c = d.get("__CURSOR")
            if (units or idents) and (d.get("_SYSTEMD_UNIT") in units or d.get("SYSLOG_IDENTIFIER") in idents):
                if c is not None:
                    cursor = c
                excluded += 1
                continue
            found = _cursor_key(c)
            if found is None:
                errors += 1
                continue
            sid, seq = found
            prev = after.get(sid)
            if prev is None:
                first.setdefault(sid, seq)
            message = d.get("MESSAGE")
            pid = _int(d.get("_PID"))
            try:
                usec = int(d["__REALTIME_TIMESTAMP"])
            except (KeyError, ValueError):
                usec = None
            try:
                prio = int(d["PRIORITY"])
            except (KeyError, ValueError):
                prio = None
            h = d.get("_HOSTNAME")
            a = d.get("SYSLOG_IDENTIFIER") or d.get("_SYSTEMD_UNIT")
            for name in dropped(d):
                del d[name]
            d[AFTER] = prev if prev is not None and prev < seq else seq - 1
            after[sid] = seq
            if pid is not None:
                d["pid"] = pid
            key = _KEYS.get(sid)
            if key is None:
                key = series_key(sid)
                if len(_KEYS) < 1024:
                    _KEYS[sid] = key
            rows.append((b"", usec * 1000 if usec is not None and usec >= 0 else received, received,
                         h or host, a or app, prio if prio is not None and 0 <= prio <= 7 else None, source, seq,
                         message.encode() if message is not None else b"", d, key))
            cursor = c
    except ExportFormatError as exc:
        return Taken(rows, used, cursor, excluded, errors, exc)
    return Taken(rows, used, cursor, excluded, errors)


def _cursor_key(c: str | None) -> tuple[str, int] | None:
    """(seqnum id, seqnum) of a cursor as text; None when it is none or not a cursor."""
    if c is None or not c.isascii():     # (to_row decodes it as ASCII)
        return None
    try:
        s, i, _ = c.split(";", 2)    # journalctl's own order: s=...;i=...; else parse_cursor's way
        if s[:2] == "s=" and i[:2] == "i=" and 2 < len(s) <= 66:
            return s[2:], int(i[2:], 16)
    except ValueError:
        pass
    try:
        cur = parse_cursor(c)
    except ValueError:
        return None
    return cur.seqnum_id, cur.seqnum


def span(offset: int, fields: Mapping[str, Any]) -> tuple[int, int]:
    """The seqnums ``[after + 1, offset + 1)`` a journal event stands for in the audit."""
    return fields[AFTER] + 1, offset + 1
