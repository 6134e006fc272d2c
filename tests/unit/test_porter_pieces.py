"""The porter's pure pieces: merging the copies of a window, window
arithmetic, the blacklist, the cross-window dedup ledger and the state."""

import random
from datetime import datetime, timezone

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from helios import codec
from helios.model import Event, line_id, random_id, source_key
from helios.porter import windows
from helios.porter.merge import FrameOwners, Merger, merge_events, merge_frames
from helios.porter.seen import RECORD, Seen
from helios.porter.state import State
from helios.store.layout import BucketName

KEY = source_key(1, 2, b"first line")
NS = 1_000_000_000
T0 = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp())
W1, W2 = BucketName("prod", T0, 60), BucketName("prod", T0 + 60, 60)


def line(offset, t, received=None, message=b"a line"):
    return Event(line_id(KEY, offset), t, t if received is None else received, "h", "app", 6, "/var/log/x",
                 offset, message, None, KEY, "prod")


def wire(events):
    """What a buck stores: a frame with the ids of tailed lines left empty."""
    rows = [(b"",) + tuple(e)[1:11] for e in events]
    return codec.encode_rows("prod", "h", rows, min(e.time for e in events), max(e.time for e in events))


# --------------------------------------------------------------------------- merge

event_lists = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 50)), max_size=60)


@settings(max_examples=100, deadline=None)
@given(spec=event_lists, seed=st.integers(0, 1000))
def test_merge_of_any_copies_is_each_event_once_sorted_by_time_then_id(spec, seed):
    events = [line(off * 100, T0 * NS + t * NS) for off, t in {o: t for o, t in spec}.items()]
    rnd = random.Random(seed)
    # Two bucks, each with the batches in its own order, one of them also a re-send.
    batches = [events[i:i + 7] for i in range(0, len(events), 7)]
    buck_a = [wire(b) for b in batches]
    buck_b = [wire(b) for b in rnd.sample(batches, len(batches))] + [wire(b) for b in batches[:2]]
    merged = merge_frames(buck_a + buck_b, "prod")
    assert merged == sorted(events, key=lambda e: (e.time, e.id))
    assert len({e.id for e in merged}) == len(merged)


def test_rows_are_the_same_events_as_decoded_unsorted_and_client_events_get_an_empty_source_id():
    tailed = [line(0, 5), line(7, 3)]
    client = Event(random_id(), 4, 4, "h", "app", None, "", None, b"from a client", None, b"", "prod")
    short = codec.encode_rows("prod", "h", [tuple(client)[:10]], 4, 4)      # a client's row: no source_id
    m = Merger("prod")
    for frame in (wire(tailed), short, wire(tailed)):
        m.add_frame(frame)
    rows = m.rows()
    assert all(type(r) is list and len(r) == 11 for r in rows)
    assert sorted(Event(*r, "prod") for r in rows) == sorted(tailed + [client])
    assert m.events() == sorted(tailed + [client], key=lambda e: (e.time, e.id))


def test_merge_derives_the_ids_of_tailed_lines_sent_empty():
    events = [line(0, 5), line(7, 3)]
    assert [e.id for e in merge_frames([wire(events)])] == [line_id(KEY, 7), line_id(KEY, 0)]


def test_merger_decodes_a_frame_once_and_skips_a_damaged_one():
    events = [line(i * 10, i) for i in range(5)]
    good = wire(events)
    other = wire(events[:3])  # the same events in another batch: decoded, deduplicated by id
    m = Merger("prod")
    for frame in (good, good, other, good[:-3] + b"xyz"):
        m.add_frame(frame)
    assert (m.frames, m.frame_copies, m.copies, m.duplicates, m.bad_frames) == (2, 1, 8, 3, 1)
    assert m.events() == events
    assert "checksum" in m.problems[0]


def test_a_frame_first_taken_in_another_window_is_skipped_but_not_in_its_own():
    owners = FrameOwners()
    resent = wire([line(0, 1), line(10, 2)])
    first = Merger("prod", window=W1, owners=owners)
    first.add_frame(resent)
    first.claimed(0)     # its claim kept every event
    later = Merger("prod", window=W2, owners=owners)
    later.add_frame(resent)
    assert (later.frames_elsewhere, len(later)) == (1, 0)
    again = Merger("prod", window=W1, owners=owners)  # the first window fetched again
    again.add_frame(resent)
    assert (again.frames_elsewhere, len(again)) == (0, 2)


