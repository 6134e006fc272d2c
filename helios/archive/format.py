"""The archive object format: the only module that knows how archived events are laid out.

One object holds the events of one environment and one time window. ``pack``
and ``unpack`` are inverses up to ``canonical``: ``unpack(pack(events)) ==
canonical(events)``, every field equal, message bytes untouched (any bytes,
not only UTF-8), the environment restored. ``describe`` reads the header
only. Pure: no I/O, and the bytes are opaque to the storage backends
(``helios.archive.store``), so sealing (a later issue) wraps them whole.

Canonical order (enforced by ``pack``, whatever order it is given)
-------------------------------------------------------------------
Events are deduplicated by id and sorted by (time, source_id, offset, id),
where a missing offset sorts first. Within one timestamp the lines of one
file thus keep their file order (a reader sees same-second lines as they were
written, and the offset column compresses to nothing); ties between sources
and client events fall back to the id, so the order is total and two porters
packing the same window write the same bytes. Copies of an event are expected
to be identical; if they are not, the copy that sorts first is kept, and among
copies that sort equal the first one given.

What can be derived is not stored
---------------------------------
- A tailed line's id is ``model.line_id(source_id, offset)``: only ids that
  differ from that (client events) are stored, with their positions.
- Times and receive times are a base and deltas, divided by their greatest
  common divisor (a log with second resolution stores 0s and 1s).
- A tailed line's offset is the previous line of the same file's offset plus
  that line's length plus one: the offset column stores the difference from
  that expectation, which is 0 for consecutive lines.
- Host, app, source and source_id are a dictionary of distinct 4-tuples
  ("streams") and one small index per event.
- Most lines begin with the text their time was parsed from: where rendering
  the time with the object's timestamp format reproduces a message's first
  bytes exactly, they are not stored (``helios.archive.stamps``).
- Messages are joined by newlines, like the raw lines, and each line is cut at
  the first ``parts - 1`` occurrences of one separator byte into ``parts``
  columns (timestamps with timestamps, hosts with hosts, ...); ``pack`` picks
  the separator and the number of parts by compressing a sample of the lines
  each way (``helios.archive.lines``). Columns of like tokens compress better
  apart than interleaved; with the timestamps this more than pays for the
  time, severity and offset columns: on the loghub samples an object is
  smaller than ``zstd -19`` of the raw lines alone.
- Version 2 may instead cut each line into a template and its variables
  (``helios.archive.templates``, in the spirit of CLP): templates repeat, and
  the variables, grouped by template and slot, compress better than the
  lines. ``pack`` takes whichever layout compresses a sample smaller
  (``docs/analyses/shrinkalog.md``).

Each column is compressed on its own with zstd (or stored as is when that is
not smaller; version 2 also knows lz4, gzip and zstd with a dictionary, for
comparisons and writers that favour speed). The byte-level layout is in ``docs/archive-format.md``. It is
versioned by the byte after the magic: ``unpack`` refuses a version it does
not know, and a new version adds its reader beside version 1's (listed in
``SUPPORTED_VERSIONS``), so that objects already written stay readable.

Every way an object can be wrong (truncated, garbled, unknown version,
checksum mismatch, inconsistent columns) raises ``ArchiveError`` with a
sentence saying what; no msgpack, zstd or struct exception leaks out.
"""

from __future__ import annotations

import functools
import zlib
import itertools
import math
import operator
import struct
from typing import Any, Iterable, NamedTuple, Sequence, cast

import lz4.block
import msgpack
import xxhash
import zstandard

from helios.archive import lines as _lines, stamps, templates
from helios.archive.lines import choose as choose_layout
from helios.errors import ArchiveError
from helios.gctune import no_gc
from helios.model import ID_BYTES, Event, line_id

MAGIC = b"\x93HEA"
# What ``pack`` writes by default; every version in SUPPORTED_VERSIONS is read.
# Version 2 adds messages as templates and variables (chosen per object where
# that is smaller) and more codecs; it is the default since the shrinkalog
# analysis (docs/analyses/shrinkalog.md, bench/analyses/shrinkalog.py).
VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
# magic, version, header length, xxh3-64 of everything after the prefix.
_PREFIX = struct.Struct(">4sBIQ")
PREFIX_SIZE = _PREFIX.size  # 17
MAX_HEADER = 1 << 20
DEFAULT_LEVEL = 19
# A default ceiling on what one object may expand to; objects are one window
# of one environment, so anything near this is a mistake or an attack.
DEFAULT_MAX_RAW = 1 << 36

