"""The batch frame: encode and decode are inverses, and every bad frame is one clear FrameError."""

import struct
import zlib

import hypothesis.strategies as st
import msgpack
import pytest
from hypothesis import given, settings

from helios import codec
from helios.errors import FrameError
from helios.model import Event, line_id, random_id, source_key

KEY = source_key(1, 2, b"first line")


def tailed(offset, message=b"Jun 14 15:16:01 combo sshd[1]: hello", time=1_700_000_000_000_000_000):
    return Event(line_id(KEY, offset), time, time + 5, "combo", "sshd", None, "/var/log/x", offset, message, None, KEY, "prod")


def client_event():
    return Event(random_id(), 1, 2, "h", "app", 3, "", None, b"", {"user": "ann", "n": [1, 2.5, None]}, b"", "prod")


events_strategy = st.lists(
    st.builds(
        Event,
        id=st.binary(min_size=16, max_size=16),
        time=st.integers(0, 2**63 - 1),
        received=st.integers(0, 2**63 - 1),
        host=st.text(max_size=20),
        app=st.text(max_size=20),
        severity=st.none() | st.integers(0, 7),
        source=st.text(max_size=30),
        offset=st.none() | st.integers(0, 2**63 - 1),
        message=st.binary(max_size=300),
        fields=st.none() | st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8), max_size=4),
        source_id=st.just(b"") | st.binary(min_size=16, max_size=16),
        environment=st.just("prod"),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events=events_strategy, compress=st.booleans())
def test_decode_is_the_inverse_of_encode(events, compress):
    frame = codec.encode_events("prod", "sender", events, compress=compress)
    header, back = codec.decode(frame)
    assert back == events
    assert (header.environment, header.host, header.count) == ("prod", "sender", len(events))
    if events:
        assert header.first_time == min(e.time for e in events)
        assert header.last_time == max(e.time for e in events)


def test_header_is_readable_without_decompressing():
    events = [tailed(i * 40, time=100 + i) for i in range(50)]
    frame = codec.encode_events("prod", "web-1", events)
    header = codec.check_frame(frame)
    assert header.environment == "prod" and header.host == "web-1"
    assert (header.count, header.first_time, header.last_time) == (50, 100, 149)
    assert header.flags & codec.FLAG_LZ4


def test_message_bytes_are_preserved_exactly():
    message = b"\xff\xfe not utf-8 \r\x00 tail"
    _, [back] = codec.decode(codec.encode_events("prod", "h", [tailed(0, message)]))
    assert back.message == message


def test_client_event_fields_round_trip():
    event = client_event()
    _, [back] = codec.decode(codec.encode_events("prod", "h", [event]))
    assert back == event


def test_every_copy_of_a_line_has_the_same_id():
    assert line_id(source_key(1, 2, b"a"), 10) == line_id(source_key(1, 2, b"a"), 10)
    assert line_id(source_key(1, 2, b"a"), 10) != line_id(source_key(1, 2, b"a"), 11)
    assert line_id(source_key(1, 2, b"a"), 10) != line_id(source_key(1, 3, b"a"), 10)
    assert line_id(source_key(1, 2, b"a"), 10) != line_id(source_key(1, 2, b"b"), 10)


@pytest.fixture
def frame():
    return codec.encode_events("prod", "h", [tailed(i * 40) for i in range(20)])


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 12, -1, -10])
def test_truncated_frame_is_refused(frame, cut):
    with pytest.raises(FrameError):
        codec.decode(frame[:cut])


def test_flipped_bit_anywhere_is_caught_by_the_checksum(frame):
    for pos in range(codec.PREFIX_SIZE, len(frame), 7):
        bad = bytearray(frame)
        bad[pos] ^= 0x10
        with pytest.raises(FrameError, match="checksum"):
            codec.check_frame(bytes(bad))


