"""What every index backend must do, as tests over an ``index`` fixture.

Imported by each backend's test module (``from tests.index_suite import *``),
which defines ``index``: an empty index of its kind. Expected answers come
from ``helios.index.query.matches`` (the reference meaning of a query, unit
tested on its own) and, for the cases that define the semantics, are also
spelled out."""

from __future__ import annotations

import datetime

import pytest

from helios.index import Index, Query, parse_query
from helios.index.query import matches
from helios.model import INVENTORY_APP, Event

DAY = 86_400 * 10**9
T0 = 1_700_006_400 * 10**9          # 2023-11-15T00:00:00Z, a day start
ENV = "prod"

MESSAGES = [
    b"Nov 15 00:00:01 web-1 sshd[12]: Failed password for root from 10.0.0.1 port 22 ssh2",
    b"Nov 15 00:00:02 web-2 nginx[7]: GET /api/v1/orders?id=5 HTTP/1.1 500 conn reset by peer",
    b"Nov 15 00:00:03 db-1 postgres[9]: ERROR: deadlock detected; error_code=40P01",
    b"level=error msg=\"payment declined\" user=alice",
    b"an Errors list is not an error word",
    b"Stra\xc3\x9fe Caf\xc3\xa9 \xc3\xbcber alles",           # UTF-8, non-ASCII
    b"raw bytes \xff\xfe\x00 are kept as they are",          # not UTF-8
    b"",                                                      # an empty line is an event too
    b"ab=1 x y",
    b"CONN RESET upper case",
]


def make_event(i: int, t: int, message: bytes, host: str = "web-1", app: str = "sshd", severity: int | None = 6,
               fields=None, environment: str = ENV) -> Event:
    return Event(id=bytes([i % 256]) * 8 + i.to_bytes(8, "big"), time=t, received=t + 1_000, host=host, app=app,
                 severity=severity, source="/var/log/syslog", offset=i * 100, message=message, fields=fields,
                 source_id=b"\x01" * 16, environment=environment)


def corpus(environment: str = ENV) -> list[Event]:
    """Three days of events: every message on each day, hosts, apps and
    severities varying, a few with fields, one with an unknown severity,
    and two events at the same time (the id breaks the tie)."""
    events = []
    hosts, apps = ("web-1", "web-2", "db-1"), ("sshd", "nginx", "postgres")
    for day in range(3):
        for j, msg in enumerate(MESSAGES):
            i = day * 100 + j
            t = T0 + day * DAY + j * 3_600 * 10**9 + (0 if j == 1 else j)
            fields = {"user": "alice", "n": [1, 2.5, None], "raw": b"\x00\x01"} if j == 3 else None
            events.append(make_event(i, t, msg, hosts[j % 3], apps[j % 3], None if j == 4 else j % 8, fields,
                                     environment))
    events.append(make_event(999, events[0].time, b"same time as the first, larger id"))
    return events


def expected(q: Query, events: list[Event]) -> list[Event]:
    hits = sorted((e for e in events if matches(q, e)), key=lambda e: (e.time, e.id), reverse=q.descending)
    return hits if q.limit is None else hits[:q.limit]


def query(text: str = "", **kw) -> Query:
    kw.setdefault("environment", ENV)
    kw.setdefault("start", T0 - DAY)
    kw.setdefault("end", T0 + 4 * DAY)
    kw.setdefault("limit", None)
    return parse_query(text, **kw)


@pytest.fixture
def loaded(index):
    events = corpus()
    assert index.load(ENV, events) == len(events)
    return index, events


def test_loaded_events_come_back_whole_in_time_order(loaded):
    index, events = loaded
    hits = index.search(query())
    assert hits == sorted(events, key=lambda e: (e.time, e.id))
    by_id = {e.id: e for e in hits}
    assert by_id[events[6].id].message == b"raw bytes \xff\xfe\x00 are kept as they are"
    assert by_id[events[3].id].fields == {"user": "alice", "n": [1, 2.5, None], "raw": b"\x00\x01"}
    assert by_id[events[4].id].severity is None
    assert by_id[events[7].id].message == b""