# Column codecs. Version 1 knows RAW and ZSTD; version 2 adds the others
# (lz4 and gzip for writers that favour speed over size, and analyses that
# compare them; ZSTD_DICT for a zstd frame made with a dictionary, which the
# reader must be given).
RAW, ZSTD, LZ4, GZIP, ZSTD_DICT = 0, 1, 2, 3, 4
CODECS = {1: (RAW, ZSTD), 2: (RAW, ZSTD, LZ4, GZIP, ZSTD_DICT)}
_INT64 = (-(1 << 63), (1 << 63) - 1)

STAMP_SAMPLE = 2048  # events the timestamp format is chosen on

# The fixed column order of version 1 (message.0 .. message.N-1 follow).
COLUMNS_V1 = ("time", "received", "severity", "streams", "stream", "offset", "id_at", "id", "fields",
              "stamp_miss", "multiline_at", "multiline", "short_at", "short")
# The header of version 1: a msgpack array of these, in this order.
HEADER_V1 = ("environment", "count", "first_time", "last_time", "message_bytes", "lines", "separator",
             "parts", "stamp", "columns")
# Version 2: "layout" is ["split", separator, parts] (the columns of version 1,
# message.0 .. message.N-1 after COLUMNS_V1) or ["template", placeholder]
# (COLUMNS_TEMPLATE after COLUMNS_V1: ``helios.archive.templates``).
HEADER_V2 = ("environment", "count", "first_time", "last_time", "message_bytes", "lines", "layout", "stamp",
             "columns")
COLUMNS_TEMPLATE = ("templates", "template", "vars")
TEMPLATE_TRIAL_BYTES = 1 << 20  # lines on which pack weighs templates against the best cut
_SEVERITIES = frozenset((None, *range(8)))
_STREAM_TYPES = [str, str, str, bytes]

_new_event = functools.partial(tuple.__new__, Event)


class ArchiveInfo(NamedTuple):
    """What ``describe`` tells from an object's header, without decompressing."""
    version: int
    environment: str
    count: int  # type: ignore[assignment]  # events; shadows tuple.count, which no caller uses
    first_time: int        # least event time, ns (0 when empty)
    last_time: int         # greatest event time, ns (0 when empty)
    message_bytes: int     # the messages joined by newlines, i.e. the raw lines
    size: int              # the object's bytes
    separator: bytes       # message layout "split": the byte lines are cut at ... ("template": the placeholder)
    parts: int             # ... into this many columns ("template": 0)
    stamp: tuple[str, int] | None    # (format, UTC offset in s) of timestamps rendered from times, or None
    columns: dict[str, Any]          # name -> (codec, stored bytes, raw bytes)
    layout: str = "split"  # "split" (cut at a separator) or "template" (templates and variables)


# --- canonical order ---------------------------------------------------------------

def _sort_key(e: Event) -> tuple[int, bytes, int, bytes]:
    return (e[1], e[10], -1 if e[7] is None else e[7], e[0])


def canonical(events: Iterable[Event]) -> list[Event]:
    """The events deduplicated by id and in archive order (see the module docstring)."""
    events = list(events)
    try:
        # All in C; compares None with an int only for an offset-less and an
        # offsetted event of the same time and source_id, which _sort_key handles.
        events.sort(key=operator.itemgetter(1, 10, 7, 0))
    except TypeError:
        events.sort(key=_sort_key)
    ids = [e[0] for e in events]
    if len(set(ids)) != len(ids):
        seen: set[bytes] = set()
        add = seen.add
        events = [e for e, i in zip(events, ids) if not (i in seen or add(i))]
    return events


# --- pack ----------------------------------------------------------------------------

def pack(events: Iterable[Event], *, environment: str | None = None, level: int = DEFAULT_LEVEL,
         layout: tuple[bytes, int] | str | None = None, codec: str = "zstd",
         dictionary: zstandard.ZstdCompressionDict | None = None, version: int = VERSION) -> bytes:
    """One archive object holding ``canonical(events)``.

    Every event must belong to one environment (``environment`` if given, else
    the events'); an empty object needs ``environment`` to name one. ``level``
    is the codec's. ``layout`` forces the message layout instead of choosing
    the smallest on a sample: (separator, parts), or "template" (version 2).
    ``codec`` (version 2): "zstd", "lz4" or "gzip"; ``dictionary`` (version 2,
    zstd): compress the message columns with it (``unpack`` must then be given
    it). ``version`` 1 writes what Helios wrote before version 2 (tests, and
    a fleet whose older readers must read the archive)."""
    with no_gc():
        return _pack(events, environment, level, layout, codec, dictionary, version)


