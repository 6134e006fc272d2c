"""The live tail's stream handling: dedup of the copies from two bucks, the
time-order merge, and a browser session's queue, rate limit and drop count.
These parts are pure: time is passed in, so the tests drive it."""

import random

from helios.model import Event
from helios.web.dedup import Dedup
from helios.web.filters import Filter
from helios.web.lines import Line
from helios.web.reorder import Reorder
from helios.web.sessions import INFLIGHT, Hub, Session


def ln(t, host="web-1", text="x", i=None):
    return Line(t, t, "prod", host, "app", 6, text, (i if i is not None else t).to_bytes(16, "big"))


# --- dedup ---

def test_the_second_copy_of_an_event_is_dropped_and_counted():
    d = Dedup(window=60, max_ids=1000)
    assert d.first_time(b"a" * 16, 0.0)
    assert not d.first_time(b"a" * 16, 0.1)
    assert d.first_time(b"b" * 16, 0.2)
    assert d.duplicates == 1


def test_dedup_forgets_ids_older_than_its_window():
    d = Dedup(window=1.0, max_ids=1000)
    d.first_time(b"a" * 16, 0.0)
    d.expire(0.5)
    assert not d.first_time(b"a" * 16, 0.6)
    d.expire(1.5)
    assert len(d) == 0 and d.first_time(b"a" * 16, 1.6)


def test_dedup_never_holds_more_than_its_maximum_of_ids():
    d = Dedup(window=3600, max_ids=1000)
    for i in range(10_000):
        d.first_time(i.to_bytes(16, "big"), 0.0)
    assert len(d) == 1000
    assert not d.first_time((9_999).to_bytes(16, "big"), 0.0)


def test_dedup_says_how_far_back_it_recognises_copies():
    d = Dedup(window=60, max_ids=1000)
    assert d.horizon(0.0) == 60
    for i in range(1001):
        d.first_time(i.to_bytes(16, "big"), i / 100)   # 1001 ids in 10 s: the first is forgotten
    assert d.horizon(12.0) == 12.0 - 0.01               # the oldest id kept arrived at 0.01 s
    assert d.horizon(100.0) == 60


# --- time-order merge ---

def test_lines_arriving_within_the_delay_come_out_in_time_order():
    r = Reorder(delay=0.1)
    r.add([ln(30), ln(10)], now=0.00)   # buck A
    r.add([ln(20), ln(5)], now=0.05)    # buck B, a little later
    assert r.release(0.09) == []
    assert [x.time for x in r.release(0.16)] == [5, 10, 20, 30]


def test_a_line_is_held_no_longer_than_the_delay():
    r = Reorder(delay=0.1)
    r.add([ln(100)], now=0.0)
    r.add([ln(200)], now=0.08)
    assert [x.time for x in r.release(0.1)] == [100]
    assert r.next_due() == 0.08 + 0.1
    assert [x.time for x in r.release(0.19)] == [200]
    assert len(r) == 0 and r.next_due() is None


def test_a_late_line_older_than_lines_already_shown_is_still_released():
    r = Reorder(delay=0.1)
    r.add([ln(100)], now=0.0)
    assert len(r.release(0.2)) == 1
    r.add([ln(50)], now=0.3)
    assert [x.time for x in r.release(0.4)] == [50]


def test_without_delay_lines_pass_at_once():
    r = Reorder(delay=0)
    r.add([ln(2), ln(1)], now=5.0)
    assert [x.time for x in r.release(5.0)] == [1, 2]


def test_lines_whose_arrival_jitters_less_than_the_delay_come_out_sorted_and_whole():
    rng = random.Random(7)
    times = list(range(2000))  # line t is written at t ms and arrives up to 50 ms later
    arrivals = sorted((t / 1000 + rng.uniform(0, 0.05), t) for t in times)
    r, out, now = Reorder(delay=0.1), [], 0.0
    while arrivals:
        now += 0.01
        due = [t for a, t in arrivals if a <= now]
        arrivals = [(a, t) for a, t in arrivals if a > now]
        r.add([ln(t) for t in due], now)
        out += r.release(now)
    out += r.release(now + 1)
    assert [x.time for x in out] == times


# --- sessions ---