def test_frame_owners_forget_the_oldest_past_their_bound():
    owners = FrameOwners(max_frames=2)
    owners.take([b"a", b"b", b"c"], W1)
    owners.take([b"c"], W2)          # the first owner stays
    assert owners.owner(b"a") is None and owners.owner(b"c") == W1


def test_a_frame_is_no_windows_on_sight_only_once_a_claim_kept_all_of_it(tmp_path):
    # The ledger outlives the porter, FrameOwners does not: an earlier run
    # claimed a re-sent batch for the later window W2 (its early load), then
    # was killed before loading it. This run meets the frame first in the
    # older window W1: the claim drops its events (W2's), so W2 must still
    # decode them; before, W2 skipped the frame as W1's and they were lost.
    events = [line(0, T0 * NS + 1), line(10, T0 * NS + 2)]
    resent = wire(events)
    seen = Seen(tmp_path / "seen")
    seen.claim(W2, events)                                 # the earlier run
    owners = FrameOwners()                                 # this run
    older = Merger("prod", window=W1, owners=owners)
    older.add_frame(resent)
    kept, dropped = seen.claim(W1, older.rows())
    older.claimed(dropped)
    assert (kept, dropped) == ([], 2)
    later = Merger("prod", window=W2, owners=owners)
    later.add_frame(resent)
    assert later.frames_elsewhere == 0
    kept, dropped = seen.claim(W2, later.rows())
    later.claimed(dropped)
    assert sorted(Event(*r, "prod") for r in kept) == sorted(events)
    # Kept whole by W2 now: a third window skips it undecoded.
    third = Merger("prod", window=BucketName("prod", T0 + 120, 60), owners=owners)
    third.add_frame(resent)
    assert (third.frames_elsewhere, len(third)) == (1, 0)


def test_a_merge_whose_claim_failed_or_is_not_made_gives_no_frame_away():
    owners = FrameOwners()
    frame = wire([line(0, 1)])
    m = Merger("prod", window=W1, owners=owners)
    m.add_frame(frame)                                     # no claimed(): the ledger was not written
    other = Merger("prod", window=W2, owners=owners)
    other.add_frame(frame)
    assert (other.frames_elsewhere, len(other)) == (0, 1)


def test_merger_refuses_frames_of_another_environment():
    other = codec.encode_events("dev", "h", [line(0, 1)])
    m = Merger("prod")
    m.add_frame(other)
    assert (m.frames, m.bad_frames, len(m)) == (0, 1, 0)


def test_merge_events_keeps_client_events_apart_by_their_random_ids():
    a = Event(random_id(), 5, 5, "h", "app", None, "", None, b"same", None, b"", "prod")
    b = a._replace(id=random_id())
    assert len(merge_events([a], [a, b])) == 2


# --------------------------------------------------------------------------- windows

def test_a_window_is_due_grace_seconds_after_its_end():
    w = BucketName("prod", T0, 60)
    assert not windows.due(w, T0 + 60 + 1.9, grace=2)
    assert windows.due(w, T0 + 62, grace=2)
    assert windows.age(w, T0 + 90) == 30
    assert windows.older_than(w, T0 + 60 + 3600, 3600) and not windows.older_than(w, T0 + 3659, 3600)


@given(now=st.floats(T0, T0 + 10 * 86400), width=st.sampled_from([1, 2, 5, 60, 300, 3600, 86400]),
       grace=st.floats(0, 600))
def test_last_due_start_splits_due_windows_from_the_others(now, width, grace):
    s = windows.last_due_start(now, width, grace)
    assert s % width == 0
    assert windows.due(BucketName("e", s, width), now, grace)
    assert not windows.due(BucketName("e", s + width, width), now, grace)


def test_day_of_is_the_utc_midnight():
    assert windows.day_of(T0 + 3600 * 23 + 59 * 60) == T0


def test_blacklist_by_instant_matches_the_window_holding_it_whatever_its_width():
    bl = windows.Blacklist(["prod/2026-11-20T10:00", "dev/20261120/000000-3600s"])
    assert bl.matches(BucketName("prod", T0 + 10 * 3600, 60)) == "prod/2026-11-20T10:00"
    assert bl.matches(BucketName("prod", T0 + 9 * 3600 + 59 * 60, 60)) is None
    assert bl.matches(BucketName("prod", T0, 86400)) == "prod/2026-11-20T10:00"
    assert bl.matches(BucketName("other", T0 + 10 * 3600, 60)) is None
    assert bl.matches(BucketName("dev", T0, 3600)) == "dev/20261120/000000-3600s"
    assert bl.matches(BucketName("dev", T0, 60)) is None