def _pack(events: Iterable[Event], environment: str | None, level: int, layout: tuple[bytes, int] | str | None,
          codec: str, dictionary: zstandard.ZstdCompressionDict | None, version: int) -> bytes:
    events = list(events)
    if not all(isinstance(e, tuple) and len(e) == len(Event._fields) for e in events):
        raise ArchiveError(f"cannot pack: every event must be an Event (a tuple of its {len(Event._fields)} fields)")
    try:
        events = canonical(events)
    except TypeError:  # an id, time, source_id or offset of a wrong type: say which
        _check_columns(list(zip(*events)), environment)
        raise ArchiveError("cannot pack: the events cannot be put in order (time, source_id, offset, id)") from None
    return _encode(events, environment, level, layout, codec, dictionary, version)


def pack_as_given(events: Iterable[Event], *, environment: str | None = None, level: int = DEFAULT_LEVEL,
                  layout: tuple[bytes, int] | str | None = None) -> bytes:
    """Like ``pack``, but the events stay in the order given (and are not
    deduplicated): ``unpack`` returns them in that order. Not for the
    archive, whose objects are canonical; for measuring what the canonical
    order buys (``bench/analyses/sortalog.py``)."""
    events = list(events)
    if not all(isinstance(e, tuple) and len(e) == len(Event._fields) for e in events):
        raise ArchiveError(f"cannot pack: every event must be an Event (a tuple of its {len(Event._fields)} fields)")
    return _encode(events, environment, level, layout, "zstd", None, VERSION)


def _encode(events: list[Event], environment: str | None, level: int, layout: tuple[bytes, int] | str | None,
            codec: str, dictionary: zstandard.ZstdCompressionDict | None, version: int) -> bytes:
    """The object of ``events`` in their order (``pack`` gives them canonical)."""
    compress = _compressor(version, codec, level, dictionary, layout)
    n = len(events)
    cols = list(zip(*events)) if n else [()] * len(Event._fields)
    ids, times, received, hosts, apps, severities, sources, offsets, messages, fields, sids, envs = cols
    env = _check_columns(cols, environment)

    mlens = list(map(len, messages))
    streams: dict[tuple[Any, ...], int] = {}
    stream = [streams.setdefault(k, len(streams)) for k in zip(hosts, apps, sources, sids)]
    origin_of = _origins(list(streams))
    origin = list(map(origin_of.__getitem__, stream))

    residuals: list[int | None] = []
    put = residuals.append
    expect = [0] * (max(origin_of, default=-1) + 1)
    for o, off, size in zip(origin, offsets, mlens):
        if off is None:
            put(None)
        else:
            put(off - expect[o])
            expect[o] = off + size + 1

    id_at = [i for i, (id_, sid, off) in enumerate(zip(ids, sids, offsets))
             if off is None or len(sid) != ID_BYTES or line_id(sid, off) != id_]
    id_blob = b"".join([ids[i] for i in id_at])

    some = _lines.spread(n, STAMP_SAMPLE)
    stamp = stamps.choose([times[i] for i in some], [messages[i] for i in some])
    bodies: Sequence[bytes]
    stamp_miss: list[int]
    if stamp is None:
        bodies, stamp_miss = messages, []
    else:
        bodies, stamp_miss = stamp.strip(times, messages)
    counts = list(map(bytes.count, bodies, itertools.repeat(b"\n")))
    multiline_at = [i for i, c in enumerate(counts) if c]
    multiline = [counts[i] for i in multiline_at]
    lines = b"\n".join(bodies).split(b"\n") if multiline_at else list(bodies)
    del counts, bodies
    kind, sep, parts = _layout(lines, layout, version)
    if kind == "template":
        tpls, tids, values = templates.split(lines, sep)
        message_named = [("templates", b"\n".join(tpls)), ("template", _mp(tids)), ("vars", values)]
        short_at: list[int] = []
        short: list[int] = []
        del tpls, tids, values
    else:
        message_cols, short_at, short = _lines.cut(lines, sep, parts)
        message_named = [(f"message.{j}", col) for j, col in enumerate(message_cols)]
        del message_cols

    try:
        named = [
            ("time", _ints(times)),
            ("received", _ints(received)),
            ("severity", _mp(severities)),
            ("streams", _mp([list(k) for k in streams])),
            ("stream", _mp(stream)),
            ("offset", _mp(residuals)),
            ("id_at", _ints(id_at)),
            ("id", id_blob),
            ("fields", _mp(fields)),
            ("stamp_miss", _ints(stamp_miss)),
            ("multiline_at", _ints(multiline_at)),
            ("multiline", _mp(multiline)),
            ("short_at", _ints(short_at)),
            ("short", _mp(short)),
        ] + message_named
    except (TypeError, ValueError, OverflowError) as exc:
        raise ArchiveError(f"cannot pack: a value cannot be encoded ({exc})") from None

    directory, stored = [], []
    for k, (name, raw) in enumerate(named):
        cid, body = compress(raw, k >= len(COLUMNS_V1))
        if len(body) >= len(raw):
            cid, body = RAW, raw
        directory.append([cid, len(body), len(raw)])
        stored.append(body)
    if version == 1:
        lay = [sep, parts]
    else:
        lay = [["split", sep, parts] if kind == "split" else ["template", sep]]
    header = _mp([env, n, min(times, default=0), max(times, default=0), sum(mlens) + max(n - 1, 0),
                  len(lines), *lay, None if stamp is None else [stamp.fmt, stamp.offset], directory])
    body = header + b"".join(stored)
    return _PREFIX.pack(MAGIC, version, len(header), xxhash.xxh3_64_intdigest(body)) + body


