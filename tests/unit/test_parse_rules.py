"""User rules (helios.parsing.rules), per-path parsing (helios.parsing.profiles),
their config keys, and the container joiner (helios.parsing.containers)."""

from __future__ import annotations

import datetime

import pytest

from helios import config
from helios.errors import ConfigError
from helios.parse import Parser
from helios.parsing import containers
from helios.parsing.profiles import Profiles, check_table
from helios.parsing.rules import (
    check_rule,
    compile_rule,
    compile_rules,
    expand_grok,
)

UTC = datetime.timezone.utc
NOW = int(datetime.datetime(2026, 12, 6, 12, tzinfo=UTC).timestamp()) * 10**9
RAS = {"name": "ras", "time_format": "epoch",
       "grok": r"\[%{HOSTNAME:host}\] %{NUMBER:time} %{WORD:facility}\.%{LOGLEVEL:severity} %{NOTSPACE:app}: %{GREEDYDATA}"}


def parse(rules, *lines: bytes, **kw):
    p = Parser(default_host="dhost", default_app="dapp", rules=compile_rules(rules), **kw)
    p.explain = True
    return p, p.parse_chunk(b"".join(line + b"\n" for line in lines), NOW)


def test_grok_rule_reads_a_site_layout_with_an_epoch_time():
    p, c = parse([RAS], b"[n042] 1709964000.123 kern.err disk0: media error")
    assert (c.times[0], c.hosts[0], c.apps[0], c.severities[0]) == (1709964000_123_000_000, "n042", "disk0", 3)
    assert c.fields[0] == {"facility": "kern"}
    assert p.matched == ["ras"]
    assert c.messages[0] == b"[n042] 1709964000.123 kern.err disk0: media error"


def test_lines_a_rule_does_not_match_go_to_the_default_parser():
    p, c = parse([RAS], b"Mar 11 08:15:02 n044 sshd[12]: ok", b"nothing here")
    assert (c.hosts[0], c.apps[0]) == ("n044", "sshd")
    assert p.matched == ["rfc3164", None]
    assert c.times[1] == NOW


def test_first_matching_rule_wins():
    rules = [{"name": "a", "regex": r"(?P<app>x)\S*"}, {"name": "b", "regex": r"(?P<app>\w+)"}]
    p, c = parse(rules, b"xyz 1", b"abc 2")
    assert p.matched == ["a", "b"] and c.apps == ["x", "abc"]


def test_regex_rule_with_strptime_time_and_zone():
    rule = {"regex": r"(?P<time>\d\d/\d\d/\d{4} \d\d:\d\d:\d\d) (?P<severity>\w+) (?P<job>\S+)",
            "time_format": "%d/%m/%Y %H:%M:%S", "timezone": "Asia/Tokyo"}
    _, c = parse([rule], b"11/03/2024 09:00:00 warning backup-7 done")
    assert c.times[0] == int(datetime.datetime(2024, 3, 11, 0, tzinfo=UTC).timestamp()) * 10**9
    assert c.severities[0] == 4 and c.fields[0] == {"job": "backup-7"}