def test_unknown_version_is_refused(frame):
    with pytest.raises(FrameError, match="unknown frame version 9"):
        codec.check_frame(b"\x09" + frame[1:])


def test_unknown_flags_are_refused(frame):
    with pytest.raises(FrameError, match="flags"):
        codec.check_frame(frame[:1] + b"\x80" + frame[2:])


def _forge(header_fields, payload=b"", flags=0):
    header = msgpack.packb(header_fields)
    body = header + payload
    return struct.pack(">BBHI", 1, flags, len(header), zlib.crc32(body)) + body


def test_decompression_bomb_is_refused_before_allocating():
    frame = _forge(["prod", "h", 1, 0, 0, 2**40], b"x", codec.FLAG_LZ4)
    with pytest.raises(FrameError, match="over the limit"):
        codec.check_frame(frame)


@pytest.mark.parametrize(
    "fields, why",
    [
        (["", "h", 0, 0, 0, 0], "environment"),
        ([1, "h", 0, 0, 0, 0], "environment"),
        (["p", "h", "1", 0, 0, 0], "count"),
        (["p", "h", -1, 0, 0, 0], "negative"),
        (["p", "h", 0, 5, 1, 0], "first_time"),
        (["p", "h"], "6 fields"),
        ({"a": 1}, "valid msgpack|6 fields"),
    ],
)
def test_hostile_header_fields_are_refused(fields, why):
    with pytest.raises(FrameError, match=why):
        codec.check_frame(_forge(fields))


def test_garbage_payload_is_a_frame_error():
    frame = _forge(["prod", "h", 1, 0, 0, 100], b"\x00garbage-garbage", codec.FLAG_LZ4)
    with pytest.raises(FrameError):
        codec.decode(frame)


@pytest.mark.parametrize(
    "row, why",
    [
        ([b"short", 1, 1, "h", "a", None, "", None, b"", None], "id"),
        ([b"x" * 16, "1", 1, "h", "a", None, "", None, b"", None], "time"),
        ([b"x" * 16, 1, 1, "h", "a", 9, "", None, b"", None], "severity"),
        ([b"x" * 16, 1, 1, "h", "a", None, "", -1, b"", None], "offset"),
        ([b"x" * 16, 1, 1, "h", "a", None, "", None, "text", None], "message"),
        ([b"x" * 16, 1, 1, "h", "a", None, "", None, b"", [1]], "fields"),
        ([b"x" * 16, 1], "array of 11"),
        ([b"x" * 16, 1, 1, "h", "a", None, "", None, b"", None, b"short"], "source_id"),
    ],
)
def test_event_of_the_wrong_shape_is_refused_with_its_index(row, why):
    raw = msgpack.packb([row], use_bin_type=True)
    frame = _forge(["prod", "h", 1, 1, 1, len(raw)], raw)
    with pytest.raises(FrameError, match=f"event 0 .*{why}"):
        codec.decode(frame)


def test_count_mismatch_is_refused():
    raw = msgpack.packb([], use_bin_type=True)
    frame = _forge(["prod", "h", 1, 0, 0, len(raw)], raw)
    with pytest.raises(FrameError, match="array of 1 events"):
        codec.decode(frame)


def test_unencodable_event_is_a_frame_error():
    bad = tailed(0)._replace(fields={"x": object()})
    with pytest.raises(FrameError, match="cannot encode"):
        codec.encode_events("prod", "h", [bad])


def test_a_row_without_source_id_still_decodes():
    row = [b"x" * 16, 1, 2, "h", "a", None, "/f", 0, b"line", None]
    raw = msgpack.packb([row], use_bin_type=True)
    _, [event] = codec.decode(_forge(["prod", "h", 1, 1, 1, len(raw)], raw))
    assert event.source_id == b"" and event.message == b"line" and event.environment == "prod"