def _compressor(version: int, codec: str, level: int, dictionary: zstandard.ZstdCompressionDict | None,
                layout: tuple[bytes, int] | str | None) -> Any:
    """``compress(raw, is_message) -> (codec id, body)`` for these settings,
    or ``ArchiveError`` for settings the version cannot write."""
    if version not in SUPPORTED_VERSIONS:
        raise ArchiveError(f"cannot pack: unknown archive format version {version!r}")
    if version == 1 and (codec != "zstd" or dictionary is not None or isinstance(layout, str)):
        raise ArchiveError("cannot pack: format version 1 knows only zstd, without a dictionary, and the split layout")
    if codec == "zstd":
        if type(level) is not int or not 1 <= level <= 22:
            raise ArchiveError(f"cannot pack: a zstd level is 1 to 22, not {level!r}")
        plain = zstandard.ZstdCompressor(level=level, write_checksum=False, write_content_size=False,
                                         write_dict_id=False).compress
        if dictionary is None:
            return lambda raw, message: (ZSTD, plain(raw) if raw else b"")
        with_dict = zstandard.ZstdCompressor(level=level, dict_data=dictionary, write_checksum=False,
                                             write_content_size=False, write_dict_id=True).compress
        return lambda raw, message: ((ZSTD_DICT, with_dict(raw)) if message else (ZSTD, plain(raw))) if raw \
            else (ZSTD, b"")
    if dictionary is not None:
        raise ArchiveError("cannot pack: a dictionary goes with the zstd codec only")
    if codec == "lz4":
        return lambda raw, message: (LZ4, lz4.block.compress(raw, store_size=False) if raw else b"")
    if codec == "gzip":
        if type(level) is not int or not 0 <= level <= 9:
            raise ArchiveError(f"cannot pack: a gzip level is 0 to 9, not {level!r}")

        def gz(raw: bytes, message: bool) -> tuple[int, bytes]:
            c = zlib.compressobj(level, zlib.DEFLATED, 31)   # wbits 31: the gzip container
            return GZIP, c.compress(raw) + c.flush()
        return gz
    raise ArchiveError(f"cannot pack: unknown codec {codec!r} (zstd, lz4 or gzip)")


def _layout(lines: list[bytes], layout: tuple[bytes, int] | str | None, version: int) -> tuple[str, bytes, int]:
    """("split", separator, parts) or ("template", placeholder, 0): the
    message layout asked for, or the smallest on a sample of the lines."""
    if layout == "template":
        ph = templates.placeholder(lines)
        if ph is not None:
            return "template", ph, 0
        layout = None  # every byte occurs in these lines: no placeholder is free
    if layout is not None:
        if isinstance(layout, str) or len(layout) != 2 or len(layout[0]) != 1 or not 1 <= layout[1] <= 255:
            raise ArchiveError(f"cannot pack: a message layout is \"template\" or one separator byte and 1 to 255 "
                               f"parts, not {layout!r}")
        return "split", layout[0], layout[1]
    sep, parts = choose_layout(lines)
    if version == 1:
        return "split", sep, parts
    ph = templates.placeholder(lines)
    if ph is None or not lines:
        return "split", sep, parts
    # The same trial as lines.choose, on a larger sample: the template
    # dictionary is paid once per object, so a small sample overstates it.
    total = sum(map(len, lines)) + len(lines)
    some = lines if total <= TEMPLATE_TRIAL_BYTES else \
        [lines[i] for i in _lines.spread(len(lines), int(len(lines) * TEMPLATE_TRIAL_BYTES / total))]
    cctx = zstandard.ZstdCompressor(level=_lines.TRIAL_LEVEL, write_checksum=False, write_content_size=False,
                                    write_dict_id=False)
    cols, short_at, short_parts = _lines.cut(some, sep, parts)
    split_size = sum(len(cctx.compress(c)) for c in cols)
    if short_at:
        split_size += len(cctx.compress(_mp(short_at) + _mp(short_parts)))
    tpls, tids, values = templates.split(some, ph)
    template_size = sum(len(cctx.compress(c)) for c in (b"\n".join(tpls), _mp(tids), values))
    return ("template", ph, 0) if template_size < split_size else ("split", sep, parts)


