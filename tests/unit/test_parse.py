"""helios.parse: chunks of log lines -> columns of time, host, app and severity."""

from __future__ import annotations

import csv
import datetime
import json
import pathlib
import random
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.parse import FORMATS, Columns, Parser
from tests.helpers import require

UTC = datetime.timezone.utc
LOGHUB = pathlib.Path("/work/shared/data/loghub")
MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def ns(y, mo, d, h=0, mi=0, s=0, frac=0, tz=UTC) -> int:
    """ns since the epoch of a wall-clock time in ``tz``, plus ``frac`` ns."""
    return int(datetime.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()) * 10**9 + frac


NOW = ns(2026, 8, 1, 12)


def one(line: bytes, fmt: str = "auto", now: int = NOW, **kw) -> tuple:
    """(time, host, app, severity) of a single line."""
    cols = Parser(fmt, default_host="dhost", default_app="dapp", **kw).parse_chunk(line + b"\n", now)
    assert cols.lines == [line]
    return cols.times[0], cols.hosts[0], cols.apps[0], cols.severities[0]


UNPARSED = (NOW, "dhost", "dapp", None)


# -- the API ------------------------------------------------------------------


def test_formats_are_the_documented_names():
    assert FORMATS == ("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw")


def test_unknown_format_raises_value_error():
    with pytest.raises(ValueError, match="nginx"):
        Parser("nginx")


def test_parse_chunk_returns_columns_of_plain_lists():
    cols = Parser().parse_chunk(b"a\nb\n", NOW)
    assert isinstance(cols, Columns)
    assert all(type(col) is list and len(col) == 2 for col in cols)


# -- chunking -------------------------------------------------------------------


def test_empty_chunk_gives_empty_columns():
    assert Parser().parse_chunk(b"", NOW) == Columns([], [], [], [], [], [], [])


def test_lines_are_returned_without_their_newline():
    assert Parser().parse_chunk(b"one\ntwo\n", NOW).lines == [b"one", b"two"]


def test_carriage_return_before_the_newline_is_kept_in_the_line():
    cols = Parser().parse_chunk(b"Jun 14 15:16:01 combo sshd[1]: hi\r\n", NOW)
    assert cols.lines == [b"Jun 14 15:16:01 combo sshd[1]: hi\r"]
    assert (cols.hosts[0], cols.apps[0]) == ("combo", "sshd")


def test_chunk_without_trailing_newline_keeps_the_trailing_bytes_as_a_last_line():
    assert Parser().parse_chunk(b"one\ntwo", NOW).lines == [b"one", b"two"]


def test_empty_lines_are_lines_with_receive_time_and_defaults():
    cols = Parser(default_host="h", default_app="a").parse_chunk(b"\n\nJun 14 15:16:01 x y: z\n\n", NOW)
    assert cols.lines == [b"", b"", b"Jun 14 15:16:01 x y: z", b""]
    assert [cols.times[i] for i in (0, 1, 3)] == [NOW] * 3
    assert [cols.hosts[i] for i in (0, 1, 3)] == ["h"] * 3
    assert [cols.apps[i] for i in (0, 1, 3)] == ["a"] * 3
    assert [cols.severities[i] for i in (0, 1, 3)] == [None] * 3


def test_a_chunk_of_only_a_newline_is_one_empty_line():
    assert Parser().parse_chunk(b"\n", NOW).lines == [b""]


# -- RFC 3164 -------------------------------------------------------------------


def test_rfc3164_line_gives_time_host_and_app_without_pid():
    line = b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster"
    assert one(line, now=ns(2026, 12, 20)) == (ns(2026, 12, 10, 6, 55, 46), "LabSZ", "sshd", None)


def test_rfc3164_app_may_hold_parentheses_slashes_dashes_and_dots():
    for app in ("sshd(pam_unix)", "postfix/smtpd", "gdm-binary", "rpc.statd"):
        assert one(b"Jun 14 15:16:01 combo " + app.encode() + b"[19939]: x")[2] == app


