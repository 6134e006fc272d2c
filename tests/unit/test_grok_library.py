"""The grok names Logstash's examples use most, in Helios' rules: a rule
copied from a Logstash config reads the same line the same way (its time,
host and app into the columns where Logstash names them so)."""

from __future__ import annotations

import datetime

import pytest

from helios.parse import Parser
from helios.parsing.rules import RuleError, compile_rule, compile_rules

UTC = datetime.timezone.utc
NOW = int(datetime.datetime(2024, 12, 6, 12, tzinfo=UTC).timestamp()) * 10**9
ACCESS = b'10.0.0.1 - frank [11/Mar/2024:08:15:02 +0100] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.0"'


def read(grok, line, **rule):
    p = Parser(default_host="-", default_app="", rules=compile_rules([{"name": "r", "grok": grok, **rule}]), tz=UTC)
    p.explain = True
    c = p.parse_chunk(line + b"\n", NOW)
    assert p.matched == ["r"]
    return c.times[0], c.hosts[0], c.apps[0], c.fields[0]


def test_combinedapachelog_gives_logstashs_fields_and_reads_its_time_with_the_offset():
    t, _, _, fields = read("%{COMBINEDAPACHELOG}", ACCESS)
    assert t == int(datetime.datetime(2024, 3, 11, 7, 15, 2, tzinfo=UTC).timestamp()) * 10**9
    assert fields == {"clientip": "10.0.0.1", "ident": "-", "auth": "frank", "verb": "GET", "request": "/a?b=1",
                      "httpversion": "1.1", "response": "200", "bytes": "612", "referrer": '"-"',
                      "agent": '"curl/8.0"'}


def test_syslogbase_fills_time_host_and_app_and_keeps_the_pid():
    t, host, app, fields = read("%{SYSLOGBASE} %{GREEDYDATA:msg}", b"Mar 11 08:15:02 web-1 sshd[123]: Accepted key")
    assert (host, app, fields) == ("web-1", "sshd", {"pid": "123"})
    assert t == int(datetime.datetime(2024, 3, 11, 8, 15, 2, tzinfo=UTC).timestamp()) * 10**9


def test_a_named_composite_pattern_is_one_field_and_an_own_time_format_wins():
    _, _, _, fields = read("%{COMBINEDAPACHELOG:line}", ACCESS)
    assert fields == {"line": ACCESS.decode()}
    t, _, _, _ = read(r"\[%{HTTPDERROR_DATE:time}\] %{GREEDYDATA}", b"[Mon Mar 11 08:15:02 2024] x")
    assert t == int(datetime.datetime(2024, 3, 11, 8, 15, 2, tzinfo=UTC).timestamp()) * 10**9
    assert compile_rule({"grok": "%{HTTPDATE:time}", "time_format": "epoch"}).epoch_unit   # not replaced


@pytest.mark.parametrize("name, text", [("URI", "https://u@ex.com:8080/a/b?x=1"), ("URIPATHPARAM", "/a/b?x=1"),
                                        ("DATESTAMP", "03/11/2024 08:15:02"), ("TZ", "PDT"),
                                        ("SYSLOGHOST", "10.0.0.7"), ("SYSLOGPROG", "postfix/smtpd[42]")])
def test_the_library_names_match_what_they_name(name, text):
    rule = compile_rule({"grok": "^%{" + name + ":x}$"})
    assert rule.line_rx.match(text.encode()), name


def test_an_unknown_name_still_says_which():
    with pytest.raises(RuleError, match="unknown grok pattern %{COMBINEDAPACHELOGS}"):
        compile_rule({"grok": "%{COMBINEDAPACHELOGS}"})
