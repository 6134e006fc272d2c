"""The embedded sqlite index: the shared behavioural suite, with and without
the separate term index, plus what only this backend promises: concurrent
loader processes never duplicate, worker processes load the same as one
process, the layout on disk, and clear errors for what it cannot use."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from helios.errors import IndexStoreError
from helios.index import open_index
from helios.index import sqlite as sqlite_index
from tests.helpers import ROOT
pytest.register_assert_rewrite("tests.index_suite")
from tests.index_suite import *  # noqa: F401,F403  (the shared suite)
from tests.index_suite import ENV, T0, corpus, expected, make_event, query


@pytest.fixture(params=["trigram", "trigram+words"])
def index(request, tmp_path):
    ix = open_index("sqlite", str(tmp_path), name="helios-test", term_index=request.param == "trigram+words")
    yield ix
    ix.close()


def many_events(n: int, seed: int = 0) -> list:
    return [make_event(10_000 + seed * 1_000_000 + i, T0 + i * 1_000_000_000,
                       b"line %d of seed %d conn reset" % (i, seed)) for i in range(n)]


def test_events_land_in_one_file_per_environment_day_and_shard(index, tmp_path):
    index.load(ENV, corpus())
    files = sorted(p.relative_to(tmp_path / "helios-test").as_posix()
                   for p in (tmp_path / "helios-test").rglob("*.db"))
    assert files == [f"prod/2023-11-{d}/{s}.db" for d in (15, 16, 17) for s in (0, 1)]


def test_two_loader_processes_at_once_leave_each_event_once(tmp_path):
    # Each process loads the same 6,000 events (and 1,000 of its own) in
    # small batches, so their transactions interleave on the same files.
    script = textwrap.dedent(f"""
        import sys
        from helios.index import open_index
        from tests.unit.test_index_sqlite import many_events
        own = int(sys.argv[1])
        events = many_events(6000) + many_events(1000, seed=own)
        index = open_index("sqlite", {str(tmp_path)!r}, name="helios-test")
        print(sum(index.load("prod", events[i:i + 250]) for i in range(0, len(events), 250)))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(own)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for own in (1, 2)]
    added = [int(p.communicate(timeout=50)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(added) == 8000                       # every event counted new exactly once
    index = open_index("sqlite", str(tmp_path), name="helios-test")
    hits = index.search(query(start=0, end=2**62))
    assert len(hits) == len({e.id for e in hits}) == 8000
    assert index.count(query('"conn reset"', start=0, end=2**62)) == 8000


def test_loading_through_worker_processes_gives_the_same_index(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_index, "PARALLEL_MIN", 10)
    events = corpus() + many_events(300)
    with open_index("sqlite", str(tmp_path), name="parallel", workers=2) as parallel:
        assert parallel.load(ENV, events) == len(events)
        assert parallel.load(ENV, events) == 0
        q = query(start=0, end=2**62)
        assert parallel.search(q) == expected(q, events)
        assert parallel.search(query("error")) == expected(query("error"), events)


def test_a_dead_loader_process_fails_its_load_and_is_replaced_for_the_next(tmp_path, monkeypatch):
    import os
    import signal

    monkeypatch.setattr(sqlite_index, "PARALLEL_MIN", 10)
    monkeypatch.setattr(sqlite_index, "FRAME_ROWS", 7)        # every worker gets many frames
    events = many_events(500)
    with open_index("sqlite", str(tmp_path), name="frames", workers=2) as index:
        assert index.load(ENV, events[:300]) == 300
        for pid in index.worker_pids():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(IndexStoreError, match="loader process died"):
            index.load(ENV, events)
        assert index.load(ENV, events) == 200           # new loaders; the first 300 were kept, once
        assert index.count(query(start=0, end=2**62)) == 500
        assert len(index.worker_pids()) == 2


def test_frames_are_even_and_bounded(monkeypatch):
    monkeypatch.setattr(sqlite_index, "FRAME_ROWS", 10)
    assert [len(f) for f in sqlite_index._frames(list(range(21)))] == [7, 7, 7]
    assert [len(f) for f in sqlite_index._frames(list(range(10)))] == [10]
    assert sqlite_index._frames([]) == []


@pytest.mark.parametrize("walk_min", [10_000, 20], ids=["walk finds the hits", "walk gives up"])
def test_common_needles_are_walked_in_time_order_with_the_same_answer(tmp_path, monkeypatch, walk_min):
    monkeypatch.setattr(sqlite_index, "MANY", 5)            # every needle counts as common
    monkeypatch.setattr(sqlite_index, "WALK_MIN", walk_min)
    monkeypatch.setattr(sqlite_index, "WALK_PER_HIT", 1)
    events = corpus() + many_events(200)
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
        for text in ('"conn reset"', "error", "line sev:info", "Failed"):
            for order in ("asc", "desc"):
                q = query(text, start=0, end=2**62, limit=7, order=order)
                page = index.search(q)
                assert page == expected(q, events), (text, order)
                if q.next_page(page) is not None:
                    assert index.search(q.next_page(page)) == expected(q.next_page(page), events), (text, order)


def test_common_field_values_are_walked_in_time_order_with_the_same_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_index, "MANY", 5)
    monkeypatch.setattr(sqlite_index, "WALK_PER_HIT", 1)
    events = [make_event(20_000 + i, T0 + i * 10**9, b"line %d" % i,
                         fields={"user": ("alice", "bob")[i % 2], "n": i % 7}) for i in range(300)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
        for walk_min in (10_000, 20):
            monkeypatch.setattr(sqlite_index, "WALK_MIN", walk_min)
            for text in ("user:alice", "user:bob n:3", "line n:6", "user:carol"):
                q = query(text, start=0, end=2**62, limit=7, order="desc")
                assert index.search(q) == expected(q, events), (text, walk_min)
                assert index.count(q) == len(expected(replace(q, limit=None), events))


@pytest.mark.parametrize("walk_min", [10_000, 20], ids=["walk finds the hits", "walk gives up"])
def test_common_needles_on_one_host_walk_its_rows_with_the_same_answer(tmp_path, monkeypatch, walk_min):
    monkeypatch.setattr(sqlite_index, "MANY", 5)
    monkeypatch.setattr(sqlite_index, "WALK_MIN", walk_min)
    monkeypatch.setattr(sqlite_index, "WALK_PER_HIT", 1)
    events = [make_event(30_000 + i, T0 + (i // 3) * 10**9, b"line %d conn reset" % i, host=f"web-{i % 3}",
                         severity=i % 8) for i in range(600)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
        for text in ("reset host:web-1", "reset host:web-2 sev:warning", "host:web-0 line",
                     "reset host:web-1,web-2", "reset host:web-9"):
            for order in ("asc", "desc"):
                q = query(text, start=T0 + 20 * 10**9, end=T0 + 150 * 10**9, limit=7, order=order)
                page = index.search(q)
                assert page == expected(q, events), (text, order)
                if q.next_page(page) is not None:
                    assert index.search(q.next_page(page)) == expected(q.next_page(page), events), (text, order)


def test_an_index_made_before_the_host_index_gets_it_when_opened_and_answers_the_same(tmp_path):
    events = corpus()
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
    dbs = list((tmp_path / "helios-recent").rglob("*.db"))
    for db in dbs:
        conn = sqlite3.connect(db)
        conn.execute("DROP INDEX ev_host")
        conn.close()
    with open_index("sqlite", str(tmp_path)) as index:
        for text in ("host:web-2 error", "host:db-1", "Failed host:web-1 sev:err"):
            assert index.search(query(text)) == expected(query(text), events), text
    for db in dbs:
        names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ev_host" in names, db


def test_a_substring_with_a_nul_byte_is_found(tmp_path):
    events = [make_event(40_000 + i, T0 + i * 10**9, b"rec%d a\x00bcd tail" % i if i % 5 == 0 else b"rec%d abcd" % i)
              for i in range(50)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
        for text in ('"a\\x00bcd"', '"\\x00bc"', '"rec10 a\\x00bcd tail"'):
            q = query(text)
            assert index.search(q) == expected(q, events) != [], text
            assert index.count(q) == len(expected(q, events))


@pytest.mark.parametrize("sample_rows", [40, 10_000], ids=["sampled", "file still filling up"])
def test_long_needles_look_up_their_rarest_trigrams_with_the_same_answer(tmp_path, monkeypatch, sample_rows):
    monkeypatch.setattr(sqlite_index, "SAMPLE_ROWS", sample_rows)
    events = [make_event(50_000 + i, T0 + i * 10**9,
                         b"Failed password for invalid user bob from 203.0.%d.%d port %d ssh2" % (i % 7, i % 11, 1024 + i)
                         if i % 2 else b"Accepted publickey for alice from 10.0.%d.9 port %d ssh2" % (i % 5, 2048 + i))
              for i in range(400)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events[:200])
        for batch in (None, events[200:]):
            if batch:
                index.load(ENV, batch)
            for text in ('"from 203.0.3.4 port 1124 ssh2"', '"invalid user bob from 203.0.6"', '"port 2"',
                         'Failed "for invalid user" "port 1091"', "alice publickey Accepted ssh2",
                         '"from 10.0.4.9 port 2052"', '"from 203.0.3.4 port 9999"'):
                q = query(text)
                assert index.search(q) == expected(q, events[:len(events) if batch else 200]), text
                assert index.count(q) == len(expected(q, events[:len(events) if batch else 200])), text


def _make_format_1(tmp_path):
    """An index as Helios wrote it before fields were searchable: format 1
    files are this schema without the fv table and without the rollups
    (format 3), which the upgrade from 1 must make too."""
    from tests.index_suite import FIELD_EVENTS

    events = [make_event(700 + i, T0 + i * 10**9, msg, fields=f) for i, (msg, f) in enumerate(FIELD_EVENTS)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
    for db in (tmp_path / "helios-recent").rglob("*.db"):
        conn = sqlite3.connect(db)
        conn.executescript("DROP TABLE fv; DROP TABLE agg; DROP TABLE agg_h; DROP TABLE agg_s; "
                           "PRAGMA user_version=1;")
        conn.close()
    return events


def test_an_index_made_before_fields_were_searchable_is_brought_up_to_date_and_finds_them(tmp_path):
    events = _make_format_1(tmp_path)
    with open_index("sqlite", str(tmp_path)) as index:
        for text in ("user:alice", "http.status:404,500", "tags:blue"):
            assert index.search(query(text)) == expected(query(text), events) != [], text
        more = make_event(800, T0 + 50 * 10**9, b"user=dave", fields={"user": "dave"})
        assert index.load(ENV, [more]) == 1
        assert index.search(query("user:dave")) == [more]
    versions = {sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
                for db in (tmp_path / "helios-recent").rglob("*.db")}
    assert versions == {sqlite_index.FORMAT}


def test_a_file_of_a_newer_format_is_refused_by_name(tmp_path):
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, corpus()[:1])
    db = next((tmp_path / "helios-recent").rglob("*.db"))
    sqlite3.connect(db).execute("PRAGMA user_version=99").connection.close()
    with pytest.raises(IndexStoreError, match=f"{db.name} is of format 99; this Helios reads format {sqlite_index.FORMAT}"):
        open_index("sqlite", str(tmp_path)).search(query())


def test_substrings_that_are_not_utf8_are_found(loaded):
    index, events = loaded
    q = query('"\\xff\\xfe"')
    assert [e.message for e in index.search(q)] == [b"raw bytes \xff\xfe\x00 are kept as they are"] * 3


def test_reopening_with_another_shard_count_is_refused(tmp_path):
    with open_index("sqlite", str(tmp_path), shards=2) as index:
        index.load(ENV, corpus()[:3])
    with pytest.raises(IndexStoreError, match="created with shards=2, not 4"):
        open_index("sqlite", str(tmp_path), shards=4).search(query())
    with open_index("sqlite", str(tmp_path)) as index:      # no wish: the stored layout is used
        assert index.shards == 2 and index.count(query()) == 3


def test_a_file_that_is_not_a_database_is_reported_by_name(tmp_path):
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, corpus()[:1])
    bad = next((tmp_path / "helios-recent" / ENV).rglob("*.db"))
    for suffix in ("", "-wal", "-shm"):
        bad.with_name(bad.name + suffix).unlink(missing_ok=True)
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexStoreError, match=str(bad.name)):
        open_index("sqlite", str(tmp_path)).search(query())


def test_bad_names_and_environments_are_refused(tmp_path):
    with pytest.raises(IndexStoreError, match="index name"):
        open_index("sqlite", str(tmp_path), name="Helios/../x")
    with pytest.raises(IndexStoreError, match="not a valid environment"):
        open_index("sqlite", str(tmp_path)).load("../etc", corpus()[:1])
    with pytest.raises(IndexStoreError, match="unknown index kind"):
        open_index("lucene", str(tmp_path))


# ------------------------------------------------------------ the rollup (agg)

MINUTE = 60 * 10**9


def _random_events(rng, n: int, first: int = 0) -> list:
    """Events over two days and a bit: times on and off minute boundaries,
    hosts, apps and severities (None too) varying."""
    events = []
    for i in range(first, first + n):
        t = T0 - 3600 * 10**9 + rng.randrange(50 * 3600) * 10**9
        if rng.random() < 0.3:
            t = t // MINUTE * MINUTE + rng.choice((0, 1, MINUTE - 1))
        elif rng.random() < 0.5:
            t += rng.randrange(10**9)
        events.append(make_event(i, t, b"rolled line %d" % i, host=rng.choice(("web-1", "web-2", "db-1")),
                                 app=rng.choice(("sshd", "nginx", "cron", "kernel")),
                                 severity=rng.choice((None, 0, 2, 3, 4, 6, 7))))
    return events


def _reference(q, events):
    """histogram(q, step) and tops(q, ...) counted in Python from the events."""
    from collections import Counter

    from helios.index.base import merge_top
    from helios.model import severity_name

    hits = expected(replace(q, limit=None), list({e.id: e for e in events}.values()))

    def histogram(step):
        out: dict = {}
        for e in hits:
            bucket = out.setdefault(e.time // step * step, {})
            bucket[e.severity] = bucket.get(e.severity, 0) + 1
        return sorted(out.items())

    tops = {"host": merge_top(Counter(e.host for e in hits), 10), "app": merge_top(Counter(e.app for e in hits), 10),
            "severity": merge_top(Counter(severity_name(e.severity) for e in hits), 10)}
    return histogram, tops


def _random_query(rng):
    start = T0 - 2 * 3600 * 10**9 + rng.randrange(52 * 3600 * 10**9)
    if rng.random() < 0.3:
        start = start // MINUTE * MINUTE
    end = start + rng.choice((rng.randrange(3 * MINUTE), rng.randrange(30 * 3600 * 10**9)))
    if rng.random() < 0.3:
        end = end // MINUTE * MINUTE + rng.choice((0, 1))
    kw: dict = {}
    if rng.random() < 0.3:
        kw["hosts"] = tuple(rng.sample(("web-1", "web-2", "db-1", "none-such"), rng.randint(1, 2)))
    if rng.random() < 0.3:
        kw["apps"] = tuple(rng.sample(("sshd", "nginx", "cron", "kernel"), rng.randint(1, 3)))
    if rng.random() < 0.3:
        kw["severity"] = rng.choice((0, 3, 4, 7))
    return replace(query(start=start, end=max(start, end), limit=None), **kw)


def _check_rollup_answers(index, events, rng, queries: int = 40) -> None:
    for _ in range(queries):
        q = _random_query(rng)
        histogram, tops = _reference(q, events)
        for step in (60 * 10**9, 300 * 10**9, 3600 * 10**9, 7 * 10**9):
            if (q.end - q.start) // step <= 10_000:
                assert index.histogram(q, step) == histogram(step), (q, step)
        assert index.tops(q, ["host", "app", "severity"]) == tops, q
        assert index.top(q, "app") == tops["app"], q


def test_rollup_answers_equal_the_events_counted_for_random_data_ranges_and_duplicate_loads(tmp_path):
    import random

    rng = random.Random(21)
    events = _random_events(rng, 3000)
    with open_index("sqlite", str(tmp_path)) as index:
        for i in range(0, 3000, 700):                   # batches, then every batch again, overlapping
            index.load(ENV, events[i:i + 700])
        assert index.load(ENV, events[350:2400]) == 0
        assert index.load(ENV, events[::-1]) == 0
        _check_rollup_answers(index, events, rng)
        more = _random_events(rng, 500, first=3000)      # a load half old, half new
        assert index.load(ENV, events[:500] + more) == 500
        _check_rollup_answers(index, events + more, rng)


def test_rollup_stays_exact_through_worker_processes_and_a_killed_loader(tmp_path, monkeypatch):
    import os
    import random
    import signal

    monkeypatch.setattr(sqlite_index, "PARALLEL_MIN", 10)
    monkeypatch.setattr(sqlite_index, "FRAME_ROWS", 37)
    rng = random.Random(5)
    events = _random_events(rng, 1500)
    with open_index("sqlite", str(tmp_path), name="frames", workers=2) as index:
        assert index.load(ENV, events[:600]) == 600
        for pid in index.worker_pids():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(IndexStoreError, match="loader process died"):
            index.load(ENV, events)
        assert index.load(ENV, events) == 900
        assert index.load(ENV, events) == 0
        _check_rollup_answers(index, events, rng, queries=15)


def test_histograms_and_top_values_without_needles_are_read_from_the_rollup(tmp_path):
    """Break the rollup on purpose: a query of time, host, app and severity
    only sees it, one with a needle or a field counts the events."""
    events = [make_event(i, T0 + i * MINUTE, b"tick %d" % i, fields={"k": "v"}) for i in range(100)]
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
        q = query(start=T0, end=T0 + 100 * MINUTE, limit=None)
        assert index.top(q, "host") == [("web-1", 100)]
        for db in (tmp_path / "helios-recent").rglob("*.db"):
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE agg SET n = n + 1000")
                conn.execute("UPDATE agg_s SET n = n + 1000")
        assert index.top(q, "host")[0][1] > 100
        assert sum(sum(b.values()) for _, b in index.histogram(q, 60 * 10**9)) > 100
        assert index.top(replace(q, start=T0 + 1), "host") == [("web-1", 99 + 1000 * 99)]   # 99 whole minutes
        assert index.top(query("tick", start=T0, end=T0 + 100 * MINUTE), "host") == [("web-1", 100)]
        assert index.top(query("k:v", start=T0, end=T0 + 100 * MINUTE), "host") == [("web-1", 100)]
        assert sum(sum(b.values()) for _, b in index.histogram(q, 7 * 10**9)) == 100     # not whole minutes
        for db in (tmp_path / "helios-recent").rglob("*.db"):
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE agg SET n = n - 1000")
                conn.execute("UPDATE agg_s SET n = n - 1000")
                conn.execute("UPDATE agg_h SET n = n + 5000")
        # [T0 + 1 ns, T0 + 100 min): no whole hour; [T0, ...): hour 0 from agg_h, then 40 minutes from agg.
        assert index.top(replace(q, start=T0 + 1), "host") == [("web-1", 99)]
        files = len(list((tmp_path / "helios-recent").rglob("*.db")))       # one agg_h row of hour 0 each
        assert index.top(q, "host") == [("web-1", 100 + 5000 * files)]
        assert index.histogram(q, 3600 * 10**9) == [(T0, {6: 60 + 5000 * files}), (T0 + 3600 * 10**9, {6: 40})]
        assert sum(sum(b.values()) for _, b in index.histogram(q, 300 * 10**9)) == 100   # minutes only


def test_an_index_made_before_the_rollup_gets_it_when_opened_and_counts_the_same(tmp_path, caplog):
    import logging
    import random

    rng = random.Random(3)
    events = _random_events(rng, 1000)
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
    for db in (tmp_path / "helios-recent").rglob("*.db"):
        with sqlite3.connect(db) as conn:
            conn.executescript("DROP TABLE agg; DROP TABLE agg_h; DROP TABLE agg_s; PRAGMA user_version=2;")
    with caplog.at_level(logging.INFO, logger="helios.index.sqlite"):
        with open_index("sqlite", str(tmp_path)) as index:
            _check_rollup_answers(index, events, rng, queries=10)
            more = _random_events(rng, 200, first=1000)
            assert index.load(ENV, more) == 200
            _check_rollup_answers(index, events + more, rng, queries=10)
    assert "now has a rollup of counts" in caplog.text
    versions = {sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
                for db in (tmp_path / "helios-recent").rglob("*.db")}
    assert versions == {sqlite_index.FORMAT}


def test_a_read_only_file_without_the_rollup_is_counted_from_its_events(tmp_path, monkeypatch):
    import os
    import random
    import stat

    rng = random.Random(4)
    events = _random_events(rng, 400)
    with open_index("sqlite", str(tmp_path)) as index:
        index.load(ENV, events)
    dbs = list((tmp_path / "helios-recent").rglob("*.db"))
    for db in dbs:
        with sqlite3.connect(db) as conn:
            conn.executescript("DROP TABLE agg; DROP TABLE agg_h; DROP TABLE agg_s; PRAGMA user_version=2; PRAGMA journal_mode=DELETE;")
    if os.geteuid() == 0:           # root writes read-only files: the migration is left out instead
        monkeypatch.setattr(sqlite_index.SqliteIndex, "_migrate_2_to_3", lambda *a: None)
    for p in [*dbs, *{db.parent for db in dbs}]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with open_index("sqlite", str(tmp_path)) as index:
            _check_rollup_answers(index, events, rng, queries=10)
    finally:
        for p in [*dbs, *{db.parent for db in dbs}]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_rollup_counts_an_event_given_twice_in_one_load_once(tmp_path):
    import random

    rng = random.Random(8)
    events = _random_events(rng, 600)
    with open_index("sqlite", str(tmp_path)) as index:
        assert index.load(ENV, events + events[100:300] + events[:5]) == 600
        _check_rollup_answers(index, events, rng, queries=15)


def test_files_with_and_without_fts5_row_sizes_load_and_answer_the_same(tmp_path, monkeypatch):
    """Files made before columnsize=0 keep their %_docsize tables; an index
    holding both kinds (one day each) loads and answers as one."""
    events = corpus()
    old_day = [e for e in events if e.time < T0 + 86_400 * 10**9]
    with monkeypatch.context() as m:
        m.setattr(sqlite_index, "_NO_SIZES", "")
        with open_index("sqlite", str(tmp_path), term_index=True) as index:
            index.load(ENV, old_day[:len(old_day) // 2])
    with open_index("sqlite", str(tmp_path), term_index=True) as index:
        index.load(ENV, old_day[len(old_day) // 2:])
        index.load(ENV, events)
        index.load(ENV, events)
        for text in ("error", '"conn reset"', "host:web-2 error", "Failed", '"ssh2"'):
            assert index.search(query(text)) == expected(query(text), events), text
            assert index.count(query(text)) == len(expected(query(text), events)), text
    kinds = {}
    for db in (tmp_path / "helios-recent").rglob("*.db"):
        tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
        kinds[db.parent.name] = ("tri_docsize" in tables, "words_docsize" in tables)
    assert sorted(set(kinds.values())) == [(False, False), (True, True)], kinds
