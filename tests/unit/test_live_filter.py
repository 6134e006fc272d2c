"""Live filters (helios.live.filter): prefix subscriptions and the final check per event."""

import pytest

from helios.errors import ConfigError
from helios.live.filter import MAX_PREFIXES, Filter, parse_severity
from helios.model import Event, random_id
from helios.wire import live


def event(env="prod", app="sshd", severity=3, host="web-1", message=b"Failed password"):
    return Event(random_id(), 1, 1, host, app, severity, "", None, message, None, environment=env)


def test_no_filter_subscribes_to_everything():
    assert Filter().prefixes() == [b""]
    assert Filter().match(event())


def test_leading_levels_become_the_product_of_their_values():
    f = Filter(environments=("prod",), apps=("sshd", "nginx"), severity=1)
    assert f.prefixes() == sorted(live.prefix("prod", a, s) for a in ("sshd", "nginx") for s in (0, 1))


def test_a_skipped_level_ends_the_prefix_and_the_rest_is_checked_per_event():
    f = Filter(environments=("prod",), hosts=("web-1",))
    assert f.prefixes() == [b"prod\0"]
    assert f.match(event(host="web-1")) and not f.match(event(host="web-2"))


def test_a_product_too_big_stops_at_the_level_before():
    hosts = tuple(f"h{i}" for i in range(MAX_PREFIXES + 1))
    f = Filter(environments=("prod",), apps=("a",), severity=7, hosts=hosts)
    assert f.prefixes() == sorted(live.prefix("prod", "a", s) for s in range(8))


def test_severity_means_this_severe_or_worse_and_excludes_unknown():
    f = Filter(severity=parse_severity("err"))
    assert f.match(event(severity=0)) and f.match(event(severity=3))
    assert not f.match(event(severity=4)) and not f.match(event(severity=None))


@pytest.mark.parametrize("text, level", [("err", 3), ("error", 3), ("WARNING", 4), ("7", 7), ("crit", 2)])
def test_severities_are_read_by_name_or_number(text, level):
    assert parse_severity(text) == level


@pytest.mark.parametrize("text", ["8", "loud", "", "-1"])
def test_an_unknown_severity_is_a_clear_error(text):
    with pytest.raises(ConfigError, match="not a severity"):
        parse_severity(text)


def test_every_substring_must_occur_in_the_message():
    f = Filter(contains=(b"Failed", b"password"))
    assert f.match(event(message=b"Failed password for root"))
    assert not f.match(event(message=b"Failed publickey"))


def test_a_prefix_match_of_the_wrong_app_is_refused_by_the_event_check():
    assert not Filter(apps=("ssh",)).match(event(app="sshd"))


def test_describe_says_the_filter_in_words():
    f = Filter(environments=("prod",), apps=("sshd",), severity=3, contains=(b"x",))
    assert f.describe() == "env=prod app=sshd severity<=err contains='x'"
    assert Filter().describe() == "all events"
