"""`helios audit --index` cannot be fooled: a real tailer, two real bucks
and a real porter load the index (sqlite, and OpenSearch through a real
osmem-server); then rows are deleted from the index and a foreign one is
added behind the porter's back, and the audit must name exactly those
(exit 1), while the clean index passes (exit 0). Bucks that do not answer
prove nothing (exit 1)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

from helios.index.base import open_index
from helios.model import Event, random_id
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, poll_until
from tests.integration.test_porter import (
    expected_ids,
    index_events,
    porter_args,
    rfc3164_lines,
    settled,
    start_bucks,
)

NS = 1_000_000_000
KEEP = ("--archive-age", "86400000", "--prune-age", "86400000")   # nothing pruned: every window stays checkable


def audit_index(tmp, queries, *extra):
    args = [sys.executable, "-m", "helios", "audit", "--index", "--state-dir", str(tmp / "porter"),
            "--index-dir", str(tmp / "index"), "--recent-days", "30", "--timeout", "2", *extra]
    for q in queries:
        args += ["--query", q]
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def loaded_mesh(tmp_path, procs, buck, n=1500, index=()):
    """Two bucks, a tailer and a porter that has loaded every line (and the spool's re-send) and stopped."""
    (_, ep_a, _, q_a), (_, ep_b, _, q_b) = start_bucks(buck, "a", "b")
    log = tmp_path / "app.log"
    lines = rfc3164_lines(n)
    log.write_bytes(b"".join(lines))
    tailer = procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--state-dir",
                   str(tmp_path / "tailer"), "--buck", ep_a, "--buck", ep_b, "--spool-window", "1",
                   "--resend-jitter", "0", name="tailer")
    porter = procs(*porter_args(tmp_path, [q_a, q_b], *KEEP, *index), name="porter")
    want = expected_ids(log, lines)
    kind, location = (index[1], index[3]) if index else ("sqlite", None)
    poll_until(lambda: {e.id for e in index_events(tmp_path, kind=kind, location=location)} == set(want),
               timeout=60, what="every line in the index")
    tailer.stop()
    resent_by = time.time() + 3
    poll_until(lambda: settled(tmp_path, resent_by), timeout=60, what="the spool's re-send ported too")
    porter.stop()
    return [q_a, q_b], lines, want


def sqlite_delete(tmp_path, ids):
    gone = 0
    for db in (tmp_path / "index" / "helios-recent" / "prod").glob("*/*.db"):
        with sqlite3.connect(db) as conn:
            gone += conn.executemany("DELETE FROM ev WHERE id = ?", [(i,) for i in ids]).rowcount
    assert gone == len(ids)


def foreign(message=b"a line no buck ever held"):
    now = time.time_ns()
    return Event(random_id(), now, now, "intruder", "forged", 3, "", None, message, None, b"", "prod")


