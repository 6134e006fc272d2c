"""RFC 6587 framing (helios.syslognet.framing): the senders' framings and the
Deframer are inverses, however the stream is cut into reads; every bad frame
is counted and costs only itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.config import load
from helios.errors import ConfigError
from helios.syslognet.events import Framer
from helios.syslognet.framing import Deframer, newline_frame, octet_frame
from helios import codec

any_message = st.binary(min_size=1, max_size=300)
line_message = any_message.filter(lambda m: b"\n" not in m and not m[:1].isdigit())


def feed_in_pieces(d: Deframer, data: bytes, cuts: list[int]) -> list[bytes]:
    out, prev = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        out += d.feed(data[prev:cut])
        prev = cut
    return out + d.finish()


@given(st.lists(any_message, max_size=30), st.lists(st.integers(min_value=0), max_size=10))
def test_octet_counted_messages_come_back_whole_however_the_stream_is_cut(messages, cuts):
    d = Deframer(max_size=1000)
    assert feed_in_pieces(d, octet_frame(messages), cuts) == messages
    assert not d.problems


@given(st.lists(line_message, max_size=30), st.lists(st.integers(min_value=0), max_size=10))
def test_newline_framed_messages_come_back_whole_however_the_stream_is_cut(messages, cuts):
    d = Deframer(max_size=1000)
    assert feed_in_pieces(d, newline_frame(messages), cuts) == messages
    assert not d.problems


@given(st.lists(st.tuples(st.booleans(), line_message), max_size=30), st.lists(st.integers(min_value=0), max_size=5))
def test_the_framing_is_told_apart_per_message_as_rsyslog_does(items, cuts):
    data = b"".join(octet_frame([m]) if octet else newline_frame([m]) for octet, m in items)
    assert feed_in_pieces(Deframer(1000), data, cuts) == [m for _, m in items]


def test_a_newline_framed_message_may_hold_a_leading_digit_only_in_octet_counting():
    with pytest.raises(ValueError):
        newline_frame([b"2024-03-11 no PRI"])
    assert Deframer().feed(octet_frame([b"2024-03-11 no PRI", b"two\nlines"])) == [b"2024-03-11 no PRI", b"two\nlines"]


def test_an_oversized_octet_counted_message_is_cut_and_the_next_one_is_whole():
    d = Deframer(max_size=300)
    data = octet_frame([b"a" * 1000, b"<13>next"])
    out = d.feed(data[:400]) + d.feed(data[400:700]) + d.feed(data[700:])
    assert out == [b"a" * 300, b"<13>next"]
    assert d.problems == {"oversized": 1} and d.skipped_bytes == 700


def test_an_oversized_line_is_cut_and_the_rest_of_it_is_skipped_across_reads():
    d = Deframer(max_size=300)
    first = d.feed(b"<13>" + b"b" * 500)
    assert len(first) == 1 and len(first[0]) == 300 and d.truncated == [0]
    assert d.feed(b"c" * 500) == []
    assert d.feed(b"c\n<13>next\n") == [b"<13>next"]
    assert d.problems == {"oversized": 1}


def test_oversized_lines_in_one_read_are_marked_by_index():
    d = Deframer(max_size=10)
    assert d.feed(b"<13>a\n<13>" + b"x" * 20 + b"\n<13>b\n") == [b"<13>a", b"<13>xxxxxx", b"<13>b"]
    assert d.truncated == [1]


def test_a_malformed_octet_count_is_read_as_a_line_and_counted():
    d = Deframer()
    assert d.feed(b"12x <13>odd\n5 <13>a") == [b"12x <13>odd", b"<13>a"]
    assert d.problems == {"malformed octet count": 1}
    assert d.feed(b"1234567890123 too many digits\n") == [b"1234567890123 too many digits"]
    assert d.problems["malformed octet count"] == 2


def test_empty_lines_and_zero_length_frames_are_left_out_and_counted():
    d = Deframer()
    assert d.feed(b"\n<13>a\n\n0 <13>b\n") == [b"<13>a", b"<13>b"]
    assert d.problems == {"empty message": 3}


def test_the_end_of_a_stream_keeps_a_last_line_and_marks_a_cut_frame():
    d = Deframer()
    assert d.feed(b"<13>a\n<13>no newline") == [b"<13>a"]
    assert d.finish() == [b"<13>no newline"] and d.truncated == []
    assert d.feed(b"50 <13>only part") == []
    assert d.finish() == [b"<13>only part"] and d.truncated == [0]
    assert d.problems == {"incomplete frame": 1}


def test_framed_messages_decode_to_events_with_the_message_untouched():
    f = Framer("prod", "relay-host", "UTC")
    msgs = [b"<13>Mar 11 08:15:02 web1 nginx[12]: GET /\r",
            b"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [ex@32473 iut=\"3\"] event",
            b"no header at all\nand a second line"]
    (frame, n, nbytes), = f.frames(msgs, "10.1.2.3:5140", "syslog/tcp", 10**18, truncated=[2])
    header, events = codec.decode(frame)
    assert (header.environment, header.host, n, nbytes) == ("prod", "relay-host", 3, sum(map(len, msgs)))
    assert [e.message for e in events] == msgs
    assert [(e.host, e.app, e.severity) for e in events] == [("web1", "nginx", 5), ("mymachine", "evntslog", 5),
                                                             ("10.1.2.3", "", None)]
    assert events[1].fields == {"ex@32473.iut": "3", "msgid": "ID47", "peer": "10.1.2.3:5140"}
    assert events[2].fields == {"peer": "10.1.2.3:5140", "truncated": True}
    assert len({e.id for e in events}) == 3


def test_udp_messages_keep_each_sender_as_their_peer():
    f = Framer("prod", "relay-host", "UTC")
    (frame, _, _), = f.frames([b"<13>no host here", b"<13>again"], ["10.0.0.1:514", "[::1]:9"], "syslog/udp", 1)
    events = codec.decode(frame)[1]
    assert [(e.host, e.fields["peer"]) for e in events] == [("10.0.0.1", "10.0.0.1:514"), ("::1", "[::1]:9")]


def test_tls_without_a_certificate_is_a_config_problem_with_every_other_one():
    with pytest.raises(ConfigError) as exc:
        load(None, {"relay.bucks": ("tcp://a:1",), "relay.syslog_tls": ("0.0.0.0:6514",),
                    "relay.syslog_tcp": ("nonsense",), "relay.syslog_max_message_bytes": 10})
    text = str(exc.value)
    for key in ("syslog_tls_cert", "syslog_tls_key", "syslog_tcp[0]", "syslog_max_message_bytes"):
        assert f"relay.{key}" in text, text


piece = st.sampled_from([b"<13>ab", b"\n", b"\n\n", b"7 <13>oct", b"12x ", b"0 ", b"9", b" ", b"y" * 40, b"\r"])


@given(st.lists(piece, max_size=60), st.lists(st.integers(min_value=0), max_size=6))
def test_a_read_cut_by_the_worker_gives_what_feed_gives(pieces, cuts):
    """feed_raw in the relay, then cut_job in a framing process: the same
    messages, truncated marks and problems as feed, read after read."""
    from helios.syslognet.workers import cut_job

    data = b"".join(pieces)
    whole, raw = Deframer(max_size=16), Deframer(max_size=16)
    prev = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        want = whole.feed(data[prev:cut])
        block, rest = raw.feed_raw(data[prev:cut])
        got, truncated, problems = cut_job(block, rest, raw.truncated, 16)
        assert got == want and truncated == whole.truncated
        raw.problems.update(problems)
        assert raw.problems == whole.problems
        prev = cut


@pytest.mark.parametrize("before", [b"", b"no pri here\n", b"<13>x\nplain\n<14>y\n"])
def test_an_octet_counted_frame_after_lines_with_and_without_a_pri_is_found_in_one_read(before):
    # The relay looks for a line not starting with "<" first, then for a digit from there on.
    data = b"<13>a\n<14>b\n" + before + octet_frame([b"<15>multi\nline"]) + b"<16>c\n"
    expected = [b"<13>a", b"<14>b"] + [m for m in before.split(b"\n") if m] + [b"<15>multi\nline", b"<16>c"]
    d = Deframer(1000)
    assert d.feed(data) + d.finish() == expected
    d = Deframer(1000)
    assert d.feed(b"<12>start") + d.feed(b" of it\n" + data) + d.finish() == [b"<12>start of it"] + expected
