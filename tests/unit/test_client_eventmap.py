"""Event maps (helios.eventmap): the shape the client library and HTTP ingest take."""

import base64
import datetime

import msgpack
import pytest

from helios import codec
from helios.errors import EventError
from helios.eventmap import Defaults, event_time_ns, to_row
from helios.model import ROW_FIELDS, Event

D = Defaults("prod", "web-1", "shop")
NOW = 1_700_000_000_000_000_000


def event(obj, **kw):
    env, row = to_row(obj, D, NOW, **kw)
    assert len(row) == ROW_FIELDS
    return Event(*row, environment=env)


def test_reserved_keys_fill_the_event_and_every_other_key_is_a_field():
    e = event({"id": "00" * 16, "time": "2024-01-31T12:00:00Z", "received": 5, "environment": "stage",
               "host": "h", "app": "a", "severity": "err", "message": "boom", "order": 7, "tags": ["x"]})
    assert e.id == bytes(16) and e.time == 1706702400 * 10**9 and e.received == 5 * 10**9
    assert (e.environment, e.host, e.app, e.severity, e.message) == ("stage", "h", "a", 3, b"boom")
    assert e.fields == {"order": 7, "tags": ["x"]}
    assert (e.source, e.offset) == ("", None)


def test_an_empty_map_gets_the_defaults_the_given_id_and_now():
    e = event({}, id_=b"i" * 16)
    assert (e.id, e.time, e.received) == (b"i" * 16, NOW, NOW)
    assert (e.environment, e.host, e.app, e.severity, e.message, e.fields) == ("prod", "web-1", "shop", None, b"", {})


def test_without_an_id_each_event_gets_a_fresh_random_one():
    assert event({}).id != event({}).id


def test_fields_may_be_given_under_fields_to_use_a_reserved_name():
    assert event({"fields": {"host": "db-3"}, "user": 1}).fields == {"host": "db-3", "user": 1}


def test_a_field_given_both_ways_is_refused():
    with pytest.raises(EventError, match="field 'user' is given both"):
        event({"fields": {"user": 1}, "user": 2})


@pytest.mark.parametrize("text, ns", [
    ("2024-01-31T12:00:00.123456789Z", 1706702400123456789),
    ("2024-01-31T12:00:00.5", 1706702400500000000),              # no offset: UTC
    ("2024-01-31T13:00:00.000000001+01:00", 1706702400000000001),
    ("2024-01-31 12:00:00,25Z", 1706702400250000000),
    ("2024-01-31", 1706659200000000000),
])
def test_iso_8601_times_keep_up_to_nanoseconds(text, ns):
    assert event_time_ns(text) == ns


def test_a_number_is_seconds_since_the_epoch_never_guessed_by_magnitude():
    assert event_time_ns(1706702400) == 1706702400 * 10**9
    assert event_time_ns(1.5) == 1_500_000_000
    with pytest.raises(EventError, match="out of range"):
        event_time_ns(1706702400123)  # milliseconds would be the year 56000


def test_msgpack_timestamps_and_datetimes_are_times():
    assert event_time_ns(msgpack.Timestamp.from_unix_nano(123)) == 123
    assert event_time_ns(datetime.datetime(1970, 1, 1, 0, 0, 1)) == 10**9


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", True, [1], "1" * 100, float("nan"),
                                   "2024-01-31T12:00:00.1234567891Z", "9999-01-01T00:00:00Z"])
def test_a_time_that_is_not_one_is_refused(value):
    with pytest.raises(EventError, match="time"):
        event({"time": value})


def test_ids_are_taken_as_bytes_hex_or_base64():
    raw = bytes(range(16))
    for value in (raw, raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert event({"id": value}).id == raw


@pytest.mark.parametrize("value", [b"short", "zz" * 16, 12, "not an id"])
def test_an_id_that_is_not_16_bytes_is_refused(value):
    with pytest.raises(EventError, match="id must be 16 bytes"):
        event({"id": value})


@pytest.mark.parametrize("value, number", [(0, 0), (7, 7), ("WARNING", 4), ("warn", 4), ("fatal", 2), (None, None)])
def test_severities_are_numbers_or_names(value, number):
    assert event({"severity": value}).severity == number


@pytest.mark.parametrize("value", [8, -1, "loud", 3.0, True])
def test_other_severities_are_refused(value):
    with pytest.raises(EventError, match="severity must be"):
        event({"severity": value})


@pytest.mark.parametrize("obj, problem", [
    ({"environment": "../etc"}, "environment must be a name"),
    ({"host": 5}, "host must be a string"),
    ({"app": "a" * 256}, "app is 256 characters long"),
    ({"message": 5}, "message must be a string"),
    ({"message": "\ud800"}, "message is not valid Unicode"),
    ({"fields": [1]}, "fields must be a map"),
    ({"fields": {1: 2}}, "field names must be strings"),
    ([1, 2], "an event must be a map"),
])
def test_each_wrong_key_is_named_in_the_error(obj, problem):
    with pytest.raises(EventError, match=problem):
        event(obj)


def test_a_message_is_stored_as_utf8_and_bytes_stay_bytes():
    assert event({"message": "café"}).message == "café".encode()
    assert event({"message": b"\xff\x00"}).message == b"\xff\x00"


def test_rows_encode_and_decode_as_events():
    rows = [to_row({"message": f"m{i}", "n": i}, D, NOW)[1] for i in range(3)]
    header, events = codec.decode(codec.encode_rows("prod", "web-1", rows, NOW, NOW))
    assert [e.fields for e in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
