"""A small mesh with a past, for the history, search and recovery tests.

Two bucks serve data directories planted beforehand with bucket files: three
windows of ``OLD`` (40 days ago, older than the recent index keeps) and two
of yesterday, each batch on one buck or both, as tailers leave them. One
``helios porter once`` then archives every window (folder archive), loads
yesterday's into the recent index (sqlite, 30 days kept) and prunes the
bucks. Every command of a test reads the one config file this writes.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from helios import codec
from helios.model import Event, random_id
from helios.store import layout
from helios.store.records import RecordWriter
from helios.wire.ports import free_endpoint, free_port
from tests.helpers import ANY_PORT, ROOT, buck_query

NS = 1_000_000_000
TODAY = int(time.time()) // 86400 * 86400
OLD = TODAY - 40 * 86400 + 10 * 3600          # 10:00 UTC, 40 days ago
YESTERDAY = TODAY - 86400 + 10 * 3600
HOSTS = ("web-1", "web-2", "db-1")


def iso(s: int) -> str:
    """A time as the CLI takes it (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))


def events_of(env: str, start: int, n: int, tag: str, seed: int) -> list[Event]:
    """``n`` events in the minute from ``start``, a few of them carrying ``tag``."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = start * NS + rnd.randrange(60 * NS)
        needle = b" incident=%s" % tag.encode() if i % 50 == 7 else b""
        out.append(Event(random_id(), t, t + rnd.randrange(NS), HOSTS[i % 3], ("nginx", "app")[i % 2], i % 8, "",
                         None, b"GET /api/v1/orders/%d 200 %dms%s" % (i, rnd.randrange(900), needle), None, b"", env))
    return out


def plant(data: Path, env: str, start: int, frames: list[bytes], width: int = 60) -> None:
    with RecordWriter(layout.bucket_path(data / "buckets", env, start, width)) as w:
        for frame in frames:
            w.append(frame)


@dataclass
class Mesh:
    tmp: Path
    config: Path
    queries: list[str]
    old: list[Event]          # the events of the three old windows
    recent: list[Event]       # yesterday's
    web_port: int

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)


def build(tmp: Path, procs, per_window: int = 400, archive_dir: Path | None = None) -> Mesh:
    a, b = tmp / "buck-a", tmp / "buck-b"
    old, recent = [], []
    for k, (day0, into) in enumerate(((OLD, old), (YESTERDAY, recent))):
        for w in range(3 if day0 == OLD else 2):
            start = day0 + w * 60
            evs = events_of("prod", start, per_window, f"old{w}" if day0 == OLD else f"new{w}", seed=k * 10 + w)
            into += evs
            frames = [codec.encode_events("prod", "web", evs[i:i + 100]) for i in range(0, len(evs), 100)]
            plant(a, "prod", start, frames)
            plant(b, "prod", start, frames[1::2])
    queries = []
    for name, data in (("a", a), ("b", b)):
        procs("buck", "--name", f"buck-{name}", "--ingest", ANY_PORT, "--publish", ANY_PORT,
              "--query", ANY_PORT, "--data-dir", str(data), "--stats-interval", "0.2", name=f"buck-{name}")
        queries.append(buck_query(data))
    web_port = free_port()
    config = tmp / "helios.toml"
    archive_dir = archive_dir or tmp / "archive"
    config.write_text(f"""
[porter]
bucks = {queries!r}
state_dir = "{tmp / 'porter'}"
index_dir = "{tmp / 'index'}"
archive_dir = "{archive_dir}"
archive_level = 3
grace = 0.5
archive_age = 0.0
prune_age = 0.0
recent_days = 30
timeout = 2.0
workers = 0

[history]
dir = "{tmp / 'history'}"
poll_interval = 0.1
margin = 60.0

[web]
listen = "127.0.0.1:{web_port}"
bucks_pub = ["{free_endpoint()}"]

[subscribe]
bucks = ["{free_endpoint()}"]
""".replace("'", '"'))
    mesh = Mesh(tmp, config, queries, old, recent, web_port)
    r = mesh.run("porter", "once", "-c", str(config))
    assert r.returncode == 0, r.stderr
    return mesh
