"""History requests: the store's state machine, shared builds, leases,
expiry, and the checks of a range; the slicing of a rebuild."""

import pytest

from helios.errors import HistoryError
from helios.history.intake import check_range
from helios.history.rebuild import slices
from helios.history.requests import RequestStore, request_id
from helios.history.sources import Window, in_range
from helios.model import Event
from helios.store.layout import BucketName

NS = 1_000_000_000
T0 = 1_795_000_000 * NS
DAY = 86400


@pytest.fixture
def store(tmp_path):
    s = RequestStore(tmp_path / "history")
    yield s
    s.close()


def ask(store, start=T0, end=T0 + 3600 * NS, env="prod", now=1000.0, expiry=DAY):
    return store.submit(env, start, end, "sqlite", expiry=expiry, now=now)


def test_a_request_is_queued_with_an_id_and_an_index_name_that_follow_from_its_range(store):
    r, queued = ask(store)
    assert queued and r.state == "queued"
    assert r.id == request_id("prod", T0, T0 + 3600 * NS)
    assert r.index_name == f"helios-history-{r.id}"
    assert ask(store, env="staging")[0].id != r.id


def test_the_same_range_asked_again_shares_the_build(store):
    r1, _ = ask(store)
    claimed = store.claim("builder-1", lease=60, now=1001.0)
    r2, queued = ask(store, now=1002.0)
    assert not queued and r2.id == r1.id and r2.state == "building" and r2.asked == 2
    assert store.claim("builder-2", lease=60, now=1003.0) is None, "a second builder took the same request"
    assert claimed.owner == "builder-1"