def test_loading_the_same_events_again_adds_nothing(loaded):
    index, events = loaded
    assert index.load(ENV, events) == 0
    extra = make_event(5000, T0 + 5, b"a new one")
    assert index.load(ENV, events[:5] + [extra, extra]) == 1
    assert index.count(query()) == len(events) + 1


def test_rows_as_decoded_load_like_events(index):
    # What the porter hands the index: the rows of codec.decode_rows (lists
    # of the Event fields without the environment), unsorted.
    events = corpus()
    rows = [list(e)[:11] for e in reversed(events)]
    assert index.load(ENV, rows) == len(events)
    assert index.load(ENV, events) == 0
    assert index.search(query()) == sorted(events, key=lambda e: (e.time, e.id))


def test_the_tailers_inventory_records_are_not_indexed(index):
    # They are for the audit (which reads the bucks); in search, counts and
    # the field sidebar they would pass for log lines.
    lines = [make_event(i, T0 + i, b"line %d" % i) for i in range(3)]
    records = [make_event(100 + i, T0 + i, b"inventory", app=INVENTORY_APP) for i in range(2)]
    assert index.load(ENV, [*lines, *records]) == 3
    assert index.load(ENV, [list(e)[:11] for e in records]) == 0          # as rows too
    assert index.search(query()) == lines
    assert index.count(query(f"app:{INVENTORY_APP}")) == 0
    assert INVENTORY_APP not in dict(index.top(query(), "app"))


def test_keys_list_every_event_of_a_day_once_with_its_times_a_page_at_a_time(loaded, index):
    # What helios audit --index compares with the bucks.
    got = [k for day in index.days(ENV) for page in index.keys(ENV, day, page=4) for k in page]
    want = [(e.id, e.time, e.received) for e in corpus()]
    assert sorted(got) == sorted(want)
    assert [k for page in index.keys("staging", index.days(ENV)[0]) for k in page] == []


def test_contents_give_each_event_with_the_digest_its_content_digests_gave_before_loading(loaded, index):
    # What helios audit --index --content compares with the bucks: the backend's own mapping, both ways.
    got = [k for day in index.days(ENV) for page in index.contents(ENV, day, page=4) for k in page]
    events = corpus()
    want = [(e.id, e.time, e.received, d) for e, d in zip(events, index.content_digests(ENV, events))]
    assert sorted(got) == sorted(want)
    assert index.content_digests(ENV, [list(e)[:11] for e in events]) == [d for *_, d in want]   # rows too
    assert len({d for *_, d in want}) == len(events)


def test_a_term_matches_whole_words_ignoring_ascii_case(loaded):
    index, events = loaded
    hits = index.search(query("error"))
    messages = {e.message for e in hits}
    # "ERROR:", "level=error", "error_code" and "an error word" hold the word; "Errors" does not.
    assert messages == {MESSAGES[2], MESSAGES[3], MESSAGES[4]}
    assert hits == expected(query("error"), events)
    assert {e.message for e in index.search(query("café"))} == {MESSAGES[5]}
    assert index.search(query("Caf")) == []


def test_a_substring_matches_exact_bytes_case_sensitively(loaded):
    index, events = loaded
    for text, want in [('"conn reset"', {MESSAGES[1]}), ('"CONN RESET"', {MESSAGES[9]}),
                       ("/api/v1/orders?id=5", {MESSAGES[1]}), ('"aße Caf"', {MESSAGES[5]}),
                       ('"ailed pass"', {MESSAGES[0]})]:
        q = query(text)
        hits = index.search(q)
        assert {e.message for e in hits} == want, text
        assert hits == expected(q, events)


def test_short_needles_are_found_by_scanning_the_range(loaded):
    index, events = loaded
    for text in ("ab", '"=1"', '"y"', "x"):
        q = query(text)
        assert index.search(q) == expected(q, events) != [], text


