"""A session of an account limited to some environments gets only their lines,
whatever filter its browser sends."""

import time

import pytest

from helios.errors import FilterError
from helios.model import Event, line_id
from helios.web.filters import Filter
from helios.web.lines import Line
from helios.web.sessions import Hub, restricted

PROD = frozenset({"prod"})


def line(env, n, text="x"):
    e = Event(id=line_id(b"k" * 16, n), time=time.time_ns(), received=time.time_ns(), host="h", app="a",
              severity=6, source="", offset=n, message=text.encode(), fields=None, environment=env)
    return Line.of(e, 1000)


def test_a_filter_naming_no_environment_gets_the_allowed_ones_and_one_naming_others_is_refused():
    assert restricted(Filter(), None) == Filter()
    assert restricted(Filter(), PROD).environments == PROD
    assert restricted(Filter.parse({"environment": "prod", "text": "x"}), PROD).text == "x"
    with pytest.raises(FilterError, match="may not see staging"):
        restricted(Filter.parse({"environment": "prod,staging"}), PROD)


def test_a_limited_session_is_offered_only_lines_of_its_environments_on_every_filter():
    hub = Hub(1000, 5.0)
    limited = hub.add("bob", allowed=PROD)
    free = hub.add("alice")
    lines = [line("prod", 1), line("staging", 2), line("prod", 3, "secret"), line("staging", 4, "secret")]
    hub.dispatch(lines, time.monotonic())
    with pytest.raises(FilterError):
        hub.set_filter("bob", Filter.parse({"environment": "staging"}))
    hub.set_filter("bob", Filter.parse({"text": "secret"}))
    hub.dispatch(lines, time.monotonic())
    got = [r[1] for r in limited.take(time.monotonic(), 100).rows]
    assert got == ["prod"]  # the old filter's lines were cleared by the new one; only prod passed
    assert [r[1] for r in free.take(time.monotonic(), 100).rows] == ["prod", "staging"] * 4
    assert hub.prefixes() == {b""}  # alice wants everything; bob's own prefixes are prod's only
    hub.remove("alice")
    assert all(p.startswith(b"prod") for p in hub.prefixes())
