"""Fuzzing every pure reader of untrusted bytes: the batch codec, the bucket
file reader, the line parsers, the query protocol, event maps and the
browser's filter messages. Each gets garbage and, more usefully, valid input
damaged in ways that get past its first checks (a frame whose checksum is
fixed up after the damage reaches the msgpack and lz4 decoders). The only
outcomes allowed: a result that makes sense, or the module's own HeliosError
subclass; and each input within the deadline (``tests/fuzzing.py``;
HELIOS_FUZZ_EXAMPLES=N for a long run).

The existing round-trip and single-damage properties live beside each module's
tests (test_codec, test_records, test_parse, test_query_protocol); these add
the hostile side."""

from __future__ import annotations

import datetime
import struct
import time
import zlib

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from helios import codec, eventmap
from helios.errors import EventError, FilterError, FrameError, QueryError
from helios.model import SEVERITIES, Event, line_id
from helios.parse import FORMATS, Parser
from helios.query import protocol as p
from helios.store.records import RecordReader, RecordWriter
from helios.web.filters import MAX_PREFIXES, Filter
from helios.web.lines import Line
from tests.fuzzing import fuzz

INT64 = 2**63 - 1

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(),
                    st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), inner, max_size=4),
                      max_leaves=10)


def packed(value) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True, strict_types=False)
    except (OverflowError, ValueError, TypeError):
        return b"\xc1"  # never used by msgpack: garbage of its own


# --- the batch codec ---

events = st.lists(st.builds(
    Event, id=st.binary(min_size=16, max_size=16), time=st.integers(0, INT64), received=st.integers(0, INT64),
    host=st.text(max_size=10), app=st.text(max_size=10), severity=st.none() | st.integers(0, 7),
    source=st.text(max_size=10), offset=st.none() | st.integers(0, INT64), message=st.binary(max_size=200),
    fields=st.none() | st.dictionaries(st.text(max_size=5), st.integers(-100, 100), max_size=3),
    source_id=st.just(b""), environment=st.just("prod")), max_size=8)


def fix_crc(frame: bytearray) -> bytes:
    if len(frame) >= codec.PREFIX_SIZE:
        struct.pack_into(">I", frame, 4, zlib.crc32(bytes(frame[codec.PREFIX_SIZE:])))
    return bytes(frame)


@st.composite
def damaged_frames(draw):
    """A valid frame with bytes flipped, cut, inserted or its header replaced;
    usually with the checksum recomputed, so the damage reaches the decoders."""
    if draw(st.booleans()):
        frame = bytearray(codec.encode_events("prod", "h", draw(events), compress=draw(st.booleans())))
    else:   # the tailer's runs: columns, or plain lines as one block
        evs = draw(events)
        times = [e.time for e in evs] or [0]
        messages = [e.message.replace(b"\n", b" ") for e in evs]
        block = draw(st.booleans())
        run = ("/var/log/x", line_id(b"k" * 16, 0)[:16], 5, [e.time for e in evs], [e.host for e in evs],
               [e.app for e in evs], [e.severity for e in evs],
               draw(st.integers(0, 10**6)) if block else [e.offset or 0 for e in evs],
               b"".join(m + b"\n" for m in messages) if block else messages, [e.fields for e in evs])
        frame = bytearray(codec.encode_runs("prod", "h", [run], min(times), max(times),
                                            compress=draw(st.booleans())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header", "raw_size"]))
        at = draw(st.integers(0, max(0, len(frame) - 1)))
        if kind == "flip" and frame:
            frame[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del frame[at:at + draw(st.integers(1, 50))]
        elif kind == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=30))
        elif kind == "header" and len(frame) >= codec.PREFIX_SIZE:
            hlen = struct.unpack_from(">H", frame, 2)[0]
            header = packed(draw(values | st.lists(values, min_size=6, max_size=6)))[:4096]
            frame[codec.PREFIX_SIZE:codec.PREFIX_SIZE + hlen] = header
            struct.pack_into(">H", frame, 2, len(header))
        elif kind == "raw_size" and len(frame) >= codec.PREFIX_SIZE:
            try:
                h = codec.check_frame(bytes(frame))
            except FrameError:
                continue
            header = msgpack.packb([h.environment, h.host, h.count, h.first_time, h.last_time,
                                    draw(st.integers(0, 2**40))])
            frame[codec.PREFIX_SIZE:h.payload_offset] = header
            struct.pack_into(">H", frame, 2, len(header))
    return fix_crc(frame) if draw(st.integers(0, 9)) else bytes(frame)


@fuzz(400)
@given(st.binary(max_size=400) | damaged_frames())
def test_any_frame_decodes_to_valid_events_or_is_one_frame_error(frame):
    try:
        header, evs = codec.decode(frame, max_raw=1 << 20)
    except FrameError:
        return
    assert header.count == len(evs) and header.raw_size <= 1 << 20
    for e in evs:
        assert len(e.id) == 16 and type(e.message) is bytes and e.environment == header.environment
        assert e.severity is None or 0 <= e.severity <= 7


# --- the bucket file reader ---

@st.composite
def damaged_files(draw):
    payloads = draw(st.lists(st.binary(max_size=200), min_size=1, max_size=10))
    data = bytearray(b"".join(_record(x) for x in payloads))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["overwrite", "cut", "insert", "zero"]))
        if kind == "overwrite":
            junk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(junk)] = junk
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[at:] = bytes(len(data) - at)  # a zero-filled tail, as after a machine crash
    return payloads, bytes(data)