def test_terms_substrings_and_filters_all_apply(loaded):
    index, events = loaded
    for text in ("host:web-2", "app:postgres,nginx", "sev:err", "sev:debug", "error host:db-1",
                 '"payment" sev:3', "host:nowhere", 'error "deadlock" app:postgres host:db-1 sev:crit'):
        q = query(text)
        assert index.search(q) == expected(q, events), text
        assert index.count(q) == len(expected(q, events)), text
    # sev:err means err or worse; an unknown severity never passes a severity filter.
    assert all(e.severity is not None and e.severity <= 3 for e in index.search(query("sev:err")))


def test_the_time_range_includes_its_start_and_excludes_its_end(loaded):
    index, events = loaded
    first = min(events, key=lambda e: e.time)
    same = [e for e in events if e.time == first.time]
    assert index.search(query(start=first.time, end=first.time + 1)) == sorted(same, key=lambda e: e.id)
    assert index.search(query(start=first.time - 10, end=first.time)) == []
    one_day = query(start=T0 + DAY, end=T0 + 2 * DAY)
    assert index.search(one_day) == expected(one_day, events)
    assert len(index.search(one_day)) == len(MESSAGES)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_with_the_cursor_visits_every_hit_once(loaded, order):
    index, events = loaded
    q = query(limit=4, order=order)
    seen = []
    while q is not None:
        page = index.search(q)
        assert len(page) <= 4
        seen += page
        q = q.next_page(page)
    assert seen == expected(query(order=order), events)


def test_limit_keeps_the_first_hits_in_order(loaded):
    index, events = loaded
    for order in ("asc", "desc"):
        q = query(limit=3, order=order)
        assert index.search(q) == expected(q, events)


def test_count_ignores_limit_and_cursor(loaded):
    index, events = loaded
    q = query("error", limit=1)
    page = index.search(q)
    assert index.count(q) == index.count(q.next_page(page)) == len(expected(query("error"), events)) == 9


def test_retention_drops_whole_days_before_the_given_day(loaded):
    index, events = loaded
    days = [datetime.date(2023, 11, 15), datetime.date(2023, 11, 16), datetime.date(2023, 11, 17)]
    assert index.days(ENV) == days
    assert index.drop_days(ENV, days[1]) == days[:1]
    assert index.days(ENV) == days[1:]
    assert index.search(query()) == expected(query(), [e for e in events if e.time >= T0 + DAY])
    assert index.drop_days(ENV, days[1]) == []


def test_environments_are_kept_apart(loaded):
    index, events = loaded
    other = corpus("staging")[:4]
    assert index.load("staging", other) == 4          # the same ids, another environment
    assert index.environments() == ["prod", "staging"]
    assert index.search(query(environment="staging")) == sorted(other, key=lambda e: (e.time, e.id))
    assert index.count(query()) == len(events)


def test_an_empty_index_answers_nothing(index):
    assert isinstance(index, Index)                    # the one small interface
    assert index.search(query("error")) == []
    assert index.count(query()) == 0
    assert index.days(ENV) == []
    assert index.environments() == []


def test_drop_removes_the_whole_index(loaded):
    index, _ = loaded
    index.drop()
    assert index.environments() == []
    assert index.search(query()) == []
    assert index.load(ENV, corpus()[:2]) == 2          # and it can be used again


FIELD_EVENTS = [
    # (message, fields): what the parser makes of logfmt, JSON (flattened, dotted) and client events (nested).
    (b"level=error msg=\"payment declined\" user=alice status=500", {"level": "error", "msg": "payment declined",
                                                                      "user": "alice", "status": "500"}),
    (b'{"http":{"status":500,"method":"GET"},"user":"bob"}', {"http.status": 500, "http.method": "GET",
                                                             "user": "bob"}),
    (b"client event", {"http": {"status": 404, "ok": False}, "user": "Alice", "tags": ["blue", "green"]}),
    (b"user=carol status=200 ratio=0.5", {"user": "carol", "status": "200", "ratio": 0.5}),
    (b"no fields here, user=alice in the text only", None),
]