def test_an_empty_id_of_a_tailed_line_is_derived_from_its_source_and_offset():
    row = (b"", 5, 6, "h", "a", None, "/f", 1234, b"line", None, KEY)
    frame = codec.encode_rows("prod", "h", [row], 5, 5)
    _, [event] = codec.decode(frame)
    assert event.id == line_id(KEY, 1234)


def test_an_empty_id_without_source_and_offset_is_refused():
    row = [b"", 5, 6, "h", "a", None, "", None, b"x", None, b""]
    raw = msgpack.packb([row], use_bin_type=True)
    with pytest.raises(FrameError, match="id must be"):
        codec.decode(_forge(["prod", "h", 1, 5, 5, len(raw)], raw))


# --- runs (FLAG_RUNS): the tailer's lines as columns, one source per run ---

KEY2 = source_key(3, 4, b"another first line")

run_strategy = st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.text(max_size=30), st.sampled_from([KEY, KEY2]), st.integers(0, 2**63 - 1),
    st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n),
    st.lists(st.text(max_size=20), min_size=n, max_size=n),
    st.lists(st.text(max_size=20), min_size=n, max_size=n),
    st.lists(st.none() | st.integers(0, 7), min_size=n, max_size=n),
    st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n),
    st.lists(st.binary(max_size=300), min_size=n, max_size=n),
    st.lists(st.none() | st.dictionaries(st.text(max_size=8), st.integers(0, 9) | st.text(max_size=8), max_size=3),
             min_size=n, max_size=n)))


def as_block(run, first):
    """The run with its messages as one block of lines from offset ``first``
    (the offsets those lengths give)."""
    src, sid, rec, times, hosts, apps, sevs, _, messages, fields = run
    messages = [m.replace(b"\n", b" ") for m in messages]
    block = b"".join(m + b"\n" for m in messages)
    offsets, at = [], first
    for m in messages:
        offsets.append(at)
        at += len(m) + 1
    return (src, sid, rec, times, hosts, apps, sevs, first, block, fields), \
        (src, sid, rec, times, hosts, apps, sevs, offsets, messages, fields)


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.tuples(run_strategy, st.integers(0, 2**40), st.booleans()), max_size=5),
       compress=st.booleans())
def test_runs_with_blocks_of_lines_decode_to_the_same_rows(runs, compress):
    sent, meant = [], []
    for run, first, block in runs:
        b, cols = as_block(run, first)
        sent.append(b if block else cols)
        meant.append(cols)
    times = [t for run in meant for t in run[3]] or [0]
    frame = codec.encode_runs("prod", "tailer-1", sent, min(times), max(times), compress=compress)
    assert codec.decode_rows(frame)[1] == rows_of(meant)


def rows_of(runs):
    """What the row layout carries for these runs (ids derived)."""
    return [[line_id(sid, off), t, rec, h, a, sev, src, off, m, f, sid]
            for src, sid, rec, *cols in runs for t, h, a, sev, off, m, f in zip(*cols)]


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(run_strategy, max_size=5), compress=st.booleans())
def test_runs_decode_to_the_rows_the_row_layout_carries(runs, compress):
    times = [t for run in runs for t in run[3]] or [0]
    frame = codec.encode_runs("prod", "tailer-1", runs, min(times), max(times), compress=compress)
    header, rows = codec.decode_rows(frame)
    assert rows == rows_of(runs)
    assert (header.environment, header.host, header.count) == ("prod", "tailer-1", len(rows))
    assert header.flags & codec.FLAG_RUNS
    # The same events as the row layout would give, ids included.
    as_rows = codec.encode_rows("prod", "tailer-1", [[b"", *r[1:]] for r in rows], min(times), max(times),
                                compress=compress)
    assert codec.decode(frame)[1] == codec.decode(as_rows)[1]