def test_rfc3164_app_without_pid_ends_at_the_colon():
    assert one(b"Jun 14 15:16:01 combo kernel: Linux version 2.6.5")[1:3] == ("combo", "kernel")


def test_rfc3164_word_after_the_host_without_a_colon_is_the_tag_as_rsyslog_and_vector_read_it():
    # Issue 19 changed this (it was the default app): rsyslog and Vector take the word as the tag.
    t, host, app, _ = one(b"Jun 14 15:16:01 combo message without colon")
    assert (t, host, app) == (ns(2026, 6, 14, 15, 16, 1), "combo", "message")


def test_rfc3164_line_with_only_a_host_has_the_default_app():
    assert one(b"Jun 14 15:16:01 combo")[1:3] == ("combo", "dapp")


def test_rfc3164_space_padded_day_is_read():
    assert one(b"Jul  1 09:00:01 combo crond[1]: x")[0] == ns(2026, 7, 1, 9, 0, 1)


def test_rfc3164_pri_gives_the_severity():
    assert one(b"<13>Jun 14 15:16:01 combo app: x")[3] == 5
    assert one(b"<191>Jun 14 15:16:01 combo app: x")[3] == 7


def test_rfc3164_without_pri_has_no_severity():
    assert one(b"Jun 14 15:16:01 combo app: x")[3] is None


def test_rfc3164_tag_with_a_space_and_version_is_the_app():
    # sysklogd writes its own restarts like this (see loghub Linux_2k.log).
    assert one(b"Jun 19 04:09:11 combo syslogd 1.4.1: restart.")[2] == "syslogd 1.4.1"


def test_rfc3164_time_is_read_in_the_parser_zone():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    assert one(b"Jun 14 15:16:01 h a: x", tz=paris)[0] == ns(2026, 6, 14, 15, 16, 1, tz=paris)


def test_rfc3164_time_in_a_fixed_offset_zone_is_read_with_that_offset():
    tz = datetime.timezone(datetime.timedelta(hours=-5))
    assert one(b"Jun 14 15:16:01 h a: x", tz=tz)[0] == ns(2026, 6, 14, 20, 16, 1)


def test_rfc3164_impossible_time_is_unparsed_but_host_and_app_are_kept():
    assert one(b"Jun 14 25:61:01 combo app: x") == (NOW, "combo", "app", None)


def test_rfc3164_impossible_date_gets_the_receive_time():
    assert one(b"Feb 30 10:00:00 combo app: x")[0] == NOW


def test_rfc3164_impossible_date_gets_each_chunks_own_receive_time():
    # (A header is read once and remembered: not one whose time is the receive time of a chunk.)
    parser = Parser()
    line = b"Feb 30 10:00:00 combo app: x\nJun 14 15:16:01 combo app: x\n"
    assert parser.parse_chunk(line, NOW).times == [NOW, ns(2026, 6, 14, 15, 16, 1)]
    assert parser.parse_chunk(line, NOW + 5).times == [NOW + 5, ns(2026, 6, 14, 15, 16, 1)]
    assert parser.parse_chunk(line, NOW + 5).hosts == ["combo", "combo"]


def test_rfc3164_line_with_pri_reads_the_same_after_lines_without_one():
    # (The fast pass reads a chunk without a PRI faster; a PRI further down must not change a line.)
    odd = b"<191>Dec  5 17:42:15 web[-01 systemd[1]: x"
    alone = one(odd)
    assert alone == (ns(2025, 12, 5, 17, 42, 15), "web[-01", "systemd", 7)
    cols = Parser(default_host="dhost", default_app="dapp").parse_chunk(b"Jun 14 15:16:01 h a: x\n" + odd + b"\n", NOW)
    assert (cols.times[1], cols.hosts[1], cols.apps[1], cols.severities[1]) == alone


def test_rfc3164_only_format_leaves_other_lines_unparsed():
    assert one(b"2026-01-01T00:00:00Z x", fmt="rfc3164") == UNPARSED


# -- year inference -------------------------------------------------------------


def test_december_line_read_in_january_belongs_to_the_previous_year():
    assert one(b"Dec 31 23:59:59 h a: x", now=ns(2027, 1, 15))[0] == ns(2026, 12, 31, 23, 59, 59)