@pytest.fixture
def with_fields(index):
    events = [make_event(500 + i, T0 + i * 3_600 * 10**9 + (i % 2) * DAY, msg, fields=f)
              for i, (msg, f) in enumerate(FIELD_EVENTS * 3)]
    assert index.load(ENV, events) == len(events)
    return index, events


def test_fields_are_found_by_key_and_exact_value_nested_or_dotted(with_fields):
    index, events = with_fields
    for text, want in [("user:alice", {0}), ("user:Alice", {2}), ('msg:"payment declined"', {0}),
                       ("http.status:500", {1}), ("http.status:404,500", {1, 2}), ("status:500", {0}),
                       ("http.ok:false", {2}), ("tags:green", {2}), ("ratio:0.5", {3}), ("user:nobody", set()),
                       ("user:alice status:500", {0}), ("user:alice status:200", set()),
                       ("user:alice,bob,carol", {0, 1, 3}), ("http.method:GET user:bob", {1})]:
        q = query(text)
        hits = index.search(q)
        assert {FIELD_EVENTS.index((e.message, e.fields)) for e in hits} == want, text
        assert hits == expected(q, events), text
        assert index.count(q) == len(expected(q, events)) == 3 * len(want), text


def test_fields_combine_with_words_filters_the_range_and_paging(with_fields):
    index, events = with_fields
    for text in ('payment user:alice', '"declined" status:500 host:web-1 app:sshd sev:info',
                 "user:alice host:db-9", "error user:alice,bob", '"user=alice"'):
        q = query(text)
        assert index.search(q) == expected(q, events), text
    q = query("user:alice,bob,carol", limit=2, order="desc")
    seen = []
    while q is not None:
        page = index.search(q)
        seen += page
        q = q.next_page(page)
    assert seen == expected(query("user:alice,bob,carol", order="desc"), events) and len(seen) == 9
    one_day = query("user:alice", start=T0 + DAY, end=T0 + 2 * DAY)
    assert index.search(one_day) == expected(one_day, events) != []


def test_fields_of_a_load_that_is_partly_there_already_are_found_once(with_fields):
    index, events = with_fields
    new = make_event(900, T0 + 7 * 10**9, b"user=dave", fields={"user": "dave", "status": "500"})
    assert index.load(ENV, [new, *events[:4], new]) == 1
    assert index.search(query("user:dave")) == [new]
    q = query("status:500")
    assert index.search(q) == expected(q, events + [new]) and len(index.search(q)) == 4


__all__ = [name for name in dir() if name.startswith("test_")] + ["loaded", "with_fields"]


# --- aggregations: histogram, top values, an event's context (the same answers on every backend)

