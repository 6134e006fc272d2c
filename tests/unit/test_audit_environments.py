"""``audit(..., environment=E)`` over bucket files: a file's lines in other
environments (moved by a rule, or a [[tailer.parse]] table's environment
while the inventory is in the tailer's) are counted, and only that file's."""

from __future__ import annotations

import time

from helios import codec
from helios.audit import audit, render
from helios.model import Event, line_id
from helios.store import layout
from helios.store.records import RecordWriter
from helios.tail import inventory

KEY = b"k" * 16
LINES = [b"GET /a 200", b"AUDIT alice", b"GET /b 404", b"tail line"]
OFFSETS = [sum(len(m) + 1 for m in LINES[:i]) for i in range(len(LINES))]
SIZE = OFFSETS[-1] + len(LINES[-1]) + 1


def line(i, key=KEY, path="/var/log/web.log"):
    return Event(line_id(key, OFFSETS[i]), 1, 1, "h", "web", 6, path, OFFSETS[i], LINES[i], None, key)


def put(root, env, events):
    start = int(time.time()) // 60 * 60
    w = RecordWriter(layout.bucket_path(root / "buckets", env, start, 60))
    w.append(codec.encode_events(env, "h", events))
    w.close()


def inv(env, key=KEY, size=SIZE, path="/var/log/web.log"):
    return inventory.to_event(inventory.Record(key, (path,), size, size, 0, "read", "", 1), "h", 2, env)


def test_lines_a_rule_moved_are_found_in_their_environment_and_a_lost_one_is_named(tmp_path):
    put(tmp_path, "prod", [line(0), line(2), line(3), inv("prod")])
    put(tmp_path, "audit", [line(1)])
    other = Event(line_id(b"o" * 16, 0), 1, 1, "h", "x", 6, "/other.log", 0, b"elsewhere", None, b"o" * 16)
    put(tmp_path, "other", [other])
    r = audit([tmp_path], (), "prod")
    assert r.ok, render(r)
    assert set(r.sources) == {KEY} and r.sources[KEY].environments == {"prod", "audit"}   # not /other.log
    assert "held in audit, prod" in render(r) and r.events == 4       # the counts are prod's
    assert r.elsewhere == 1 and "4 distinct events held as 4 stored copies" in render(r)
    assert "1 of them in other environments" in render(r)
    r = audit([tmp_path], (), "audit")                                 # a file audit holds one line of
    assert r.ok and r.findings == []
    # The moved line lost: named by the environment it was asked for.
    for path in (tmp_path / "buckets" / "audit").rglob("*"):
        if path.is_file():
            path.unlink()
    r = audit([tmp_path], (), "prod")
    assert not r.ok and r.gaps == {KEY: [(OFFSETS[1], OFFSETS[2])]}


def test_a_table_environment_is_audited_with_the_inventory_in_the_tailers_and_a_lost_tail_is_named(tmp_path):
    put(tmp_path, "billing", [line(0), line(1), line(2)])      # the tail line never reached the buck
    put(tmp_path, "prod", [inv("prod")])
    r = audit([tmp_path], (), "billing")
    [finding] = r.findings
    assert finding.missing == [(OFFSETS[3], SIZE)] and not r.ok
    assert "seen on disk, held by no buck" in render(r)
    put(tmp_path, "billing", [line(3)])
    assert audit([tmp_path], (), "billing").ok
    assert audit([tmp_path], (), "prod").ok                     # the inventory's file, whose lines are in billing