def test_january_line_read_late_on_december_31st_belongs_to_the_next_year():
    assert one(b"Jan  1 00:30:00 h a: x", now=ns(2026, 12, 31, 23, 0))[0] == ns(2027, 1, 1, 0, 30)


def test_line_a_few_hours_in_the_future_stays_in_the_current_year():
    assert one(b"Aug  1 18:00:00 h a: x", now=ns(2026, 8, 1, 12))[0] == ns(2026, 8, 1, 18)


def test_line_two_days_in_the_future_stays_in_the_current_year():
    assert one(b"Aug  3 12:00:00 h a: x", now=ns(2026, 8, 1, 12))[0] == ns(2026, 8, 3, 12)


def test_line_more_than_a_few_days_in_the_future_belongs_to_the_previous_year():
    # Issue 19: the closest year that is not far after the time it was read (Vector, rsyslog).
    assert one(b"Aug 31 12:00:00 h a: x", now=ns(2026, 8, 1, 12))[0] == ns(2025, 8, 31, 12)


def test_january_first_read_on_december_6th_is_this_years():
    assert one(b"Jan  1 00:00:01 h a: x", now=ns(2026, 12, 6, 12))[0] == ns(2026, 1, 1, 0, 0, 1)


def test_february_29th_goes_to_the_latest_leap_year_in_the_window():
    assert one(b"Feb 29 12:00:00 h a: x", now=ns(2026, 8, 1))[0] == ns(2024, 2, 29, 12)


def test_year_follows_now_when_the_same_parser_reads_on_a_later_day():
    parser = Parser()
    line = b"Dec 31 23:59:59 h a: x\n"
    assert parser.parse_chunk(line, ns(2026, 12, 31, 23)).times == [ns(2026, 12, 31, 23, 59, 59)]
    assert parser.parse_chunk(line, ns(2027, 11, 15)).times == [ns(2026, 12, 31, 23, 59, 59)]
    assert parser.parse_chunk(line, ns(2027, 12, 29)).times == [ns(2027, 12, 31, 23, 59, 59)]


# -- RFC 5424 -------------------------------------------------------------------


def test_rfc5424_line_gives_time_host_app_and_severity():
    line = (b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47"
            b' [exampleSDID@32473 iut="3"] msg')
    assert one(line) == (ns(2003, 10, 11, 22, 14, 15, 3_000_000), "mymachine.example.com", "evntslog", 5)


def test_rfc5424_nil_host_and_app_give_the_defaults():
    assert one(b"<34>1 2003-10-11T22:14:15Z - - - - - msg")[1:] == ("dhost", "dapp", 2)


def test_rfc5424_fields_are_each_lines_own_among_other_lines():
    a = b'<165>1 2003-10-11T22:14:15Z h app 42 ID47 [ex@1 ip="10.0.0.1"] one'
    b = b"<165>1 2003-10-11T22:14:15Z h app - ID48 - two"
    c = b'<165>1 2003-10-11T22:14:15Z h app 43 - [ex@1 ip="10.0.0.2"][ex@2 a="b"] three'
    bsd = b"Jun 14 15:16:01 h app: x"
    cols = Parser().parse_chunk(b"\n".join([bsd, a, b, bsd, c, a]) + b"\n", NOW)
    assert cols.fields == [None, {"ex@1.ip": "10.0.0.1", "procid": "42", "msgid": "ID47"}, {"msgid": "ID48"}, None,
                           {"ex@1.ip": "10.0.0.2", "ex@2.a": "b", "procid": "43"},
                           {"ex@1.ip": "10.0.0.1", "procid": "42", "msgid": "ID47"}]
    alone = Parser().parse_chunk(b"\n".join([a, b, c]) + b"\n", NOW).fields
    assert alone == [cols.fields[1], cols.fields[2], cols.fields[4]]


def test_rfc5424_nil_time_gives_the_receive_time():
    assert one(b"<34>1 - host app - - - msg")[0:3] == (NOW, "host", "app")


