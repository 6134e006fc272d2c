"""What the porter reports as a window's events is what a search finds.

A tailer sends, beside its lines, an inventory of the files it read (input
kind ``inventory``), which the index leaves out by design and the audit
reads from the bucks. The porter's counts (``helios porter status``, the
report ``helios status`` shows) count events as the index does, and the
inventory records apart."""

import json
import sqlite3
import subprocess
import sys
import time

from tests.helpers import ROOT, poll_until
from tests.integration.test_porter import expected_ids, porter_args, rfc3164_lines, start_bucks, status_file

NS = 1_000_000_000
LINES = 600


def helios(*args):
    return subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def search_count(tmp, start, end):
    r = helios("search", "--count", "--env", "prod", "--index-dir", str(tmp / "index"),
               "--start", str(start), "--end", str(end))
    assert r.returncode in (0, 1), r.stderr
    return int(r.stdout.strip())


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_porter_and_mesh_status_count_a_windows_events_as_a_search_finds_them_with_inventory_apart(
        tmp_path, procs, buck):
    (_, ep_a, _, q_a), (_, ep_b, _, q_b) = start_bucks(buck, "a", "b")
    log = tmp_path / "app.log"
    lines = rfc3164_lines(LINES)
    log.write_bytes(b"".join(lines))
    t0 = int(time.time()) - 3600
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--state-dir",
          str(tmp_path / "tailer"), "--buck", ep_a, "--buck", ep_b, "--batch-events", "100", name="tailer")
    # Bucks kept (no archive, no prune): each window stays for the search to count.
    procs(*porter_args(tmp_path, [q_a, q_b], "--archive-age", "86400000", "--prune-age", "86400000"),
          name="porter")
    assert len(expected_ids(log, lines)) == LINES

    def settled_with_inventory():
        d = (status_file(tmp_path).get("environments") or {}).get("prod") or {}
        return (d.get("open") == 0 and d.get("index_behind") == 0 and d.get("inventory_records", 0) > 0
                and search_count(tmp_path, iso(t0), "now") == LINES)

    poll_until(settled_with_inventory, timeout=60, interval=0.5,
               what="every line indexed, and a window holding inventory records indexed")

    # helios porter status: the events of the indexed windows are what a search finds.
    st = helios("porter", "status", "--json", "--state-dir", str(tmp_path / "porter"), "--query", q_a,
                "--query", q_b, "--timeout", "2")
    assert st.returncode == 0, st.stderr
    prod = json.loads(st.stdout)["environments"]["prod"]
    assert prod["events_indexed"] == search_count(tmp_path, iso(t0), "now") == LINES
    assert prod["inventory_records"] > 0
    st = helios("porter", "status", "--state-dir", str(tmp_path / "porter"), "--query", q_a, "--query", q_b,
                "--timeout", "2")
    assert f"{LINES} events; and {prod['inventory_records']} tailer inventory records" in st.stdout

    # The windows' marks add up the same (window by window they need not
    # match a search of the window's span: the bucks file by arrival time,
    # a search goes by each line's own time).
    with sqlite3.connect(f"file:{tmp_path / 'porter' / 'porter.db'}?mode=ro", uri=True) as db:
        marks = db.execute("SELECT index_events, index_inventory FROM windows WHERE indexed_at IS NOT NULL").fetchall()
    assert (sum(m[0] for m in marks), sum(m[1] for m in marks)) == (LINES, prod["inventory_records"])

    # helios status (the report the porter leaves with the bucks) says the same.
    def mesh_count():
        r = helios("status", "--json", "--interval", "0", "--query", q_a, "--query", q_b)
        porters = json.loads(r.stdout).get("porters") or [{}]
        return (porters[0].get("environments") or {}).get("prod", {}).get("events_indexed")

    poll_until(lambda: mesh_count() == LINES, timeout=30, what="the porter's report to count the lines alone")
