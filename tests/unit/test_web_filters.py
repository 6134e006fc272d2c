"""Live tail filters: what a browser types is checked, compiled once, and
turned into the topic prefixes the web process subscribes to."""

import threading

import pytest

from helios.errors import FilterError
from helios.web.filters import MAX_PREFIXES, Filter
from helios.web.lines import Line


def line(text="GET /index.html 200", env="prod", host="web-1", app="nginx", severity=6):
    return Line(0, 0, env, host, app, severity, text, b"i" * 16)


def passes(spec, ln):
    return Filter.parse(spec).matcher()(ln)


def test_an_empty_filter_passes_every_line():
    assert passes({}, line()) and passes(None, line(severity=None))


def test_host_app_and_environment_filters_take_several_names_separated_by_commas_or_spaces():
    spec = {"host": "web-1, web-2", "app": "nginx sshd", "environment": "prod"}
    assert passes(spec, line(host="web-2", app="sshd"))
    assert not passes(spec, line(host="web-3"))
    assert not passes(spec, line(app="cron"))
    assert not passes(spec, line(env="staging"))


def test_a_severity_filter_passes_that_severity_and_more_severe_but_not_unknown():
    spec = {"severity": "warning"}
    assert passes(spec, line(severity=4)) and passes(spec, line(severity=0))
    assert not passes(spec, line(severity=6))
    assert not passes(spec, line(severity=None))
    assert Filter.parse({"severity": "3"}).severity == 3 and Filter.parse({"severity": 7}).severity == 7


def test_a_substring_filter_ignores_case_unless_asked_not_to():
    assert passes({"text": "index"}, line("GET /INDEX.html"))
    assert not passes({"text": "index", "ignore_case": False}, line("GET /INDEX.html"))
    assert passes({"text": "ÉTÉ"}, line("un été chaud"))


def test_a_regex_filter_matches_anywhere_in_the_message():
    spec = {"text": r"status=(4|5)\d\d", "regex": True}
    assert passes(spec, line("GET / status=503 took 3ms"))
    assert not passes(spec, line("GET / status=200"))


@pytest.mark.parametrize("pattern, reason", [
    ("(unclosed", "missing )"),
    (r"(a)\1", "invalid escape sequence"),
    ("(?=lookahead)", "invalid perl operator"),
    ("[z-a]", "invalid character class range"),
])
def test_a_bad_regex_is_refused_with_the_reason(pattern, reason):
    with pytest.raises(FilterError) as e:
        Filter.parse({"text": pattern, "regex": True})
    assert "not a valid regular expression" in str(e.value) and reason in str(e.value)


def test_a_regex_that_would_backtrack_forever_in_python_is_answered_by_re2():
    # Python's re would backtrack on this line for longer than the universe is old; RE2 does
    # not backtrack. The join's bound only keeps a regression from hanging the suite.
    spec = {"text": "(a+)+$", "regex": True}
    answers = []
    matching = threading.Thread(target=lambda: answers.append(passes(spec, line("a" * 50_000 + "!"))), daemon=True)
    matching.start()
    matching.join(120)
    assert answers == [False], "the match did not end: the filter's regex engine backtracks"


@pytest.mark.parametrize("spec, field", [
    ("host=web-1", "object"),
    ({"colour": "red"}, "unknown filter field"),
    ({"host": 3}, "host: must be text"),
    ({"severity": "loud"}, "severity: 'loud' is not one of"),
    ({"severity": 9}, "severity: 9 is not 0"),
    ({"severity": True}, "severity: must be"),
    ({"text": "x" * 1001}, "text: at most 1000 characters"),
    ({"regex": "yes"}, "regex: must be true or false"),
    ({"host": " ".join(f"h{i}" for i in range(51))}, "host: at most 50 names"),
])
def test_every_bad_field_gets_a_sentence_naming_it(spec, field):
    with pytest.raises(FilterError) as e:
        Filter.parse(spec)
    assert field in str(e.value)


def test_prefixes_follow_the_topic_layout_as_far_as_the_filter_is_exact():
    assert Filter.parse({}).prefixes() == [b""]
    assert Filter.parse({"environment": "prod"}).prefixes() == [b"prod\x00"]
    assert Filter.parse({"environment": "prod", "app": "sshd"}).prefixes() == [b"prod\x00sshd\x00"]
    assert Filter.parse({"environment": "prod", "app": "sshd", "severity": "crit"}).prefixes() == [
        b"prod\x00sshd\x000\x00", b"prod\x00sshd\x001\x00", b"prod\x00sshd\x002\x00"]
    # A host without an app cannot narrow the topic (app comes first): the filter does the rest.
    assert Filter.parse({"environment": "prod", "host": "web-1"}).prefixes() == [b"prod\x00"]
    assert Filter.parse({"host": "web-1"}).prefixes() == [b""]


def test_prefixes_stop_at_the_level_that_would_make_too_many():
    spec = {"environment": "a b", "app": " ".join(f"app{i}" for i in range(20)), "severity": "debug"}
    prefixes = Filter.parse(spec).prefixes()
    assert len(prefixes) == 40 and len(prefixes) <= MAX_PREFIXES
    assert all(p.count(b"\x00") == 2 for p in prefixes)