def test_rfc5424_offset_is_applied():
    assert one(b"<34>1 2003-08-24T05:14:15.000003-07:00 h a - - -")[0] == ns(2003, 8, 24, 12, 14, 15, 3_000)


def test_rfc5424_fraction_is_read_to_the_nanosecond():
    line = b"<34>1 2026-01-02T03:04:05.123456789+02:00 h a - - -"
    assert one(line)[0] == ns(2026, 1, 2, 1, 4, 5, 123_456_789)


def test_rfc5424_invalid_time_gets_the_receive_time_and_keeps_the_host():
    assert one(b"<34>1 yesterday h a - - -")[0:2] == (NOW, "h")


def test_rfc5424_line_with_too_few_fields_is_unparsed():
    assert one(b"<34>1 2003-10-11T22:14:15Z host") == UNPARSED


# -- ISO 8601 -------------------------------------------------------------------


def test_iso8601_line_with_z_gives_its_time_and_defaults():
    expected = (ns(2026, 11, 20, 10, 0, 1, 123_456_000), "dhost", "dapp", None)
    assert one(b"2026-11-20T10:00:01.123456Z msg") == expected


def test_iso8601_line_with_comma_fraction_and_level_gives_the_severity():
    expected = (ns(2026, 11, 20, 10, 0, 1, 123_000_000), "dhost", "dapp", 6)
    assert one(b"2026-11-20 10:00:01,123 INFO [main] msg") == expected


def test_iso8601_level_words_map_to_syslog_severities():
    levels = {b"WARN": 4, b"WARNING": 4, b"ERROR": 3, b"DEBUG": 7, b"TRACE": 7, b"FATAL": 2,
              b"CRITICAL": 2, b"NOTICE": 5, b"[error]": 3, b"| WARNING  |": 4}
    for word, severity in levels.items():
        assert one(b"2026-11-20 10:00:01 " + word + b" msg")[3] == severity, word


def test_iso8601_word_that_is_no_level_gives_no_severity():
    assert one(b"2026-11-20 10:00:01 Started the job")[3] is None


def test_iso8601_without_offset_is_read_in_the_parser_zone():
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert one(b"2026-11-20 10:00:01 x", tz=tokyo)[0] == ns(2026, 11, 20, 10, 0, 1, tz=tokyo)


def test_iso8601_with_offset_ignores_the_parser_zone():
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert one(b"2026-11-20T10:00:01+01:00 x", tz=tokyo)[0] == ns(2026, 11, 20, 9, 0, 1)


def test_iso8601_hadoop_line_gives_its_time_level_and_logger_as_app():
    line = b"2015-10-18 18:01:47,978 WARN [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: x"
    assert one(line, fmt="iso8601") == (ns(2015, 10, 18, 18, 1, 47, 978_000_000), "dhost",
                                        "org.apache.hadoop.mapreduce.v2.app.MRAppMaster", 4)


def test_iso8601_impossible_date_gets_the_receive_time():
    assert one(b"2026-02-30T10:00:00Z x")[0] == NOW


def test_iso8601_impossible_second_gets_the_receive_time_in_a_zone_with_rules():
    assert one(b"2026-11-20 10:00:75 x", tz=zoneinfo.ZoneInfo("Europe/Paris"))[0] == NOW


def test_iso8601_year_beyond_int64_nanoseconds_gets_the_receive_time():
    assert one(b"9999-12-31T23:59:59Z x")[0] == NOW


# -- JSON lines -----------------------------------------------------------------


def jline(**obj) -> bytes:
    return json.dumps(obj).encode()


def test_json_line_gives_time_host_app_and_severity():
    line = jline(time="2026-11-20T10:00:01.5Z", host="web1", app="api", level="error", msg="x")
    assert one(line, fmt="json") == (ns(2026, 11, 20, 10, 0, 1, 500_000_000), "web1", "api", 3)


def test_json_alternative_keys_are_read():
    line = jline(**{"@timestamp": "2026-11-20T10:00:01Z", "hostname": "web1", "service": "api",
                    "severity": "warning"})
    assert one(line) == (ns(2026, 11, 20, 10, 0, 1), "web1", "api", 4)


