"""What fools `helios audit --index` and what does not (docs/security.md,
"Attacks and what stops them"): an event moved in time inside the index is
named; a message rewritten in place is not without ``--content`` (the audit
compares ids and times: said in the README; with it,
test_audit_index_content.py); two bucks whose copies of an event
differ in time are said, not blamed on the index."""

from __future__ import annotations

import json
import sqlite3

from helios.store.layout import BucketName, bucket_id
from tests.integration.test_audit_index import KEEP, audit_index
from tests.integration.test_porter import (
    YESTERDAY,
    client_events,
    frames_of,
    index_events,
    plant,
    plant_two_bucks,
    run_once,
    started_bucks_over,
)

NS = 1_000_000_000


def sqlite_update(tmp_path, sql, *args):
    done = 0
    for db in (tmp_path / "index" / "helios-recent" / "prod").glob("*/*.db"):
        with sqlite3.connect(db) as conn:
            done += conn.execute(sql, args).rowcount
    assert done == 1


def test_an_event_moved_in_time_inside_the_index_is_named_but_a_message_rewritten_in_place_is_not(tmp_path, procs):
    everything = plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=2, per_window=500)
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    assert audit_index(tmp_path, qs)[0] == 0
    # The blind spot: the id and time stay, the line says something else. Not seen (README says so).
    sqlite_update(tmp_path, "UPDATE ev SET msg = ? WHERE id = ?", b"nothing happened here", everything[10].id)
    assert any(e.message == b"nothing happened here" for e in index_events(tmp_path))
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0 and "No difference" in out, out + err
    # Moved half an hour later (out of the searches of its minute): named, with the time the bucks hold.
    victim = everything[700]
    sqlite_update(tmp_path, "UPDATE ev SET t = t + ? WHERE id = ?", 1800 * NS, victim.id)
    code, out, err = audit_index(tmp_path, qs)
    assert code == 1 and "0 MISSING, 0 EXTRA, 1 MOVED" in out, out + err
    window = bucket_id(BucketName("prod", YESTERDAY + 60, 60))
    assert f"window {window}: 1 event(s) in the index at another time than the bucks hold them" in out, out
    assert victim.id.hex()[:16] in out and victim.message.decode() in out, out
    assert "0 extra in it, 1 at another time, in 1 environment(s)." in out, out
    code, out, _ = audit_index(tmp_path, qs, "-o", "json")
    prod = json.loads(out)["environments"]["prod"]
    assert code == 1 and prod["moved"] == 1 and prod["moved_windows"][0]["window"] == window


def test_two_bucks_whose_copies_of_an_event_differ_in_time_are_said_and_not_blamed_on_the_index(tmp_path, procs):
    events = client_events(400, YESTERDAY)
    forged = events[5]._replace(time=events[5].time + 7 * NS)
    plant(tmp_path / "buck-a", "prod", YESTERDAY, frames_of(events))
    plant(tmp_path / "buck-b", "prod", YESTERDAY, frames_of(events[:5] + [forged] + events[6:]))
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0, out + err
    assert "not checked for moves: 1 event(s) whose copies on the bucks differ in time" in out, out


def test_asked_fewer_bucks_than_the_porter_loaded_from_the_extras_are_not_checked_not_called_extra(tmp_path,
                                                                                                      procs):
    # Buck b holds every other batch only: asked alone, the events only a holds would look extra.
    plant_two_bucks(tmp_path / "buck-a", tmp_path / "buck-b", windows=2, per_window=2000)
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    code, out, err = audit_index(tmp_path, qs[1:])
    assert "EXTRA" not in out.replace("0 EXTRA", ""), out + err
    assert f"extras not checked: the porter loaded 2 window(s) from buck(s) not asked ({qs[0]})" in out, out
    assert code == 0 and "No difference" in out, out + err
