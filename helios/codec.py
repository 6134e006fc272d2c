"""The batch frame: the only module that knows how events travel and rest.

Tailers and clients encode; bucks check frames and store them as they
arrived; the porter and the tools decode. ``encode_rows`` / ``encode_events``
and ``decode`` are inverses, tested as round trips.

Frame layout (all integers big-endian)::

    offset  size  field
    0       1     version            FORMAT_VERSION (1); anything else is refused
    1       1     flags              bit 0: payload is lz4-block compressed;
                                     bit 1: payload is runs (columns), not rows
    2       2     header length H
    4       4     crc32 of bytes 8..end (header and payload)
    8       H     header: msgpack [environment, host, count, first_time, last_time, raw_size]
                  and, optionally, a 7th field: the input kind (see below)
    8+H     ...   payload: msgpack array of ``count`` events as positional arrays
                  (``helios.model.Event`` minus ``environment``; a row without its
                  last field, ``source_id``, is read with b""), lz4-compressed
                  when flag bit 0 is set; ``raw_size`` is its uncompressed size.
                  With flag bit 1 (``FLAG_RUNS``, the tailer's frames) the payload
                  is instead a msgpack array of *runs*, each the lines of one file
                  that share their source, source_id and receive time:
                  ``[source, source_id, received, times, hosts, apps, severities,
                  offsets, messages, fields]``, the last seven arrays of one length;
                  every event of a run has an empty id (derived, as below). Plain
                  lines go as one block: ``offsets`` is then the first line's
                  offset (an integer) and ``messages`` the lines as read, each
                  ending with a newline (binary); the messages are the lines
                  without it, each line's offset follows from the lengths.
                  A run of messages that have no position (``encode_messages``:
                  syslog over the network) has ``offsets`` nil instead: its
                  ``source_id`` is then the run's *id base*, 16 random bytes made
                  once with the frame, and its i-th event (from 0) has the id
                  ``model.line_id(base, i)``, offset nil and an empty source_id;
                  its ``messages`` may be one block (bytes, each message ending
                  with a newline), and an optional 11th field, a map, is added to
                  every event's fields (over the event's own: a connection's peer).

Why this shape:

- The header is readable without decompressing, so a buck can route and count
  a batch (environment, count, time span) and verify its checksum without
  unpacking a single event: it stores the frame exactly as it arrived.
- The crc covers header and payload, so a flipped bit anywhere is caught
  before anything is unpacked (verify at the trust boundary).
- ``raw_size`` lets the decoder refuse a decompression bomb before it
  allocates, and gives lz4 the exact output size.
- What can be derived is not stored: a tailed line's id is
  ``model.line_id(source_id, offset)``, so the tailer sends an empty id and
  ``decode_rows`` fills it in. Random ids do not compress; on the benchmark
  file this takes a stored event from about 72 to about 50 bytes.
- Runs: a tailed line's source, source_id and receive time are the same for
  every line of a read; sent once per run, not once per line, they are not
  packed, compressed and unpacked again for every line (on the benchmark file
  the packed payload goes from about 204 to about 140 bytes per line), and the
  tailer packs its parsed columns as they are, without making a row per line;
  plain lines go as the bytes read, split again by the decoder (frames about
  43 bytes per line instead of 50).
  Decoding a run gives the same rows as the row layout would.
- Runs of messages (syslog): the sender, input and receive time of a read
  once, the fields every message of a connection has (its peer) once, the
  newline-framed messages as the bytes read, and no stored id: the base makes
  each event's id, the same in every copy of the frame (live, re-sent from the
  spool), distinct between events. A reader older than them refuses such a
  frame (its run has 11 fields, or nil offsets): it never misreads one.
- ``environment`` and the sending ``host`` travel once per batch; a batch is
  always one environment. ``first_time``/``last_time`` are the least and
  greatest event times in the batch.

- The input kind says what the sender read the events from (``file``,
  ``journal``, ``container``, ``syslog/udp``, ``syslog/tcp``, ``syslog/tls``),
  so a buck counts senders and events per input (``helios status``, the
  ``helios_input_*`` metrics) without decoding. It is optional: a frame
  without it (older senders, clients) has the same bytes as before and
  decodes with ``input`` "" . A buck older than this field refuses frames
  that carry it: upgrade the bucks before their senders.

Every way a frame can be wrong raises ``FrameError`` with a sentence saying
what is wrong; no msgpack, lz4 or struct exception leaks out.
"""