def test_blacklist_instant_with_an_offset_is_converted_to_utc():
    bl = windows.Blacklist(["prod/2026-11-20T11:00+01:00"])
    assert bl.matches(BucketName("prod", T0 + 10 * 3600, 60))


@pytest.mark.parametrize("bad", ["prod", "prod/yesterday", "../x/2026-11-20T10:00", "prod/2026-13-20T10:00",
                                 "prod/20261120/100030-60s"])
def test_blacklist_refuses_what_it_cannot_read(bad):
    with pytest.raises(ValueError):
        windows.parse_blacklist_entry(bad)


# --------------------------------------------------------------------------- the dedup ledger


def test_a_copy_in_a_later_window_is_dropped_and_a_reclaim_keeps_the_same_events(tmp_path):
    seen = Seen(tmp_path)
    first = [line(i, T0 * NS + i, received=T0 * NS + i * NS) for i in range(100)]
    kept, dropped = seen.claim(W1, first)
    assert (kept, dropped) == (first, 0)
    late = first[40:] + [line(1000, (T0 + 70) * NS)]  # a spool re-send, and one new line
    kept2, dropped2 = seen.claim(W2, late)
    assert (kept2, dropped2) == ([late[-1]], 60)
    # Claiming again (a restart, or the archiver days later) gives the same answer...
    assert seen.claim(W1, first) == (first, 0)
    # ... also from the files alone, in a new process.
    again = Seen(tmp_path)
    assert again.claim(W2, late) == ([late[-1]], 60)
    assert again.claim(W1, first) == (first, 0)


