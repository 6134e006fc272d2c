"""`helios search` as a user runs it: the outputs, filters and paging over a
recent index, `--follow` going on with a real buck's live feed, and a
history index kept in OpenSearch (an osmem-server process)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import zmq

from helios import codec
from helios.archive import format as fmt
from helios.archive.store import FolderArchive, key_for
from helios.index.base import open_index
from helios.model import Event, random_id
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, poll_until
from tests.integration.historymesh import OLD, events_of, iso

NS = 1_000_000_000


def helios(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def recent(tmp_path):
    """A recent index (sqlite) holding 300 events of OLD's first minutes."""
    events = events_of("prod", OLD, 300, "x", seed=3)
    index = open_index("sqlite", str(tmp_path / "index"))
    index.load("prod", events)
    index.close()
    return ["--index-dir", str(tmp_path / "index"), "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60)], \
        sorted(events, key=lambda e: (e.time, e.id))


def test_search_prints_lines_json_or_a_table_and_pages_with_all(recent):
    args, events = recent
    lines = helios("search", *args, "-n", "5")
    assert lines.returncode == 0 and len(lines.stdout.splitlines()) == 5
    assert lines.stdout.splitlines()[0].endswith(events[0].message.decode())
    js = [json.loads(x) for x in helios("search", *args, "-o", "json", "--all").stdout.splitlines()]
    assert [x["id"] for x in js] == [e.id.hex() for e in events]
    table = helios("search", *args, "-o", "table", "-n", "3").stdout.splitlines()
    assert table[0].split() == ["TIME", "HOST", "APP", "SEV", "MESSAGE"] and len(table) == 4
    newest = helios("search", *args, "--reverse", "-n", "1", "-o", "raw").stdout
    assert newest == events[-1].message.decode() + "\n"


def test_search_says_when_it_printed_only_some_of_the_matches(recent):
    args, events = recent
    cut = helios("search", *args, "-n", "100")
    assert cut.returncode == 0 and len(cut.stdout.splitlines()) == 100
    assert f"100 of {len(events)} matches (use --limit N, or --all for every one)" in cut.stderr
    whole = helios("search", *args, "-n", str(len(events)))
    assert len(whole.stdout.splitlines()) == len(events) and "matches" not in whole.stderr


def test_search_count_exits_1_when_nothing_matches_as_its_help_says(recent):
    args, events = recent
    some = helios("search", *args, "--count")
    assert (some.returncode, some.stdout) == (0, f"{len(events)}\n")
    none = helios("search", *args, "no-such-word-anywhere", "--count")
    assert (none.returncode, none.stdout) == (1, "0\n")
    assert "1 when nothing did" in " ".join(helios("search", "--help").stdout.split())


def test_search_filters_by_host_app_severity_and_text(recent):
    args, events = recent
    want = [e for e in events if e.host == "web-1" and e.app == "nginx" and e.severity <= 3 and b" 200 " in e.message]
    got = helios("search", *args, "--host", "web-1", "--app", "nginx", "-s", "err", '"GET /api"', "200", "--all",
                 "-o", "json")
    assert [json.loads(x)["id"] for x in got.stdout.splitlines()] == [e.id.hex() for e in want]
    assert int(helios("search", *args, "host:web-1", "app:nginx", "sev:err", "--count").stdout) == len(want)


def test_search_refuses_a_bad_query_with_a_hint(recent):
    args, _ = recent
    r = helios("search", *args, "http://x")
    assert r.returncode == 2 and 'reads as the field http; to search for the text itself, quote it: "http://x"' \
        in r.stderr
    r = helios("search", *args, "http..status:500")
    assert r.returncode == 2 and "nested keys are written a.b.c" in r.stderr


def test_search_finds_events_by_their_fields(tmp_path):
    t = (OLD + 5) * NS
    rows = [(b"level=error msg=\"payment declined\" user=alice", {"level": "error", "msg": "payment declined",
                                                                  "user": "alice"}),
            (b'{"http":{"status":500},"user":"bob"}', {"http.status": 500, "user": "bob"}),
            (b"user=alice status=200", {"user": "alice", "status": "200"})]
    events = [Event(random_id(), t + i, t + i, "web-1", "api", 6, "", None, m, f, b"", "prod")
              for i, (m, f) in enumerate(rows)]
    index = open_index("sqlite", str(tmp_path / "index"))
    index.load("prod", events)
    index.close()
    args = ["--index-dir", str(tmp_path / "index"), "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60)]

    def found(*query):
        r = helios("search", *args, *query, "-o", "raw")
        return r.stdout.splitlines()

    assert found("user:alice") == [rows[0][0].decode(), rows[2][0].decode()]
    assert found("http.status:500") == [rows[1][0].decode()]
    assert found('msg:"payment declined"', "error") == [rows[0][0].decode()]
    assert found("user:alice,bob", "host:web-1", "--count") == ["3"]
    assert helios("search", *args, "user:carol").returncode == 1


def test_follow_prints_new_matching_events_from_the_live_feed(tmp_path, procs, buck, recent):
    args, events = recent
    _, ingest, data = buck("a")
    pub = poll_until(lambda: json.loads((data / "stats.json").read_text()).get("publish"), what="the live feed")
    follow = procs("search", *args[:-2], "--end", "now", "--feed", pub, "--follow", "timeout",
                   "--history-dir", str(tmp_path / "h"), name="search-follow")
    poll_until(lambda: "following the live feed" in follow.output(), what="search to follow")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(ingest)
    sent = []

    def send() -> bool:
        now = time.time_ns()
        batch = [Event(random_id(), now, now, "web-9", "app", 3, "", None, msg, None, b"", "prod")
                 for msg in (b"upstream timeout after 30s", b"all is well", b"timeouts galore")]
        push.send(codec.encode_events("prod", "web-9", batch))
        sent.append(batch)
        return "upstream timeout after 30s" in follow.output()
    poll_until(send, timeout=20, interval=0.3, what="a live event to be printed")
    out = follow.output()
    assert "all is well" not in out and "timeouts galore" not in out     # "timeout" is a whole word
    push.close()


def test_a_history_index_in_opensearch_is_built_searched_and_dropped(tmp_path, procs, osmem_url):
    events = events_of("prod", OLD, 200, "os", seed=5)
    FolderArchive(tmp_path / "archive").put(key_for("prod", OLD * NS, 60), fmt.pack(events, environment="prod", level=3))
    place = ["--history-dir", str(tmp_path / "history"), "--archive-dir", str(tmp_path / "archive"),
             "--index", "opensearch", "--index-url", osmem_url, "--query", free_endpoint(), "--timeout", "0.3"]
    procs("history", "serve", *place, "--poll-interval", "0.1", name="history-serve")
    r = helios("history", "request", *place, "--env", "prod", "--start", iso(OLD), "--end", iso(OLD + 60))
    assert r.returncode == 0, r.stderr
    rid = r.stdout.split()[0]
    found = helios("search", "--history-dir", str(tmp_path / "history"), "--index", "opensearch", "--index-url",
                   osmem_url, "--history", rid, "incident=os", "--all", "-o", "json")
    want = sorted((e for e in events if b"incident=os" in e.message), key=lambda e: (e.time, e.id))
    assert [json.loads(x)["id"] for x in found.stdout.splitlines()] == [e.id.hex() for e in want], found.stderr
    index = open_index("opensearch", osmem_url, f"helios-history-{rid}")
    assert index.environments() == ["prod"]
    dropped = helios("history", "drop", *place, rid)
    assert dropped.returncode == 0, dropped.stderr
    assert index.environments() == []
    index.close()


def test_export_defaults_to_the_last_hour_as_search_does(tmp_path):
    now = int(time.time())
    recent, older = events_of("prod", now - 600, 40, "x", seed=5), events_of("prod", now - 3 * 3600, 30, "x", seed=6)
    index = open_index("sqlite", str(tmp_path / "index"))
    index.load("prod", recent + older)
    index.close()
    place = ["--index-dir", str(tmp_path / "index"), "--env", "prod"]
    ex = helios("export", *place)
    assert ex.returncode == 0, ex.stderr
    assert sorted(json.loads(x)["id"] for x in ex.stdout.splitlines()) == sorted(e.id.hex() for e in recent)
    assert "exported 40 event(s)" in ex.stderr
    found = helios("search", *place, "--count")
    assert found.stdout == "40\n"
    assert helios("export", *place, "--start", "-4h").stdout.count("\n") == 70