def _record(payload: bytes) -> bytes:
    length = struct.pack(">I", len(payload))
    return length + struct.pack(">I", zlib.crc32(length + payload)) + payload


@fuzz(300)
@given(damaged_files() | st.binary(max_size=600).map(lambda b: ([], b)), st.integers(1, 300))
def test_a_damaged_bucket_file_yields_only_whole_records_and_a_writer_can_append_after_it(tmp_path, case, chunk):
    originals, data = case
    path = tmp_path / "fuzz.bkt"
    path.write_bytes(data)
    reader = RecordReader(path, chunk_size=chunk)
    got = list(reader)
    assert all(x in originals for x in got)  # every payload passed its crc: one that was written
    assert reader.stats.end <= len(data)
    with RecordWriter(path) as w:  # truncates the damaged tail, then appends after the last valid record
        w.append(b"after the damage")
    again = list(RecordReader(path))
    assert again[-1] == b"after the damage" and all(x in originals for x in again[:-1])


# --- the line parsers ---

SAMPLES = [
    b"<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed for lonvick on /dev/pts/8",
    b"Feb 29 00:00:00 host app: leap",
    b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An application event",
    b"2024-01-31T12:00:00.123456789+01:00 ERROR something broke",
    b"2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created",
    b'{"time": "2024-01-31T12:00:00Z", "level": "warn", "host": "h", "app": "a", "msg": "x"}',
    b'{"ts": 1706702400123, "severity": 3, "hostname": "h"}',
    b"[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration",
    b"03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening",
]
SIGNIFICANT = b"0123456789 :-+.TZ<>[]{}\",\\\xff\x00\t"


@st.composite
def damaged_lines(draw):
    line = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(0, len(line)))
        kind = draw(st.sampled_from(["byte", "cut", "insert", "json"]))
        if kind == "byte" and at < len(line):
            line[at] = draw(st.sampled_from(SIGNIFICANT))
        elif kind == "cut":
            del line[at:at + draw(st.integers(1, 20))]
        elif kind == "insert":
            line[at:at] = draw(st.binary(max_size=12) | st.sampled_from([b"9" * 30, b"-" * 30, b"{" * 200]))
        else:
            key = draw(st.sampled_from(["time", "ts", "level", "severity", "host", "app", "msg"]))
            line = bytearray(packed_json({key: draw(values), "msg": "x"}))
    return bytes(line).replace(b"\n", b" ")


def packed_json(obj) -> bytes:
    import json

    return json.dumps(obj, default=repr).encode()


