"""helios.parse on the layouts of issue 19: app logs, JSON (ECS, OpenTelemetry),
key=value, CRLF, time zones, container records. Made-up lines of real shapes."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest

from helios.parse import Parser

UTC = datetime.timezone.utc


def ns(y, mo, d, h=0, mi=0, s=0, frac=0, tz=UTC) -> int:
    return int(datetime.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()) * 10**9 + frac


NOW = ns(2026, 12, 6, 12)


def parse(*lines: bytes, **kw):
    return Parser(default_host="dhost", default_app="dapp", **kw).parse_chunk(b"\n".join(lines) + b"\n", NOW)


def one(line: bytes, **kw) -> tuple:
    c = parse(line, **kw)
    return c.times[0], c.hosts[0], c.apps[0], c.severities[0]


# -- severity and app where app logs put them -------------------------------------

@pytest.mark.parametrize("line, app, severity", [
    (b"2024-03-11 08:15:02,118 - WARN  [main:Connector@212] - connection reset", "Connector", 4),
    (b"2024-03-11 08:15:02, Info                  CBS    Loaded stack", "CBS", 6),
    (b"2024-03-11 08:15:02,118 ERROR [main] org.example.Service: failed", "org.example.Service", 3),
    (b"2024-03-11 08:15:02.123  INFO 1234 --- [           main] o.s.b.SpringApplication   : Starting", "o.s.b.SpringApplication", 6),
    (b"2024-03-11 08:15:02,118 - myapp.db - CRITICAL - disk gone", "myapp.db", 2),
    (b"2024-03-11 08:15:02,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - x", "FastLeaderElection", 6),
    (b"2024-03-11 08:15:02 | WRN | payments: retry", "payments", 4),
    (b"2024-03-11T08:15:02Z [error] worker - boom", "worker", 3),
    (b"2024-03-11 08:15:02 E something broke", "dapp", 3),
    (b"2024-03-11 08:15:02 SEVERE com.example.Job: gave up", "com.example.Job", 3),
    (b"2024-03-11 08:15:02 FATAL main: out of memory", "main", 2),
    (b"2024-03-11 08:15:02 Starting server", "dapp", None),
    (b"2024-03-11 08:15:02,118 [main] INFO  com.foo.Bar - started", "com.foo.Bar", 6),          # log4j %d [%t] %-5p %c - %m
    (b"2024-03-11 08:15:02,118 [pool-1-thread-3] ERROR c.f.Job - failed", "c.f.Job", 3),
    (b"[2024-03-11T08:15:02,118][INFO ][o.e.n.Node               ] [node-1] started", "o.e.n.Node", 6),  # Elasticsearch
    (b"2024-03-11 08:15:02.118 UTC [1234] LOG:  statement: select 1", "dapp", 6),                     # PostgreSQL
    (b"2024-03-11 08:15:02.118 UTC [1234] ERROR:  relation does not exist", "dapp", 3),
    (b"2024-03-11T08:15:02.118123Z 0 [Warning] [MY-010068] [Server] CA certificate", "dapp", 4),    # MySQL
])
def test_app_log_severity_and_app_are_found_where_the_layout_puts_them(line, app, severity):
    t, host, got_app, got_severity = one(line)
    assert t == ns(2024, 3, 11, 8, 15, 2, t % 10**9)
    assert (host, got_app, got_severity) == ("dhost", app, severity)


@pytest.mark.parametrize("line, expected", [
    (b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1", (ns(2008, 11, 9, 20, 36, 15), "dfs.DataNode$PacketResponder", 6)),
    (b"17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered", (ns(2017, 6, 9, 20, 10, 40), "executor.CoarseGrainedExecutorBackend", 6)),
    (b"20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", (ns(2017, 12, 23, 22, 15, 29, 606_000_000), "Step_LSC", None)),
    (b"[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open", (ns(2026, 10, 30, 16, 49, 6), "chrome.exe", None)),
    (b"2024/03/11 08:15:02 [error] 123#0: *1 open() failed", (ns(2024, 3, 11, 8, 15, 2), "dapp", 3)),
    (b"11-Mar-2024 08:15:02.123 WARNING [main] org.apache.catalina.Foo.bar x", (ns(2024, 3, 11, 8, 15, 2, 123_000_000), "org.apache.catalina.Foo", 4)),
    (b"[2024-03-11 08:15:02,118] INFO [KafkaServer id=0] started (kafka.server.KafkaServer)", (ns(2024, 3, 11, 8, 15, 2, 118_000_000), "dapp", 6)),
    (b"1709964000.123    123 10.0.0.1 TCP_MISS/200 1234 GET http://x/ - DIRECT/1.2.3.4 text/html", (1709964000_123_000_000, "dapp", None)),
    (b'2024-03-11T08:15:02.118Z\tINFO\tmyapp.http\tserver/main.go:42\tstarted\t{"port": 80}', (ns(2024, 3, 11, 8, 15, 2, 118_000_000), "myapp.http", 6)),
    (b"2024-03-11T08:15:02.118Z\tWARN\tserver/main.go:42\tslow", (ns(2024, 3, 11, 8, 15, 2, 118_000_000), "dapp", 4)),
])
def test_other_app_log_timestamps_are_read(line, expected):
    t, _, app, severity = one(line)
    assert (t, app, severity) == expected


def test_bsd_line_with_an_rfc3339_time_gives_host_and_app():
    assert one(b"2024-03-11T08:15:02+02:00 mac-1 Updater[2141]: checking") == (
        ns(2024, 3, 11, 6, 15, 2), "mac-1", "Updater", None)


def test_bsd_line_with_a_subprocess_after_the_pid_gives_the_app():
    assert one(b"Mar 11 08:15:02 mac-1 worker[88] ([4120]): started")[1:3] == ("mac-1", "worker")


def test_bsd_line_without_hostname_takes_the_tag_as_app_not_host():
    assert one(b"<190>Mar  4 09:39:40 dhcpd[4305]: DHCPACK on 10.0.0.7")[1:] == ("dhost", "dhcpd", 6)


def test_bsd_line_with_unpadded_day_is_read():
    assert one(b"<134>Mar 1 02:21:38 fw1 filterlog[9753]: 5,,,1000000103") == (
        ns(2026, 3, 1, 2, 21, 38), "fw1", "filterlog", 6)


def test_plain_iso_line_without_rfc3339_zone_is_not_read_as_host_and_tag():
    assert one(b"2024-03-11 08:15:02 Server started: ok")[1:3] == ("dhost", "dapp")


# -- key=value ------------------------------------------------------------------------

def test_level_key_gives_the_severity_of_a_line_whose_header_has_none():
    assert one(b'Mar 24 10:00:00 web-01 app[123]: level=error msg="payment declined" order=1')[3] == 3
    assert one(b"2024-03-11 08:15:02 worker started lvl=warn")[3] == 4


def test_each_level_key_spelling_gives_the_severity():
    assert [one(line)[3] for line in (b"x severity=crit", b"x,lvl=debug", b"x log.level=warning", b"level=err y")] == [2, 7, 4, 3]
    assert [one(line)[3] for line in (b"x xseverity=crit", b"x my_lvl=debug", b"x loglevel=warn")] == [None] * 3


def test_level_key_does_not_override_the_header_severity():
    assert one(b"<14>Mar 24 10:00:00 web-01 app[123]: level=error x")[3] == 6


def test_a_key_that_only_ends_in_level_is_not_the_level():
    assert one(b"Mar 24 10:00:00 web-01 app[123]: loglevel_x=1 xlevel=error")[3] is None


def test_logfmt_line_gives_its_columns_and_fields():
    c = parse(b'time=2024-03-11T08:15:02Z level=warn msg="disk almost full" host=h9 app=svc used=91%')
    assert (c.times[0], c.hosts[0], c.apps[0], c.severities[0]) == (ns(2024, 3, 11, 8, 15, 2), "h9", "svc", 4)
    assert c.fields[0]["msg"] == "disk almost full" and c.fields[0]["used"] == "91%"


def test_logfmt_with_date_and_time_keys_and_a_pri_gives_time_host_and_severity():
    line = b'<189>date=2024-03-11 time=08:15:02 devname="FGT-1" type="traffic" level="notice" srcip=10.0.0.1'
    c = parse(line)
    assert (c.times[0], c.hosts[0], c.severities[0]) == (ns(2024, 3, 11, 8, 15, 2), "FGT-1", 5)
    assert c.fields[0]["srcip"] == "10.0.0.1"


def test_key_values_of_every_line_become_fields_when_asked():
    c = parse(b"Jul 31 21:39:21 gw example-gw[10538]: disconnect host=/192.0.2.1 in=3274 out=1448", key_values=True)
    assert c.fields[0] == {"host": "/192.0.2.1", "in": "3274", "out": "1448"}
    assert c.hosts[0] == "gw"


def test_key_values_are_not_fields_of_a_parsed_line_by_default():
    assert parse(b"Jul 31 21:39:21 gw example-gw[10538]: disconnect in=3274").fields == [None]


# -- JSON -------------------------------------------------------------------------------

def test_ecs_json_with_dotted_keys_gives_every_column_and_the_rest_as_fields():
    line = json.dumps({"@timestamp": "2024-03-11T08:15:02.118Z", "log.level": "CRITICAL", "host.name": "n1",
                       "service.name": "api", "message": "down", "trace.id": "abc", "http.status": 503}).encode()
    c = parse(line)
    assert (c.times[0], c.hosts[0], c.apps[0], c.severities[0]) == (ns(2024, 3, 11, 8, 15, 2, 118_000_000), "n1", "api", 2)
    assert c.fields[0] == {"trace.id": "abc", "http.status": 503}


def test_ecs_json_with_nested_objects_reads_as_the_dotted_keys():
    line = json.dumps({"@timestamp": "2024-03-11T08:15:02Z", "log": {"level": "warn", "logger": "x.Y"},
                       "host": {"name": "n2"}, "message": "m"}).encode()
    assert one(line) == (ns(2024, 3, 11, 8, 15, 2), "n2", "x.Y", 4)


def test_opentelemetry_json_gives_every_column():
    line = json.dumps({"Timestamp": "1710144902000000000", "SeverityText": "WARN", "SeverityNumber": 13,
                       "Body": "slow", "Resource": {"service.name": "cart", "host.name": "k8s-3"},
                       "Attributes": {"http.route": "/cart"}}).encode()
    c = parse(line)
    assert (c.times[0], c.hosts[0], c.apps[0], c.severities[0]) == (1710144902 * 10**9, "k8s-3", "cart", 4)
    assert c.fields[0] == {"Attributes.http.route": "/cart"}


def test_nxlog_windows_event_json_gives_every_column():
    line = b'{"EventTime":"2024-03-11 08:15:02","Hostname":"WIN-1","SourceName":"Service Control Manager","Severity":"ERROR","EventID":7000}'
    assert one(line) == (ns(2024, 3, 11, 8, 15, 2), "WIN-1", "Service Control Manager", 3)


def test_opentelemetry_severity_number_alone_gives_the_severity():
    assert one(b'{"severityNumber": 17, "body": "x"}')[3] == 3


def test_elasticsearch_json_log_gives_node_as_host_and_component_as_app():
    line = b'{"type":"server","timestamp":"2024-03-11T08:15:02,118Z","level":"INFO","component":"o.e.n.Node","node.name":"es-1","message":"started"}'
    assert one(line) == (ns(2024, 3, 11, 8, 15, 2, 118_000_000), "es-1", "o.e.n.Node", 6)


@pytest.mark.parametrize("word, severity", [("WARN", 4), ("WRN", 4), ("W", 4), ("Info", 6), ("FATAL", 2),
                                            ("SEVERE", 3), ("CRITICAL", 2), ("E", 3), ("dbg", 7), ("trace", 7)])
def test_json_level_spellings(word, severity):
    assert one(json.dumps({"level": word}).encode())[3] == severity


def test_json_fields_survive_big_numbers_lists_and_lone_surrogates():
    c = parse(b'{"a": 123456789012345678901234567890, "b": [1, "x"], "c": "\\ud800"}')
    f = c.fields[0]
    assert f["a"] == "123456789012345678901234567890" and f["b"] == '[1, "x"]'
    f["c"].encode("utf-8")


# -- bytes --------------------------------------------------------------------------------

def test_crlf_carriage_return_is_not_in_the_message_but_stays_in_the_line():
    c = parse(b"Jun 14 15:16:01 combo sshd[1]: hi\r", b"plain\r")
    assert c.messages == [b"Jun 14 15:16:01 combo sshd[1]: hi", b"plain"]
    assert c.lines == [b"Jun 14 15:16:01 combo sshd[1]: hi\r", b"plain\r"]   # offsets count the "\r"
    assert c.fields == [{"line_bytes": len(c.lines[0])}, {"line_bytes": 6}]  # and so does the audit
    assert (c.hosts[0], c.apps[0]) == ("combo", "sshd")


def test_a_lone_carriage_return_inside_a_line_stays():
    assert parse(b"a\rb").messages == [b"a\rb"]


# -- time zones ----------------------------------------------------------------------------

def test_timestamp_without_offset_is_read_in_the_parsers_zone():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    assert one(b"2024-07-01 12:00:00 INFO x: y", tz=paris)[0] == ns(2024, 7, 1, 10)        # summer: +2
    assert one(b"2024-01-01 12:00:00 INFO x: y", tz=paris)[0] == ns(2024, 1, 1, 11)        # winter: +1
    assert one(b"Jul  1 12:00:00 h a: x", tz=paris)[0] == ns(2026, 7, 1, 10)


def test_timestamp_with_an_offset_ignores_the_zone():
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    assert one(b"2024-07-01T12:00:00Z INFO x: y", tz=paris)[0] == ns(2024, 7, 1, 12)


def test_local_zone_is_the_hosts_zone_with_its_rules(monkeypatch):
    from helios.parsing.timestamps import zone
    monkeypatch.setenv("TZ", "America/New_York")
    tz = zone("local")
    assert datetime.datetime(2024, 7, 1, tzinfo=tz).utcoffset() != datetime.datetime(2024, 1, 1, tzinfo=tz).utcoffset()


def test_december_31st_line_read_on_january_2nd_is_last_years():
    assert Parser().parse_chunk(b"Dec 31 23:59:59 h a: x\n", ns(2027, 1, 2)).times == [ns(2026, 12, 31, 23, 59, 59)]


# -- containers -----------------------------------------------------------------------------

def test_docker_json_file_record_is_unwrapped_and_its_text_parsed():
    line = b'{"log":"2024-03-11 08:15:03,000 ERROR [main] com.x.Y: boom\\n","stream":"stderr","time":"2024-03-11T08:15:03.5Z"}'
    c = parse(line)
    assert c.messages == [b"2024-03-11 08:15:03,000 ERROR [main] com.x.Y: boom"]
    assert (c.times[0], c.apps[0], c.severities[0]) == (ns(2024, 3, 11, 8, 15, 3, 500_000_000), "com.x.Y", 3)
    assert c.fields[0] == {"stream": "stderr", "line_bytes": len(line)}   # the audit counts the file's bytes
    assert c.lines == [line]


def test_docker_partial_record_is_marked_partial():
    line = b'{"log":"third ","stream":"stdout","time":"2024-03-11T08:15:02.1Z"}'
    c = parse(line)
    assert c.messages == [b"third "] and c.fields[0] == {"stream": "stdout", "partial": True, "line_bytes": len(line)}


def test_cri_record_is_unwrapped_with_the_runtime_time():
    c = parse(b"2024-03-11T08:15:02.123456789Z stdout F 2024-03-11 08:15:02 WARN hello: world",
              b"2024-03-11T08:15:02.2Z stderr P piece")
    assert c.messages == [b"2024-03-11 08:15:02 WARN hello: world", b"piece"]
    assert (c.times[0], c.apps[0], c.severities[0]) == (ns(2024, 3, 11, 8, 15, 2, 123_456_789), "hello", 4)
    assert [{k: v for k, v in f.items() if k != "line_bytes"} for f in c.fields] == [
        {"stream": "stdout"}, {"stream": "stderr", "partial": True}]
    assert [f["line_bytes"] for f in c.fields] == list(map(len, c.lines))
    assert c.times[1] == ns(2024, 3, 11, 8, 15, 2, 200_000_000)


def test_cri_record_with_an_empty_text_is_an_empty_message():
    assert parse(b"2024-03-11T08:15:02Z stdout F").messages == [b""]


# -- robustness of the new paths ----------------------------------------------------

from hypothesis import given, settings
from hypothesis import strategies as st

from helios.parsing.rules import compile_rules

SHAPES = [
    b'{"log":"x\\n","stream":"stdout","time":"2024-03-11T08:15:02Z"}', b'{"log":"part","stream":"stderr"}',
    b"2024-03-11T08:15:02Z stdout P ", b"2024-03-11T08:15:02.1Z stderr F {\"level\":\"warn\"}",
    b'{"@timestamp":"x","log":{"level":5},"host":{"name":["a"]}}', b"level=", b"lvl=warn",
    b"time=1 level=err a=\"b", b"<1>1 - - - - - [a b=\"\\\"]", b"2024-03-11 08:15:02, Info  X  y",
    b"[n1] 1709964000.5 kern.err d: x", b"\r", b"password=secret\r", b"DROPME x",
]
RULES = compile_rules([{"name": "ras", "time_format": "epoch",
                        "regex": r"\[(?P<host>\w+)\] (?P<time>[\d.]+) (?P<facility>\w+)\.(?P<severity>\w+) "},
                       {"name": "span", "regex": r"(?P<a>\w+)\s+(?P<b>\w+)"}])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SHAPES), st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))),
                max_size=25),
       st.booleans(), st.booleans())
def test_any_chunk_with_rules_masks_and_key_values_gives_one_sane_row_per_line(parts, key_values, containers):
    chunk = b"\n".join(parts) + b"\n"
    parser = Parser(rules=RULES, key_values=key_values, containers=containers, masks=[r"password=(\S+)"],
                    drops=[r"DROPME"])
    c = parser.parse_chunk(chunk, NOW)
    assert list(map(len, c.lines)) == list(map(len, chunk.split(b"\n")[:-1]))   # masks keep lengths
    assert all(len(col) == len(c.lines) for col in c)
    assert all(type(t) is int and 0 <= t < 2**63 for t in c.times)
    assert all(s is None or 0 <= s <= 7 for s in c.severities)
    assert all(f is None or isinstance(f, dict) for f in c.fields)
    assert b"secret" not in b"".join(c.messages)
    assert b"DROPME" not in b"".join(c.messages)
    assert all(c.messages[i] == b"" and c.fields[i]["dropped"] == 1 for i in parser.last_dropped)
    import msgpack
    msgpack.packb(c.fields, use_bin_type=True)          # every field can travel


# -- encodings ------------------------------------------------------------------------

def split_as_the_tailer_does(data: bytes) -> tuple[bytes, bytes]:
    """(complete lines up to the last b"\\n", the rest for the next read)."""
    end = data.rindex(b"\n") + 1
    return data[:end], data[end:]


def test_utf16le_file_with_bom_is_decoded_and_offsets_count_its_bytes():
    data = "\ufeff2024-03-11 08:15:02 INFO svc: héllo\r\n2024-03-11 08:15:03 ERROR svc: 日本\r\n".encode("utf-16-le")
    chunk, rest = split_as_the_tailer_does(data)
    c = Parser(encoding="utf-16").parse_chunk(chunk, NOW)
    assert [m.decode() for m in c.messages] == ["2024-03-11 08:15:02 INFO svc: héllo", "2024-03-11 08:15:03 ERROR svc: 日本"]
    assert (c.severities, c.apps) == ([6, 3], ["svc", "svc"])
    assert b"\x00" not in b"".join(c.messages)
    assert sum(len(line) + 1 for line in c.lines) + len(rest) == len(data)
    assert [f["line_bytes"] for f in c.fields] == [len(line) for line in c.lines]


def test_utf16be_with_bom_is_decoded():
    data = "\ufeffMar 11 08:15:02 h a: x\nMar 11 08:15:03 h b: y\n".encode("utf-16-be")
    c = Parser(encoding="utf-16").parse_chunk(data, NOW)
    assert c.messages == [b"Mar 11 08:15:02 h a: x", b"Mar 11 08:15:03 h b: y"] and c.apps == ["a", "b"]


def test_shift_jis_is_decoded_and_undecodable_bytes_are_kept():
    c = Parser(encoding="shift_jis").parse_chunk("2024-03-11 08:15:02 WARN x: 日本語\n".encode("shift_jis") + b"\xff\xfe\n", NOW)
    assert c.messages[0].decode() == "2024-03-11 08:15:02 WARN x: 日本語" and c.severities[0] == 4
    assert c.messages[1] == b"\xff\xfe"                  # not lost


def test_unknown_encoding_is_a_config_problem():
    from helios.parsing.profiles import check_table
    assert "unknown encoding 'klingon'" in check_table({"paths": ["*"], "encoding": "klingon"})


# -- access logs, glog ---------------------------------------------------------------

def test_web_access_log_gives_its_time_with_offset_and_the_status_as_a_field():
    c = parse(b'10.0.0.1 - frank [11/Mar/2024:08:15:02 +0100] "GET /x?a=1 HTTP/1.1" 200 612 "-" "curl/8"',
              b'::1 - - [11/Mar/2024:08:15:02 -0000] "POST / HTTP/1.1" 503 0')
    assert c.times == [ns(2024, 3, 11, 7, 15, 2), ns(2024, 3, 11, 8, 15, 2)]
    assert c.fields == [{"status": 200}, {"status": 503}]
    assert c.hosts == ["dhost", "dhost"]                 # the client is not the host


def test_glog_line_gives_its_severity_and_time_with_the_year_inferred():
    assert one(b'I0311 08:15:02.118123    1234 kubelet.go:2412] "SyncLoop ADD"') == (
        ns(2026, 3, 11, 8, 15, 2, 118_123_000), "dhost", "dapp", 6)
    assert one(b"E1206 11:59:59.000001       1 reflector.go:138] failed")[3] == 3


def test_logback_time_of_day_is_todays_or_yesterdays_and_its_level_and_logger_are_read():
    c = parse(b"08:15:02.118 [main] INFO  com.example.App - Started", b"23:59:59.000 [main] WARN  x.Y - late")
    assert (c.times[0], c.apps[0], c.severities[0]) == (ns(2026, 12, 6, 8, 15, 2, 118_000_000), "com.example.App", 6)
    assert c.times[1] == ns(2026, 12, 5, 23, 59, 59)      # read at noon: last night's


ALL_SHAPES = [
    b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure",
    b"<190>Mar  4 09:39:40 dhcpd[4305]: DHCPACK on 10.0.0.7",
    b"<134>Mar 1 02:21:38 fw1 filterlog[9753]: 5,,,1000000103",
    b"Mar 11 08:15:02 mac-1 worker[88] ([4120]): started",
    b"Jun 14 15:16:01 combo message without colon",
    b"Mar 11 08:15:02 2024 gw01 kernel: year after the time",
    b"<189>123: *Mar 11 08:15:02.118: %SYS-5-CONFIG_I: Configured from console",
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] x',
    b"2024-03-11 08:15:02,118 - WARN  [main:Connector@212] - connection reset",
    b"2024-03-11 08:15:02, Info                  CBS    Loaded stack",
    b"2024-03-11 08:15:02,118 ERROR [main] org.example.Service: failed",
    b"2024-03-11 08:15:02,118 [main] INFO  com.foo.Bar - started",
    b"2024-03-11T08:15:02+02:00 mac-1 Updater[2141]: checking",
    b"2024-03-11 08:15:02 Starting server",
    b"2024-03-11T08:15:02.123456789Z stdout F 2024-03-11 08:15:02 WARN hello: world",
    b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1",
    b"[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open",
    b'{"@timestamp":"2024-03-11T08:15:02.118Z","log.level":"warn","service.name":"api"}',
    b'{"log":"2024-03-11 08:15:03,000 ERROR [main] com.x.Y: boom\\n","stream":"stderr","time":"2024-03-11T08:15:03.5Z"}',
    b"time=2024-03-11T08:15:02Z level=warn msg=hi",
    b'10.0.0.1 - - [11/Mar/2024:08:15:02 +0100] "GET / HTTP/1.1" 200 612',
    b"I0311 08:15:02.118123    1234 kubelet.go:2412] x",
    b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok",
    b"03-17 16:13:38.811  1702  2395 D WindowManager: x",
    b"08:15:02.118 [main] INFO  com.example.App - Started",
    b"[2024-03-11T08:15:02,118][INFO ][o.e.n.Node               ] [node-1] started",
    b"2024-03-11 08:15:02.118 UTC [1234] LOG:  statement: select 1",
    b"plain text", b"",
]


def test_every_layout_parses_alike_alone_and_mixed_whichever_pass_goes_first():
    import random
    alone = {}
    for line in ALL_SHAPES:
        c = parse(line)
        alone[line] = tuple(col[0] for col in c)
    mixed = ALL_SHAPES * 3
    random.Random(3).shuffle(mixed)
    chunk = b"\n".join(mixed) + b"\n"
    for warm in ALL_SHAPES:                      # each makes a different pass go first
        p = Parser(default_host="dhost", default_app="dapp")
        p.parse_chunk((warm + b"\n") * 20, NOW)
        c = p.parse_chunk(chunk, NOW)
        for i, line in enumerate(mixed):
            assert tuple(col[i] for col in c) == alone[line], (warm, line)


def test_year_after_the_bsd_time_is_the_year_not_the_host():
    assert one(b"<6>Mar 11 08:15:02 2024 gw01 kernel: x") == (ns(2024, 3, 11, 8, 15, 2), "gw01", "kernel", 6)


def test_cisco_ios_line_with_a_sequence_number_gives_time_app_and_severity():
    assert one(b"<189>123: *Mar 11 08:15:02.118: %SYS-5-CONFIG_I: Configured from console") == (
        ns(2026, 3, 11, 8, 15, 2, 118_000_000), "dhost", "%SYS-5-CONFIG_I", 5)
    assert one(b"<166>Mar 11 2024 08:15:02: %ASA-6-302013: Built outbound TCP")[1:] == ("dhost", "%ASA-6-302013", 6)


@pytest.mark.parametrize("first, second", [
    # A time alone on a line, then "word - ...": the app pass's " name - " took the newline.
    (b"2026-11-24 16:00:01,978", b"nova - compute started"),
    # An RFC 5424 structured data element left open, then a line starting with "]".
    (b'<165>1 2026-11-24T16:00:01Z h1 app 12 ID47 [origin@123', b'] tail'),
])
def test_no_layout_reads_across_a_line_end_so_every_line_keeps_its_own_columns(first, second):
    """Each pass matches each line once (helios.parsing.layouts): a header
    that ran into the next line shifted every later line's columns by one,
    or failed the chunk."""
    last = b"Dec  5 15:53:13 web-07 nginx[3462]: GET /"
    alone = [parse(line) for line in (first, second, last)]
    together = parse(first, second, last)
    for k, c in enumerate(alone):
        assert (together.times[k], together.hosts[k], together.apps[k], together.severities[k]) == \
            (c.times[0], c.hosts[0], c.apps[0], c.severities[0])
    assert together.hosts[2] == "web-07" and together.apps[2] == "nginx"


def test_optional_groups_become_alternations_and_nothing_else_changes():
    """layouts._branches: (?:X)? -> (?:X|) (the same matches, faster in sre);
    classes, escapes, lazy and possessive groups, capturing groups stay."""
    from helios.parsing.layouts import _branches
    assert _branches(rb"(?:a)?b(?:c(?:d)?)?") == rb"(?:a|)b(?:c(?:d|)|)"
    same = rb"[(?:)?]\(?:x\)?(?:y)??(?:z)?+(w)?[]x)?]"
    assert _branches(same) == same
    import re
    rx = rb"^(?:<(\d{1,3})>)?(?:(\w+)(?: (\d+))?:)?.*"
    text = b"<13>app 12: x\napp: y\nplain\n<7>\n"
    assert re.findall(_branches(rx), text, re.M) == re.findall(rx, text, re.M)


@pytest.mark.parametrize("tz", [UTC, zoneinfo.ZoneInfo("Europe/Paris")])
@pytest.mark.parametrize("stamps", [
    [b"2026-11-24T16:00:01.5Z", b"2026-11-24 16:00:01,123", b"2026-11-24T16:00:01.123456789+02:00",
     b"2026-11-24T16:00:01.1234567891234-0530", b"2262-04-11T23:47:16.999999999Z"],      # all with a fraction
    [b"2026-11-24T16:00:01.5Z", b"2026-11-24T16:00:01.Z", b"2026-02-30T10:00:00.1", b"-", b"",
     b"2026-11-24T16:00:01Z", b"9999-12-31T23:59:59.5Z", b"2026-11-24T25:00:01.1", b"1969-12-31T23:59:59.9Z"],
])
def test_a_column_of_iso_stamps_converts_as_each_stamp_alone(tz, stamps):
    """Clock.iso_column (a column at a time, for stamps with fractions) gives
    what the per-stamp cache gives, the receive time for what is no time."""
    column, single = Parser(tz=tz), Parser(tz=tz)
    column._set_now(NOW)
    single._set_now(NOW)
    assert column.iso_column(stamps) == [single._iso_times[s] for s in stamps]
