"""The Recorder without a buck: record() returns at once, never raises, and
every event it cannot deliver is logged whole and counted."""

import json
import logging
import re
from collections.abc import Mapping

import pytest

from helios.client import Handler, Recorder
from helios.errors import ConfigError
from helios.wire.ports import free_port

# Nothing listens there: connections are refused at once.
NOWHERE = f"http://127.0.0.1:{free_port()}"
LINE = re.compile(r"Helios could not deliver event ([0-9a-f]{32}) because (.*); the event follows: (.*)", re.S)


@pytest.fixture
def recorders(recorders):
    """The shared fixture, aimed at a buck that is not there unless told otherwise."""
    def make(**settings):
        settings.setdefault("bucks", [NOWHERE])
        return recorders(**settings)
    return make


def dropped(caplog):
    """(id, reason, logged event map) of every event the library logged."""
    out = []
    for rec in caplog.records:
        if rec.name == "helios.client" and rec.levelno == logging.ERROR:
            m = LINE.match(rec.getMessage())
            if m:
                out.append((m[1], m[2], m[3]))
    return out


class Exploding(Mapping):
    def __getitem__(self, key):
        raise RuntimeError("no")

    def __iter__(self):
        raise RuntimeError("cannot iterate")

    def __len__(self):
        return 1


@pytest.mark.parametrize("event, reason", [
    (42, "it is not a map of keys to values"),
    ("a string", "it is not a map of keys to values"),
    (Exploding(), "it is not a map of keys to values"),
    ({"message": "x", "thing": object()}, "a value cannot be serialised"),
    ({"message": "x", "nested": {1: "int key"}}, "a value cannot be serialised"),
    ({"message": "x", "big": 2**80}, "a value cannot be serialised"),
    ({"severity": "bogus"}, "it is not a valid event: severity must be"),
    ({"time": "yesterday"}, "it is not a valid event: time is not an ISO 8601 time"),
])
def test_record_never_raises_and_logs_an_event_it_cannot_send_whole(recorders, caplog, event, reason):
    r = recorders(retry_for=30)
    caplog.set_level(logging.ERROR, "helios.client")
    r.record(event)  # no exception, whatever the event
    assert r.flush(5)
    [(ident, why, logged)] = dropped(caplog)
    assert why.startswith(reason)
    shown = json.loads(logged) if not isinstance(event, Exploding) else None
    if isinstance(event, dict):  # the whole map, as JSON shows it (repr for the rest)
        assert shown["id"] == ident and shown["event"] == json.loads(json.dumps(event, default=repr))
    assert r.stats()["dropped"] == 1 and r.stats()["recorded"] == 1


def test_a_full_queue_logs_each_event_that_does_not_fit_and_record_still_returns_at_once(recorders, caplog):
    r = recorders(queue_size=5, batch_events=1, in_flight=1, retry_for=60)
    caplog.set_level(logging.ERROR, "helios.client")
    for i in range(200):
        r.record({"message": f"event {i}", "i": i})  # never waits for room: what does not fit is logged
    full = [(ident, json.loads(ev)) for ident, why, ev in dropped(caplog) if why.startswith("the queue is full")]
    assert len(full) >= 190
    assert all(ev["event"] == {"message": f"event {ev['event']['i']}", "i": ev["event"]["i"]} for _, ev in full)
    assert r.stats()["dropped: the queue is full"] == len(full)


def test_an_event_over_log_max_bytes_is_logged_as_its_first_bytes_and_its_size(recorders, caplog):
    r = recorders(log_max_bytes=300)
    caplog.set_level(logging.ERROR, "helios.client")
    r.record({"severity": "bogus", "message": "x" * 10_000})
    r.flush(5)
    [(_, _, logged)] = dropped(caplog)
    assert logged.startswith('{"id": ') and "xxxx" in logged
    assert re.search(r"\[cut: the event is 10\d\d\d bytes in all\]$", logged)
    assert len(logged.encode()) < 400


def test_a_batch_no_buck_acknowledges_within_retry_for_is_logged(recorders, caplog):
    r = recorders(retry_for=0.3)
    caplog.set_level(logging.ERROR, "helios.client")
    for i in range(10):
        r.record(message=f"m{i}")
    assert r.flush(10)
    reasons = [why for _, why, _ in dropped(caplog)]
    assert len(reasons) == 10
    assert all(why.startswith("no buck acknowledged it within 0.3 s") for why in reasons)
    assert "ClientConnectorError" in reasons[0] or "Connect" in reasons[0]


def test_close_logs_what_could_not_be_sent_in_time_as_the_process_exiting(recorders, caplog):
    r = recorders(retry_for=60)
    caplog.set_level(logging.ERROR, "helios.client")
    for i in range(20):
        r.record(message=f"m{i}")
    assert r.close(timeout=0.3) is False  # retry_for is 60 s: close gave up at its own timeout
    reasons = [why for _, why, _ in dropped(caplog)]
    assert len(reasons) == 20 and all("exiting" in why for why in reasons)
    r.record(message="late")
    assert dropped(caplog)[-1][1] == "the recorder is closed"
    s = r.stats()
    assert s["recorded"] == 21 and s["dropped"] == 21 and s["delivered"] == 0


def test_wrong_settings_raise_one_config_error_listing_each(recorders):
    with pytest.raises(ConfigError) as err:
        Recorder(bucks=["ftp://x", "tcp://a:1"], queue_size=0, durability="maybe")
    assert len(err.value.problems) == 3


def test_http_and_zeromq_bucks_cannot_be_mixed():
    with pytest.raises(ConfigError, match="must all be HTTP URLs or all ZeroMQ endpoints"):
        Recorder(bucks=["http://a:1", "tcp://b:2"])


def test_settings_come_from_the_client_table_of_a_config_file(tmp_path, recorders):
    path = tmp_path / "helios.toml"
    path.write_text(f'[client]\nbucks = ["{NOWHERE}"]\napp = "shop"\nenvironment = "stage"\n')
    r = Recorder(path, queue_size=7)
    try:
        assert (r.cfg.app, r.cfg.environment, r.cfg.queue_size) == ("shop", "stage", 7)
        assert r.defaults.app == "shop" and r.http
    finally:
        r.close(timeout=0)


def test_the_logging_handler_never_records_the_librarys_own_messages(recorders, caplog):
    r = recorders(queue_size=1, retry_for=60)
    root = logging.getLogger()
    handler = Handler(r)
    root.addHandler(handler)
    try:
        caplog.set_level(logging.WARNING)
        for i in range(50):
            logging.getLogger("app").warning("warning %d", i)  # most do not fit: each is logged
    finally:
        root.removeHandler(handler)
    s = r.stats()
    assert s["recorded"] == 50  # the library's own ERROR lines were not recorded again
    assert s["dropped: the queue is full"] >= 40
