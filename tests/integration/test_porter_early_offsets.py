"""The fresh job and the index job driven pass by pass against a real buck
(``helios.porter.early``): a closed window's load goes on from where the
early loads left off, and takes again what they did not finish. Each test
breaks the early path on purpose (an index that fails, a buck whose file is
replaced mid-window) and checks the index holds every event exactly once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from helios import codec
from helios.config import Porter as PorterConfig
from helios.model import Event
from helios.porter import report
from helios.porter.jobs import Context, IndexJob, Pass
from helios.porter.jobs.fresh import FreshJob
from helios.porter.seen import Seen
from helios.porter.state import State
from helios.porter.workers import Resources
from helios.query.client import QueryClient, holders
from tests.helpers import buck_query, poll_until
from tests.integration.test_bad_events import push


def events(start: int, n: int) -> list[Event]:
    now = time.time_ns()
    return [Event(os.urandom(16), now + i, now, "web-1", "app", 6, "", None, b"early line %06d" % i, None, b"",
                  "prod") for i in range(start, start + n)]


@pytest.fixture
def porter(tmp_path):
    def make(query: str) -> tuple[Context, FreshJob, IndexJob]:
        cfg = dataclasses.replace(PorterConfig(), state_dir=str(tmp_path / "state"),
                                  index_dir=str(tmp_path / "index"), archive_dir=str(tmp_path / "archive"),
                                  workers=0, grace=0.0, bucks=(query,))
        (tmp_path / "state").mkdir(exist_ok=True)
        ctx = Context(cfg, tmp_path / "state", once=True)
        ctx.res = Resources(ctx.spec)
        ctx.state = State(tmp_path / "state" / "porter.db")
        ctx.seen = Seen(tmp_path / "state" / "seen")
        ctx.qc = QueryClient(timeout=5)
        made.append(ctx)
        return ctx, FreshJob(ctx), IndexJob(ctx)
    made: list[Context] = []
    yield make
    for ctx in made:
        ctx.res.close()
        ctx.state.close()
        ctx.qc.close()


def look(ctx: Context) -> Pass:
    listings = ctx.qc.list_buckets(list(ctx.cfg.bucks))
    return Pass(listings, report.parse_listed(holders(listings)))


def indexed(tmp_path) -> Counter:
    r = subprocess.run([sys.executable, "-m", "helios", "search", "--index-dir", str(tmp_path / "index"),
                        "--env", "prod", "--start", "2000-01-01T00:00:00Z", "--all", "-o", "raw", "early"],
                       capture_output=True, text=True, timeout=60)
    return Counter(line for line in r.stdout.splitlines() if line.startswith("early line"))


def stored(data) -> int:
    import json
    try:
        return json.loads((data / "stats.json").read_text()).get("events", 0)
    except (OSError, ValueError):
        return 0


def close_and_load(ctx: Context, index: IndexJob) -> None:
    def closed():
        p = look(ctx)
        return p.listed and not any(e.open for _, held in p.listed for e in held.values()) and p
    p = poll_until(closed, timeout=60, interval=0.5, what="the window to close")
    assert index.run_pass(p)


def test_what_an_early_load_failed_to_index_comes_with_the_window_and_the_rest_only_once(tmp_path, buck, porter):
    _, ingest, data = buck("a", None, "--window", "3")
    ctx, fresh, index = porter(buck_query(data))
    push(ingest, codec.encode_events("prod", "web-1", events(0, 30)))
    poll_until(lambda: stored(data) >= 30, what="the buck to store 30")
    # An index the early load cannot open: it claims, fails, and must not move on.
    good = fresh.res.spec
    (tmp_path / "not-a-dir").write_text("")
    fresh.res = Resources({**good, "index_location": str(tmp_path / "not-a-dir")})
    fresh.run_pass(look(ctx))
    fresh.res = Resources(good)
    push(ingest, codec.encode_events("prod", "web-1", events(30, 20)))
    poll_until(lambda: stored(data) >= 50, what="the buck to store 50")
    p = look(ctx)
    assert any(e.open for _, held in p.listed for e in held.values()), "the window closed too soon"
    assert fresh.run_pass(p)
    assert sum(indexed(tmp_path).values()) == 50
    push(ingest, codec.encode_events("prod", "web-1", events(50, 10)))   # left for the window's load
    poll_until(lambda: stored(data) >= 60, what="the buck to store 60")
    close_and_load(ctx, index)
    lines = indexed(tmp_path)
    assert len(lines) == 60 and set(lines.values()) == {1}
    assert sum(ws.index_events for ws in ctx.state.windows()) == 60   # 50 loaded early, 10 by the window's load
    assert ctx.counts["events_indexed"] == 10 and not ctx.early


@pytest.mark.parametrize("after", [5, 60], ids=["shorter", "grown-past-the-offset"])
def test_a_buck_file_replaced_mid_window_is_fetched_whole_by_the_window_load(tmp_path, buck, porter, after):
    proc, ingest, data = buck("a", None, "--window", "10")
    ctx, fresh, index = porter(buck_query(data))
    poll_until(lambda: time.time() % 10 < 1, timeout=15, interval=0.05, what="a window's start")
    push(ingest, codec.encode_events("prod", "web-1", events(0, 40)))
    poll_until(lambda: stored(data) >= 40, what="the buck to store 40")
    assert fresh.run_pass(look(ctx))
    ((before, held),) = look(ctx).listed
    size = held[ctx.cfg.bucks[0]].size
    # The buck loses its disk: its open window starts again from nothing, and
    # (with more events after) grows past the offset loaded, with other records.
    proc.stop()
    for f in (data / "buckets").rglob("*.bkt"):
        f.unlink()
    proc.start()
    poll_until(lambda: (data / "stats.json").exists(), what="the buck to start again")
    frames = [codec.encode_events("prod", "web-1", events(40 + i, 1)) for i in range(after)]
    push(ingest, *frames)
    want = size + 1 if after > 5 else 1

    def regrown():
        return [h[ctx.cfg.bucks[0]].size for _, h in look(ctx).listed if h[ctx.cfg.bucks[0]].size >= want]
    poll_until(regrown, what="the buck to hold the window again")
    assert [name for name, _ in look(ctx).listed] == [before]   # the same window, another file
    close_and_load(ctx, index)
    lines = indexed(tmp_path)
    assert len(lines) == 40 + after and set(lines.values()) == {1}, lines