def test_a_clean_index_passes_and_deleted_and_foreign_rows_are_named_exactly(tmp_path, procs, buck):
    queries, lines, want = loaded_mesh(tmp_path, procs, buck)
    code, out, err = audit_index(tmp_path, queries)
    assert code == 0, out + err
    assert "No difference" in out and "environment prod: " in out and "OK" in out, out
    assert f"{len(want):,} event(s) looked for" in out, out
    # Break it: three lines out of the index, one line in that no buck holds.
    gone = [want[7], want[700], want[1499]]
    sqlite_delete(tmp_path, gone)
    intruder = foreign()
    with open_index("sqlite", str(tmp_path / "index")) as index:
        assert index.load("prod", [intruder]) == 1
    code, out, err = audit_index(tmp_path, queries)
    assert code == 1, out + err
    assert "3 MISSING, 1 EXTRA" in out, out
    for i in (7, 700, 1499):
        assert lines[i].rstrip(b"\n").split(b": ", 1)[1].decode() in out, out
    assert sum(gone_id.hex()[:16] in out for gone_id in gone) == 3, out
    assert "a line no buck ever held" in out and intruder.id.hex()[:16] in out, out
    assert out.count("not in the index") == len({ln for ln in out.splitlines() if "not in the index" in ln}), out
    # As JSON, for machines: the same counts.
    code, out, _ = audit_index(tmp_path, queries, "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False
    assert doc["environments"]["prod"]["missing"] == 3 and doc["environments"]["prod"]["extra"] == 1
    # One id twice in the index (a copy under another day): named as such.
    twin = next(e for e in index_events(tmp_path) if e.id == want[42])
    with open_index("sqlite", str(tmp_path / "index")) as index:
        assert index.load("prod", [twin._replace(time=twin.time + 86400 * NS)]) == 1
    code, out, err = audit_index(tmp_path, queries)
    assert code == 1 and "3 MISSING, 1 EXTRA, 1 DUPLICATED" in out and "1 id(s) held more than once" in out, out
    assert want[42].hex()[:16] in out, out


def test_bucks_that_do_not_answer_audit_nothing_and_fail(tmp_path, procs, buck):
    queries, _, _ = loaded_mesh(tmp_path, procs, buck, n=200)
    r = subprocess.run([sys.executable, "-m", "helios", "audit", "--data-dir", str(tmp_path / "buck-a"), "--index"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--index asks running bucks" in r.stderr, r.stderr
    dead = free_endpoint()
    code, out, err = audit_index(tmp_path, [dead])
    assert code == 1 and "Nothing audited: no buck answered." in out and dead in out, out + err
    # An index that cannot be reached: said, exit 1 (not "no difference").
    from helios.wire.ports import free_port
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = audit_index(tmp_path, queries, "--index", "opensearch", "--index-url", url)
    assert code == 1 and f"opensearch at {url}" in err and "No difference" not in out, out + err
    # One of two down: the other's copies are checked, but the extras are not (said so).
    code, out, err = audit_index(tmp_path, [queries[0], dead])
    assert dead in out and "extras not checked: a buck did not answer" in out, out + err


def test_no_porter_state_is_a_clear_error(tmp_path, procs, buck):
    (_, _, _, q_a), = start_bucks(buck, "a")
    code, out, err = audit_index(tmp_path, [q_a])
    assert code == 1 and "no index at" in err, out + err       # not "no difference"
    with open_index("sqlite", str(tmp_path / "index")) as index:
        index.load("prod", [foreign()])
    code, out, err = audit_index(tmp_path, [q_a])
    assert code == 1 and "no porter state at" in err, out + err


def test_opensearch_index_deleted_and_foreign_documents_are_named(tmp_path, procs, buck, osmem_url):
    index = ("--index", "opensearch", "--index-url", osmem_url)
    queries, lines, want = loaded_mesh(tmp_path, procs, buck, n=1200, index=index)
    flags = ("--index", "opensearch", "--index-url", osmem_url)
    code, out, err = audit_index(tmp_path, queries, *flags)
    assert code == 0 and "No difference" in out, out + err
    gone = [want[3], want[600]]
    with open_index("opensearch", osmem_url) as ix:
        for e in index_events(tmp_path, kind="opensearch", location=osmem_url):
            if e.id in gone:
                ix.client.delete(index=f"helios-recent-prod-{time.strftime('%Y.%m.%d', time.gmtime(e.time / NS))}",
                                 id=e.id.hex(), refresh=True)
        assert ix.load("prod", [foreign(b"forged into opensearch")]) == 1
    code, out, err = audit_index(tmp_path, queries, *flags)
    assert code == 1 and "2 MISSING, 1 EXTRA" in out, out + err
    for i in (3, 600):
        assert lines[i].rstrip(b"\n").split(b": ", 1)[1].decode() in out, out
    assert "forged into opensearch" in out, out


def test_what_is_not_loaded_yet_is_said_and_not_counted_until_the_porter_loads_it(tmp_path, procs):
    from tests.integration.test_porter import (
        YESTERDAY,
        client_events,
        frames_of,
        plant,
        plant_two_bucks,
        run_once,
        started_bucks_over,
    )

    a, b = tmp_path / "buck-a", tmp_path / "buck-b"
    everything = plant_two_bucks(a, b, windows=3, per_window=1000)
    old = client_events(40, YESTERDAY - 60 * 86400)               # times older than the index keeps
    plant(a, "prod", YESTERDAY + 120, frames_of(old))
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0, out + err
    assert "3 window(s) loaded and checked, 3,000 event(s) looked for" in out, out
    assert "not checked: 40 event(s) older than the index keeps" in out, out
    # Some windows only: from the second one on (ISO 8601, as everywhere); the first window's events its
    # copy on buck b re-sent (plant_two_bucks) are looked for too.
    second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(YESTERDAY + 60))
    code, out, err = audit_index(tmp_path, qs, "--start", second)
    assert code == 0 and "2 window(s) loaded and checked, 3,000 event(s) looked for" in out, out + err
    code, out, err = audit_index(tmp_path, qs, "--env", "staging")
    assert code == 1 and "Nothing audited" in out, out + err
    # A third buck comes with a copy of the first window holding one event more: not loaded yet, so not missing.
    late = client_events(1, YESTERDAY)
    plant(tmp_path / "buck-c", "prod", YESTERDAY, frames_of(everything[:1000], per=300) + frames_of(late))
    qs += started_bucks_over(tmp_path, procs, "c")
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0, out + err
    assert f"not yet loaded by the porter: prod/{time.strftime('%Y%m%d', time.gmtime(YESTERDAY))}/000000-60s " \
           f"(the copy on {qs[2]}, not yet loaded from it)" in out, out
    assert "3 window(s) loaded and checked, 3,000 event(s) looked for" in out, out
    # The copy not loaded does not hide what the loaded ones lost (other frames, the same events).
    sqlite_delete(tmp_path, [everything[5].id])
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1 and "1 MISSING, 0 EXTRA" in out and everything[5].id.hex()[:16] in out, out + err
    assert run_once(tmp_path, qs, *KEEP).returncode == 0   # the porter fetches it alone (and so loads [5] again)
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0 and "not yet loaded" not in out, out + err
    assert "3,001 event(s) looked for" in out, out
    sqlite_delete(tmp_path, [late[0].id])
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1 and "1 MISSING, 0 EXTRA" in out and late[0].id.hex()[:16] in out, out + err
    # Archived and pruned from every buck: nothing left to check against, and it says so.
    assert run_once(tmp_path, qs, "--archive-age", "0", "--prune-age", "0").returncode == 0
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1, out + err
    assert "not checked: 3 window(s) loaded and since pruned from every buck" in out, out
    assert "Nothing audited: no window is both loaded by the porter and still held by a buck." in out, out


def test_events_the_ledger_gave_to_a_window_not_yet_loaded_wait_and_the_porter_bug_that_lost_them_is_named(
        tmp_path, procs):
    # The fault harness's seed 3: a killed run claimed a spool re-send for the later window it came in; the
    # next run loaded the older window without those events (the ledger's answer) and, with the bug, marked
    # the later one loaded without them too: 11,133 of 24,871 lines in no index, and `helios audit` exited 0.
    from helios import codec
    from helios.porter.seen import Seen
    from helios.porter.state import State
    from helios.store.layout import BucketName, bucket_id
    from tests.integration.test_porter import YESTERDAY, client_events, frames_of, plant, run_once, started_bucks_over

    a = tmp_path / "buck-a"
    later = int(time.time()) + 15                         # a window of 1 s still open: the porter leaves it for now
    events = client_events(1500, YESTERDAY)
    frames = frames_of(events)
    plant(a, "prod", YESTERDAY, frames)
    plant(a, "prod", later, frames[:2], width=1)           # the spool's re-send, the same bytes
    resent = [e for f in frames[:2] for e in codec.decode(f)[1]]
    Seen(tmp_path / "porter" / "seen").claim(BucketName("prod", later, 1), resent)   # the killed run
    qs = started_bucks_over(tmp_path, procs, "a")
    assert run_once(tmp_path, qs, *KEEP, "--no-index-open-windows").returncode == 0
    assert len(index_events(tmp_path)) == 500             # the rest is the later window's, not loaded yet
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0, out + err
    assert "not checked yet: 1,000 event(s) also held in a window not yet loaded" in out, out
    assert f"not yet loaded by the porter: {bucket_id(BucketName('prod', later, 1))} (open)" in out, out
    # The bug's end state: the later window, closed, marked loaded, its events in no index. Named, window by window.
    poll_until(lambda: time.time() > later + 1.5, timeout=30, interval=0.2, what="the later window to close")
    st = State(tmp_path / "porter" / "porter.db")
    st.mark_indexed(BucketName("prod", later, 1), 0, qs)
    st.close()
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1 and "1,000 MISSING, 0 EXTRA" in out, out + err
    day = time.strftime("%Y%m%d", time.gmtime(YESTERDAY))
    assert f"window prod/{day}/000000-60s: 1,000 event(s) the bucks hold are not in the index" in out, out


def test_a_mesh_at_work_audits_clean_while_lines_arrive_and_the_porter_loads_them(tmp_path, procs, buck):
    # Open windows grow and new ones open while the audit reads; the porter loads them early
    # (index_open_windows): none of that is a difference.
    import threading

    (_, ep_a, _, q_a), (_, ep_b, _, q_b) = start_bucks(buck, "a", "b")
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(rfc3164_lines(500)))
    procs("tailer", "--path", str(log), "--env", "prod", "--start-at", "beginning", "--state-dir",
          str(tmp_path / "tailer"), "--buck", ep_a, "--buck", ep_b, "--spool-window", "1", "--resend-jitter", "0",
          name="tailer")
    procs(*porter_args(tmp_path, [q_a, q_b], *KEEP), name="porter")
    poll_until(lambda: len(index_events(tmp_path)) >= 500, timeout=60, what="the first lines indexed")
    poll_until(lambda: "window(s) loaded and checked" in audit_index(tmp_path, [q_a, q_b])[1]
               and "0 window(s) loaded" not in audit_index(tmp_path, [q_a, q_b])[1], timeout=60,
               what="a window closed and loaded")
    stop = threading.Event()

    def write():
        n = 500
        while not stop.is_set():
            with open(log, "ab") as f:
                f.write(b"".join(rfc3164_lines(20, start=n)))
            n += 20
            stop.wait(0.05)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(3):
            code, out, err = audit_index(tmp_path, [q_a, q_b])
            assert code == 0 and "No difference" in out, out + err
    finally:
        stop.set()
        writer.join()


def test_moved_to_opensearch_what_went_into_the_old_index_is_said_not_missing_until_the_porter_restarts_on_it(
        tmp_path, procs, osmem_url):
    # docs/operations.md, "Moving to Elasticsearch/OpenSearch": the porter records which index each window went
    # into and, restarted on another index, loads the windows the bucks still hold into it by itself (no rebuild).
    # Audited before that restart, the new index lacks them: they are said to be in the old index, not MISSING
    # (nothing else checked: exit 1, "Nothing audited"); after it, the new index holds every event (exit 0).
    from helios.porter.state import index_identity
    from tests.integration.test_porter import plant_two_bucks, run_once, started_bucks_over

    plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=2, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    assert audit_index(tmp_path, qs)[0] == 0
    old, new = (index_identity("sqlite", str(tmp_path / "index"), "helios-recent"),
                index_identity("opensearch", osmem_url, "helios-recent"))
    os_flags = ("--index", "opensearch", "--index-url", osmem_url)
    code, out, err = audit_index(tmp_path, qs, *os_flags)
    assert code == 1 and "MISSING" not in out, out + err
    assert (f"not checked: 2 window(s) were loaded into {old}, not this index ({new}): the porter loads them again "
            f"at its next start on {new}") in out, out
    assert "Nothing audited: no window is both loaded by the porter into this index and still held" in out, out
    doc = json.loads(audit_index(tmp_path, qs, *os_flags, "-o", "json")[1])
    assert doc["environments"]["prod"]["missing"] == 0 and len(doc["environments"]["prod"]["loaded_elsewhere"][old]) == 2
    # Audited with the porter's config, which still names the old index: the porter will not load them here.
    conf = tmp_path / "porter.toml"
    conf.write_text(f'[porter]\nstate_dir = "{tmp_path / "porter"}"\nindex_dir = "{tmp_path / "index"}"\n'
                    f'archive_dir = "{tmp_path / "archive"}"\nbucks = {json.dumps(qs)}\n')
    code, out, err = audit_index(tmp_path, qs, "-c", str(conf), *os_flags)
    assert code == 1 and f"not this index ({new}): the porter uses {old}" in out and "MISSING" not in out, out + err
    # A foreign event in the new index is still named: the windows said are not checked, the index still is.
    with open_index("opensearch", osmem_url) as ix:
        intruder = foreign(b"forged before the porter moved")
        assert ix.load("prod", [intruder]) == 1
    code, out, err = audit_index(tmp_path, qs, *os_flags)
    assert code == 1 and "0 MISSING, 1 EXTRA" in out and "forged before the porter moved" in out, out + err
    with open_index("opensearch", osmem_url) as ix:
        ix.client.delete(index=f"helios-recent-prod-{time.strftime('%Y.%m.%d', time.gmtime(intruder.time / NS))}",
                         id=intruder.id.hex(), refresh=True)
    # The porter restarted on OpenSearch loads them again by itself: nothing missing, with no rebuild.
    assert run_once(tmp_path, qs, *KEEP, *os_flags).returncode == 0
    code, out, err = audit_index(tmp_path, qs, *os_flags)
    assert code == 0 and "No difference" in out and "1,000 event(s) looked for" in out, out + err
    assert "were loaded into" not in out, out
    # And the old index is now the other one.
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1 and "MISSING" not in out and f"2 window(s) were loaded into {new}, not this index ({old})" in out, \
        out + err
    # Half and half (one window's record put back to the old index): the other is checked, that one said; exit 0.
    with sqlite3.connect(tmp_path / "porter" / "porter.db") as c:
        first = c.execute("SELECT min(start) FROM windows").fetchone()[0]
        assert c.execute("UPDATE windows SET index_into = ? WHERE start = ?", (old, first)).rowcount == 1
    c.close()
    code, out, err = audit_index(tmp_path, qs, *os_flags)
    assert code == 0 and "No difference" in out and "1 window(s) loaded and checked, 500 event(s)" in out, out + err
    assert f"1 window(s) were loaded into {old}, not this index ({new})" in out, out