def session(rate=1000, max_lag=0.5, **filter_spec):
    s = Session("sid", rate, max_lag)
    if filter_spec:
        s.wanted = Filter.parse(filter_spec)
    return s


def test_a_session_gets_only_the_lines_its_filter_passes():
    s = session(host="web-2")
    s.offer([ln(1, host="web-1"), ln(2, host="web-2")], now=0.0)
    batch = s.take(0.0, 100)
    assert [row[2] for row in batch.rows] == ["web-2"] and batch.dropped == 0


def test_a_new_filter_applies_to_lines_not_yet_sent():
    s = session()
    s.offer([ln(1, host="web-1")], now=0.0)
    s.wanted = Filter.parse({"host": "web-2"})
    s.offer([ln(2, host="web-1"), ln(3, host="web-2")], now=0.0)
    assert [row[0] for row in s.take(0.0, 100).rows] == [3e-6]


def test_a_browser_that_does_not_acknowledge_gets_no_more_batches_and_its_lines_are_dropped_when_stale():
    s = session(rate=10_000, max_lag=0.5)
    for i in range(INFLIGHT):
        s.offer([ln(i)], now=0.0)
        assert s.take(0.0, 100) is not None
    s.offer([ln(10), ln(11)], now=0.1)
    assert s.take(0.2, 100) is None                  # two batches not yet rendered
    assert s.take(0.7, 100) is None and s.dropped_pending == 2  # waited past max_lag: dropped
    s.acked()
    batch = s.take(0.7, 100)
    assert batch.rows == [] and batch.dropped == 2    # the count is told at once, even with no lines


def test_a_session_never_queues_more_than_its_rate_times_max_lag():
    s = session(rate=1000, max_lag=0.5)
    s.offer([ln(i) for i in range(2000)], now=0.0)
    assert len(s.queue) == 500 and s.dropped_total == 1500
    assert [row[0] for row in s.take(0.0, 10_000).rows][:1] == [1500 / 1e6]  # the newest are kept


def test_the_rate_limit_spreads_lines_over_time():
    s = session(rate=1000, max_lag=10)
    s.offer([ln(i) for i in range(3000)], now=0.0)
    sent = []
    for step in range(20):
        now = step * 0.1
        b = s.take(now, 10_000)
        if b:
            sent.append(len(b.rows))
            s.acked()
    # 1000 at once (a full bucket), then about 100 per tenth of a second.
    assert sent[0] == 1000 and all(90 <= n <= 110 for n in sent[1:-1])


def test_the_hub_subscribes_to_what_its_sessions_need_and_to_nothing_without_them():
    hub = Hub(rate=1000, max_lag=0.5)
    assert hub.prefixes() == set()
    hub.add("a")
    hub.set_filter("a", Filter.parse({"environment": "prod", "app": "sshd"}))
    hub.add("b")
    hub.set_filter("b", Filter.parse({"environment": "dev"}))
    assert hub.prefixes() == {b"prod\x00sshd\x00", b"dev\x00"}
    hub.set_filter("b", Filter.parse({}))
    assert hub.prefixes() == {b""}
    hub.remove("a")
    hub.remove("b")
    assert hub.prefixes() == set()


def test_lines_dropped_before_any_session_are_counted_for_the_sessions_that_would_have_shown_them():
    hub = Hub(rate=1000, max_lag=0.5)
    hub.add("a")
    hub.add("b")
    hub.set_filter("b", Filter.parse({"host": "web-2"}))
    hub.drop([ln(1, host="web-1"), ln(2, host="web-1"), ln(3, host="web-2")])
    assert hub.get("a").take(0.0, 10).dropped == 3
    assert hub.get("b").take(0.0, 10).dropped == 1


def test_a_line_row_is_what_the_page_renders():
    e = Event(id=b"i" * 16, time=1_700_000_000_123_000_000, received=0, host="web-1", app="sshd",
              severity=None, source="/var/log/x", offset=0, message=b"bad \xff byte " + b"y" * 200,
              fields=None, environment="prod")
    row = Line.of(e, max_chars=100).row()
    assert row[:5] == [1_700_000_000_123.0, "prod", "web-1", "sshd", -1]
    assert row[5].startswith("bad \ufffd byte ") and row[5].endswith("[... 111 more characters]")