def test_a_buck_vets_a_runs_frame_and_stores_it_as_it_came():
    run = ("/var/log/x", KEY, 7, [5, 6], ["h", "h"], ["a", "b"], [None, 3], [0, 10], [b"one", b"two"], [None, None])
    frame = codec.encode_runs("prod", "h", [run], 5, 6)
    header = codec.check_frame(frame)
    assert codec.vet(frame, header, 0, 100, 50) == (header, frame, [])
    # A time out of range: corrected, the frame re-encoded as rows, nothing lost.
    header2, fixed, reasons = codec.vet(frame, header, 6, 100, 50)
    assert len(reasons) == 1 and not header2.flags & codec.FLAG_RUNS
    events = codec.decode(fixed)[1]
    assert [(e.message, e.time, e.id) for e in events] == [(b"one", 7, line_id(KEY, 0)), (b"two", 6, line_id(KEY, 10))]


@pytest.mark.parametrize(
    "payload, why",
    [
        ({"a": 1}, "array of runs"),
        ([[1, 2]], "run 0 .*10 fields"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], [0], [b"x"], []]], "run 0 .*one length"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], [0], b"x", [None]]], "run 0 .*one length"),
        ([["/f", b"short", 1, [1], ["h"], ["a"], [None], [0], [b"x"], [None]]], "run 0 .*source_id"),
        ([["/f", KEY, 1, ["1"], ["h"], ["a"], [None], [0], [b"x"], [None]]], "event 0 .*time"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], [-5], [b"x"], [None]]], "event 0 .*offset"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], 0, b"x", [None]]], "run 0 .*newline"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], 0, [b"x\n"], [None]]], "run 0 .*newline"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], -1, b"x\n", [None]]], "run 0 .*offset"),
        ([["/f", KEY, 1, [1], ["h"], ["a"], [None], 0, b"x\ny\n", [None]]], "run 0 .*one length"),
    ],
)
def test_a_malformed_run_is_a_frame_error(payload, why):
    raw = msgpack.packb(payload, use_bin_type=True)
    frame = _forge(["prod", "h", 1, 1, 1, len(raw)], raw, codec.FLAG_RUNS)
    with pytest.raises(FrameError, match=why):
        codec.decode(frame)


def test_runs_that_hold_more_or_fewer_events_than_the_header_are_refused():
    run = ["/f", KEY, 1, [1, 2], ["h", "h"], ["a", "a"], [None, None], [0, 5], [b"x", b"y"], [None, None]]
    raw = msgpack.packb([run], use_bin_type=True)
    with pytest.raises(FrameError, match="array of 3 events"):
        codec.decode(_forge(["prod", "h", 3, 1, 2, len(raw)], raw, codec.FLAG_RUNS))


def test_runs_of_unequal_columns_are_not_encoded():
    run = ("/f", KEY, 1, [1, 2], ["h"], ["a", "a"], [None, None], [0, 5], [b"x", b"y"], [None, None])
    with pytest.raises(FrameError, match="one length"):
        codec.encode_runs("prod", "h", [run], 1, 2)
# --- the input kind (optional 7th header field) ---

@settings(max_examples=100, deadline=None)
@given(events=events_strategy, compress=st.booleans(),
       kind=st.sampled_from(["file", "journal", "container", "syslog/udp", "syslog/tcp", "syslog/tls"]))
def test_the_input_kind_round_trips_with_the_events(events, compress, kind):
    frame = codec.encode_events("prod", "sender", events, compress=compress, input=kind)
    header, back = codec.decode(frame)
    assert back == events
    assert header.input == kind
    assert codec.check_frame(frame).input == kind


def test_a_frame_without_an_input_kind_is_byte_for_byte_the_old_format_and_decodes():
    events = [tailed(i * 40, time=100 + i) for i in range(5)]
    frame = codec.encode_events("prod", "web-1", events)
    # What a sender from before the field wrote: a header of exactly 6 fields.
    old = _forge(["prod", "web-1", 0, 0, 0, 1], b"\x90")
    assert msgpack.unpackb(frame[8:8 + struct.unpack_from(">H", frame, 2)[0]])[:2] == ["prod", "web-1"]
    assert len(msgpack.unpackb(frame[8:8 + struct.unpack_from(">H", frame, 2)[0]])) == 6
    assert codec.decode(frame)[0].input == ""
    header, back = codec.decode(old)
    assert (header.input, back) == ("", [])


