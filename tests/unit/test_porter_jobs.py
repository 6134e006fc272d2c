"""Each of the porter's jobs alone (``helios.porter.jobs``), against a real
state database, sqlite index and folder archive in a temporary directory:
the jobs are units the porter composes, so each can be run without bucks
where its work does not need them."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import time

import pytest

from helios.config import Porter as PorterConfig
from helios.errors import QueryError
from helios.model import Event
from helios.porter.jobs import (
    ArchiveJob,
    Context,
    IndexJob,
    Pass,
    PruneJob,
    ReportJob,
    RetentionJob,
)
from helios.porter.jobs.base import first_day
from helios.porter.seen import Seen
from helios.porter.state import State
from helios.porter.workers import Resources
from helios.query.protocol import BucketEntry
from helios.store.layout import BucketName, bucket_id

NS = 1_000_000_000
DAY = 86400


@pytest.fixture
def ctx(tmp_path):
    cfg = dataclasses.replace(PorterConfig(), state_dir=str(tmp_path / "state"), index_dir=str(tmp_path / "index"),
                              archive_dir=str(tmp_path / "archive"), workers=0, recent_days=7,
                              archive_blacklist=("prod/2026-01-05T10:00:30",))
    (tmp_path / "state").mkdir()
    c = Context(cfg, tmp_path / "state", once=True)
    c.res = Resources(c.spec)
    c.state = State(tmp_path / "state" / "porter.db")
    c.seen = Seen(tmp_path / "state" / "seen", horizon=cfg.archive_age + cfg.dedup_horizon)
    yield c
    c.res.close()
    c.state.close()


def _event(i: int, t: int) -> Event:
    return Event(i.to_bytes(16, "big"), t, t, "h", "app", 6, "/var/log/x", i * 10, b"line %d" % i, None, b"s" * 16,
                 "prod")


def _meta(name: BucketName) -> dict:
    return {"name": name, "sources": ["tcp://a:1"], "failed": {}, "copies": 1, "duplicates": 0,
            "frames_elsewhere": 0, "earlier": 0, "fetch_s": 0.0}


def _run(job, j) -> None:
    runner = job.runner()
    runner.submit(j)
    deadline = time.monotonic() + 60
    while True:
        job.finish(runner.wait(1.0))
        if not runner.busy:
            return
        assert time.monotonic() < deadline, "the job did not finish"


def _entry(name: BucketName, state: str = "closed") -> BucketEntry:
    return BucketEntry(bucket_id(name), name.environment, name.start * NS, name.width, 100, state)


def test_index_job_loads_the_recent_events_and_counts_and_warns_once_about_the_too_old(ctx, caplog):
    job = IndexJob(ctx)
    try:
        today = first_day(7) + 7 * DAY
        name = BucketName("prod", today, 60)
        old = (first_day(7) - 3 * DAY) * NS
        events = [_event(1, today * NS + 1), _event(2, old), _event(3, old + 5), _event(4, today * NS + 2)]
        with caplog.at_level(logging.INFO, logger="helios.services.porter"):
            _run(job, job.job(name, events, _meta(name)))
            job.warn_left_out()
            job.warn_left_out()   # once per pass: nothing more to say
        ws = ctx.state.get(name)
        assert ws.indexed and ws.index_sources == {"tcp://a:1"}
        assert ctx.state.left_out()["prod"]["events"] == 2
        assert ctx.counts["indexed"] == 1 and ctx.counts["events_indexed"] == 2 and ctx.counts["events_too_old"] == 2
        assert ctx.res.index.days("prod") == [datetime.date(1970, 1, 1) + datetime.timedelta(days=today // DAY)]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "2 event(s) of prod in 1 window(s) were left out" in warnings[0]
        assert any("Indexed window prod/" in r.getMessage() and "2 event(s) older than the index keeps" in
                   r.getMessage() for r in caplog.records)
    finally:
        job.close()


def _inventory(i: int, t: int) -> Event:
    from helios.tail import inventory

    rec = inventory.Record(i.to_bytes(16, "big"), (f"/var/log/x{i}",), 100, 100, 0, "read", seq=i)
    return inventory.to_event(rec, "h", t, "prod")


def test_a_windows_event_count_is_what_a_search_of_it_finds_and_inventory_records_count_apart(ctx, caplog):
    """A tailer's inventory records travel with its events, and the index
    leaves them out: the state, the status and the log count the window's
    events as a search finds them, the inventory records apart."""
    from helios.index.query import Query
    from helios.porter.report import render, summarize

    job = IndexJob(ctx)
    try:
        name = BucketName("prod", first_day(7) + 7 * DAY, 60)
        t = name.start * NS
        events = [_event(1, t + 1), _inventory(1, t + 2), _event(2, t + 3), _inventory(2, t + 4), _event(3, t + 5)]
        with caplog.at_level(logging.INFO, logger="helios.services.porter"):
            _run(job, job.job(name, events, _meta(name)))
        found = ctx.res.index.count(Query(environment="prod", start=t, end=t + 60 * NS, limit=None))
        ws = ctx.state.get(name)
        assert found == 3 and (ws.index_events, ws.index_inventory) == (3, 2)
        assert ctx.counts["events_indexed"] == 3 and ctx.counts["inventory_records"] == 2
        envs = summarize(None, ctx.state.windows(), time.time(), grace=0, archive_age=1e9, prune_age=1e9)
        assert (envs["prod"]["events_indexed"], envs["prod"]["inventory_records"]) == (3, 2)
        assert "1 windows, 3 events; and 2 tailer inventory records" in render({"environments": envs})
        assert any("Indexed window prod/" in r.getMessage() and ": 3 event(s)" in r.getMessage()
                   and "2 inventory record(s)" in r.getMessage() for r in caplog.records)
        # A window of inventory records alone (a tailer with nothing new to send) is indexed with no event.
        quiet = BucketName("prod", name.start + 60, 60)
        _run(job, job.job(quiet, [_inventory(3, quiet.start * NS + 1)], _meta(quiet)))
        ws = ctx.state.get(quiet)
        assert ws.indexed and (ws.index_events, ws.index_inventory) == (0, 1)
    finally:
        job.close()


def test_the_archive_keeps_inventory_records_and_says_how_many(ctx):
    job = ArchiveJob(ctx)
    try:
        name = BucketName("prod", 1767607260, 60)
        t = name.start * NS
        _run(job, job.job(name, [_event(1, t + 1), _inventory(1, t + 2)], _meta(name)))
        assert ctx.state.get(name).archive_events == 2
        assert ctx.counts["events_archived"] == 2 and ctx.counts["inventory_archived"] == 1
    finally:
        job.close()


def test_archive_job_skips_a_blacklisted_window_and_archives_the_next_into_the_folder(ctx):
    job = ArchiveJob(ctx)
    try:
        listed_out = BucketName("prod", 1767607200, 60)     # 2026-01-05T10:00 holds the blacklisted instant
        kept = BucketName("prod", 1767607260, 60)
        listed = [(n, {"tcp://a:1": _entry(n)}) for n in (listed_out, kept)]
        todo = job.todo(listed)
        assert [n for n, _, _ in todo] == [kept]
        assert ctx.state.get(listed_out).skipped == "prod/2026-01-05T10:00:30"
        assert job.todo(listed) == todo   # the skip is kept: it is not looked at again
        _run(job, job.job(kept, [_event(1, kept.start * NS + 5)], _meta(kept)))
        ws = ctx.state.get(kept)
        assert ws.archived_at is not None and ws.archive_sources == {"tcp://a:1"}
        assert ctx.counts["archived"] == 1 and ctx.counts["events_archived"] == 1
        files = [p for p in (ctx.state_dir.parent / "archive").rglob("*") if p.is_file()]
        assert files and any(ws.archive_key in str(p) for p in files)
    finally:
        job.close()


def test_a_failing_archive_is_backed_off_and_marks_nothing(ctx, tmp_path):
    (tmp_path / "archive").write_text("a file where the archive's folder should be")
    job = ArchiveJob(ctx)
    try:
        name = BucketName("prod", 1767607260, 60)
        _run(job, job.job(name, [_event(1, name.start * NS + 5)], _meta(name)))
        assert ctx.state.get(name) is None or ctx.state.get(name).archived_at is None
        assert ctx.archive_backoff.failures == 1 and not ctx.archive_backoff.ready(time.time())
        assert ctx.counts["archive_failures"] == 1
    finally:
        job.close()


def test_prune_job_picks_per_buck_only_the_copies_both_indexed_and_archived(ctx):
    job = PruneJob(ctx)
    now = time.time()
    age = max(ctx.cfg.prune_age, ctx.cfg.archive_age)
    old = BucketName("prod", int(now - age - 3600) // 60 * 60, 60)
    young = BucketName("prod", int(now) // 60 * 60 - 120, 60)
    for n in (old, young):
        ctx.state.mark_indexed(n, 1, ["tcp://a:1", "tcp://b:1"])
        ctx.state.mark_archived(n, "k", 1, "c", 1, ["tcp://a:1"])
    listed = [(n, {"tcp://a:1": _entry(n), "tcp://b:1": _entry(n)}) for n in (old, young)]
    states = {ws.name: ws for ws in ctx.state.windows()}
    assert job.due(listed, now, states) == {"tcp://a:1": [(old, bucket_id(old))]}


def test_retention_job_drops_the_days_before_recent_days_from_the_index_and_marks_them(ctx):
    old_day = first_day(7) - 2 * DAY
    keep_day = first_day(7) + DAY
    ctx.res.index.load("prod", [_event(1, old_day * NS + 5), _event(2, keep_day * NS + 5)])
    job = RetentionJob(ctx)
    assert job.run_pass(Pass({}, [])) is False
    assert ctx.res.index.days("prod") == [datetime.date(1970, 1, 1) + datetime.timedelta(days=keep_day // DAY)]
    assert ctx.state.dropped_days("prod") == {old_day}
    assert ctx.counts["days_dropped"] == 1


def test_retention_waits_while_loads_are_in_flight(ctx):
    ctx.res.index.load("prod", [_event(1, (first_day(7) - 2 * DAY) * NS)])
    RetentionJob(ctx, index_busy=lambda: 1).run_pass(Pass({}, []))
    assert len(ctx.res.index.days("prod")) == 1 and not ctx.counts["days_dropped"]


def test_report_job_writes_a_status_that_says_what_is_failing_and_leaves_nothing_without_bucks(ctx):
    ctx.failed(ctx.index_backoff, "disk full", time.time(), "window prod/x")
    job = ReportJob(ctx)
    job.run_pass(Pass({"tcp://a:1": QueryError("no answer")}, []))   # no buck answered: no report to leave
    status = json.loads((ctx.state_dir / "status.json").read_text())
    assert status["index"]["state"] == "down" and status["index"]["error"] == "disk full"
    assert status["archive"] == {"state": "ok", "where": ctx.archive_backoff.where}
    assert status["counts"]["index_failures"] == 1 and status["pid"] == os.getpid()
    assert job.last_status["index"]["failures"] == 1


def test_a_window_no_buck_could_send_is_left_unmarked_and_its_lease_released(ctx, caplog):
    import socket

    from helios.query.client import QueryClient

    silent = socket.create_server(("127.0.0.1", 0))   # listens, never answers
    ep = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    ctx.qc = QueryClient(timeout=0.3)
    job = IndexJob(ctx)
    try:
        name = BucketName("prod", first_day(7) + 7 * DAY, 60)
        with caplog.at_level(logging.WARNING, logger="helios.services.porter"):
            assert job.run([(name, {ep: _entry(name)}, None)]) is False
        assert ctx.state.get(name) is None and not ctx.counts["indexed"]
        assert any(f"Could not fetch window {bucket_id(name)} from buck {ep}" in r.getMessage()
                   for r in caplog.records)
        other = State(ctx.state_dir / "porter.db", owner="another-porter")
        try:
            assert other.lease("index", name, 60)   # released: another porter may take the window
        finally:
            other.close()
    finally:
        job.close()
        ctx.qc.close()
        silent.close()


def test_the_status_says_what_the_porter_is_doing_while_it_fetches_and_then_that_it_is_done(ctx):
    import socket

    from helios.porter.report import render
    from helios.query.client import QueryClient

    silent = socket.create_server(("127.0.0.1", 0))   # listens, never answers: a fetch that takes its time
    ep = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    ctx.qc = QueryClient(timeout=0.3)
    report = ReportJob(ctx)
    seen = []

    def progressed():
        report.write_status()
        seen.append(json.loads((ctx.state_dir / "status.json").read_text()))

    ctx.progressed = progressed
    job = IndexJob(ctx)
    try:
        name = BucketName("prod", first_day(7) + 7 * DAY, 60)
        job.run([(name, {ep: _entry(name)}, None)])
    finally:
        job.close()
        silent.close()
    doing = [s["doing"] for s in seen if s["doing"]]
    assert doing and doing[0] == f"index: fetching window {bucket_id(name)} from buck {ep} (1 of 1)"
    assert seen[-1]["doing"] is None and ctx.doing is None   # done: between jobs
    text = render({"running": {"pid": 7, "age": 1.0, "doing": doing[0], "doing_for": 12.4}})
    assert f"  now: index: fetching window {bucket_id(name)} from buck {ep} (1 of 1) (for 12 s)" in text
