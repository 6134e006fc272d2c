"""The porter against real processes: tailer -> two bucks -> porter -> index
and archive (sqlite and folder; OpenSearch through osmem-server; S3 through
moto_server), kill -9 mid-load, a dead buck, an archive that is down."""

import json
import os
import random
import signal
import subprocess
import sys
import time


from helios import codec
from helios.archive import format as fmt
from helios.archive.store import FolderArchive, S3Archive, key_for
from helios.index.base import open_index, scan
from helios.index.query import Query
from helios.model import Event, line_id, random_id
from helios.query.client import QueryClient
from helios.store import layout
from helios.store.records import RecordWriter
from helios.tail.files import FollowedFile
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, buck_query, poll_until

NS = 1_000_000_000


# --------------------------------------------------------------------------- helpers

def start_bucks(buck, *names, window=1):
    """Bucks with small windows and their query endpoints."""
    out = []
    for n in names:
        proc, ingest, data = buck(n, None, "--window", str(window))
        out.append((proc, ingest, data, buck_query(data)))
    return out


def porter_args(tmp, queries, *extra, cmd="run", state="porter"):
    args = ["porter", cmd, "--state-dir", str(tmp / state), "--index-dir", str(tmp / "index"),
            "--archive-dir", str(tmp / "archive"), "--grace", "0.5", "--poll-interval", "0.2", "--timeout", "2",
            "--archive-age", "0", "--prune-age", "0", "--backoff-min", "0.2", "--backoff-max", "1",
            "--recent-days", "30", "--archive-level", "3"]
    for q in queries:
        args += ["--query", q]
    return [*args, *extra]