def test_a_corrected_frame_keeps_its_input_kind():
    events = [tailed(0, time=5)]  # 1970: out of any buck's range
    frame = codec.encode_events("prod", "web-1", events, input="journal")
    header = codec.check_frame(frame)
    new_header, new, reasons = codec.vet(frame, header, 10**18, 2 * 10**18, 1_500_000_000 * 10**9)
    assert reasons and new is not frame
    assert new_header.input == "journal" == codec.decode(new)[0].input


@pytest.mark.parametrize("kind", ["", "File", "a b", "-x", "x" * 33, 7, None, "syslog\x00"])
def test_a_bad_input_kind_in_a_header_is_refused(kind):
    with pytest.raises(FrameError, match="input kind|frame header"):
        codec.check_frame(_forge(["p", "h", 0, 0, 0, 0, kind]))


def test_a_bad_input_kind_is_refused_when_encoding():
    with pytest.raises(FrameError, match="input kind"):
        codec.encode_events("prod", "h", [client_event()], input="Not A Kind")


def test_a_header_of_eight_fields_is_refused():
    with pytest.raises(FrameError, match="6 fields"):
        codec.check_frame(_forge(["p", "h", 0, 0, 0, 0, "file", "x"]))


# --- runs of messages without positions (syslog): an id base, nil offsets, shared fields ---

BASE = bytes(range(16))

message_run_strategy = st.integers(0, 30).flatmap(lambda n: st.tuples(
    st.sampled_from(["syslog/tcp", "syslog/udp"]), st.sampled_from([BASE, b"\xff" * 16]),
    st.integers(0, 2**63 - 1),
    st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n),
    st.lists(st.text(max_size=20), min_size=n, max_size=n),
    st.lists(st.text(max_size=20), min_size=n, max_size=n),
    st.lists(st.none() | st.integers(0, 7), min_size=n, max_size=n),
    st.just(None),
    st.lists(st.binary(max_size=300).map(lambda m: m.replace(b"\n", b" ")), min_size=n, max_size=n),
    st.lists(st.none() | st.dictionaries(st.sampled_from(["peer", "msgid", "k"]), st.integers(0, 9) | st.text(max_size=8),
                                         max_size=3), min_size=n, max_size=n),
    st.none() | st.just({"peer": "192.0.2.7:514"})))


def message_rows_of(runs):
    """The rows these runs of messages stand for: ids from the base and the
    place in the run, no offset, no source_id, shared fields over each event's own."""
    rows = []
    for src, base, rec, times, hosts, apps, sevs, _, messages, fields, shared in runs:
        for k, (t, h, a, sev, m, f) in enumerate(zip(times, hosts, apps, sevs, messages, fields)):
            if shared is not None:
                f = {**(f or {}), **shared}
            rows.append([line_id(base, k), t, rec, h, a, sev, src, None, m, f, b""])
    return rows


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.tuples(message_run_strategy, st.booleans()), max_size=4), compress=st.booleans())
def test_runs_of_messages_decode_to_rows_with_ids_from_their_base(runs, compress):
    sent = [run[:8] + (b"".join(m + b"\n" for m in run[8]),) + run[9:] if block else run for run, block in runs]
    meant = [run for run, _ in runs]
    times = [t for run in meant for t in run[3]] or [0]
    frame = codec.encode_messages("prod", "relay-1", sent, min(times), max(times), compress=compress,
                                  input="syslog/tcp")
    header, rows = codec.decode_rows(frame)
    assert rows == message_rows_of(meant)
    assert header.count == len(rows) and header.input == "syslog/tcp"
    # Decoded again (a copy re-sent from the spool): the same ids.
    assert codec.decode_rows(frame)[1] == rows


