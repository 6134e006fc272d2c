"""The porter's state records which index each window went into; a change of
index marks the windows the bucks still hold to be loaded again, an older
state is migrated on open, and the dedup ledger does not refuse a window's
own events nor drop those only an index the porter left holds."""

from __future__ import annotations

import sqlite3

from helios.model import Event, random_id
from helios.porter.seen import Seen, window_key
from helios.porter.state import State, identity_of_where, index_identity
from helios.store.layout import BucketName

SQ = index_identity("sqlite", "/srv/index", "helios-recent")
OS = index_identity("opensearch", "http://search:9200", "helios-recent")


def names(n, env="prod"):
    return [BucketName(env, 1_699_999_980 + 60 * i, 60) for i in range(n)]


def test_an_identity_names_kind_place_and_index_and_never_credentials():
    secret = index_identity("elasticsearch", "https://admin:hunter2@Search.example:9200/", "logs")
    assert secret == "elasticsearch https://search.example:9200 (logs)"
    assert "hunter2" not in secret and "admin" not in secret
    assert index_identity("opensearch", "http://search:9200", "a") != index_identity("opensearch", "http://search:9200", "b")
    assert index_identity("sqlite", "/srv/index", "x") != index_identity("sqlite", "/srv/other", "x")
    assert identity_of_where("sqlite /srv/index (helios-recent)") == SQ
    assert identity_of_where("opensearch http://u:p@search:9200 (helios-recent)") == OS
    assert identity_of_where("nonsense") is None


def test_a_change_of_index_marks_the_windows_the_bucks_still_hold_to_be_loaded_again(tmp_path):
    st = State(tmp_path / "porter.db")
    assert st.use_index(SQ) is None
    ws = names(4)
    for n in ws:
        st.mark_indexed(n, 10, ["a"], into=SQ, left_out=(2, 1, 2))
    assert {w.index_into for w in st.windows()} == {SQ} and st.left_out()["prod"]["events"] == 8
    moved = st.use_index(OS, now=5.0)
    assert st.left_out() == {}      # counted again as the windows load into the new index, never twice
    assert (moved.before, moved.now, moved.at) == (SQ, OS, 5.0)
    # The bucks hold the last three; the first was pruned from every buck.
    assert st.load_again(ws[1:], OS) == {SQ: 3}
    after = {w.name: w for w in st.windows()}
    assert not any(after[n].indexed for n in ws[1:]) and after[ws[0]].indexed and after[ws[0]].index_into == SQ
    assert st.loaded_elsewhere(OS) == {ws[0]}
    assert st.moved().windows == 3
    # Loaded again: marked into the new index; asked again, nothing more to do.
    st.mark_indexed(ws[1], 10, ["a"], into=OS)
    assert st.get(ws[1]).index_into == OS and st.load_again(ws[1:], OS) == {}
    # The same index at the next start: no change said.
    assert st.use_index(OS) is None and st.moved().before == SQ
    st.close()


def old_state(path, windows):
    """A porter.db as a porter before index_into wrote it."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('version', '1');
        CREATE TABLE windows (
            environment TEXT NOT NULL, start INTEGER NOT NULL, width INTEGER NOT NULL,
            indexed_at REAL, index_events INTEGER, index_sources TEXT NOT NULL DEFAULT '[]',
            archived_at REAL, archive_key TEXT, archive_size INTEGER, archive_checksum TEXT,
            archive_events INTEGER, archive_sources TEXT NOT NULL DEFAULT '[]',
            skipped TEXT, pruned_at REAL, pruned_from TEXT NOT NULL DEFAULT '[]', index_inventory INTEGER,
            PRIMARY KEY (environment, start, width)) WITHOUT ROWID;
    """)
    db.executemany("INSERT INTO windows (environment, start, width, indexed_at, index_events, index_sources) "
                   "VALUES (?, ?, ?, 1.0, 10, '[\"a\"]')", [(n.environment, n.start, n.width) for n in windows])
    db.commit()
    db.close()


def test_an_older_state_counts_its_windows_as_loaded_into_the_index_configured_at_the_first_start(tmp_path):
    ws = names(3)
    old_state(tmp_path / "porter.db", ws)
    st = State(tmp_path / "porter.db")
    assert {w.index_into for w in st.windows()} == {None}
    assert st.use_index(OS) is None            # nothing says they went elsewhere: into the configured one
    assert {w.index_into for w in st.windows()} == {OS} and st.load_again(ws, OS) == {}
    st.close()


def test_an_older_state_with_the_old_porters_status_knows_where_its_windows_went(tmp_path):
    ws = names(3)
    old_state(tmp_path / "porter.db", ws)
    st = State(tmp_path / "porter.db")
    moved = st.use_index(OS, before=SQ)        # the old porter's status.json said sqlite
    assert moved is not None and moved.before == SQ
    assert st.load_again(ws, OS) == {SQ: 3}
    st.close()


def test_windows_an_older_porter_marked_after_the_upgrade_count_as_loaded_into_the_last_index(tmp_path):
    st = State(tmp_path / "porter.db")
    st.use_index(SQ)
    w = names(1)[0]
    st.mark_indexed(w, 5, ["a"])               # an older porter's mark: no index named
    assert st.use_index(OS) is not None
    assert st.get(w).index_into == SQ and st.load_again([w], OS) == {SQ: 1}
    st.close()


def ev(received):
    return Event(random_id(), received, received, "h", "app", 6, "", None, b"x", None, b"", "prod")


def test_the_ledger_keeps_a_windows_own_events_and_those_whose_owner_is_only_in_the_old_index(tmp_path):
    seen = Seen(tmp_path / "seen")
    first, later = names(2)
    events = [ev(1_699_999_980 * 10**9 + i) for i in range(10)]
    assert seen.claim(first, events) == (events, 0)
    # Loaded again (into a new index): its own events are its own, not duplicates.
    assert seen.claim(first, events) == (events, 0)
    # A later window holds copies (a spool re-send): they belong to the first...
    assert seen.claim(later, events[:4]) == ([], 4)
    # ...unless the first went into an index the porter left and no buck holds it: then they are kept.
    assert seen.claim(later, events[:4], keep={window_key(first)}.__contains__) == (events[:4], 0)
    # The ledger still gives them to the first.
    assert seen.claim(later, events[:4]) == ([], 4)


def test_new_credentials_are_not_a_new_index_and_never_reach_the_state(tmp_path):
    st = State(tmp_path / "porter.db")
    st.use_index(index_identity("opensearch", "https://porter:old-secret@search:9200", "helios-recent"))
    w = names(1)[0]
    st.mark_indexed(w, 1, ["a"], into=index_identity("opensearch", "https://porter:old-secret@search:9200",
                                                      "helios-recent"))
    assert st.use_index(index_identity("opensearch", "https://porter:new-secret@search:9200/",
                                       "helios-recent")) is None
    st.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("porter.db"))
    assert b"secret" not in raw and b"porter:" not in raw
