"""The export formats: NDJSON that reads back to the same events, and
bucket files that hold the same events, in a buck's layout."""

import json

import pytest

from helios import codec
from helios.eventform import from_json, to_json
from helios.export import BucketExport
from helios.model import Event, line_id, random_id, source_key
from helios.store import layout
from helios.store.records import RecordReader

NS = 1_000_000_000
T0 = 1_795_000_020
KEY = source_key(1, 2, b"first")

EVENTS = [
    Event(line_id(KEY, 0), T0 * NS, T0 * NS + 5, "web-1", "nginx", 6, "/var/log/nginx.log", 0,
          b"GET / 200", None, KEY, "prod"),
    Event(random_id(), T0 * NS + 1, T0 * NS + 6, "web-2", "", None, "", None, b"\xff\xfe not utf-8 \x00",
          {"user": "bob", "n": 3, "raw": b"\x01\x02", "list": [1.5, None]}, b"", "prod"),
    Event(random_id(), (T0 + 70) * NS, (T0 + 70) * NS, "h\u00e9", "caf\u00e9", 0, "", None,
          "\u00e9t\u00e9 \u2014 line".encode(), {"plain": {"json": True}}, b"", "prod"),
]


@pytest.mark.parametrize("event", EVENTS, ids=["tailed", "bytes-and-odd-fields", "unicode"])
def test_an_event_written_as_ndjson_reads_back_equal(event):
    line = to_json(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert from_json(line) == event


def test_ndjson_has_the_keys_of_subscribe_json_for_other_systems():
    obj = json.loads(to_json(EVENTS[0]))
    for key in ("id", "time", "time_ns", "received_ns", "environment", "host", "app", "severity", "severity_code",
                "source", "offset", "message", "fields"):
        assert key in obj
    assert obj["message"] == "GET / 200" and obj["severity"] == "info"
    assert json.loads(to_json(EVENTS[2]))["fields"] == {"plain": {"json": True}}


def test_a_line_that_is_not_an_export_is_refused():
    with pytest.raises(ValueError, match="not an exported event"):
        from_json(b'{"id": "zz"}')


def test_bucket_export_writes_a_bucks_layout_holding_the_same_events(tmp_path):
    out = BucketExport(tmp_path, width=60, per_frame=2)
    out.add(EVENTS)
    out.close()
    assert out.events == 3
    found = layout.list_buckets(tmp_path / "buckets")
    assert [layout.bucket_id(n) for n, _ in found] == ["prod/20261118/110700-60s", "prod/20261118/110800-60s"]
    got = [e for _, path in found for frame in RecordReader(path) for e in codec.decode(frame)[1]]
    assert got == EVENTS


def test_bucket_export_refuses_to_add_to_an_existing_bucket_file(tmp_path):
    first = BucketExport(tmp_path)
    first.add(EVENTS[:1])
    first.close()
    again = BucketExport(tmp_path)
    with pytest.raises(FileExistsError, match="export into a new directory"):
        again.add(EVENTS[:1])


def test_the_json_form_is_complete_and_readable_and_exact_only_where_json_falls_short():
    plain = json.loads(to_json(EVENTS[2]))
    assert plain["source_id"] == "" and "fields_msgpack" not in plain and "message_base64" not in plain
    odd = json.loads(to_json(EVENTS[1]))
    assert odd["fields"]["raw"] == "\x01\x02" and odd["fields"]["user"] == "bob"  # readable
    assert "fields_msgpack" in odd and from_json(to_json(EVENTS[1])).fields["raw"] == b"\x01\x02"  # exact
    tailed = json.loads(to_json(EVENTS[0]))
    assert tailed["source_id"] == KEY.hex() and tailed["time"] == "2026-11-18T11:07:00.000Z"


def test_integer_keys_are_kept_exactly():
    e = EVENTS[2]._replace(fields={1: "one", "n": float("nan")})
    back = from_json(to_json(e))
    assert back.fields[1] == "one" and back.fields["n"] != back.fields["n"]


@pytest.mark.parametrize("ns", [0, 1, T0 * NS + 123_456_789, -1])
def test_printed_times_read_back_to_the_printed_precision(ns):
    from helios.timespec import iso_ms, iso_s, parse_time_ns

    assert parse_time_ns(iso_ms(ns)) == ns // 1_000_000 * 1_000_000
    assert parse_time_ns(iso_s(ns / NS)) == ns // NS * NS


def test_times_are_read_and_printed_without_float_rounding():
    from helios.timespec import iso_ms, parse_time_ns

    assert parse_time_ns("1795000020.123456789") == 1_795_000_020_123_456_789
    assert parse_time_ns("2026-11-18T11:07:00.123456Z") == 1_795_000_020_123_456_000
    assert iso_ms(1_795_000_020_999_999_999) == "2026-11-18T11:07:00.999Z"  # not the next second


def test_a_time_past_what_an_event_can_hold_is_a_clear_error_not_an_overflow_later():
    import pytest

    from helios.timespec import TimeSpecError, parse_time_ns

    for text in ("99999999999999999999", "-999999999w", "9999-01-01T00:00"):
        with pytest.raises(TimeSpecError, match="out of range"):
            parse_time_ns(text)
    assert parse_time_ns("2262-04-11T00:00") > 0
