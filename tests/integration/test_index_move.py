"""Moving the porter to another index loses nothing, with no manual rebuild
(docs/operations.md, "Moving to Elasticsearch/OpenSearch and S3"): a real
tailer, two real bucks and a real porter load sqlite; the porter restarted
on OpenSearch (a real osmem-server) loads again every window the bucks still
hold, says so, and `helios audit --index` then finds nothing missing. A
state from before the index was recorded is migrated: what happens with and
without the old porter's status.json is shown."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from helios.porter.state import index_identity
from tests.helpers import ROOT, poll_until
from tests.integration.test_audit_index import KEEP, audit_index, loaded_mesh
from tests.integration.test_porter import (
    index_events,
    plant_two_bucks,
    porter_args,
    run_once,
    started_bucks_over,
)


def porter_status(tmp, queries, *extra):
    r = subprocess.run([sys.executable, "-m", "helios", *porter_args(tmp, queries, *extra, cmd="status")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def ids_in(tmp, url):
    return [e.id for e in index_events(tmp, kind="opensearch", location=url)]


def test_the_porter_restarted_on_opensearch_loads_what_the_bucks_hold_with_no_rebuild(tmp_path, procs, buck,
                                                                                        osmem_url):
    queries, lines, want = loaded_mesh(tmp_path, procs, buck, n=1500)
    assert audit_index(tmp_path, queries)[0] == 0
    os_flags = ("--index", "opensearch", "--index-url", osmem_url)
    # Not restarted yet: porter status says the config names another index and what will be loaded again.
    out = porter_status(tmp_path, queries, *KEEP, *os_flags)
    old, new = (index_identity("sqlite", str(tmp_path / "index"), "helios-recent"),
                index_identity("opensearch", osmem_url, "helios-recent"))
    assert f"index changed from {old} to {new} in the config; the porter loads into it once restarted" in out, out
    porter = procs(*porter_args(tmp_path, queries, *KEEP, *os_flags), name="porter-opensearch")
    poll_until(lambda: set(ids_in(tmp_path, osmem_url)) == set(want), timeout=90,
               what="every line in the new index")
    said = [ln for ln in porter.output().splitlines() if f"index changed from {old} to {new}: " in ln]
    assert len(said) == 1 and "windows the bucks still hold will be loaded again" in said[0], porter.output()[-3000:]
    windows = int(said[0].split(f"{new}: ")[1].split()[0])
    assert windows >= 1
    out = porter_status(tmp_path, queries, *KEEP, *os_flags)
    assert f"index changed from {old} to {new}: {windows} windows the bucks still hold will be loaded again" in out, out
    r = subprocess.run([sys.executable, "-m", "helios", *porter_args(tmp_path, queries, *KEEP, *os_flags, "-o", "json",
                                                                      cmd="status")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    moved = json.loads(r.stdout)["index_moved"]
    assert (moved["from"], moved["to"], moved["windows"]) == (old, new, windows), r.stdout
    porter.stop()
    got = ids_in(tmp_path, osmem_url)
    assert len(got) == len(set(got)) == len(want)          # each line once
    code, out, err = audit_index(tmp_path, queries, *os_flags)
    assert code == 0 and "No difference" in out and f"{len(want):,} event(s) looked for" in out, out + err
    # Restarted again on the same index: nothing more is loaded again, nothing said.
    r = run_once(tmp_path, queries, *KEEP, *os_flags)
    assert r.returncode == 0 and "windows the bucks still hold will be loaded again" not in r.stderr, r.stderr


def as_before_the_upgrade(db):
    """The porter.db a porter before index_into leaves: no such column, no index recorded."""
    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE windows DROP COLUMN index_into")
        c.execute("DELETE FROM meta WHERE key IN ('index', 'index_moved')")
    c.close()


def test_an_old_state_upgraded_and_moved_in_one_restart(tmp_path, procs, osmem, osmem_url):
    everything = plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=3, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    assert run_once(tmp_path, qs, *KEEP, state="bare").returncode == 0   # a second state over the same index
    for state in ("porter", "bare"):
        as_before_the_upgrade(tmp_path / state / "porter.db")
    # Break it: the old porter's status.json is gone too. Nothing says where its windows went, so they count as
    # loaded into the index configured at this first start (OpenSearch): not loaded again. The audit names them.
    (tmp_path / "bare" / "status.json").unlink()
    os_flags = ("--index", "opensearch", "--index-url", osmem_url)
    r = run_once(tmp_path, qs, *KEEP, *os_flags, state="bare")
    assert r.returncode == 0 and "index changed" not in r.stderr, r.stderr
    assert ids_in(tmp_path, osmem_url) == []
    r = subprocess.run([sys.executable, "-m", "helios", "audit", "--index", "--state-dir", str(tmp_path / "bare"),
                        "--recent-days", "30", "--timeout", "2", *os_flags, *[x for q in qs for x in ("--query", q)]],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and f"{len(everything):,} MISSING, 0 EXTRA" in r.stdout, r.stdout + r.stderr
    # With the old porter's status.json (it names the sqlite index it loaded into), the move is seen.
    clone = osmem.clone()
    try:
        os_flags = ("--index", "opensearch", "--index-url", clone.url)
        r = run_once(tmp_path, qs, *KEEP, *os_flags)
        assert r.returncode == 0, r.stderr
        old = index_identity("sqlite", str(tmp_path / "index"), "helios-recent")
        assert f"index changed from {old} to {index_identity('opensearch', clone.url, 'helios-recent')}: 3 windows " \
               "the bucks still hold will be loaded again" in r.stderr, r.stderr
        got = ids_in(tmp_path, clone.url)
        assert len(got) == len(set(got)) and set(got) == {e.id for e in everything}
        code, out, err = audit_index(tmp_path, qs, *os_flags)
        assert code == 0 and "No difference" in out, out + err
    finally:
        clone.close()


def test_what_a_later_window_holds_of_one_no_buck_holds_any_more_reaches_the_new_index(tmp_path, procs, osmem_url):
    # The dedup ledger gives an event to the first window it was ported from. A spool re-send put 1,500 events of
    # the first window in the second too; the first is then pruned from every buck and the porter moved: the
    # first window cannot be loaded again, so its events come with the second (they were refused as duplicates).
    from tests.integration.test_porter import YESTERDAY, client_events, frames_of, plant

    frames = [frames_of(client_events(2000, YESTERDAY + w * 60 + w)) for w in range(3)]

    def plant_all(a, b, first=True):
        for w in range(0 if first else 1, 3):
            plant(a, "prod", YESTERDAY + w * 60, frames[w])
            plant(b, "prod", YESTERDAY + w * 60, frames[w][::2] + (frames[w - 1][:3] if w else []))

    plant_all(tmp_path / "buck-a", tmp_path / "buck-b")
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    # The first window pruned from every buck (bucks c and d hold what a and b held, but that window).
    plant_all(tmp_path / "buck-c", tmp_path / "buck-d", first=False)
    qs = started_bucks_over(tmp_path, procs, "cd")
    os_flags = ("--index", "opensearch", "--index-url", osmem_url)
    r = run_once(tmp_path, qs, *KEEP, *os_flags)
    assert r.returncode == 0 and ": 2 windows the bucks still hold will be loaded again" in r.stderr, r.stderr
    from helios import codec

    ids = lambda fs: {e.id for f in fs for e in codec.decode(f)[1]}   # noqa: E731
    want = ids(frames[1]) | ids(frames[2]) | ids(frames[0][:3])
    got = ids_in(tmp_path, osmem_url)
    assert len(got) == len(set(got)) and set(got) == want, f"{len(want - set(got))} missing"
    code, out, err = audit_index(tmp_path, qs, *os_flags)
    assert code == 0 and "No difference" in out, out + err


def test_moved_to_an_index_that_is_down_the_bucks_keep_every_window_until_it_has_them(tmp_path, procs, osmem_url):
    from helios.porter.state import State
    from helios.wire.ports import free_port

    everything = plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=3, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    archived_not_pruned = ("--prune-age", "86400000")   # archived at once (porter_args), pruned only when asked
    assert run_once(tmp_path, qs, *archived_not_pruned).returncode == 0
    # Moved to an OpenSearch that does not answer, with pruning due: the windows wait, none is pruned.
    dead = f"http://127.0.0.1:{free_port()}"
    r = run_once(tmp_path, qs, "--index", "opensearch", "--index-url", dead)
    assert r.returncode == 1 and ": 3 windows the bucks still hold will be loaded again" in r.stderr, r.stderr
    st = State(tmp_path / "porter" / "porter.db")
    try:
        ws = st.windows()
        assert len(ws) == 3 and not any(w.indexed or w.pruned_from for w in ws)
    finally:
        st.close()
    # The index answers: everything goes in, and only then are the windows pruned.
    r = run_once(tmp_path, qs, "--index", "opensearch", "--index-url", osmem_url)
    assert r.returncode == 0, r.stderr
    got = ids_in(tmp_path, osmem_url)
    assert len(got) == len(set(got)) and set(got) == {e.id for e in everything}
    st = State(tmp_path / "porter" / "porter.db")
    try:
        assert all(w.index_into and w.index_into.startswith("opensearch ") and w.pruned_from for w in st.windows())
    finally:
        st.close()