def test_a_build_goes_from_queued_to_building_to_ready_with_its_progress(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    assert store.progress(r.id, "b", 60, now=1011.0, windows_total=4, windows_done=1, events_loaded=500,
                          bytes_read=100, bytes_total=400, warnings=["buck x did not answer"])
    mid = store.get(r.id)
    assert (mid.state, mid.windows_done, mid.fraction()) == ("building", 1, 0.25)
    assert mid.eta(now=1011.0) == pytest.approx(30.0)   # 10 s for 100 of 400 bytes
    assert mid.to_dict(now=1011.0)["progress"]["eta_s"] == 30.0
    assert mid.warnings == ["buck x did not answer"]
    assert store.finish(r.id, "b", expiry=DAY, now=1020.0)
    done = store.get(r.id)
    assert (done.state, done.expires, done.fraction(), done.eta()) == ("ready", 1020.0 + DAY, 1.0, None)


def test_asking_for_a_ready_range_again_restarts_its_expiry(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    store.finish(r.id, "b", expiry=100, now=1002.0)
    again, queued = ask(store, now=1050.0, expiry=100)
    assert not queued and again.state == "ready" and again.expires == 1150.0


def test_a_ready_request_expires_once_due_and_can_be_asked_for_again(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    store.finish(r.id, "b", expiry=100, now=1002.0)
    assert store.due(now=1101.0) == []
    assert [d.id for d in store.due(now=1102.0)] == [r.id]
    assert store.expire(r.id, "expired after 100 s", now=1102.0, only_if_due=True).state == "expired"
    assert store.due(now=2000.0) == []
    again, queued = ask(store, now=3000.0)
    assert queued and again.state == "queued" and again.windows_total == 0 and again.reason is None


def test_expiry_does_not_take_a_request_that_was_asked_for_again_meanwhile(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    store.finish(r.id, "b", expiry=100, now=1002.0)
    due = store.due(now=1200.0)
    ask(store, now=1200.0, expiry=100)       # asked again between the look and the expiry
    assert store.expire(due[0].id, "expired", now=1200.0, only_if_due=True) is None
    assert store.get(r.id).state == "ready"


def test_a_failed_build_says_why_and_can_be_retried(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    assert store.fail(r.id, "b", "cannot read archive object prod/...: connection refused", now=1002.0)
    failed = store.get(r.id)
    assert failed.state == "failed" and "connection refused" in failed.reason
    with pytest.raises(HistoryError) as exc:
        store.retry(ask(store, start=T0 + NS)[0].id)          # a queued one: nothing to retry
    assert exc.value.status == 409
    retried = store.retry(r.id, now=1003.0)
    assert retried.state == "queued" and retried.reason is None
    assert store.claim("b2", lease=60, now=1004.0).attempts == 2


def test_a_builder_that_stops_reporting_loses_the_request_to_another(store):
    r, _ = ask(store)
    store.claim("dead", lease=60, now=1001.0)
    assert store.claim("alive", lease=60, now=1050.0) is None       # its lease still holds
    taken = store.claim("alive", lease=60, now=1062.0)
    assert taken.id == r.id and taken.owner == "alive"
    assert not store.progress(r.id, "dead", 60, now=1063.0, windows_done=3), "the dead builder's report counted"
    assert not store.finish(r.id, "dead", expiry=DAY, now=1064.0)
    assert store.get(r.id).state == "building"


def test_a_builder_that_shuts_down_puts_its_request_back_in_the_queue(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    assert store.release(r.id, "b", now=1002.0)
    assert store.get(r.id).state == "queued"
    assert store.claim("c", lease=60, now=1003.0).owner == "c"


def test_a_dropped_request_stops_its_builder(store):
    r, _ = ask(store)
    store.claim("b", lease=60, now=1001.0)
    store.expire(r.id, "dropped", now=1002.0)
    assert not store.progress(r.id, "b", 60, now=1003.0, windows_done=1)
    assert store.get(r.id).state == "expired"


def test_an_unknown_id_is_a_404(store):
    with pytest.raises(HistoryError, match="no history request has the id") as exc:
        store.get("0123456789ab")
    assert exc.value.status == 404


def test_the_store_is_shared_by_processes_through_its_file(tmp_path):
    a, b = RequestStore(tmp_path), RequestStore(tmp_path)
    r, _ = a.submit("prod", T0, T0 + NS, "sqlite", expiry=DAY)
    assert b.get(r.id).state == "queued"
    a.close()
    b.close()


@pytest.mark.parametrize("start,end,max_range,words", [
    (T0, T0 - NS, DAY, "ends before it starts"),
    (T0, T0, DAY, "empty"),
    (T0, T0 + 2 * DAY * NS, DAY, "spans 2 days, more than one request may"),
])
def test_bad_ranges_are_refused_with_a_clear_reason(start, end, max_range, words):
    with pytest.raises(HistoryError, match=words) as exc:
        check_range("prod", start, end, max_range)
    assert exc.value.status == 400


def test_a_range_is_widened_to_whole_seconds():
    assert check_range("prod", T0 + 10, T0 + NS + 1, DAY) == (T0, T0 + 2 * NS)


def test_a_bad_environment_name_is_refused():
    with pytest.raises(HistoryError, match="not an environment name"):
        check_range("../etc", T0, T0 + NS, DAY)


def test_in_range_keeps_the_events_of_the_range_of_a_time_ordered_list():
    events = [Event(bytes([i]) * 16, t, t, "h", "a", None, "", None, b"m", None, b"", "prod")
              for i, t in enumerate([5, 10, 10, 19, 20, 25])]
    assert [e.time for e in in_range(events, 10, 20)] == [10, 10, 19]
    assert in_range(events, 0, 100) == events


def test_a_rebuild_cuts_the_windows_into_contiguous_slices_of_about_equal_size():
    ws = [Window(BucketName("prod", i * 60, 60), size=s) for i, s in enumerate([10, 10, 10, 10, 50, 10])]
    parts = slices(ws, 2)
    assert [w for p in parts for w in p] == ws
    assert len(parts) == 2 and sum(w.size for w in parts[0]) >= 40
    assert 1 < len(slices(ws, 10)) <= 6 and [w for p in slices(ws, 10) for w in p] == ws
    assert slices(ws[:1], 4) == [ws[:1]]
    assert slices([], 3) == []