def _histogram_expected(q: Query, events: list[Event], step: int) -> list:
    out: dict = {}
    for e in expected(q, events):
        bucket = out.setdefault(e.time // step * step, {})
        bucket[e.severity] = bucket.get(e.severity, 0) + 1
    return sorted(out.items())


@pytest.mark.parametrize("text", ["", "error", "sev:err", "host:web-1,db-1", "user:alice"])
def test_histogram_counts_matching_events_per_bucket_and_severity(loaded, text):
    index, events = loaded
    q = query(text)
    for step in (3_600 * 10**9, 6 * 3_600 * 10**9, DAY):
        assert index.histogram(q, step) == _histogram_expected(q, events, step), (text, step)


def test_histogram_buckets_are_round_times_and_the_range_bounds_them(loaded):
    index, events = loaded
    q = query(start=T0 + 90 * 60 * 10**9, end=T0 + 270 * 60 * 10**9)   # 01:30 to 04:30
    got = index.histogram(q, 3_600 * 10**9)
    assert [b for b, _ in got] == [T0 + h * 3_600 * 10**9 for h in (2, 3, 4)]
    assert got == _histogram_expected(q, events, 3_600 * 10**9)


def test_top_values_of_host_app_severity_and_a_field_with_counts(loaded):
    index, events = loaded
    from collections import Counter
    from helios.index.query import field_pairs
    from helios.model import severity_name

    for text in ("", "error", "host:web-2"):
        q = query(text)
        hits = expected(q, events)
        for field, value in (("host", lambda e: e.host), ("app", lambda e: e.app),
                             ("severity", lambda e: severity_name(e.severity))):
            want = sorted(Counter(map(value, hits)).items(), key=lambda vc: (-vc[1], vc[0]))
            assert index.top(q, field, 10) == want, (text, field)
            assert index.top(q, field, 1) == want[:1]
        want = Counter(v for e in hits for k, v in field_pairs(e.fields) if k == "n")
        assert index.top(q, "n", 10) == sorted(want.items(), key=lambda vc: (-vc[1], vc[0]))
        fields = ["host", "app", "severity", "n", "user"]
        assert index.tops(q, fields, 10) == {f: index.top(q, f, 10) for f in fields}, text
    assert index.top(query(), "user", 5) == [("alice", 3)]
    assert index.top(query(), "no.such.field", 5) == []


def test_field_keys_are_the_extracted_fields_the_matching_events_have(loaded):
    index, _ = loaded
    keys = dict(index.field_keys(query(), 10))
    assert set(keys) == {"user", "n", "raw"} and keys["user"] == 3   # raw: two bytes that are UTF-8
    assert index.field_keys(query("host:web-2"), 10) == []


def test_bad_aggregation_requests_are_refused_clearly(loaded):
    from helios.errors import SearchError

    index, _ = loaded
    with pytest.raises(SearchError, match="whole seconds"):
        index.histogram(query(), 10**6)
    with pytest.raises(SearchError, match="more than"):
        index.histogram(query(), 10**9)
    with pytest.raises(SearchError, match="not a field"):
        index.top(query(), "no spaces", 5)
    with pytest.raises(SearchError, match="1..1000"):
        index.top(query(), "host", 0)
    with pytest.raises(SearchError, match="before"):
        index.context(ENV, T0, b"x" * 16, -1, 3)


def test_context_is_the_lines_before_and_after_in_the_same_source(index):
    # Two files, interleaved in time, over two days: the context follows one file by offset.
    src_a, src_b = b"\xaa" * 16, b"\xbb" * 16
    events = []
    for i in range(40):
        for src, name in ((src_a, b"a"), (src_b, b"b")):
            t = T0 + DAY - 20 * 60 * 10**9 + i * 60 * 10**9 + (1 if src == src_b else 0)
            e = make_event(i, t, b"file %s line %d" % (name, i))
            events.append(e._replace(id=src[:8] + i.to_bytes(8, "big"), source_id=src, offset=i * 50))
    index.load(ENV, events)
    middle = next(e for e in events if e.source_id == src_a and e.offset == 20 * 50)
    before, event, after = index.context(ENV, middle.time, middle.id, 5, 3)
    assert event.message == b"file a line 20"
    assert [e.message for e in before] == [b"file a line %d" % i for i in range(15, 20)]
    assert [e.message for e in after] == [b"file a line %d" % i for i in range(21, 24)]
    first = next(e for e in events if e.source_id == src_b and e.offset == 0)
    before, event, after = index.context(ENV, first.time, first.id, 5, 2)
    assert before == [] and [e.message for e in after] == [b"file b line 1", b"file b line 2"]
    assert index.context(ENV, middle.time, b"\x00" * 16, 5, 5) == ([], None, [])


def test_context_of_an_event_without_a_source_is_its_host_and_app_by_time(index):
    events = [make_event(i, T0 + i * 10**9, b"client %d" % i, host="api-1" if i % 2 else "api-2")
              ._replace(source="", offset=None, source_id=b"") for i in range(20)]
    index.load(ENV, events)
    before, event, after = index.context(ENV, events[9].time, events[9].id, 2, 2)
    assert [e.message for e in before] == [b"client 5", b"client 7"]
    assert [e.message for e in after] == [b"client 11", b"client 13"]


__all__ += [name for name in dir() if name.startswith("test_") and name not in __all__]