def _check_columns(cols: Sequence[tuple[Any, ...]], environment: str | None) -> str:
    """Refuse, column by column (each check in C), what the format cannot hold."""
    ids, times, received, hosts, apps, severities, sources, offsets, messages, fields, sids, envs = cols
    problems = []
    if not set(map(type, ids)) <= {bytes} or not set(map(len, ids)) <= {ID_BYTES}:
        problems.append(f"ids must be {ID_BYTES} bytes")
    for name, col in (("time", times), ("received", received)):
        if not set(map(type, col)) <= {int} or (col and not (_INT64[0] <= min(col) and max(col) <= _INT64[1])):
            problems.append(f"{name} must be integers (ns) in the int64 range")
    if not set(map(type, itertools.chain(hosts, apps, sources, envs))) <= {str}:
        problems.append("host, app, source and environment must be strings")
    if not set(severities) <= _SEVERITIES or not set(map(type, severities)) <= {int, type(None)}:
        problems.append("severity must be 0..7 or None")
    offs = [o for o in offsets if o is not None]
    if not set(map(type, offs)) <= {int} or (offs and not (0 <= min(offs) and max(offs) <= _INT64[1])):
        problems.append("offset must be None or an integer from 0 to 2**63-1")
    if not set(map(type, itertools.chain(messages, sids))) <= {bytes}:
        problems.append("message and source_id must be bytes")
    if not set(map(type, fields)) <= {type(None), dict}:
        problems.append("fields must be a dict or None")
    names = set(envs)
    if environment is not None:
        names.add(environment)
    if len(names) > 1:
        problems.append(f"an object holds one environment, these events have {sorted(map(str, names))}")
    if problems:
        raise ArchiveError("cannot pack: " + "; ".join(problems))
    return names.pop() if names else ""


def _origins(streams: list[tuple[Any, ...]]) -> list[int]:
    """For each stream (host, app, source, source_id), the number of its file
    (source, source_id): the offset expectation is kept per file."""
    seen: dict[tuple[Any, Any], int] = {}
    return [seen.setdefault((s[2], s[3]), len(seen)) for s in streams]