def test_json_numeric_time_unit_is_judged_by_magnitude():
    expected = ns(2023, 11, 14, 22, 13, 20)
    for value in (1_700_000_000, 1_700_000_000_000, 1_700_000_000_000_000, 1_700_000_000_000_000_000):
        assert one(jline(ts=value))[0] == expected, value


def test_json_float_seconds_keep_their_fraction():
    assert one(jline(time=1700000000.25))[0] == ns(2023, 11, 14, 22, 13, 20, 250_000_000)


def test_json_numeric_severity_is_a_syslog_number():
    assert one(jline(level=2))[3] == 2


def test_json_bunyan_numeric_levels_map_to_syslog():
    assert [one(jline(level=v))[3] for v in (10, 20, 30, 40, 50, 60)] == [7, 7, 6, 4, 3, 2]


def test_json_without_known_keys_gets_receive_time_and_defaults():
    assert one(jline(msg="hello"), fmt="json") == UNPARSED


def test_json_invalid_gets_receive_time_and_defaults():
    assert one(b'{"time": 1700000000, "host": ', fmt="json") == UNPARSED


def test_json_that_is_not_an_object_is_unparsed():
    assert one(b"[1, 2, 3]", fmt="json") == UNPARSED


def test_json_bool_time_is_not_a_time():
    assert one(jline(time=True))[0] == NOW


def test_json_lone_surrogate_in_host_becomes_encodable_text():
    host = one(b'{"host": "a\\ud800b"}')[1]
    host.encode("utf-8")
    assert host.startswith("a") and host.endswith("b")


def test_json_odd_strings_for_time_and_level_are_ignored():
    for odd in ("\u00b2", "9" * 5000, "", "-", "\u0663"):
        assert one(jline(time=odd, level=odd, host="h")) == (NOW, "h", "dapp", None), odd


def test_json_digit_string_level_is_a_syslog_number():
    assert one(jline(level="3"))[3] == 3


def test_json_absurdly_nested_line_is_unparsed():
    assert one(b'{"a":' + b"[" * 100_000, fmt="json") == UNPARSED


# -- raw ------------------------------------------------------------------------


def test_raw_parses_nothing():
    assert one(b"<13>Jun 14 15:16:01 combo app: x", fmt="raw") == UNPARSED


# -- optional formats (auto only) -----------------------------------------------


def test_apache_error_log_line_gives_time_and_level():
    assert one(b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok") == (
        ns(2005, 12, 4, 4, 47, 44), "dhost", "dapp", 5)


def test_apache_24_error_log_line_with_module_and_fraction_is_read():
    line = b"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] msg"
    assert one(line) == (ns(2000, 10, 11, 14, 32, 52, 123_456_000), "dhost", "dapp", 3)


def test_android_logcat_line_gives_time_tag_and_level_with_year_inferred():
    line = b"03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs"
    assert one(line) == (ns(2026, 3, 17, 16, 13, 38, 811_000_000), "dhost", "WindowManager", 7)


# -- auto -----------------------------------------------------------------------


MIXED = [
    b"<13>Jun 14 15:16:01 combo sshd[1]: a",
    b"<34>1 2003-10-11T22:14:15Z host app - - - msg",
    b"2026-11-20 10:00:01,123 ERROR x",
    jline(time=1_700_000_000, host="j"),
    b"[Sun Dec 04 04:47:44 2005] [error] x",
    b"03-17 16:13:38.811  1702  2395 W Tag: x",
    b"plain text",
    b"",
]


def test_auto_recognises_every_format_in_one_chunk():
    cols = Parser(default_host="dhost").parse_chunk(b"\n".join(MIXED) + b"\n", NOW)
    assert cols.hosts == ["combo", "host", "dhost", "j", "dhost", "dhost", "dhost", "dhost"]
    assert cols.severities == [5, 2, 3, None, 3, 4, None, None]
    assert [t == NOW for t in cols.times] == [False] * 6 + [True] * 2


