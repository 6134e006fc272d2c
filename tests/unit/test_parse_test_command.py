"""``helios parse-test``: per line the rule or layout and what it gave, then counts."""

from __future__ import annotations

import re

from click.testing import CliRunner

from helios import codec
from helios.cli import cli
from helios.model import line_id
from helios.tail.encoder import Encoder, Settings
from helios.tail.files import Chunk

CONFIG = '''
[tailer]
paths = ["/var/log/ras/*.log"]
bucks = ["tcp://b1:7301", "tcp://b2:7301"]
timezone = "UTC"

[[tailer.parse]]
paths = ["/var/log/ras/*.log"]

[[tailer.parse.rules]]
name = "ras"
grok = '\\[%{HOSTNAME:host}\\] %{NUMBER:time} %{WORD:facility}\\.%{LOGLEVEL:severity} %{NOTSPACE:app}: %{GREEDYDATA}'
time_format = "epoch"
'''
LINES = (b"[n042] 1709964000.123 kern.err disk0: media error\n"
         b"Mar 11 08:15:02 n044 sshd[12]: Accepted publickey\n"
         b"garbage line\n")


def run(tmp_path, *args):
    (tmp_path / "helios.toml").write_text(CONFIG)
    (tmp_path / "ras.log").write_bytes(LINES)
    return CliRunner().invoke(cli, ["parse-test", "-c", str(tmp_path / "helios.toml"), *args,
                                    "--now", "2024-03-11T12:00:00Z", str(tmp_path / "ras.log")])


def test_parse_test_shows_the_rule_and_the_fields_of_each_line_then_counts(tmp_path):
    result = run(tmp_path, "--path", "/var/log/ras/a.log")
    out = result.output
    assert ("ras              2024-03-09T06:00:00.123000000Z env=default host='n042' app='disk0' severity=err  "
            "facility='kern'") in out
    assert "rfc3164" in out and "unparsed" in out
    assert "#   rule ras                         1" in out
    assert "#   no rule matched                  2" in out
    assert "#   unparsed                         1" in out
    assert result.exit_code == 1                    # a line nothing recognised


def test_parse_test_shows_the_environment_each_line_goes_to_per_line_per_rule_and_in_all(tmp_path):
    (tmp_path / "helios.toml").write_text(CONFIG.replace('[tailer]\n', '[tailer]\nenvironment = "prod"\n', 1)
                                          .replace('paths = ["/var/log/ras/*.log"]\n\n[[tailer.parse.rules]]',
                                                   'paths = ["/var/log/ras/*.log"]\nenvironment = "ras"\n\n'
                                                   '[[tailer.parse.rules]]\nname = "audit"\n'
                                                   'regex = "AUDIT (?P<user>\\\\w+)"\nenvironment = "audit"\n\n'
                                                   '[[tailer.parse.rules]]'))
    (tmp_path / "ras.log").write_bytes(LINES + b"AUDIT alice logged in\n")
    args = ["parse-test", "-c", str(tmp_path / "helios.toml"), "--now", "2024-03-11T12:00:00Z"]
    out = CliRunner().invoke(cli, [*args, "--path", "/var/log/ras/a.log", str(tmp_path / "ras.log")]).output
    assert "; environment ras" in out.splitlines()[0]
    lines = [line for line in out.splitlines() if line[:6].strip().isdigit()]
    assert [re.search(r" env=(\S+) ", line)[1] for line in lines] == ["ras", "ras", "ras", "audit"]
    assert "user='alice'" in lines[3]
    assert "#   rule audit                       1  -> environment audit" in out
    assert "#   rule ras                         1  -> environment ras" in out
    assert "#   environment audit                1" in out and "#   environment ras                  3" in out
    # A path no table matches: the tailer's environment, and no rule moves anything.
    out = CliRunner().invoke(cli, [*args, "--path", "/srv/app.log", str(tmp_path / "ras.log")]).output
    assert "#   environment prod                 4" in out and "env=audit" not in out