def run_once(tmp, queries, *extra, state="porter", env=None):
    return subprocess.run([sys.executable, "-m", "helios", *porter_args(tmp, queries, *extra, cmd="once", state=state)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


def stats_of(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def status_file(tmp, state="porter"):
    try:
        return json.loads((tmp / state / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def settled(tmp, since, env="prod"):
    """The porter asked the bucks after ``since`` and had nothing left to do."""
    s = status_file(tmp)
    d = (s.get("environments") or {}).get(env) or {}
    return ((s.get("listed_at") or 0) > since and d.get("open") == 0 and d.get("index_behind") == 0
            and d.get("archive_behind") == 0 and d.get("prune_behind") == 0)


def index_events(tmp, env="prod", kind="sqlite", location=None):
    index = open_index(kind, location or str(tmp / "index"))
    try:
        # The tailer's inventory records are events too: left out of the lines counted here.
        return [e for e in scan(index, Query(environment=env, start=0, end=2**62, limit=None))
                if e.app != "helios-inventory"]
    finally:
        index.close()


def archive_objects(archive):
    return {key: fmt.unpack(archive.get(key)) for key in archive.list()}


def rfc3164_lines(n, start=0):
    now = time.gmtime()
    stamp = time.strftime("%b %e %H:%M:%S", now).encode()
    return [stamp + b" web-1 app[42]: line %08d user=u%d took %dms\n" % (i, i % 97, i % 1000)
            for i in range(start, start + n)]


def expected_ids(log, lines):
    f = FollowedFile.open(str(log))
    key = f.key
    f.close()
    ids, offset = [], 0
    for ln in lines:
        ids.append(line_id(key, offset))
        offset += len(ln)
    return ids


def plant(data, env, start, frames, width=60):
    """A bucket file of an earlier life of the buck: a window long closed."""
    with RecordWriter(layout.bucket_path(data / "buckets", env, start, width)) as w:
        for frame in frames:
            w.append(frame)


def client_events(n, t0):
    """Events of one environment, times spread over a minute, received at t0."""
    rnd = random.Random(n)
    return [Event(random_id(), t0 * NS + rnd.randrange(60 * NS), t0 * NS + i, f"web-{i % 3}", "app", i % 8, "", None,
                  b"GET /api/v1/items/%d 200 %dms" % (i, rnd.randrange(900)), None, b"", "prod") for i in range(n)]


def frames_of(events, per=500):
    return [codec.encode_events("prod", "web-1", events[i:i + per]) for i in range(0, len(events), per)]


YESTERDAY = (int(time.time()) // 86400 - 1) * 86400


def plant_two_bucks(a, b, windows=3, per_window=2000):
    """Windows of yesterday held by two bucks as a tailer would leave them:
    buck a every batch, buck b every other batch, and a re-send of the first
    window's first batches in the next window of b. Returns every event."""
    everything = []
    resend = []
    for w in range(windows):
        start = YESTERDAY + w * 60
        events = client_events(per_window, start + w)
        everything += events
        frames = frames_of(events)
        plant(a, "prod", start, frames)
        plant(b, "prod", start, frames[::2] + resend)
        resend = frames[:3]
    return everything


def started_bucks_over(tmp, procs, names):
    """Bucks serving data dirs planted beforehand."""
    out = []
    for n in names:
        data = tmp / f"buck-{n}"
        procs("buck", "--name", f"buck-{n}", "--ingest", "tcp://127.0.0.1:*", "--publish", "", "--query",
              "tcp://127.0.0.1:*", "--data-dir", str(data), "--stats-interval", "0.2", name=f"buck-{n}")
        out.append(buck_query(data))
    return out


def assert_once_and_whole(got, want):
    ids = [e.id for e in got]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event(s) twice"
    assert set(ids) == {e.id for e in want}, f"{len({e.id for e in want} - set(ids))} event(s) missing"
    by_id = {e.id: e for e in want}
    for e in got:
        assert e == by_id[e.id]


# --------------------------------------------------------------------------- end to end

def test_tailed_lines_reach_the_index_and_the_archive_each_exactly_once(tmp_path, procs, buck):
    """Two live copies of every batch and a spool re-send of every spool
    bucket (into later buck windows) become one event each, in the index and
    across the archive objects, which round-trip byte for byte; then the
    bucks are pruned."""
    (_, ep_a, data_a, q_a), (_, ep_b, data_b, q_b) = start_bucks(buck, "a", "b")
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--state-dir",
          str(tmp_path / "tailer"), "--buck", ep_a, "--buck", ep_b, "--spool-window", "1", "--resend-jitter", "0",
          "--batch-events", "200", name="tailer")
    porter = procs(*porter_args(tmp_path, [q_a, q_b]), name="porter")
    lines = rfc3164_lines(3000)
    for i in range(0, len(lines), 200):
        with open(log, "ab") as f:
            f.write(b"".join(lines[i:i + 200]))
        if i == 0:
            poll_until(lambda: stats_of(data_a).get("events"), what="the tailer to run")
        time.sleep(0.15)  # lines keep arriving over several buck windows
    want = expected_ids(log, lines)

    poll_until(lambda: len({e.id for e in index_events(tmp_path)}) == len(want), timeout=30,
               what="every line in the index")
    resent_by = time.time() + 3  # the last spool bucket's re-send: its window (1 s) plus the buck's close
    poll_until(lambda: settled(tmp_path, resent_by), timeout=30, what="the porter to port and prune every window")

    got = index_events(tmp_path)
    assert len(got) == len(want), f"the index holds {len(got)} events for {len(want)} lines"
    assert {e.id for e in got} == set(want)
    assert [(e.time, e.id) for e in got] == sorted((e.time, e.id) for e in got)
    by_id = {e.id: e for e in got}
    assert [by_id[i].message for i in want] == [ln.rstrip(b"\n") for ln in lines]

    objects = archive_objects(FolderArchive(tmp_path / "archive"))
    archived = [e for events in objects.values() for e in events if e.app != "helios-inventory"]
    assert_once_and_whole(archived, got)
    for events in objects.values():  # each object in time order
        assert [e.time for e in events] == sorted(e.time for e in events)
    with QueryClient(timeout=2) as qc:
        assert all(v == [] for v in qc.list_buckets([q_a, q_b]).values()), "the bucks were not pruned"
    assert porter.alive()
    assert porter.stop() == 0
    assert "Porter stopped" in porter.output()


def test_kill_9_mid_load_then_restart_leaves_no_duplicate_and_no_gap(tmp_path, procs):
    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    want = plant_two_bucks(a, b, windows=4, per_window=15_000)
    qs = started_bucks_over(tmp_path, procs, "ab")
    # Archive and prune later: this test is about the index.
    extra = ("--archive-age", "86400000", "--prune-age", "86400000")
    first = procs(*porter_args(tmp_path, qs, *extra), name="porter-1")
    db = tmp_path / "porter" / "porter.db"

    def windows_indexed():
        import sqlite3

        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                return conn.execute("SELECT count(*) FROM windows WHERE indexed_at IS NOT NULL").fetchone()[0]
        except sqlite3.Error:  # not made yet
            return 0

    def loading():
        # A load has begun writing the index (its first shard file exists)
        # and no window is marked indexed yet: the first load is under way.
        return any((tmp_path / "index").rglob("[0-9]*.db")) and windows_indexed() == 0
    poll_until(loading, timeout=30, interval=0.005, what="the first index load to start")
    first.stop(signal.SIGKILL)
    assert db.exists()
    indexed_before = windows_indexed()
    assert indexed_before < 4, "the porter finished before it was killed: make the windows bigger"

    procs(*porter_args(tmp_path, qs, *extra), name="porter-2")
    poll_until(lambda: (status_file(tmp_path).get("environments", {}).get("prod", {}).get("windows_indexed") == 4),
               timeout=40, what="all four windows indexed after the restart")
    assert_once_and_whole(index_events(tmp_path), want)


def test_two_porters_at_once_leave_each_event_once_in_index_and_archive(tmp_path, procs):
    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    want = plant_two_bucks(a, b, windows=3, per_window=3000)
    qs = started_bucks_over(tmp_path, procs, "ab")
    keep = ("--prune-age", "86400000", "--workers", "0")  # the jobs in the porter's own process
    runs = [subprocess.Popen([sys.executable, "-m", "helios", *porter_args(tmp_path, qs, *keep, cmd="once",
                                                                         state=f"porter-{i}")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    for r in runs:
        out = r.communicate(timeout=60)[0].decode()
        assert r.returncode == 0, out
    assert_once_and_whole(index_events(tmp_path), want)
    archived = [e for events in archive_objects(FolderArchive(tmp_path / "archive")).values() for e in events]
    assert_once_and_whole(archived, want)


def test_a_dead_buck_among_live_ones_does_not_stop_porting_and_status_says_so(tmp_path, procs):
    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    want = plant_two_bucks(a, b, windows=2, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    dead = free_endpoint()
    r = run_once(tmp_path, [qs[0], dead, qs[1]], "--prune-age", "86400000", "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert f"Buck {dead} is not answering" in r.stderr
    assert_once_and_whole(index_events(tmp_path), want)

    st = subprocess.run([sys.executable, "-m", "helios", "porter", "status", "--json", "--state-dir",
                         str(tmp_path / "porter"), "--timeout", "1", "--query", qs[0], "--query", dead, "--query", qs[1],
                         "--prune-age", "0", "--archive-age", "0"],
                        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)
    assert status["bucks"][dead].startswith(f"buck {dead} did not answer")
    prod = status["environments"]["prod"]
    assert prod["last_indexed"] == time.strftime("%Y-%m-%dT00:01:00Z", time.gmtime(YESTERDAY))
    # Indexed and archived; pruning (with a retention age of 0) is what is behind.
    assert (prod["windows_indexed"], prod["windows_archived"], prod["index_behind"], prod["archive_behind"],
            prod["prune_behind"], prod["prune_waiting"]) == (2, 2, 0, 0, 2, 0)
    assert prod["events_indexed"] == len(want)
    # The porter left its progress with the live bucks, for `helios status` on any host.
    mesh = subprocess.run([sys.executable, "-m", "helios", "status", "--json", "--interval", "0", "--query", qs[0], "--query",
                           qs[1]], cwd=ROOT, capture_output=True, text=True, timeout=30)
    (report,) = json.loads(mesh.stdout)["porters"]
    assert report["environments"]["prod"]["indexed"] == YESTERDAY + 120
    assert report["problems"] == [f"buck {dead} does not answer"]


def test_an_archive_that_is_down_is_retried_and_nothing_is_pruned_until_it_works(tmp_path, procs):
    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    want = plant_two_bucks(a, b, windows=2, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    blocker = tmp_path / "mount"
    blocker.write_text("not a directory: the archive folder cannot be made under it")
    args = porter_args(tmp_path, qs, "--workers", "0")
    args[args.index("--archive-dir") + 1] = str(blocker / "archive")
    porter = procs(*args, name="porter")

    def archive_down():
        s = status_file(tmp_path)
        return (s.get("archive") or {}).get("state") == "down" and (s["archive"].get("failures", 0) >= 3)
    poll_until(archive_down, timeout=20, what="the porter to report the archive down, after a retry")
    assert "nothing is pruned until it succeeds" in porter.output()
    with QueryClient(timeout=2) as qc:
        held = qc.list_buckets(qs)
    assert all(len(v) == 2 for v in held.values()), "a window was pruned while the archive was down"
    assert_once_and_whole(index_events(tmp_path), want)  # the index goes on meanwhile
    st = subprocess.run([sys.executable, "-m", "helios", "porter", "status", "--state-dir", str(tmp_path / "porter"),
                         "--query", qs[0], "--query", qs[1]], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert st.returncode == 1 and "archive: DOWN" in st.stdout and "Nothing is pruned" in st.stdout

    blocker.unlink()  # the archive is back
    since = time.time()
    poll_until(lambda: settled(tmp_path, since), timeout=20, what="archive, then prune, once the archive is back")
    assert "The archive works again" in porter.output()
    archived = [e for events in archive_objects(FolderArchive(blocker / "archive")).values() for e in events]
    assert_once_and_whole(archived, want)


# --------------------------------------------------------------------------- real servers

def test_s3_archive_through_moto_server_holds_each_event_once_byte_for_byte(tmp_path, procs, s3_bucket):
    moto_s3, bucket = s3_bucket
    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    want = plant_two_bucks(a, b, windows=3, per_window=1000)
    qs = started_bucks_over(tmp_path, procs, "ab")
    r = run_once(tmp_path, qs, "--archive", "s3", "--s3-bucket", bucket, "--s3-prefix", "helios/",
                 "--s3-endpoint", moto_s3, "--workers", "0", env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    archive = S3Archive(bucket, "helios", endpoint_url=moto_s3)
    keys = list(archive.list())
    assert keys == [key_for("prod", (YESTERDAY + w * 60) * NS, 60) for w in range(3)]
    archived = [e for k in keys for e in fmt.unpack(archive.get(k))]
    assert_once_and_whole(archived, want)
    for k in keys:  # what was stored is what packing those events gives, byte for byte
        events = fmt.unpack(archive.get(k))
        assert fmt.pack(events, environment="prod", level=3) == archive.get(k)
    with QueryClient(timeout=2) as qc:
        assert all(v == [] for v in qc.list_buckets(qs).values())


def test_opensearch_index_through_osmem_server_holds_each_tailed_line_once(tmp_path, procs, buck, osmem_url):
    (_, ep_a, _, q_a), (_, ep_b, _, q_b) = start_bucks(buck, "a", "b")
    log = tmp_path / "app.log"
    lines = rfc3164_lines(1500)
    log.write_bytes(b"".join(lines))
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--state-dir",
          str(tmp_path / "tailer"), "--buck", ep_a, "--buck", ep_b, "--spool-window", "1", "--resend-jitter", "0",
          name="tailer")
    procs(*porter_args(tmp_path, [q_a, q_b], "--index", "opensearch", "--index-url", osmem_url), name="porter")
    want = expected_ids(log, lines)
    got_ids = lambda: {e.id for e in index_events(tmp_path, kind="opensearch", location=osmem_url)}  # noqa: E731
    poll_until(lambda: got_ids() == set(want), timeout=30, what="every line in OpenSearch")
    resent_by = time.time() + 3
    poll_until(lambda: settled(tmp_path, resent_by), timeout=30, what="the spool's re-send ported too")
    got = index_events(tmp_path, kind="opensearch", location=osmem_url)
    assert len(got) == len(want)
    assert [e.message for e in sorted(got, key=lambda e: e.offset)] == [ln.rstrip(b"\n") for ln in lines]


def test_events_a_killed_run_claimed_for_a_later_window_are_loaded_with_it_after_a_restart(tmp_path, procs):
    # An earlier porter claimed a spool re-send for the later window it came
    # in (its early load of the open window) and was killed before loading
    # it; the ledger outlives it. The next porter meets the frame first in
    # the older window, whose claim drops its events (the later window's):
    # the later window must still decode and load them. Before, it skipped
    # the frame as the older window's and the events were in no index (the
    # fault harness lost 11,133 of 24,871 lines so, seed 3).
    from helios.porter.seen import Seen
    from helios.store.layout import BucketName

    a = tmp_path / "buck-a"
    first, later = YESTERDAY, YESTERDAY + 60
    events = client_events(1500, first)
    frames = frames_of(events)
    plant(a, "prod", first, frames)
    plant(a, "prod", later, frames[:2])                    # the spool's re-send, the same bytes
    resent = [e for f in frames[:2] for e in codec.decode(f)[1]]
    Seen(tmp_path / "porter" / "seen").claim(BucketName("prod", later, 60), resent)   # the killed run
    qs = started_bucks_over(tmp_path, procs, "a")
    r = run_once(tmp_path, qs, "--archive-age", "86400000", "--prune-age", "86400000")
    assert r.returncode == 0, r.stderr
    assert_once_and_whole(index_events(tmp_path), events)