def test_auto_gives_each_line_what_its_format_parser_gives():
    fmts = ["rfc3164", "rfc5424", "iso8601", "json"]
    for line, fmt in zip(MIXED, fmts):
        assert one(line) == one(line, fmt=fmt), line


def test_auto_results_do_not_depend_on_the_chunks_parsed_before():
    chunk = b"\n".join(MIXED * 3) + b"\n"
    fresh = Parser().parse_chunk(chunk, NOW)
    for warmup in MIXED:                        # each makes a different pass go first
        parser = Parser()
        parser.parse_chunk((warmup + b"\n") * 50, NOW)
        assert parser.parse_chunk(chunk, NOW) == fresh, warmup


# -- robustness -----------------------------------------------------------------


def test_invalid_utf8_host_and_app_are_decoded_with_replacement():
    assert one(b"Jun 14 15:16:01 h\xffst ap\xfep: x")[1:3] == ("h\ufffdst", "ap\ufffdp")


def test_binary_garbage_is_kept_unparsed():
    garbage = bytes(range(256)).replace(b"\n", b"")
    assert one(garbage) == UNPARSED


def test_overlong_host_is_cut_to_255_characters():
    assert one(b"Jun 14 15:16:01 " + b"h" * 1000 + b" app: x")[1] == "h" * 255


FRAGMENTS = [b"\r", b"\x00\xff", b"<1>", b"Jun 14", b"{", b"2026-01-01T", b"\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(MIXED + FRAGMENTS), st.binary(max_size=40)), max_size=20),
       st.sampled_from(FORMATS))
def test_any_chunk_gives_one_row_per_line_and_never_raises(parts, fmt):
    chunk = b"\n".join(parts)
    cols = Parser(fmt).parse_chunk(chunk, NOW)
    expected = chunk.split(b"\n")[:-1] if chunk.endswith(b"\n") else chunk.split(b"\n") if chunk else []
    assert cols.lines == expected
    assert all(len(col) == len(expected) for col in cols)
    assert all(type(t) is int and 0 <= t < 2**63 for t in cols.times)
    assert all(s is None or 0 <= s <= 7 for s in cols.severities)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(MIXED), st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))),
                min_size=1, max_size=30),
       st.integers(1, 6))
def test_a_chunk_split_at_line_boundaries_parses_as_the_whole(lines, step):
    whole = Parser().parse_chunk(b"".join(line + b"\n" for line in lines), NOW)
    parser = Parser()
    parts = [parser.parse_chunk(b"".join(line + b"\n" for line in lines[i:i + step]), NOW)
             for i in range(0, len(lines), step)]
    assert Columns(*(sum((list(p[k]) for p in parts), []) for k in range(7))) == whole


def test_caches_stay_bounded_when_every_value_is_new():
    parser = Parser()
    lines = b"".join(b"Jun 14 15:16:01 host%d app%d: x\n" % (i, i) for i in range(120_000))
    cols = parser.parse_chunk(lines, NOW)
    assert cols.hosts[-1] == "host119999"
    assert len(parser._hosts) <= 100_000 and len(parser._apps) <= 100_000
    assert len(parser._3164_heads) <= 20_000


# -- loghub samples ---------------------------------------------------------------


def loghub(name: str) -> bytes:
    if not LOGHUB.is_dir():
        require("loghub", f"the loghub samples are not in {LOGHUB}")
    return (LOGHUB / name).read_bytes()


def structured(name: str) -> list[dict]:
    with open(LOGHUB / f"{name}_structured.csv", newline="") as f:
        return list(csv.DictReader(f))


def in_chunks(parser: Parser, data: bytes, now: int, lines_per_chunk: int) -> Columns:
    lines = data.split(b"\n")
    out = Columns([], [], [], [], [], [], [])
    for i in range(0, len(lines), lines_per_chunk):
        part = lines[i:i + lines_per_chunk]
        chunk = b"\n".join(part) + (b"\n" if i + lines_per_chunk < len(lines) else b"")
        for col, new in zip(out, parser.parse_chunk(chunk, now)):
            col.extend(new)
    return out