def test_every_event_of_a_message_run_has_its_own_id_and_its_own_fields():
    shared = {"peer": "192.0.2.7:514"}
    run = ("syslog/tcp", BASE, 9, [1, 2, 3], ["h"] * 3, ["a"] * 3, [None] * 3, None, b"x\ny\nz\n",
           [None, {"msgid": "m"}, {"peer": "spoofed"}], shared)
    other = ("syslog/tcp", b"\x01" * 16, 9, [4], ["h"], ["a"], [None], None, [b"w"], [None], None)
    events = codec.decode(codec.encode_messages("prod", "relay-1", [run, other], 1, 4))[1]
    assert len({e.id for e in events}) == 4
    assert [e.fields for e in events] == [shared, {"msgid": "m", **shared}, shared, None]
    assert [(e.offset, e.source_id, e.message) for e in events] == [(None, b"", m) for m in (b"x", b"y", b"z", b"w")]
    events[0].fields["x"] = 1      # each event's fields are a dict of its own
    assert events[2].fields == shared and shared == {"peer": "192.0.2.7:514"}


def test_a_buck_vets_a_message_run_and_keeps_its_ids():
    run = ("syslog/udp", BASE, 7, [5, 6], ["h", "h"], ["a", "b"], [None, 3], None, [b"one", b"two"],
           [None, None], {"peer": "192.0.2.7:514"})
    frame = codec.encode_messages("prod", "h", [run], 5, 6)
    header = codec.check_frame(frame)
    assert codec.vet(frame, header, 0, 100, 50) == (header, frame, [])
    _, fixed, reasons = codec.vet(frame, header, 6, 100, 50)   # the first time out of range: corrected
    assert len(reasons) == 1
    before, after = codec.decode(frame)[1], codec.decode(fixed)[1]
    assert [e.id for e in after] == [e.id for e in before] == [line_id(BASE, 0), line_id(BASE, 1)]
    assert codec.CORRECTED in after[0].fields and after[1].fields == {"peer": "192.0.2.7:514"}


@pytest.mark.parametrize(
    "payload, why",
    [
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, [b"x"], [None], [1]]], "run 0 .*shared fields"),
        ([["syslog/tcp", b"short", 1, [1], ["h"], ["a"], [None], None, [b"x"], [None], None]], "run 0 .*id base"),
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, b"x", [None], None]], "run 0 .*newline"),
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, b"x\ny\n", [None], None]], "run 0 .*one length"),
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, [b"x"], [], None]], "run 0 .*one length"),
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], 0, [b"x"], [None], None]], "run 0 .*10 fields"),
        ([["syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, [b"x"], ["f"], None]], "event 0 .*fields"),
    ],
)
def test_a_malformed_run_of_messages_is_a_frame_error(payload, why):
    raw = msgpack.packb(payload, use_bin_type=True)
    with pytest.raises(FrameError, match=why):
        codec.decode(_forge(["prod", "h", 1, 1, 1, len(raw)], raw, codec.FLAG_RUNS))


@pytest.mark.parametrize("run", [
    ("syslog/tcp", BASE, 1, [1, 2], ["h"] * 2, ["a"] * 2, [None] * 2, None, b"", [None] * 2, None),
    ("syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, b"x", [None], None),
    ("syslog/tcp", BASE[:3], 1, [1], ["h"], ["a"], [None], None, [b"x"], [None], None),
    ("syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], 0, [b"x"], [None], None),
    ("syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, [b"x"], [None], "peer"),
    ("syslog/tcp", BASE, 1, [1], ["h"], ["a"], [None], None, [b"x"], [None]),
])
def test_a_wrong_run_of_messages_is_not_encoded(run):
    with pytest.raises(FrameError, match="cannot encode"):
        codec.encode_messages("prod", "h", [run], 1, 2)