def test_strptime_without_a_year_infers_it():
    rule = {"regex": r"(?P<time>\w{3} \d\d \d\d:\d\d:\d\d) ", "time_format": "%b %d %H:%M:%S"}
    _, c = parse([rule], b"Jan 02 03:04:05 x")
    assert c.times[0] == int(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize("fmt, text, expected", [
    ("epoch", b"1709964000", 1709964000 * 10**9),
    ("epoch", b"1709964000.000000001", 1709964000 * 10**9 + 1),
    ("epoch_ms", b"1709964000123", 1709964000_123_000_000),
    ("epoch_us", b"1709964000123456", 1709964000_123_456_000),
    ("epoch_ns", b"1709964000123456789", 1709964000_123_456_789),
])
def test_epoch_times_are_read_exactly(fmt, text, expected):
    _, c = parse([{"regex": r"(?P<time>[\d.]+) ", "time_format": fmt}], text + b" x")
    assert c.times[0] == expected


def test_auto_time_reads_the_layouts_the_default_parser_knows():
    _, c = parse([{"regex": r"\S+ (?P<time>\S+ \S+) "}], b"node1 2024-03-11 08:15:02,5 x")
    assert c.times[0] == int(datetime.datetime(2024, 3, 11, 8, 15, 2, tzinfo=UTC).timestamp()) * 10**9 + 500_000_000


def test_a_time_that_does_not_read_keeps_the_receive_time():
    _, c = parse([{"regex": r"(?P<time>\S+) ", "time_format": "epoch"}], b"soon x")
    assert c.times[0] == NOW


def test_rule_can_set_the_app_and_add_fields():
    _, c = parse([{"regex": r"RAS ", "app": "ras", "fields": {"site": "lab"}}], b"RAS x")
    assert c.apps[0] == "ras" and c.fields[0] == {"site": "lab"}


def test_pattern_that_crosses_line_ends_is_matched_line_by_line():
    p, c = parse([{"name": "s", "regex": r"(?P<a>\w+)\s+(?P<b>\w+)"}], b"one", b"two three", b"four")
    assert p.matched == [None, "s", None]
    assert c.fields[1] == {"a": "two", "b": "three"}


def test_grok_names_may_be_dotted():
    assert compile_rule({"grok": "%{WORD:disk.name}"}).field_groups[0][1] == "disk.name"


def test_grok_expands_nested_library_patterns():
    assert "(?P<_g0>" in expand_grok("%{IPORHOST:src}")


@pytest.mark.parametrize("table, problem", [
    ({"grok": "%{NOPE:x}"}, "unknown grok pattern %{NOPE}"),
    ({"regex": "(unclosed"}, "not a valid regular expression"),
    ({"regex": "a", "grok": "b"}, "exactly one of regex or grok"),
    ({}, "exactly one of regex or grok"),
    ({"regex": "a", "time_format": "julian"}, "time_format 'julian'"),
    ({"regex": "a", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ({"regex": "a", "colour": "red"}, "unknown key colour"),
])
def test_bad_rule_is_reported_with_what_to_fix(table, problem):
    assert problem in check_rule(table)


def test_bad_parse_table_lists_every_problem():
    problem = check_table({"paths": [], "timezone": "Nowhere/Else", "rules": [{"grok": "%{NOPE}"}], "x": 1})
    for part in ("unknown key x", "paths must be", "Nowhere/Else", "rules[0]", "%{NOPE}"):
        assert part in problem


def test_profiles_pick_the_first_table_whose_glob_matches():
    profiles = Profiles("auto", "h", "a", "UTC", ({"paths": ["/var/log/ras/*.log"], "rules": [RAS]},
                                                  {"paths": ["/var/log/*"], "timezone": "Asia/Tokyo"}))
    assert profiles.parser("/var/log/ras/x.log").rules[0].name == "ras"
    tokyo = profiles.parser("/var/log/syslog")
    assert tokyo.parse_chunk(b"2024-03-11 09:00:00 INFO x: y\n", NOW).times[0] == \
        int(datetime.datetime(2024, 3, 11, tzinfo=UTC).timestamp()) * 10**9
    assert profiles.parser("/srv/other.log") is profiles.default


TOML = '''
[tailer]
paths = ["/var/log/ras/*.log"]
bucks = ["tcp://b1:7301", "tcp://b2:7301"]

[[tailer.parse]]
paths = ["/var/log/ras/*.log"]
timezone = "UTC"

[[tailer.parse.rules]]
name = "ras"
grok = '\\[%{HOSTNAME:host}\\] %{NUMBER:time} %{WORD:facility}\\.%{LOGLEVEL:severity} %{NOTSPACE:app}: %{GREEDYDATA}'
time_format = "epoch"
'''


def test_config_reads_parse_tables_and_rules(tmp_path):
    path = tmp_path / "helios.toml"
    path.write_text(TOML)
    cfg = config.load(path)
    assert cfg.tailer.parse[0]["rules"][0]["name"] == "ras"
    assert cfg.tailer.timezone == "local"


def test_config_reports_a_bad_rule_with_its_place(tmp_path):
    path = tmp_path / "helios.toml"
    path.write_text(TOML.replace("%{NUMBER:time}", "%{NUMBR:time}"))
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert "tailer.parse[0]" in str(exc.value) and "NUMBR" in str(exc.value)


def test_config_with_parse_tables_describes_and_loads_back(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text(config.describe())
    config.load(path)


# -- the container joiner ----------------------------------------------------------

def rec(text: bytes, partial: bool, stream: str = "stdout") -> containers.Record:
    return containers.Record(b"2024-03-11T08:15:02Z", stream, text, partial)


def test_partial_records_join_into_one_line_at_the_offset_of_the_first():
    lines, pending = containers.join_partials([], [(0, rec(b"first ", True)), (40, rec(b"second ", True)),
                                                   (80, rec(b"end", False)), (120, rec(b"alone", False))])
    assert [(o, r.text, r.partial) for o, r in lines] == [(0, b"first second end", False), (120, b"alone", False)]
    assert pending == []


def test_a_line_not_ended_yet_is_pending_and_joined_by_the_next_call():
    lines, pending = containers.join_partials([], [(0, rec(b"a", True))])
    assert lines == [] and pending == [(0, rec(b"a", True))]
    lines, pending = containers.join_partials(pending, [(10, rec(b"b", False))])
    assert [(o, r.text) for o, r in lines] == [(0, b"ab")] and pending == []


def test_stdout_and_stderr_pieces_join_apart():
    lines, _ = containers.join_partials([], [(0, rec(b"o1", True)), (5, rec(b"e1", True, "stderr")),
                                             (9, rec(b"o2", False)), (14, rec(b"e2", False, "stderr"))])
    assert [(o, r.stream, r.text) for o, r in lines] == [(0, "stdout", b"o1o2"), (5, "stderr", b"e1e2")]


def test_a_line_past_the_limit_is_given_out_marked_partial():
    lines, pending = containers.join_partials([], [(0, rec(b"x" * 6, True)), (7, rec(b"y" * 6, True))], max_bytes=10)
    assert [(r.text, r.partial) for _, r in lines] == [(b"xxxxxxyyyyyy", True)] and pending == []


def test_container_records_are_read_from_both_formats():
    assert containers.record(b'{"log":"hi\\n","stream":"stderr","time":"2024-03-11T08:15:02Z"}') == \
        containers.Record(b"2024-03-11T08:15:02Z", "stderr", b"hi", False)
    assert containers.record(b"2024-03-11T08:15:02.1Z stdout P part") == \
        containers.Record(b"2024-03-11T08:15:02.1Z", "stdout", b"part", True)
    assert containers.record(b"not a record") is None


# -- masks ----------------------------------------------------------------------------

def test_masked_bytes_never_reach_the_message_nor_a_field_and_lengths_stay():
    line = b"Mar 11 08:15:02 h app[1]: login password=hunter2 card 4111111111111111 ok"
    p = Parser(masks=[r"password=(\S+)", r"\b\d{16}\b"], key_values=True)
    c = p.parse_chunk(line + b"\n", NOW)
    assert c.messages == [b"Mar 11 08:15:02 h app[1]: login password=******* card **************** ok"]
    assert len(c.lines[0]) == len(line)                 # offsets and the audit's byte counts add up
    assert b"hunter2" not in repr(c).encode() and "hunter2" not in repr(c.fields)
    assert c.fields[0]["password"] == "*******"
    assert (c.hosts[0], c.apps[0]) == ("h", "app")


def test_a_mask_that_spans_a_line_end_keeps_the_line_end():
    c = Parser(masks=[r"secret\s+\S+"]).parse_chunk(b"a secret\nb c\n", NOW)
    assert c.lines == [b"a ******", b"* c"]


def test_mask_in_a_json_line_hides_the_value_from_the_fields():
    c = Parser(masks=[r'"token":\s*"([^"]*)"']).parse_chunk(b'{"token": "abc123", "level": "info"}\n', NOW)
    assert c.fields[0] == {"token": "******"} and c.severities[0] == 6


def test_bad_mask_is_a_config_problem():
    assert "mask[0]: not a valid regular expression" in check_table({"paths": ["*"], "mask": ["(x"]})
    assert "mask[0]: matches the empty string" in check_table({"paths": ["*"], "mask": ["x*"]})


def test_profiles_apply_the_masks_of_the_path():
    profiles = Profiles(tables=({"paths": ["/var/log/auth*"], "mask": [r"pw=(\S+)"]},))
    assert profiles.parser("/var/log/auth.log").parse_chunk(b"x pw=1234\n", NOW).messages == [b"x pw=****"]
    assert profiles.parser("/var/log/other").parse_chunk(b"x pw=1234\n", NOW).messages == [b"x pw=1234"]


def test_table_renames_fields_and_adds_fields_to_every_line():
    profiles = Profiles(tables=({"paths": ["/srv/*"], "rename": {"trace.id": "trace"}, "fields": {"dc": "par1"}},))
    c = profiles.parser("/srv/a.log").parse_chunk(b'{"trace.id": "abc", "dc": "own"}\nplain\n', NOW)
    assert c.fields == [{"trace": "abc", "dc": "own"}, {"dc": "par1"}]


def test_bad_rename_and_fields_are_config_problems():
    assert "rename must be a table" in check_table({"paths": ["*"], "rename": ["x"]})
    assert "every new name" in check_table({"paths": ["*"], "rename": {"a": ""}})
    assert "fields must be a table" in check_table({"paths": ["*"], "fields": 3})


def test_join_lines_gives_one_event_per_application_line_with_the_bytes_it_covers():
    lines = [b'{"log":"first ","stream":"stdout","time":"2024-03-11T08:15:02.1Z"}',
             b'{"log":"second\\n","stream":"stdout","time":"2024-03-11T08:15:02.2Z"}',
             b"not a record",
             b"2024-03-11T08:15:03Z stderr P abc"]
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    events, pending = containers.join_lines([], zip(offsets, lines))
    assert [(e.offset, e.message, e.fields) for e in events] == [
        (0, b"first second", {"line_bytes": offsets[2] - 1, "pieces": 2, "partial": False}),
        (offsets[2], b"not a record", {})]
    assert events[0].head == lines[0]
    assert [(o, r.text) for o, _, r in pending] == [(offsets[3], b"abc")]
    more, pending = containers.join_lines(pending, [(at, b"2024-03-11T08:15:03Z stderr F def")])
    assert [(e.offset, e.message, e.fields["line_bytes"]) for e in more] == [(offsets[3], b"abcdef", at + 33 - offsets[3])]
    assert pending == []


def test_joined_container_events_encode_with_the_runtime_time_and_the_whole_text():
    from helios import codec
    from helios.audit import span
    from helios.tail.encoder import Encoder, Settings
    from helios.tail.files import Chunk
    lines = [b'{"log":"2024-03-11 08:15:02 ERROR svc: first ","stream":"stdout","time":"2024-03-11T08:15:02.5Z"}',
             b'{"log":"second\\n","stream":"stdout","time":"2024-03-11T08:15:02.6Z"}']
    events, _ = containers.join_lines([], [(0, lines[0]), (len(lines[0]) + 1, lines[1])])
    end = sum(len(line) + 1 for line in lines)
    chunk = Chunk.events("/var/log/containers/x.log", b"k" * 16, end, [(e.offset, e.message, e.fields) for e in events])
    chunk.data = b"".join(e.head + b"\n" for e in events)    # the parser reads each event's first record
    result = Encoder(Settings("prod", "h", "auto", "", "UTC", 10)).encode([(chunk, 1)])
    (event,) = [e for f in result.frames for e in codec.decode(f)[1]]
    assert event.message == b"2024-03-11 08:15:02 ERROR svc: first second"
    assert (event.time, event.app, event.severity) == (1710144902_500_000_000, "svc", 3)
    assert event.fields["stream"] == "stdout" and event.fields["partial"] is False
    assert span(event) == (0, end)


def test_a_rotated_file_keeps_the_table_of_its_name():
    profiles = Profiles(tables=({"paths": ["/var/log/ras/*.log"], "rules": [RAS]},))
    for rotated in ("/var/log/ras/a.log.1", "/var/log/ras/a.log-20240311", "/var/log/ras/a.log.2.gz"):
        assert profiles.table_of(rotated) == 0, rotated
    assert profiles.table_of("/var/log/ras/a.txt") is None


# -- drops ---------------------------------------------------------------------------

def test_dropped_lines_travel_as_one_empty_event_per_run_that_the_audit_counts():
    from helios import codec
    from helios.audit import span
    from helios.tail.encoder import Encoder, Settings
    from helios.tail.files import Chunk
    settings = Settings("prod", "h", "auto", "", "UTC", 100, ({"paths": ["/srv/*"], "drop": [r"DEBUG"]},))
    data = (b"2024-03-11 08:15:01 INFO a: one\n2024-03-11 08:15:02 DEBUG a: noise\n"
            b"2024-03-11 08:15:03 DEBUG a: more noise\n2024-03-11 08:15:04 WARN a: two\n")
    result = Encoder(settings).encode([(Chunk("/srv/x.log", b"k" * 16, 0, len(data), data), 1)])
    events = [e for f in result.frames for e in codec.decode(f)[1]]
    assert [e.message for e in events] == [b"2024-03-11 08:15:01 INFO a: one", b"",
                                           b"2024-03-11 08:15:04 WARN a: two"]
    assert events[1].fields == {"dropped": 2, "line_bytes": 34 + 1 + 39}   # the run, its inner newline included
    assert b"noise" not in b"".join(f for f in result.frames)
    assert (result.lines, result.dropped) == (4, 2)
    spans = [span(e) for e in events]
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))      # no gap, no overlap


def test_drop_is_counted_and_shown_by_parse_test_and_a_bad_drop_is_a_config_problem():
    p = Parser(drops=[r"^DEBUG"])
    p.explain = True
    c = p.parse_chunk(b"DEBUG x\nINFO y\nDEBUG z\n", NOW)
    assert p.matched[0] == "dropped" and p.last_dropped == [0, 2] and p.dropped == 2
    assert c.messages == [b"", b"INFO y", b""]
    assert "drop[0]: matches the empty string" in check_table({"paths": ["*"], "drop": ["x*"]})
