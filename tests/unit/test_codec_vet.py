"""The events' own checks (issue 17): ``codec.vet`` (a buck taking a frame)
keeps a line with an insane time with a corrected time and a mark, refuses a
malformed event; ``decode_rows(set_aside=...)`` (the porter) leaves out what
no index or archive can hold and keeps the rest."""

import msgpack
import pytest
from hypothesis import given, settings
import hypothesis.strategies as st

from helios import codec
from helios.errors import FrameError
from helios.model import Event, random_id

NOW = 1_800_000_000 * 10**9
EARLIEST, LATEST = NOW - 3650 * 86400 * 10**9, NOW + 86400 * 10**9
RECEIVED = NOW - 10**9


def row(time=NOW, received=RECEIVED, **kw):
    e = {"id": random_id(), "time": time, "received": received, "host": "h", "app": "a", "severity": 6,
         "source": "", "offset": None, "message": b"a line", "fields": None, "source_id": b""}
    e.update(kw)
    return list(e.values())


def frame(*rows, first=None, last=None):
    times = [r[1] for r in rows if type(r[1]) is int] or [0]
    return codec.encode_rows("prod", "web-1", list(rows), min(times) if first is None else first,
                             max(times) if last is None else last)


def vet(f):
    return codec.vet(f, codec.check_frame(f), EARLIEST, LATEST, NOW)


def test_a_frame_whose_events_are_all_sane_is_kept_as_it_arrived():
    f = frame(row(), row(fields={"user": "ann"}))
    header, same, reasons = vet(f)
    assert same is f and reasons == [] and header == codec.check_frame(f)


@pytest.mark.parametrize("bad", [2**64 - 1, 2**63 - 1, -5, 0, LATEST + 1, EARLIEST - 1, 1.5, None, "now"])
def test_an_insane_time_is_replaced_by_the_receive_time_and_marked(bad):
    good = row()
    f = frame(good, row(time=bad, fields={"user": "ann"}), first=NOW, last=NOW)
    header, new, reasons = vet(f)
    assert len(reasons) == 1 and reasons[0].startswith("event 1:")
    _, events = codec.decode(new)
    assert events[0] == Event(*good, "prod")
    fixed = events[1]
    assert fixed.time == RECEIVED and fixed.message == b"a line"
    mark = fixed.fields[codec.CORRECTED]
    assert mark["time"] == (str(bad) if type(bad) is int else f"{type(bad).__name__} {bad!r}")
    assert "set to the receive time" in mark["why"]
    assert fixed.fields["user"] == "ann"
    assert (header.first_time, header.last_time) == (RECEIVED, NOW)


def test_when_the_receive_time_is_insane_too_both_become_the_time_the_buck_took_it():
    f = frame(row(time=2**64 - 1, received=-1))
    _, new, reasons = vet(f)
    (e,) = codec.decode(new)[1]
    assert (e.time, e.received) == (NOW, NOW)
    assert e.fields[codec.CORRECTED]["received"] == "-1" and "when the buck took it" in reasons[0]


@pytest.mark.parametrize("bad, why", [
    ({"host": 5}, "host, app and source must be strings"),
    ({"message": "text, not bytes"}, "message must be bytes"),
    ({"severity": 9}, "severity must be 0..7"),
    ({"offset": 2**64 - 1, "source": "/x"}, "offset must be"),
    ({"id": b"short"}, "id must be 16 bytes"),
    ({"fields": {"t": msgpack.ExtType(3, b"x")}}, "fields hold a value of an extension type"),
    ({"fields": "not a map"}, "fields must be a map"),
    ({"host": "h" * 8192}, "host, app and source must be at most 8191 characters"),
])
def test_a_malformed_event_refuses_its_frame_naming_it(bad, why):
    f = frame(row(), row(**bad))
    with pytest.raises(FrameError, match=f"^malformed event: event 1 of the batch: {why}"):
        vet(f)


def test_a_header_that_lies_about_the_time_span_is_rewritten():
    f = frame(row(time=NOW - 10), row(time=NOW), first=NOW - 5, last=NOW + 5)
    header, new, reasons = vet(f)
    assert reasons == [] and new is not f and (header.first_time, header.last_time) == (NOW - 10, NOW)


def test_span_ok_reads_the_header_only():
    assert codec.span_ok(codec.check_frame(frame(row())), EARLIEST, LATEST)
    assert not codec.span_ok(codec.check_frame(frame(row(), row(time=2**64 - 1))), EARLIEST, LATEST)


def test_the_porter_sets_aside_what_no_index_can_hold_and_keeps_the_rest():
    f = frame(row(), row(time=2**64 - 1), row(offset=2**63, source="/x"), row())
    aside = []
    _, kept = codec.decode_rows(f, set_aside=aside)
    assert [r[8] for r in kept] == [b"a line", b"a line"] and len(kept) == 2
    assert [(i, why.split(" must")[0]) for i, _, why in aside] == [(1, "time and received"), (2, "offset")]
    assert aside[1][2] == "offset must be at most 2**63-1"
    # Without set_aside (the tools: audit, buckets get, the live feed), only malformed events are refused.
    assert len(codec.decode_rows(f)[1]) == 4
    with pytest.raises(FrameError, match="event 1 of the batch: host"):
        codec.decode_rows(frame(row(), row(host=5)))


@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.integers(-(2**63), 2**64 - 1), min_size=1, max_size=20))
def test_after_vet_every_event_is_one_the_porter_keeps(times):
    f = frame(*[row(time=t) for t in times])
    _, new, reasons = vet(f)
    aside = []
    _, kept = codec.decode_rows(new, set_aside=aside)
    assert aside == [] and len(kept) == len(times)
    assert all(EARLIEST <= r[1] <= LATEST for r in kept)
    assert len(reasons) == sum(1 for t in times if not EARLIEST <= t <= LATEST)


names = st.text(max_size=4) | st.just("n" * 8192)
odd_rows = st.builds(
    lambda id_, t, r, host, sev, off, fields, sid: [id_, t, r, host, "app", sev, "/x", off, b"line", fields, sid],
    st.just(b"") | st.binary(min_size=16, max_size=16),
    st.integers(-(2**63), 2**64 - 1), st.integers(-(2**63), 2**64 - 1), names,
    st.none() | st.integers(0, 9), st.none() | st.integers(0, 2**64 - 1),
    st.none() | st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**64 - 1) | st.floats()
                                | st.just(msgpack.ExtType(1, b"x")), max_size=2),
    st.just(b"") | st.binary(min_size=16, max_size=16))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(odd_rows, min_size=1, max_size=8))
def test_what_the_porter_keeps_the_archive_packs_and_the_sqlite_index_loads(rows, tmp_path_factory):
    """The porter's checks agree with the index's and the archive's: an
    event it keeps is never one they refuse (which would fail its window)."""
    from helios.archive import format as fmt
    from helios.index.sqlite import SqliteIndex

    f = codec.encode_rows("prod", "h", rows, 0, 0)
    aside = []
    _, kept = codec.decode_rows(f, set_aside=aside)
    assert len(kept) + len(aside) == len(rows)
    if not kept:
        return
    events = [Event(*r, "prod") for r in kept]
    fmt.unpack(fmt.pack(events, environment="prod", level=1))
    index = SqliteIndex(tmp_path_factory.mktemp("index"))
    try:
        assert index.load("prod", kept) >= 1  # loads, never raises (the porter dedups by id before)
    finally:
        index.close()
