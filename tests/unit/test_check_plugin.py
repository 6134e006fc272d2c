"""The monitoring-plugins conventions (helios.live.plugin): ranges, states, perfdata.

The cases are those of the Monitoring Plugins development guidelines."""

import math

import pytest

from helios.errors import ConfigError
from helios.live.plugin import CRITICAL, OK, WARNING, Range, perfdata, state, status_line


@pytest.mark.parametrize("text, alerting, quiet", [
    ("10", [-1, 11, 100], [0, 5, 10]),             # outside 0..10
    ("10:", [-5, 9.99], [10, 11, 1e9]),             # outside 10..inf
    ("~:10", [10.5, 11], [-1e9, 0, 10]),            # outside -inf..10
    ("10:20", [9, 21], [10, 15, 20]),               # outside 10..20
    ("@10:20", [10, 15, 20], [9, 21]),              # inside 10..20
    (":5", [6, -1], [0, 5]),                        # start omitted: 0
    ("-5:-1", [0, -6], [-5, -1]),
    ("@0", [0], [1, -1]),                           # inside 0..0: alert on exactly zero
    ("1.5:2.5", [1.4, 2.6], [1.5, 2.5]),
])
def test_a_range_alerts_outside_it_or_inside_it_with_at(text, alerting, quiet):
    r = Range.parse(text)
    assert [r.alerts(v) for v in alerting] == [True] * len(alerting)
    assert [r.alerts(v) for v in quiet] == [False] * len(quiet)


def test_the_parsed_range_keeps_its_ends():
    assert Range.parse("~:10") == Range("~:10", -math.inf, 10.0, False)
    assert Range.parse("@10:") == Range("@10:", 10.0, math.inf, True)


@pytest.mark.parametrize("text", ["", ":", "@", "abc", "10:5", "1:2:3", "10;", "~"])
def test_a_bad_range_is_a_clear_error(text):
    with pytest.raises(ConfigError, match="threshold"):
        Range.parse(text)


@pytest.mark.parametrize("value, code", [(5, OK), (11, WARNING), (20, WARNING), (21, CRITICAL)])
def test_critical_is_looked_at_before_warning(value, code):
    assert state(value, Range.parse("10"), Range.parse("20")) == code


def test_no_thresholds_is_always_ok():
    assert state(10**9, None, None) == OK


def test_perfdata_is_quoted_label_value_warn_crit_min_max():
    assert perfdata("events", 12, Range.parse("10"), Range.parse("@20:30"), 0, 100) == "'events'=12;10;@20:30;0;100"
    assert perfdata("events", 12, minimum=0) == "'events'=12;;;0"
    assert perfdata("dropped", 0) == "'dropped'=0"
    assert perfdata("rate", 1.5, uom="s") == "'rate'=1.5s"


def test_a_label_with_a_quote_or_equals_sign_is_refused():
    with pytest.raises(ValueError):
        perfdata("a=b", 1)


def test_the_status_line_is_service_state_text_then_perfdata():
    assert status_line("HELIOS", WARNING, "12 events", ["'events'=12;10"]) == "HELIOS WARNING - 12 events | 'events'=12;10"
    assert status_line("HELIOS", 3, "no buck") == "HELIOS UNKNOWN - no buck"