def _mp(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def _ints(values: Sequence[int]) -> bytes:
    """An integer column: msgpack [unit, base, deltas] with values[0] = base and
    values[i] = values[i-1] + unit * deltas[i-1]; unit is the greatest common
    divisor of the deltas (1 when there are none). When base is nil, the third
    element holds the values themselves: the empty column, and a column whose
    deltas do not fit msgpack's integers (int64 values far apart)."""
    if not values:
        return _mp([0, None, []])
    deltas = list(map(operator.sub, itertools.islice(values, 1, None), values))
    unit = math.gcd(*deltas) or 1
    if unit > 1:
        deltas = [d // unit for d in deltas]
    try:
        return _mp([unit, values[0], deltas])
    except OverflowError:
        return _mp([0, None, list(values)])


# --- unpack ------------------------------------------------------------------------

def _prefix(data: bytes) -> tuple[int, int]:
    """Check magic, version and checksum; return (version, header length)."""
    if len(data) < PREFIX_SIZE:
        raise ArchiveError(f"archive object truncated: {len(data)} bytes, shorter than its {PREFIX_SIZE}-byte prefix")
    magic, version, hlen, checksum = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ArchiveError("not a Helios archive object (its first bytes are not the archive magic)")
    if version not in SUPPORTED_VERSIONS:
        raise ArchiveError(f"unknown archive format version {version} (this Helios reads versions "
                           f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    if not 0 < hlen <= MAX_HEADER or PREFIX_SIZE + hlen > len(data):
        raise ArchiveError(f"archive object truncated or garbled: header length {hlen}, object {len(data)} bytes")
    if xxhash.xxh3_64_intdigest(memoryview(data)[PREFIX_SIZE:]) != checksum:
        raise ArchiveError("archive object checksum mismatch: it was truncated or garbled")
    return version, hlen


# The type of each header field (isinstance's second argument), by version.
_HEADER_TYPES_V1: tuple[Any, ...] = (str, int, int, int, int, int, bytes, int, (list, type(None)), list)
_HEADER_TYPES_V2: tuple[Any, ...] = (str, int, int, int, int, int, list, (list, type(None)), list)


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    """The checked header of an object (a dict by ``HEADER_V1`` names, plus
    "layout" and "version", its column directory keyed by column name) and
    where its columns start."""
    version, hlen = _prefix(data)
    try:
        fields: Any = msgpack.unpackb(memoryview(data)[PREFIX_SIZE:PREFIX_SIZE + hlen], raw=False)
    except Exception as exc:  # msgpack raises many types for garbage
        raise ArchiveError(f"archive header is not valid msgpack: {exc}") from None
    names, types = (HEADER_V1, _HEADER_TYPES_V1) if version == 1 else (HEADER_V2, _HEADER_TYPES_V2)
    if (type(fields) is not list or len(fields) != len(names)
            or any(not isinstance(v, t) or type(v) is bool for v, t in zip(fields, types))):
        raise ArchiveError(f"archive header does not have the fields of format version {version}")
    h = dict(zip(names, fields))
    if version == 1:
        h["layout"] = "split"
    else:
        lay = h["layout"]
        if lay[:1] == ["split"] and len(lay) == 3 and type(lay[1]) is bytes and type(lay[2]) is int:
            h["layout"], h["separator"], h["parts"] = lay
        elif lay[:1] == ["template"] and len(lay) == 2 and type(lay[1]) is bytes and len(lay[1]) == 1 \
                and lay[1] != b"\n":
            h["layout"], h["separator"], h["parts"] = "template", lay[1], 0
        else:
            raise ArchiveError(f"archive header names a message layout it cannot read: {lay!r:.80}")
    if h["layout"] == "template":
        column_names = list(COLUMNS_V1) + list(COLUMNS_TEMPLATE)
    else:
        column_names = list(COLUMNS_V1) + [f"message.{j}" for j in range(h["parts"])]
    cols = h["columns"]
    if (len(h["separator"]) != 1 or not (h["layout"] == "template" or 1 <= h["parts"] <= 255)
            or len(cols) != len(column_names)
            or any(type(c) is not list or len(c) != 3 or c[0] not in CODECS[version] for c in cols)
            or any(type(v) is not int or v < 0 for c in cols for v in c[1:])):
        raise ArchiveError("archive header's column directory is garbled")
    stamp = h["stamp"]
    if stamp is not None:
        try:
            h["stamp"] = stamps.Stamp(*stamp) if type(stamp[1]) is int else None
        except (TypeError, ValueError):
            h["stamp"] = None
        if h["stamp"] is None:
            raise ArchiveError(f"archive header names a timestamp format it cannot render: {stamp!r:.80}")
    start = PREFIX_SIZE + hlen
    if start + sum(c[1] for c in cols) != len(data):
        raise ArchiveError("archive object size does not match its column directory")
    h["columns"] = dict(zip(column_names, map(tuple, cols)))
    h["version"] = version
    return h, start


def describe(data: bytes) -> ArchiveInfo:
    """The header of an object: count, time range, version and layout. Checks
    the checksum over the whole object (cheap) but decompresses nothing."""
    h, _ = _header(data)
    stamp = h["stamp"]
    return ArchiveInfo(h["version"], h["environment"], h["count"], h["first_time"], h["last_time"],
                       h["message_bytes"], len(data), h["separator"], h["parts"],
                       None if stamp is None else (stamp.fmt, stamp.offset), h["columns"], h["layout"])


def unpack(data: bytes, *, max_raw: int = DEFAULT_MAX_RAW,
           dictionaries: dict[int, zstandard.ZstdCompressionDict] | None = None) -> list[Event]:
    """The events of an object, in archive order. The inverse of ``pack``.
    ``dictionaries`` (by zstd dictionary id) are those ``pack`` was given."""
    h, pos = _header(data)
    if sum(c[2] for c in h["columns"].values()) > max_raw:
        raise ArchiveError(f"archive object would expand past the limit of {max_raw} bytes")
    raw = {}
    view = memoryview(data)
    for name, (codec, stored, size) in h["columns"].items():
        body = view[pos:pos + stored]
        pos += stored
        try:
            value = bytes(body) if codec == RAW else _decompress(codec, body, size, dictionaries)
        except (zstandard.ZstdError, lz4.block.LZ4BlockError, zlib.error) as exc:
            raise ArchiveError(f"archive column {name} does not decompress: {exc}") from None
        if len(value) != size:
            raise ArchiveError(f"archive column {name} is {len(value)} bytes, its directory says {size}")
        raw[name] = value
    try:
        with no_gc():
            return _events_v1(h, raw)
    except ArchiveError:
        raise
    except Exception as exc:  # a column that passed the checksum but is inconsistent
        raise ArchiveError(f"archive object is inconsistent: {type(exc).__name__}: {exc}") from None


def _decompress(codec: int, body: bytes | memoryview, size: int,
                dictionaries: dict[int, Any] | None) -> bytes:
    """One column's body back to (at most ``size``) bytes."""
    if codec == ZSTD:
        return zstandard.ZstdDecompressor().decompress(body, max_output_size=size)
    if codec == ZSTD_DICT:
        want = zstandard.get_frame_parameters(body).dict_id
        d = (dictionaries or {}).get(want)
        if d is None:
            raise ArchiveError(f"archive object needs zstd dictionary {want}, which was not given")
        return zstandard.ZstdDecompressor(dict_data=d).decompress(body, max_output_size=size)
    if codec == LZ4:
        return lz4.block.decompress(body, uncompressed_size=size) if size else b""
    d = zlib.decompressobj(31)                      # GZIP
    value = d.decompress(body, size)
    if not d.eof or d.unconsumed_tail or d.unused_data:
        raise ArchiveError(f"archive gzip column does not end where its directory says ({size} bytes)")
    return value


def _load(raw: dict[str, Any], name: str, n: int | None, kind: type = list) -> Any:
    try:
        value: Any = msgpack.unpackb(raw[name], raw=False, strict_map_key=False)
    except Exception as exc:
        raise ArchiveError(f"archive column {name} is not valid msgpack: {exc}") from None
    wrong_kind = type(value) is not kind  # (a variable: mypy would narrow value to object after `is`)
    if wrong_kind or (n is not None and len(value) != n):
        raise ArchiveError(f"archive column {name} does not hold {n if n is not None else 'its'} values")
    return value


def _load_ints(raw: dict[str, Any], name: str, n: int | None = None) -> list[int]:
    unit, base, deltas = _load(raw, name, 3)
    if type(deltas) is not list or not set(map(type, deltas)) <= {int}:
        raise ArchiveError(f"archive column {name} is not an integer column")
    if base is None:
        values = deltas
    elif type(unit) is int and type(base) is int and unit > 0:
        values = list(itertools.accumulate(map(unit.__mul__, deltas) if unit != 1 else deltas, initial=base))
    else:
        raise ArchiveError(f"archive column {name} is not an integer column")
    if n is not None and len(values) != n:
        raise ArchiveError(f"archive column {name} holds {len(values)} values, not {n}")
    return values


def _positions(raw: dict[str, Any], name: str, n: int) -> list[int]:
    """A sparse column's positions: ascending, each below ``n``."""
    at = _load_ints(raw, name)
    if at and (at[0] < 0 or at[-1] >= n or any(b <= a for a, b in zip(at, at[1:]))):
        raise ArchiveError(f"archive column {name} holds positions out of order or out of range")
    return at


def _events_v1(h: dict[str, Any], raw: dict[str, Any]) -> list[Event]:
    n = h["count"]
    times = _load_ints(raw, "time", n)
    received = _load_ints(raw, "received", n)
    severities = _load(raw, "severity", n)
    streams = _load(raw, "streams", None)
    stream = _load(raw, "stream", n)
    residuals = _load(raw, "offset", n)
    fields = _load(raw, "fields", n)
    if any(type(s) is not list or len(s) != 4 or list(map(type, s)) != _STREAM_TYPES for s in streams):
        raise ArchiveError("archive column streams must hold [host, app, source, source_id] arrays")
    if not set(severities) <= _SEVERITIES or not set(map(type, fields)) <= {type(None), dict}:
        raise ArchiveError("archive column severity or fields holds a value of the wrong type")
    hosts, apps, sources, sids = (list(c) for c in zip(*streams)) if streams else ([], [], [], [])
    if stream and not (set(map(type, stream)) <= {int} and 0 <= min(stream) and max(stream) < len(streams)):
        raise ArchiveError("archive column stream points outside the streams dictionary")

    messages = _messages(h, raw, n)
    stamp_miss = _positions(raw, "stamp_miss", n)
    if h["stamp"] is not None:
        messages = h["stamp"].restore(times, messages, stamp_miss)
    elif stamp_miss:
        raise ArchiveError("archive lists timestamp misses but names no timestamp format")
    host = list(map(hosts.__getitem__, stream))
    app = list(map(apps.__getitem__, stream))
    source = list(map(sources.__getitem__, stream))
    sid = list(map(sids.__getitem__, stream))
    origin_of = _origins(streams)
    origin = list(map(origin_of.__getitem__, stream))

    offsets: list[int | None] = []
    put = offsets.append
    expect = [0] * (max(origin_of, default=-1) + 1)
    for o, r, size in zip(origin, residuals, map(len, messages)):
        if r is None:
            put(None)
        else:
            off = expect[o] + r
            put(off)
            expect[o] = off + size + 1

    id_at = _positions(raw, "id_at", n)
    blob = raw["id"]
    if len(blob) != ID_BYTES * len(id_at):
        raise ArchiveError(f"archive column id holds {len(blob)} bytes for {len(id_at)} ids")
    stored = {p: blob[k * ID_BYTES:(k + 1) * ID_BYTES] for k, p in enumerate(id_at)}
    if not stored:  # then every event has an offset (see id_at in _encode)
        ids = list(map(line_id, sid, cast("list[int]", offsets)))
    else:
        get = stored.get
        ids = [get(i) or line_id(s, cast(int, o)) for i, (s, o) in enumerate(zip(sid, offsets))]
    return list(map(_new_event, zip(ids, times, received, host, app, severities, source, offsets, messages,
                                    fields, sid, itertools.repeat(h["environment"]))))


def _template_lines(h: dict[str, Any], raw: dict[str, Any]) -> list[bytes]:
    """The lines of the template layout (see ``templates.split``)."""
    lines_n = h["lines"]
    tids = _load(raw, "template", lines_n)
    if not set(map(type, tids)) <= {int}:
        raise ArchiveError("archive column template holds a value that is not a template number")
    tpls = raw["templates"].split(b"\n") if lines_n else []
    try:
        return templates.join(tpls, tids, raw["vars"], h["separator"])
    except ValueError as exc:
        raise ArchiveError(f"archive template columns do not fit together: {exc}") from None


def _messages(h: dict[str, Any], raw: dict[str, Any], n: int) -> list[bytes]:
    """Reassemble the messages from the message columns (see ``lines.cut``)."""
    lines_n, sep, parts = h["lines"], h["separator"], h["parts"]
    if h["layout"] == "template":
        if _load_ints(raw, "short_at") or _load(raw, "short", 0):
            raise ArchiveError("archive lists short lines in the template layout, which has none")
        lines = _template_lines(h, raw)
    else:
        cols = [raw[f"message.{j}"].split(b"\n") if lines_n else [] for j in range(parts)]
        if any(len(c) != lines_n for c in cols):
            raise ArchiveError(f"archive message columns do not hold {lines_n} lines each")
        short_at = _positions(raw, "short_at", lines_n)
        short = _load(raw, "short", len(short_at))
        if not set(map(type, short)) <= {int} or (short and not (1 <= min(short) and max(short) < parts)):
            raise ArchiveError("archive column short holds a part count out of range")
        lines = _lines.join(cols, sep, short_at, short)

    multiline_at = _positions(raw, "multiline_at", n)
    multiline = _load(raw, "multiline", len(multiline_at))
    if not set(map(type, multiline)) <= {int} or (multiline and min(multiline) < 1):
        raise ArchiveError("archive column multiline holds a newline count out of range")
    if lines_n != n + sum(multiline) or (n == 0) != (lines_n == 0):
        raise ArchiveError(f"archive holds {lines_n} lines, which does not add up for {n} events")
    if not multiline_at:
        return lines
    messages: list[bytes] = []
    line = event = 0
    for at, extra in zip(multiline_at, multiline):
        # Events before ``at`` are one line each; event ``at`` spans extra + 1.
        messages += lines[line:line + at - event]
        line += at - event
        messages.append(b"\n".join(lines[line:line + extra + 1]))
        line += extra + 1
        event = at + 1
    messages += lines[line:]
    return messages
