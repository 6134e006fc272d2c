"""Environments per path and per rule in [[tailer.parse]]: what the config
accepts, and which lines a rule moves (also inside container records and
files in another encoding). The frames they make: tests/unit/test_encoder.py."""

from __future__ import annotations

import json

from helios.parse import Parser
from helios.parsing.profiles import Profiles, check_table
from helios.parsing.rules import compile_rules

RULES = [{"name": "audit", "regex": r"AUDIT (?P<user>\w+)", "environment": "audit"}]


def test_a_table_and_a_rule_may_name_an_environment_and_a_bad_name_is_refused_with_the_rule():
    assert check_table({"paths": ["/x/*"], "environment": "billing", "rules": RULES}) is None
    problem = check_table({"paths": ["/x/*"], "environment": "../etc",
                           "rules": [{"regex": "x", "environment": "no spaces"}]})
    assert "environment '../etc' is not a valid environment name" in problem
    assert "rules[0] (unnamed): environment 'no spaces' is not a valid environment name" in problem


def test_profiles_give_the_environment_of_the_first_matching_table_or_the_default():
    profiles = Profiles(tables=[{"paths": ["/var/log/billing/*"], "environment": "billing"},
                                {"paths": ["/var/log/*"]}])
    assert profiles.environment("/var/log/billing/a.log", "prod") == "billing"
    assert profiles.environment("/var/log/billing/a.log-20240311.gz", "prod") == "billing"   # a rotation
    assert profiles.environment("/var/log/syslog", "prod") == "prod"
    assert profiles.environment("/srv/other.log", "prod") == "prod"


def test_a_rule_environment_marks_its_lines_in_plain_container_and_utf16_files():
    parser = Parser("auto", rules=compile_rules(RULES))
    parser.parse_chunk(b"hello\nAUDIT alice\nbye\n", 1)
    assert parser.environments == {1: "audit"}
    docker = b"".join(json.dumps({"log": text + "\n", "stream": "stdout", "time": "2024-03-11T08:15:02Z"}).encode()
                      + b"\n" for text in ("x", "AUDIT bob", "y"))
    parser.parse_chunk(docker, 1)
    assert parser.environments == {1: "audit"}
    wide = Parser("auto", rules=compile_rules(RULES), encoding="utf-16-le")
    wide.parse_chunk("one\nAUDIT carol\n".encode("utf-16-le"), 1)   # as the file holds it
    assert wide.environments == {1: "audit"}
    parser.parse_chunk(b"nothing to move\n", 1)
    assert parser.environments == {}                # reset for every chunk