@fuzz(300)
@given(st.lists(damaged_lines(), min_size=1, max_size=12), st.sampled_from(FORMATS))
def test_every_parser_gives_each_damaged_line_a_row_of_sane_columns(lines, fmt):
    now = time.time_ns()
    for parser in (Parser(fmt), Parser(fmt, tz=datetime.timezone(datetime.timedelta(hours=-11)))):
        cols = parser.parse_chunk(b"\n".join(lines) + b"\n", now)
        assert cols.lines == lines
        assert all(type(t) is int and 0 <= t <= INT64 for t in cols.times)
        assert all(type(h) is str and len(h) <= 255 for h in cols.hosts)
        assert all(type(a) is str and len(a) <= 255 for a in cols.apps)
        assert all(s is None or 0 <= s <= 7 for s in cols.severities)


# --- the bucket query protocol ---

request_like = st.fixed_dictionaries(
    {"v": st.sampled_from([p.VERSION, 0, 99, "1"]), "id": st.integers(-1, 2**65) | values,
     "op": st.sampled_from(["list", "fetch", "stats", "prune", "report", "drop"]) | values},
    optional={"environment": values | st.sampled_from(["prod", "../etc", ""]), "start": values,
              "end": values, "bucket": values | st.sampled_from(["prod/20240131/235900-60s", "../../x"]),
              "offset": values, "max_bytes": values, "buckets": st.lists(values, max_size=3) | values,
              "status": st.sampled_from(["ok", "error"]), "reason": values, "records": values,
              "stats": values, "deleted": values, "refused": values})


@fuzz(400)
@given(st.binary(max_size=300) | request_like.map(packed) | values.map(packed))
def test_any_body_is_a_request_a_reply_or_a_query_error_and_peek_id_never_raises(body):
    for decode in (p.decode_request, p.decode_reply):
        try:
            decode(body)
        except QueryError as exc:
            assert str(exc)
    rid, op = p.peek_id(body)
    assert 0 <= rid <= p.MAX_ID


@fuzz(200)
@given(st.lists(st.binary(max_size=20), max_size=6))
def test_split_message_takes_any_parts(parts):
    route, body = p.split_message(parts)
    assert body is None or isinstance(body, bytes)


# --- event maps (HTTP ingest, client library) ---

event_maps = st.dictionaries(st.sampled_from(sorted(eventmap.RESERVED)) | st.text(max_size=6), values, max_size=6)


@fuzz(400)
@given(event_maps | values)
def test_any_event_map_becomes_a_storable_row_or_one_event_error(obj):
    try:
        env, row = eventmap.to_row(obj, eventmap.Defaults("prod", "h", "a"), time.time_ns())
    except EventError as exc:
        assert str(exc)
        return
    try:
        frame = codec.encode_rows(env, "h", [row], row[1], row[1])
        # What the senders check before sending (the client library, the HTTP ingest's
        # strict msgpack): maps nested in fields need string keys, or no reader takes them.
        msgpack.unpackb(msgpack.packb(row[9], use_bin_type=True), strict_map_key=True)
    except (FrameError, ValueError):
        return  # a field value msgpack cannot carry: the ingest answers 400, the library logs it
    [back] = codec.decode(frame)[1]
    assert back.message == row[8] and back.environment == env


# --- the browser's filter messages ---

filter_specs = st.dictionaries(
    st.sampled_from(["environment", "host", "app", "severity", "text", "regex", "ignore_case"]) | st.text(max_size=5),
    values | st.sampled_from(SEVERITIES) | st.text(alphabet="()[]{}*+?|^$\\.ab,\x00 ", max_size=30),
    max_size=7) | values

LINES = [Line(time.time_ns(), 0, env, "web-1", "nginx", sev, text, line_id(b"k" * 16, i))
         for i, (env, sev, text) in enumerate([("prod", 3, "GET / 200"), ("staging", None, "x" * 5000),
                                                ("prod", 7, "é\x00\ud800 mixed"), ("", 0, "")])]


@fuzz(500)
@given(filter_specs)
def test_any_filter_message_is_a_filter_that_matches_in_bounded_time_or_one_filter_error(spec):
    try:
        f = Filter.parse(spec)
    except FilterError as exc:
        assert str(exc)
        return
    match = f.matcher()
    for line in LINES:
        assert match(line) in (True, False)
    assert 1 <= len(f.prefixes()) <= MAX_PREFIXES
    assert Filter.parse(f.describe()) == f  # what the page is shown back reads as the same filter