SYSLOG_SAMPLES = {
    # file: (now, csv column of the month, of the day, of the host, of the app or None: sshd)
    "Linux_2k.log": (ns(2026, 8, 1), "Month", "Date", "Level", "Component"),
    "OpenSSH_2k.log": (ns(2027, 1, 15), "Date", "Day", "Component", None),
}


@pytest.mark.parametrize("name", sorted(SYSLOG_SAMPLES))
def test_loghub_syslog_sample_time_host_and_app_match_the_structured_csv(name):
    data = loghub(name)
    now, month, day, host, app = SYSLOG_SAMPLES[name]
    cols = Parser("auto").parse_chunk(data, now)
    rows = structured(name)
    assert len(cols.lines) == len(rows) == 2000
    for i, row in enumerate(rows):
        h, mi, s = map(int, row["Time"].split(":"))
        assert cols.times[i] == ns(2026, MONTHS[row[month]], int(row[day]), h, mi, s), row["LineId"]
        assert cols.hosts[i] == row[host], row["LineId"]
        assert cols.apps[i] == (row[app] if app else "sshd"), row["LineId"]


@pytest.mark.parametrize("name", sorted(SYSLOG_SAMPLES))
def test_loghub_syslog_sample_parsed_in_small_chunks_matches_one_chunk(name):
    data = loghub(name)
    now = SYSLOG_SAMPLES[name][0]
    whole = Parser("rfc3164").parse_chunk(data, now)
    assert in_chunks(Parser("rfc3164"), data, now, 7) == whole
    assert in_chunks(Parser("auto"), data, now, 1) == whole


@pytest.mark.parametrize("name", ["Android_2k.log", "Apache_2k.log", "HDFS_2k.log", "Hadoop_2k.log",
                                  "HealthApp_2k.log", "OpenStack_2k.log", "Proxifier_2k.log", "Spark_2k.log"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_loghub_sample_keeps_every_line_in_every_format(name, fmt):
    data = loghub(name)
    cols = Parser(fmt).parse_chunk(data, NOW)
    assert cols.lines == data.rstrip(b"\n").split(b"\n")
    assert len(cols.lines) == 2000


def test_loghub_hadoop_lines_get_their_iso_time_and_level():
    data = loghub("Hadoop_2k.log")
    cols = Parser().parse_chunk(data, NOW)
    for i, row in enumerate(structured("Hadoop_2k.log")):
        clock, _, ms = row["Time"].partition(",")
        h, mi, s = map(int, clock.split(":"))
        y, mo, d = map(int, row["Date"].split("-"))
        assert cols.times[i] == ns(y, mo, d, h, mi, s, int(ms) * 1_000_000), row["LineId"]
        assert cols.severities[i] == {"INFO": 6, "WARN": 4, "ERROR": 3, "FATAL": 2}[row["Level"]]


def test_loghub_apache_lines_get_their_time_and_level():
    cols = Parser().parse_chunk(loghub("Apache_2k.log"), NOW)
    for i, row in enumerate(structured("Apache_2k.log")):
        stamp = datetime.datetime.strptime(row["Time"], "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
        assert cols.times[i] == int(stamp.timestamp()) * 10**9
        assert cols.severities[i] == {"notice": 5, "error": 3}[row["Level"]]


def test_loghub_android_lines_get_their_tag_as_app():
    cols = Parser().parse_chunk(loghub("Android_2k.log"), NOW)
    assert cols.apps == [row["Component"].strip() for row in structured("Android_2k.log")]


def test_loghub_samples_shuffled_together_parse_as_each_alone():
    names = ["Linux_2k.log", "Hadoop_2k.log", "Apache_2k.log", "Android_2k.log", "Spark_2k.log"]
    alone = {}
    tagged = []
    for name in names:
        cols = Parser().parse_chunk(loghub(name), NOW)
        alone.update({line: row for line, *row in zip(*cols)})
        tagged.extend(cols.lines)
    random.Random(7).shuffle(tagged)
    mixed = Parser().parse_chunk(b"\n".join(tagged), NOW)
    assert all(alone[line] == row for line, *row in zip(*mixed))