from __future__ import annotations

import marshal
import struct
import zlib
from itertools import accumulate, repeat
from operator import add
from typing import Any, Iterable, NamedTuple, Sequence

import lz4.block
import msgpack

from helios.errors import FrameError
from helios.model import ID_BYTES, ROW_FIELDS, SHORT_ROW_FIELDS, Event, line_id

FORMAT_VERSION = 1
FLAG_LZ4 = 0x01
FLAG_RUNS = 0x02
KNOWN_FLAGS = FLAG_LZ4 | FLAG_RUNS
RUN_FIELDS = 10  # source, source_id, received, then 7 columns
MESSAGE_RUN_FIELDS = 11  # a run of messages without positions: the same, then the fields they share

_PREFIX = struct.Struct(">BBHI")
PREFIX_SIZE = _PREFIX.size  # 8
MAX_HEADER = 4096
# Default cap on the uncompressed payload: bigger than any sane batch, small
# enough that a hostile frame cannot make a buck allocate gigabytes.
DEFAULT_MAX_RAW = 64 * 1024 * 1024
MAX_NAME = 255  # environment and host names
MAX_INPUT = 32  # an input kind: short, [a-z0-9] then [a-z0-9._/-]
_INPUT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._/-")
# What every index and the archive can hold: times and offsets are int64 (ns).
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# Host, app and source are exact-match terms of the index: Elasticsearch and
# OpenSearch refuse a keyword over 32,766 bytes (and with it the whole load),
# so none may be longer than this many characters (4 bytes each at most).
MAX_TERM = 8191
# The mark a buck leaves in the fields of an event whose time it corrected
# (see ``vet``): {"time": the time as sent, as text, "why": a sentence}, and
# "received" likewise when that was corrected too.
CORRECTED = "helios.corrected"


class BatchHeader(NamedTuple):
    version: int
    flags: int
    environment: str
    host: str
    count: int  # type: ignore[assignment]  # shadows tuple.count, which no caller uses
    first_time: int
    last_time: int
    raw_size: int
    payload_offset: int  # where the payload starts in the frame
    input: str = ""      # the input kind the sender read the events from ("": not said)