def test_a_torn_ledger_record_is_cut_off_and_its_event_claimed_again(tmp_path):
    seen = Seen(tmp_path)
    events = [line(i, T0 * NS, received=T0 * NS) for i in range(3)]
    seen.claim(W1, events)
    path = seen.path("prod", T0 // 60)
    data = path.read_bytes()
    assert len(data) == 3 * RECORD
    path.write_bytes(data[:-5])  # a crash in the middle of the last record
    fresh = Seen(tmp_path)
    assert fresh.claim(W2, events) == (events[2:], 2)
    assert path.stat().st_size % RECORD == 0


def test_ledger_partitions_not_written_for_the_horizon_are_deleted(tmp_path):
    import os
    import time

    seen = Seen(tmp_path, horizon=86400)
    seen.claim(W1, [line(0, T0 * NS, received=T0 * NS)])
    now = time.time()
    assert seen.prune(now + 3600) == 0
    os.utime(seen.path("prod", T0 // 60), (now - 86400 - 1, now - 86400 - 1))
    assert seen.prune(now) == 1
    assert not (tmp_path / "prod" / "20261120").exists()
    assert seen.claim(W2, [line(0, T0 * NS, received=T0 * NS)])[1] == 0


# --------------------------------------------------------------------------- state

def test_state_marks_survive_a_reopen_and_sources_accumulate(tmp_path):
    st_ = State(tmp_path / "porter.db")
    st_.mark_indexed(W1, 10, ["tcp://a:1"], now=5.0)
    st_.mark_indexed(W1, 2, ["tcp://b:1"], now=6.0)
    st_.mark_archived(W1, "prod/2026/11/20/000000-60s.hea", 123, "abc", 12, ["tcp://a:1", "tcp://b:1"])
    st_.mark_pruned(W1, ["tcp://a:1"])
    st_.mark_skipped(W2, "prod/2026-11-20T00:01")
    st_.close()
    back = State(tmp_path / "porter.db")
    w = back.get(W1)
    assert (w.indexed, w.index_events, w.index_sources) == (True, 12, {"tcp://a:1", "tcp://b:1"})
    assert (w.archived, w.archive_size, w.archive_checksum, w.pruned_from) == (True, 123, "abc", {"tcp://a:1"})
    assert back.get(W2).archived and not back.get(W2).indexed
    assert [x.name for x in back.windows("prod")] == [W1, W2]
    assert back.get(BucketName("prod", T0 + 120, 60)) is None


def test_a_state_written_before_inventory_was_counted_apart_opens_and_counts_it_from_then_on(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "porter.db")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('version', '1');
        CREATE TABLE windows (
            environment TEXT NOT NULL, start INTEGER NOT NULL, width INTEGER NOT NULL,
            indexed_at REAL, index_events INTEGER, index_sources TEXT NOT NULL DEFAULT '[]',
            archived_at REAL, archive_key TEXT, archive_size INTEGER, archive_checksum TEXT,
            archive_events INTEGER, archive_sources TEXT NOT NULL DEFAULT '[]',
            skipped TEXT,
            pruned_at REAL, pruned_from TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (environment, start, width)
        ) WITHOUT ROWID;""")
    db.execute("INSERT INTO windows (environment, start, width, indexed_at, index_events, index_sources) "
               "VALUES ('prod', ?, 60, 1.0, 7, '[\"tcp://a:1\"]')", (T0,))
    db.commit()
    db.close()
    st_ = State(tmp_path / "porter.db")
    try:
        old = st_.get(W1)
        assert (old.index_events, old.index_inventory, old.index_sources) == (7, None, {"tcp://a:1"})
        st_.mark_indexed(W2, 5, ["tcp://a:1"], inventory=2)
        st_.mark_indexed(W2, 1, ["tcp://b:1"], inventory=1)
        assert (st_.get(W2).index_events, st_.get(W2).index_inventory) == (6, 3)
        assert st_.get(W2).to_dict()["index_inventory"] == 3
    finally:
        st_.close()


def test_a_lease_keeps_a_second_porter_off_a_window_until_it_expires(tmp_path):
    one = State(tmp_path / "p.db", owner="elsewhere:1")
    two = State(tmp_path / "p.db", owner="elsewhere:2")
    assert one.lease("index", W1, 60, now=100)
    assert not two.lease("index", W1, 60, now=120)
    assert one.lease("index", W1, 60, now=130)  # renewed by its owner
    assert two.lease("index", W1, 60, now=191)  # expired
    two.release("index", W1)
    assert one.lease("index", W1, 60, now=192)


def test_a_lease_of_a_dead_porter_on_this_host_is_taken_over_at_once(tmp_path):
    import os
    import subprocess

    child = subprocess.Popen(["true"])  # a porter that has exited
    child.wait()
    gone = State(tmp_path / "p.db", owner=f"{os.uname().nodename}:{child.pid}")
    assert gone.lease("index", W1, 900, now=100)
    assert State(tmp_path / "p.db").lease("index", W1, 900, now=101)


# --------------------------------------------------------------------------- what each job still needs

def held(*eps, state="closed", w=W1):
    from helios.query.protocol import BucketEntry

    return {ep: BucketEntry(id="prod/20261120/000000-60s", environment="prod", start=w.start * NS, width=w.width,
                            size=10, state=state) for ep in eps}


def test_a_window_is_loaded_once_closed_everywhere_and_past_grace_then_only_from_new_holders():
    from helios.porter.report import index_todo
    from helios.porter.state import WindowState

    now = W1.end + 5
    assert index_todo(W1, {**held("a"), **held("b", state="open")}, None, now, grace=1) == {}
    assert index_todo(W1, held("a", "b"), None, W1.end + 0.5, grace=1) == {}
    assert set(index_todo(W1, held("a", "b"), None, now, grace=1)) == {"a", "b"}
    done = WindowState(W1, indexed_at=1.0, index_sources={"a", "b"})
    assert index_todo(W1, held("a", "b"), done, now, grace=1) == {}
    assert set(index_todo(W1, held("a", "b", "c"), done, now, grace=1)) == {"c"}  # back from the dead


def test_a_window_is_pruned_only_from_bucks_whose_copy_is_indexed_and_archived():
    from helios.porter.report import archive_todo, prune_targets
    from helios.porter.state import WindowState

    ws = WindowState(W1, indexed_at=1.0, index_sources={"a", "b"}, archived_at=2.0, archive_sources={"a", "c"})
    assert prune_targets(held("a", "b", "c"), ws) == ["a"]
    assert prune_targets(held("a"), WindowState(W1, indexed_at=1.0, index_sources={"a"})) == []
    skipped = WindowState(W1, indexed_at=1.0, index_sources={"a"}, skipped="prod/2026-11-20T00:00")
    assert prune_targets(held("a", "b"), skipped) == ["a"]
    assert archive_todo(W1, held("a"), skipped, W1.end + 10, archive_age=0) == {}
    assert set(archive_todo(W1, held("a", "b", "c"), ws, W1.end + 10, archive_age=0)) == {"b"}
    assert archive_todo(W1, held("a", "b"), None, W1.end + 10, archive_age=60) == {}


def test_summary_counts_what_is_behind_per_environment():
    from helios.porter.report import render, summarize
    from helios.porter.state import WindowState

    states = [WindowState(W1, indexed_at=1.0, index_events=7, index_sources={"a"})]
    listed = [(W1, held("a")), (W2, held("a", w=W2))]
    d = summarize(listed, states, W2.end + 100, grace=1, archive_age=50, prune_age=0)["prod"]
    assert (d["held"], d["index_behind"], d["archive_behind"], d["prune_behind"], d["prune_waiting"]) == (2, 1, 2, 2, 2)
    assert d["last_indexed"] == "2026-11-20T00:00:00Z" and d["events_indexed"] == 7
    assert "behind: index 1, archive 2, prune 2" in render({"environments": {"prod": d}})
    # The window shown as `helios status` shows it: indexed to the end of the last window done.
    assert d["indexed_to"] == "2026-11-20T00:01:00Z"
    assert "indexed to     2026-11-20T00:01:00Z" in render({"environments": {"prod": d}})
    from helios.commands.status import assess, render as mesh_render

    report = {"received": W2.end + 100, "environments": {"prod": {"indexed": W1.end, "archived": None,
                                                                  "pruned": None, "behind": "-"}}}
    st = assess({}, {"tcp://a:7303": {"events": 7, "reports": {"porter@p": report}}}, 0, W2.end + 100)
    assert "prod: indexed to 2026-11-20T00:01:00Z" in mesh_render(st, colour=False)


# --------------------------------------------------------------------------- archive workers

def test_an_archive_worker_that_died_is_replaced_and_the_job_still_runs(tmp_path):
    import os
    import signal

    from helios.archive import format as fmt
    from helios.archive.store import FolderArchive
    from helios.porter.workers import Job, Pool

    spec = {"archive": "folder", "archive_dir": str(tmp_path / "archive"), "s3_bucket": "", "s3_prefix": "",
            "s3_endpoint": "", "archive_level": 3}
    pool = Pool(1, spec)
    try:
        (proc, _), = pool._workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        events = [line(i * 10, T0 * NS + i) for i in range(20)]
        pool.submit(Job("archive", {"environment": "prod", "start": T0, "width": 60, "level": 3}, events))
        (job, (status, value)), = pool.wait(30)
    finally:
        pool.close()
    assert status == "ok", value
    key, size, sha, count = value
    assert (key, count) == ("prod/2026/11/20/000000-60s.hea", 20)
    assert fmt.unpack(FolderArchive(tmp_path / "archive").get(key)) == events


# --------------------------------------------------------------------------- index loads

def test_windows_queued_behind_a_load_are_loaded_together_and_each_reported(tmp_path):
    import sqlite3

    from helios.index.base import open_index
    from helios.index.query import Query
    from helios.porter.workers import IndexLoader, Job, Resources

    spec = {"index": "sqlite", "index_location": str(tmp_path), "index_name": "helios-test"}
    windows = [[line(w * 1000 + i * 10, T0 * NS + w * 60 * NS + i) for i in range(20)] for w in range(4)]
    loader = IndexLoader(Resources(spec), depth=4)
    try:
        loader.submit(Job("index", {"environment": "prod"}, windows[0], {"w": 0}))
        (_, (status, value)), = loader.wait(30)
        assert (status, value) == ("ok", 20)
        # Another porter holds the day's file: the next load waits on it,
        # and the windows queued meanwhile go in with it.
        blocker = sqlite3.connect(tmp_path / "helios-test" / "prod" / "2026-11-20" / "0.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        for w in (1, 2, 3):
            loader.submit(Job("index", {"environment": "prod"}, windows[w], {"w": w}))
        assert loader.wait(0.3) == []
        blocker.execute("ROLLBACK")
        results = []
        while loader.busy:
            results += loader.wait(30)
    finally:
        loader.close()
    assert sorted(job.meta["w"] for job, _ in results) == [1, 2, 3]
    assert all(status == "ok" for _, (status, _) in results)
    together = [job for job, _ in results if job.meta.get("loaded_with")]
    assert len(together) >= 2
    with open_index("sqlite", str(tmp_path), "helios-test") as index:
        hits = index.search(Query("prod", 0, 2**62))
    assert sorted(e.id for e in hits) == sorted(e.id for w in windows for e in w)