def test_parse_test_joins_the_records_of_a_container_log_as_the_tailer_does(tmp_path):
    import json
    records = [json.dumps({"log": text, "stream": stream, "time": "2024-03-11T08:15:02.5Z"})
               for text, stream in (("2024-03-11 08:15:02 ERROR part one ", "stdout"), ("other\n", "stderr"),
                                    ("and two\n", "stdout"), ("never ended", "stdout"))]
    (tmp_path / "c-json.log").write_text("\n".join(records) + "\n")
    out = CliRunner().invoke(cli, ["parse-test", "--now", "2024-03-11T12:00:00Z", str(tmp_path / "c-json.log")]).output
    assert "# container records: split lines are joined" in out and "# 3 events" in out
    assert "       | 2024-03-11 08:15:02 ERROR part one and two" in out
    joined = [line for line in out.splitlines() if "pieces=2" in line]
    assert len(joined) == 1 and "severity=err" in joined[0] and "2024-03-11T08:15:02.500000000Z" in joined[0]
    assert "       | never ended" in out and "partial=True" in out
    # The same records in a file whose table says format = "raw": one event per record, as written.
    (tmp_path / "raw.toml").write_text(f'[tailer]\npaths = ["/x"]\nbucks = ["tcp://b1:7301"]\n'
                                       f'[[tailer.parse]]\npaths = ["{tmp_path}/*"]\nformat = "raw"\n')
    out = CliRunner().invoke(cli, ["parse-test", "-c", str(tmp_path / "raw.toml"), str(tmp_path / "c-json.log")]).output
    assert "# 4 lines" in out and "joined" not in out


def test_parse_test_of_a_path_no_table_matches_uses_the_default_parser(tmp_path):
    result = run(tmp_path, "--path", "/srv/app.log", "-q")
    assert "no [[tailer.parse]] table matches" in result.output
    assert "rule ras" not in result.output


def test_parse_test_reports_a_bad_rule_in_the_config(tmp_path):
    (tmp_path / "bad.toml").write_text(CONFIG.replace("%{NUMBER:time}", "%{NUMBR:time}"))
    (tmp_path / "ras.log").write_bytes(LINES)
    result = CliRunner().invoke(cli, ["parse-test", "-c", str(tmp_path / "bad.toml"), str(tmp_path / "ras.log")])
    assert result.exit_code == 2 and "NUMBR" in result.output


# -- the encoder sends what the parser gives -----------------------------------------

def test_encoder_sends_crlf_lines_without_the_cr_at_offsets_that_count_it_and_rule_fields():
    settings = Settings("prod", "h", "auto", "", "UTC", 100, ({"paths": ["/var/log/ras/*"], "rules": [
        {"name": "ras", "time_format": "epoch",
         "grok": r"\[%{HOSTNAME:host}\] %{NUMBER:time} %{WORD:facility}\.%{LOGLEVEL:severity} %{GREEDYDATA}"}]},))
    data = b"[n1] 1709964000 kern.err a\r\n[n2] 1709964001 kern.info b\r\n"
    key = b"k" * 16
    result = Encoder(settings).encode([(Chunk("/var/log/ras/x.log", key, 100, 100 + len(data), data), 5)])
    events = [e for f in result.frames for e in codec.decode(f)[1]]
    assert [e.message for e in events] == [b"[n1] 1709964000 kern.err a", b"[n2] 1709964001 kern.info b"]
    assert [e.offset for e in events] == [100, 100 + 28]
    assert events[1].id == line_id(key, 128)
    assert [e.fields for e in events] == [{"facility": "kern", "line_bytes": 27}, {"facility": "kern", "line_bytes": 28}]
    assert [e.host for e in events] == ["n1", "n2"] and events[0].severity == 3
    from helios.audit import span
    assert [span(e) for e in events] == [(100, 128), (128, 100 + len(data))]       # no gap, no overlap


def test_encoder_workers_parse_with_the_rules_of_the_config_as_the_tailer_would():
    from helios.tail.encoder import Job, Workers
    settings = Settings("prod", "h", "auto", "", "UTC", 100, ({"paths": ["/var/log/ras/*"], "mask": [r"pw=(\S+)"],
                                                               "rules": [{"name": "ras", "regex": r"\[(?P<host>\w+)\] "}]},))
    data = b"[n1] x pw=secret\n[n2] y\n"
    job = Job()
    job.add(Chunk("/var/log/ras/x.log", b"k" * 16, 0, len(data), data), 5, 0.0)
    local = Workers(settings, 0)
    expected = [r.frames for _, r in local.submit(job)]
    workers = Workers(settings, 1)
    try:
        got = [r.frames for _, r in workers.submit(job)] + [r.frames for _, r in workers.drain()]
    finally:
        workers.close()
    assert got == expected
    events = [e for f in got[0] for e in codec.decode(f)[1]]
    assert [(e.host, e.message) for e in events] == [("n1", b"[n1] x pw=******"), ("n2", b"[n2] y")]