def encode_rows(
    environment: str,
    host: str,
    rows: Sequence[Sequence[Any]],
    first_time: int,
    last_time: int,
    *,
    compress: bool = True,
    input: str = "",
) -> bytes:
    """Encode rows (positional arrays in ``Event`` field order, without
    environment) into one frame: events of clients, the journal, the bucks'
    HTTP and syslog inputs (the tailer's lines go as runs: ``encode_runs``).
    ``input``: the input kind (see the module docstring); "" leaves it out."""
    try:
        raw: bytes = msgpack.packb(rows, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FrameError(f"cannot encode batch: {exc}") from None
    return _frame(environment, host, len(rows), first_time, last_time, raw, 0, compress, input)


Run = tuple[Any, ...]  # (source, source_id, received, times, hosts, apps, severities, offsets, messages, fields)


def encode_runs(
    environment: str,
    host: str,
    runs: Sequence[Run],
    first_time: int,
    last_time: int,
    *,
    compress: bool = True,
    input: str = "",
) -> bytes:
    """Encode runs of tailed lines (see the module docstring: the lines of
    one file sharing source, source_id and receive time, as columns) into
    one frame; ``decode_rows`` gives the rows ``encode_rows`` would have
    carried, ids derived. The tailer's hot path: its parser makes columns."""
    count = 0
    for run in runs:
        n = len(run[3]) if len(run) == RUN_FIELDS else -1
        block = n >= 0 and type(run[7]) is int
        if block and not _is_block(run[7], run[8]):
            raise FrameError("cannot encode batch: a run's block of lines must be bytes ending with a newline, "
                             "its offset not negative")
        if n < 0 or any(len(col) != n for col in (run[4:7] + run[9:] if block else run[4:])):
            raise FrameError(f"cannot encode batch: a run must be {RUN_FIELDS} fields, its columns of one length")
        count += n
    return _runs_frame(environment, host, runs, count, first_time, last_time, compress, input)


def encode_messages(
    environment: str,
    host: str,
    runs: Sequence[Run],
    first_time: int,
    last_time: int,
    *,
    compress: bool = True,
    input: str = "",
) -> bytes:
    """Encode runs of messages that have no position (see the module
    docstring): ``(source, id_base, received, times, hosts, apps, severities,
    None, messages, fields, shared_fields)``, ``messages`` a list or one
    block of newline-ended messages, ``shared_fields`` a map or None;
    ``decode_rows`` gives each event its id (``model.line_id(id_base, i)``)
    and its fields merged with the shared ones. The syslog relay's frames."""
    count = 0
    for run in runs:
        if len(run) != MESSAGE_RUN_FIELDS or run[7] is not None:
            raise FrameError(f"cannot encode batch: a run of messages must be {MESSAGE_RUN_FIELDS} fields, "
                             "its offsets nil")
        n = len(run[3])
        messages = run[8]
        if type(messages) is bytes:
            # (Its messages are counted by the decoder: a count here would cost as much as the rest.)
            if messages[-1:] not in (b"\n", b"") or (n > 0) != (messages != b""):
                raise FrameError("cannot encode batch: a run's block of messages must be bytes of one "
                                 "newline-ended message per event")
        elif len(messages) != n:
            raise FrameError("cannot encode batch: a run's columns must be of one length")
        if type(run[1]) is not bytes or len(run[1]) != ID_BYTES or \
                (run[10] is not None and type(run[10]) is not dict) or \
                any(len(col) != n for col in run[4:7] + run[9:10]):
            raise FrameError(f"cannot encode batch: a run of messages needs a {ID_BYTES}-byte id base, "
                             "columns of one length and shared fields that are a map or nil")
        count += n
    return _runs_frame(environment, host, runs, count, first_time, last_time, compress, input)


def _runs_frame(environment: str, host: str, runs: Sequence[Run], count: int, first_time: int, last_time: int,
                compress: bool, input: str) -> bytes:
    """The frame of runs checked by ``encode_runs`` or ``encode_messages``."""
    try:
        raw: bytes = msgpack.packb(runs, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FrameError(f"cannot encode batch: {exc}") from None
    return _frame(environment, host, count, first_time, last_time, raw, FLAG_RUNS, compress, input)


def _frame(environment: str, host: str, count: int, first_time: int, last_time: int, raw: bytes,
           flags: int, compress: bool, input: str = "") -> bytes:
    try:
        fields = [environment, host, count, first_time, last_time, len(raw)]
        if input:
            problem = input_problem(input)
            if problem:
                raise FrameError(f"cannot encode batch: {problem}")
            fields.append(input)
        header: bytes = msgpack.packb(fields, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FrameError(f"cannot encode batch: {exc}") from None
    if len(header) > MAX_HEADER:
        raise FrameError(f"batch header is {len(header)} bytes, over the limit of {MAX_HEADER}")
    if compress:
        payload: bytes = lz4.block.compress(raw, store_size=False)
        flags |= FLAG_LZ4
    else:
        payload = raw
    body = header + payload
    return _PREFIX.pack(FORMAT_VERSION, flags, len(header), zlib.crc32(body)) + body


def input_problem(kind: str) -> str | None:
    """Why ``kind`` is not an input kind a frame may carry, or None."""
    if type(kind) is not str or not 1 <= len(kind) <= MAX_INPUT or not set(kind) <= _INPUT_CHARS \
            or not kind[0].isalnum():
        return (f"input kind must be 1..{MAX_INPUT} characters of a-z, 0-9 and . _ / - "
                f"(starting with a letter or digit), not {kind!r:.40}")
    return None


def encode_events(environment: str, host: str, events: Iterable[Event], *, compress: bool = True,
                  input: str = "") -> bytes:
    """Encode Events (their ``environment`` field is ignored: the batch's wins)."""
    events = list(events)
    rows = [tuple(e)[:ROW_FIELDS] for e in events]
    if events:
        times = [e.time for e in events]
        first, last = min(times), max(times)
    else:
        first = last = 0
    return encode_rows(environment, host, rows, first, last, compress=compress, input=input)


def check_frame(frame: bytes, *, max_raw: int = DEFAULT_MAX_RAW) -> BatchHeader:
    """Verify a frame without decompressing it and return its header.

    Checks the version, flags, lengths, checksum and header fields. A frame
    that passes is safe to store as is."""
    if len(frame) < PREFIX_SIZE:
        raise FrameError(f"frame truncated: {len(frame)} bytes, shorter than its {PREFIX_SIZE}-byte prefix")
    version, flags, hlen, crc = _PREFIX.unpack_from(frame)
    if version != FORMAT_VERSION:
        raise FrameError(f"unknown frame version {version} (this Helios reads version {FORMAT_VERSION})")
    if flags & ~KNOWN_FLAGS:
        raise FrameError(f"unknown frame flags 0x{flags:02x}")
    if hlen == 0 or hlen > MAX_HEADER:
        raise FrameError(f"frame header length {hlen} is out of range 1..{MAX_HEADER}")
    payload_offset = PREFIX_SIZE + hlen
    if len(frame) < payload_offset:
        raise FrameError(f"frame truncated: {len(frame)} bytes, header says at least {payload_offset}")
    if zlib.crc32(memoryview(frame)[PREFIX_SIZE:]) != crc:
        raise FrameError("frame checksum mismatch: the frame was truncated or garbled")
    try:
        fields = msgpack.unpackb(
            memoryview(frame)[PREFIX_SIZE:payload_offset],
            raw=False,
            max_str_len=MAX_NAME,
            max_bin_len=0,
            max_array_len=16,
            max_map_len=0,
        )
    except Exception as exc:  # msgpack raises many types for garbage
        raise FrameError(f"frame header is not valid msgpack: {exc}") from None
    if not isinstance(fields, list) or len(fields) not in (6, 7):
        raise FrameError("frame header must be an array of 6 fields (7 with the input kind)")
    environment, host, count, first, last, raw_size = fields[:6]
    input_ = ""
    if len(fields) == 7:
        input_ = fields[6]
        problem = input_problem(input_)
        if problem:
            raise FrameError(f"frame header: {problem}")
    if not isinstance(environment, str) or not environment:
        raise FrameError("frame header: environment must be a non-empty string")
    if not isinstance(host, str):
        raise FrameError("frame header: host must be a string")
    for name, value in (("count", count), ("first_time", first), ("last_time", last), ("raw_size", raw_size)):
        if type(value) is not int:
            raise FrameError(f"frame header: {name} must be an integer")
    if count < 0 or raw_size < 0:
        raise FrameError("frame header: count and raw_size must not be negative")
    if raw_size > max_raw:
        raise FrameError(f"frame payload would be {raw_size} bytes uncompressed, over the limit of {max_raw}")
    if count > raw_size:  # every event takes more than one byte
        raise FrameError(f"frame header: {count} events cannot fit in {raw_size} bytes")
    if first > last:
        raise FrameError("frame header: first_time is after last_time")
    if not flags & FLAG_LZ4 and len(frame) - payload_offset != raw_size:
        raise FrameError("frame payload size does not match its header")
    return BatchHeader(version, flags, environment, host, count, first, last, raw_size, payload_offset, input_)


def _payload(frame: bytes, header: BatchHeader) -> list[Any]:
    """The frame's events as msgpack arrays, not yet checked one by one."""
    payload = memoryview(frame)[header.payload_offset:]
    if header.flags & FLAG_LZ4:
        try:
            raw = lz4.block.decompress(payload, uncompressed_size=header.raw_size)
        except Exception as exc:
            raise FrameError(f"frame payload does not decompress: {exc}") from None
        if len(raw) != header.raw_size:
            raise FrameError("frame payload size does not match its header")
    else:
        raw = payload
    try:
        rows = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:
        raise FrameError(f"frame payload is not valid msgpack: {exc}") from None
    if header.flags & FLAG_RUNS:
        rows = _rows_of_runs(rows)
    if not isinstance(rows, list) or len(rows) != header.count:
        raise FrameError(f"frame payload is not its events: it must be an array of {header.count} events")
    return rows


def _rows_of_runs(runs: Any) -> list[Any]:
    """A runs payload (``FLAG_RUNS``) as the rows the row layout carries,
    ids empty (``decode_rows`` derives them); each row still to be checked."""
    if type(runs) is not list:
        raise FrameError("frame payload is not its events: it must be an array of runs")
    rows: list[Any] = []
    for i, run in enumerate(runs):
        if type(run) is list and len(run) in (RUN_FIELDS, MESSAGE_RUN_FIELDS) and run[7] is None:
            rows.extend(_rows_of_messages(i, run))
            continue
        if type(run) is not list or len(run) != RUN_FIELDS:
            raise FrameError(f"run {i} of the batch: must be an array of {RUN_FIELDS} fields")
        source, source_id, received, *cols = run
        if type(cols[4]) is int:
            cols[4], cols[5] = block_lines(i, cols[4], cols[5])
        n = len(cols[0]) if type(cols[0]) is list else -1
        if any(type(col) is not list or len(col) != n for col in cols):
            raise FrameError(f"run {i} of the batch: its 7 columns must be arrays of one length")
        if type(source_id) is not bytes or len(source_id) != ID_BYTES:
            raise FrameError(f"run {i} of the batch: source_id must be {ID_BYTES} bytes")
        times, hosts, apps, severities, offsets, messages, fields = cols
        rows.extend(map(list, zip(repeat(b""), times, repeat(received), hosts, apps, severities, repeat(source),
                                  offsets, messages, fields, repeat(source_id))))
    return rows


def _rows_of_messages(i: int, run: list[Any]) -> list[Any]:
    """A run of messages without positions (nil offsets) as rows, each with
    its id (``line_id(base, k)``) and its fields merged with the shared ones."""
    source, base, received, times, hosts, apps, severities, _, messages, fields = run[:RUN_FIELDS]
    shared = run[RUN_FIELDS] if len(run) == MESSAGE_RUN_FIELDS else None
    if type(messages) is bytes:
        if messages[-1:] not in (b"\n", b""):
            raise FrameError(f"run {i} of the batch: a block of messages must end with a newline")
        messages = messages.split(b"\n")
        messages.pop()
    n = len(times) if type(times) is list else -1
    if any(type(col) is not list or len(col) != n for col in (times, hosts, apps, severities, messages, fields)):
        raise FrameError(f"run {i} of the batch: its columns must be arrays of one length")
    if type(base) is not bytes or len(base) != ID_BYTES:
        raise FrameError(f"run {i} of the batch: its id base must be {ID_BYTES} bytes")
    if shared is not None:
        if type(shared) is not dict:
            raise FrameError(f"run {i} of the batch: its shared fields must be a map or nil")
        # A copy each: an event's fields are its own (the buck's vet marks one event's).
        fields = [dict(shared) if f is None else {**f, **shared} if type(f) is dict else f for f in fields]
    ids = list(map(line_id, repeat(base), range(n)))
    return list(map(list, zip(ids, times, repeat(received), hosts, apps, severities, repeat(source),
                              repeat(None), messages, fields, repeat(b""))))


def _is_block(offset: int, block: Any) -> bool:
    return type(block) is bytes and block[-1:] in (b"\n", b"") and offset >= 0


def block_lines(i: int, offset: int, block: Any) -> tuple[list[int], list[bytes]]:
    """A run's lines given as one block (see the module docstring): their
    offsets and messages."""
    if not _is_block(offset, block):
        raise FrameError(f"run {i} of the batch: a block of lines must be bytes ending with a newline, "
                         "from an offset that is not negative")
    messages = block.split(b"\n")
    messages.pop()      # what follows the last newline: nothing
    return line_offsets(offset, map(len, messages)), messages


def line_offsets(first: int, lengths: Iterable[int]) -> list[int]:
    """The offset of each line, the first at ``first``, from the lines'
    lengths without their newlines (all in C: len, +1 and the running sum)."""
    offsets = list(accumulate(map(add, lengths, repeat(1)), initial=first))
    offsets.pop()
    return offsets


def decode_rows(frame: bytes, *, max_raw: int = DEFAULT_MAX_RAW,
                set_aside: list[Any] | None = None) -> tuple[BatchHeader, list[Any]]:
    """Check, decompress and unpack a frame; return its header and raw rows
    (lists of ``ROW_FIELDS`` values in Event field order, without the
    environment), each row validated and its id filled in.

    A row that is not an event raises ``FrameError``. With ``set_aside`` (a
    list), rows are also checked for what an index and the archive can hold
    (int64 times and offsets, names an index can take as terms, fields
    without msgpack extension types: ``_storage_problem``), and a row that
    fails either check is left out of the result and appended there as
    ``(position, row as sent, problem)`` instead, so that one bad event
    costs only itself (the porter's quarantine)."""
    header = check_frame(frame, max_raw=max_raw)
    rows = _payload(frame, header)
    bad = None
    storable = set_aside is not None
    for i, row in enumerate(rows):
        problem = _row_problem(row, storable)
        if problem:
            if set_aside is None:
                raise FrameError(f"event {i} of the batch: {problem}")
            set_aside.append((i, row, problem))
            bad = bad or set()
            bad.add(i)
            continue
        if not row[0]:
            # A tailed line's id is derived, not stored (see the module docstring).
            row[0] = line_id(row[-1], row[7])
        elif len(row) == SHORT_ROW_FIELDS:
            row.append(b"")     # a client event: no source_id
    if bad:
        rows = [row for i, row in enumerate(rows) if i not in bad]
    return header, rows


def decode(frame: bytes, *, max_raw: int = DEFAULT_MAX_RAW,
           set_aside: list[Any] | None = None) -> tuple[BatchHeader, list[Event]]:
    """The inverse of ``encode_rows``/``encode_events`` (``set_aside``: as
    for ``decode_rows``)."""
    header, rows = decode_rows(frame, max_raw=max_raw, set_aside=set_aside)
    env = header.environment
    return header, [Event._make((*row, env)) for row in rows]


def _row_problem(row: Any, storable: bool = False) -> str | None:
    """Why a decoded row is not an event, or None; with ``storable``, also
    why an index or the archive cannot hold it (``_storage_problem``). Kept
    flat: the porter runs it for every event it loads."""
    if type(row) is not list or not SHORT_ROW_FIELDS <= len(row) <= ROW_FIELDS:
        return f"must be an array of {ROW_FIELDS} fields"
    id_, time_, received, host, app, severity, source, offset, message, fields = row[:SHORT_ROW_FIELDS]
    if len(row) == ROW_FIELDS and (type(row[-1]) is not bytes or len(row[-1]) not in (0, ID_BYTES)):
        return f"source_id must be empty or {ID_BYTES} bytes"
    if type(id_) is not bytes or len(id_) != ID_BYTES:
        derivable = (id_ == b"" and len(row) == ROW_FIELDS and type(row[-1]) is bytes
                     and len(row[-1]) == ID_BYTES and type(offset) is int)
        if not derivable:
            return f"id must be {ID_BYTES} bytes (or empty, for a tailed line with its source_id and offset)"
    if type(time_) is not int or type(received) is not int:
        return "time and received must be integers (ns)"
    if type(host) is not str or type(app) is not str or type(source) is not str:
        return "host, app and source must be strings"
    if severity is not None and (type(severity) is not int or not 0 <= severity <= 7):
        return "severity must be 0..7 or nil"
    if offset is not None and (type(offset) is not int or offset < 0):
        return "offset must be a non-negative integer or nil"
    if type(message) is not bytes:
        return "message must be bytes"
    if fields is not None and type(fields) is not dict:
        return "fields must be a map or nil"
    return _storage_problem(row) if storable else None


def _storage_problem(row: list[Any]) -> str | None:
    """Why an event (``_row_problem`` passed it) is one no index or archive
    can hold: what a porter sets aside, and a buck checks on taking it."""
    _, time_, received, host, app, _, source, offset, _, fields = row[:SHORT_ROW_FIELDS]
    if not (INT64_MIN <= time_ <= INT64_MAX and INT64_MIN <= received <= INT64_MAX):
        return "time and received must be within the int64 range of nanoseconds (years 1677..2262)"
    if len(host) > MAX_TERM or len(app) > MAX_TERM or len(source) > MAX_TERM:
        return f"host, app and source must be at most {MAX_TERM} characters"
    if offset is not None and offset > INT64_MAX:
        return "offset must be at most 2**63-1"
    if fields is not None:
        return _fields_problem(fields)
    return None


def _fields_problem(fields: dict[Any, Any]) -> str | None:
    """Fields holding msgpack extension types (``ExtType``, ``Timestamp``):
    no Helios sender makes them, the index loaders' pipe (marshal) and JSON
    cannot carry them. The check runs in C, and only for events with fields."""
    try:
        marshal.dumps(fields)
    except ValueError:
        return "fields hold a value of an extension type (only nil, booleans, numbers, strings, bytes, arrays and maps)"
    return None


# --------------------------------------------------------------------------- the buck's check

def span_ok(header: BatchHeader, earliest: int, latest: int) -> bool:
    """Does the header say every event time is in [earliest, latest] (ns)?
    Free: the header is read already. A buck decodes a frame (``vet``) only
    when it does not, unless told to check every frame."""
    return earliest <= header.first_time and header.last_time <= latest


def _as_text(value: Any) -> str:
    return str(value) if type(value) is int else f"{type(value).__name__} {value!r:.80}"


def vet(frame: bytes, header: BatchHeader, earliest: int, latest: int, now: int, *,
        max_raw: int = DEFAULT_MAX_RAW) -> tuple[BatchHeader, bytes, list[str]]:
    """The buck's check of every event of a frame, on taking it.

    An event whose time (or receive time) is not an integer within
    [earliest, latest] ns keeps its line with a corrected time: its receive
    time when that one is sane, else ``now``; and a mark in its fields
    (``CORRECTED``: the value as sent and why). Losing nothing is the
    promise: the line, id and everything else stay as sent. Any other
    problem (a malformed event, a wrong type, fields that cannot be stored)
    refuses the frame with ``FrameError`` naming the event.

    Returns (header, frame, reasons): the frame as it arrived when nothing
    was corrected (no copy), else re-encoded, with one reason per corrected
    event. A header whose time span is not its events' is rewritten too."""
    rows = _payload(frame, header)
    reasons: list[str] = []
    for i, row in enumerate(rows):
        if type(row) is list and len(row) >= SHORT_ROW_FIELDS:
            t, r = row[1], row[2]
            t_ok = type(t) is int and earliest <= t <= latest
            r_ok = type(r) is int and earliest <= r <= latest
            if not (t_ok and r_ok):
                fields = row[9]
                if fields is None:
                    fields = row[9] = {}
                if type(fields) is dict:
                    mark: dict[str, str] = {}
                    if not r_ok:
                        mark["received"] = _as_text(r)
                        row[2] = r = now
                    if not t_ok:
                        mark["time"] = _as_text(t)
                        row[1] = r
                    what = ("time and receive time" if not (t_ok or r_ok) else "time" if not t_ok
                            else "receive time")
                    mark["why"] = (f"the {what} as sent: not within the buck's range {_iso(earliest)} .. "
                                   f"{_iso(latest)}; set to {'the receive time' if r_ok else 'when the buck took it'}")
                    fields[CORRECTED] = mark
                    reasons.append(f"event {i}: {mark['why']}")
        problem = _row_problem(row, True)
        if problem:
            # One reason for every such frame (a buck counts refusals by what precedes the first colon).
            raise FrameError(f"malformed event: event {i} of the batch: {problem}")
    if rows:
        times = [row[1] for row in rows]
        first, last = min(times), max(times)
    else:
        first = last = 0
    if not reasons and (first, last) == (header.first_time, header.last_time):
        return header, frame, reasons
    new = encode_rows(header.environment, header.host, rows, first, last, compress=bool(header.flags & FLAG_LZ4),
                      input=header.input)
    # Marks make it a little bigger than it came: our own frame, not a bomb to guard against.
    return check_frame(new, max_raw=2 * max(max_raw, DEFAULT_MAX_RAW)), new, reasons


def _iso(ns: int) -> str:
    from helios.timespec import iso_s

    try:
        return iso_s(ns / 1e9)
    except (OverflowError, ValueError, OSError):
        return f"{ns} ns"
