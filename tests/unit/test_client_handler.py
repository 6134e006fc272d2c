"""The logging.Handler: a log record becomes an event map."""

import logging
import sys

import pytest

from helios.client import Handler
from helios.client.handler import syslog_severity
from helios.eventmap import Defaults, to_row


def make_record(msg="paid %s", args=("order",), level=logging.WARNING, extra=None, exc_info=None):
    logger = logging.getLogger("shop.cart")
    return logger.makeRecord("shop.cart", level, "/src/cart.py", 42, msg, args, exc_info, "checkout",
                             extra=extra)


def test_a_log_record_becomes_an_event_with_its_time_severity_message_and_place():
    rec = make_record()
    event = Handler(recorder=object()).event(rec)
    assert event["message"] == "paid order" and event["severity"] == 4
    assert event["time"] == rec.created
    assert event["fields"] == {"logger": "shop.cart", "file": "/src/cart.py", "line": 42, "function": "checkout"}


def test_extra_keys_become_fields_and_values_json_cannot_carry_become_their_repr():
    event = Handler(recorder=object()).event(make_record(extra={"order": 1234, "items": ["a", {"n": 2}],
                                                                "who": {1, 2}, "when": None}))
    fields = event["fields"]
    assert fields["order"] == 1234 and fields["items"] == ["a", {"n": 2}] and fields["when"] is None
    assert fields["who"] == "{1, 2}"


def test_a_record_with_an_exception_carries_its_traceback_in_the_message():
    try:
        raise ValueError("bad card")
    except ValueError:
        rec = make_record("payment failed", (), logging.ERROR, exc_info=sys.exc_info())
    event = Handler(recorder=object()).event(rec)
    assert event["message"].startswith("payment failed\nTraceback (most recent call last):")
    assert event["message"].endswith("ValueError: bad card")


@pytest.mark.parametrize("level, severity", [(logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
                                             (logging.INFO, 6), (logging.DEBUG, 7), (5, 7), (25, 6)])
def test_levels_map_to_syslog_severities(level, severity):
    assert syslog_severity(level) == severity


def test_the_event_map_of_a_record_is_a_valid_event():
    event = Handler(recorder=object()).event(make_record(extra={"order": 1}))
    env, row = to_row(event, Defaults("prod", "h", "app"), 0)
    assert row[8] == b"paid order" and row[9]["order"] == 1
