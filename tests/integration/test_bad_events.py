"""One bad event never blocks a window (issue 17, attack 2), with real
processes: events with a time of 2**64-1, a negative time, an offset past
int64, a field of the wrong type, pushed over ZeroMQ beside valid ones. The buck
keeps a line with an insane time with a corrected time and a mark, refuses
a malformed frame with a counted reason; what still reaches the porter and
cannot be indexed or archived (a forged header gets a frame past a buck
that checks headers only; an older buck stored anything) goes to the
porter's quarantine, and the rest of the window is indexed, archived and
pruned: ``porter once`` exits 0."""

import json
import subprocess
import sys
import time

import msgpack
import zmq

from helios import codec
from helios.archive.store import FolderArchive
from helios.model import random_id
from helios.porter.quarantine import read_log
from helios.query.client import QueryClient
from helios.store import layout
from helios.store.records import read_records
from tests.helpers import ROOT, buck_query, poll_until
from tests.integration.test_porter import archive_objects, index_events, porter_args, run_once

NS = 1_000_000_000
TOP = 2**64 - 1


def event(i, t=None, **kw):
    now = time.time_ns()
    e = dict(id=random_id(), time=now if t is None else t, received=now, host="web-1", app="app", severity=6,
             source="", offset=None, message=b"line %d" % i, fields=None, source_id=b"")
    e.update(kw)
    return e


def row(e):
    return [e["id"], e["time"], e["received"], e["host"], e["app"], e["severity"], e["source"], e["offset"],
            e["message"], e["fields"], e["source_id"]]


def frame(events, first=None, last=None, env="prod"):
    """A frame of these events; ``first``/``last`` forge the header's time span."""
    rows = [row(e) for e in events]
    times = [r[1] for r in rows if type(r[1]) is int]
    return codec.encode_rows(env, "web-1", rows, min(times) if first is None else first,
                             max(times) if last is None else last)


def push(ingest, *frames):
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(ingest)
    for f in frames:
        sock.send(f)
    sock.close(linger=2000)


def stats(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def held(q):
    with QueryClient(timeout=5) as qc:
        listing = qc.list_buckets([q])[q]
    return listing


def port_until_pruned(tmp_path, q, want_ids, *extra):
    """``porter once`` (each must exit 0) until the index holds ``want_ids``
    and the buck holds no window any more."""
    runs = []

    def done():
        r = run_once(tmp_path, [q], *extra)
        runs.append(r)
        assert r.returncode == 0, r.stdout + r.stderr
        got = {e.id for e in index_events(tmp_path)}
        return want_ids <= got and not held(q)
    poll_until(done, timeout=40, interval=0.3, what="the porter to index, archive and prune every window")
    return runs


def test_a_time_of_2_64_minus_1_and_other_bad_events_never_block_a_window(tmp_path, buck):
    _, ingest, data = buck("a", None, "--window", "1")
    q = buck_query(data)
    good = [event(i) for i in range(20)]
    top, negative = event(100, TOP), event(101, -5)
    wrong_type = event(102, host=12345)             # malformed: a buck checking headers only stores it
    too_far = event(103, source="/var/log/x", offset=TOP)  # no index or archive holds an offset past int64
    huge = event(104, fields={"blob": "x" * 2_000_000})  # big, and storable: kept as is
    push(ingest, frame(good[:10] + [top, negative]), frame([wrong_type] + good[10:12]),
         frame([too_far] + good[12:14]), frame(good[14:] + [huge]))
    poll_until(lambda: stats(data).get("frames") == 4, what="the buck to store 4 frames")
    assert stats(data)["corrected_events"] == 2

    kept = good + [top, negative, huge]
    port_until_pruned(tmp_path, q, {e["id"] for e in kept})
    got = {e.id: e for e in index_events(tmp_path)}
    assert set(got) == {e["id"] for e in kept}, [got[i].message for i in set(got) - {e["id"] for e in kept}]
    for bad in (top, negative):
        e = got[bad["id"]]
        assert e.time == bad["received"] and e.message == bad["message"]
        assert e.fields[codec.CORRECTED]["time"] == str(bad["time"])
        assert "not within the buck's range" in e.fields[codec.CORRECTED]["why"]
    assert got[huge["id"]].fields == huge["fields"]
    archived = [e for events in archive_objects(FolderArchive(tmp_path / "archive")).values() for e in events]
    assert {e.id for e in archived} == set(got)

    # The two went to the porter's quarantine, each in its frame as the buck held it.
    entries = sorted(read_log(tmp_path / "porter" / "quarantine"), key=lambda e: e["reasons"][0])
    assert [e["events"] for e in entries] == [1, 1]
    assert "must be strings" in entries[0]["reasons"][0] and "offset must be" in entries[1]["reasons"][0]
    files = [p for _, p in layout.list_buckets(tmp_path / "porter" / "quarantine" / "buckets")]
    kept_frames = [f for p in files for f in read_records(p)]
    assert sorted(codec._payload(f, codec.check_frame(f))[0][8] for f in kept_frames) == sorted(
        [too_far["message"], wrong_type["message"]])


def test_a_forged_header_gets_past_a_header_check_and_the_porter_quarantines_the_event(tmp_path, buck):
    """A frame whose header claims a sane time span but holds an event at
    2**64-1 is stored by a buck that checks headers only (the default, no
    decoding); the porter sets that event aside in its quarantine, indexes,
    archives and prunes the rest, and reports the quarantine in ``porter
    status``, its metrics and ``helios status``."""
    _, ingest, data = buck("a", None, "--window", "1")
    q = buck_query(data)
    now = time.time_ns()
    good = [event(i) for i in range(10)]
    top = event(100, TOP)
    push(ingest, frame(good + [top], first=now - NS, last=now + NS))
    poll_until(lambda: stats(data).get("events") == 11, what="the buck to store the frame as it came")
    assert stats(data)["corrected_events"] == 0

    port_until_pruned(tmp_path, q, {e["id"] for e in good})
    assert {e.id for e in index_events(tmp_path)} == {e["id"] for e in good}
    (entry,) = read_log(tmp_path / "porter" / "quarantine")
    assert entry["events"] == 1 and "int64" in entry["reasons"][0]

    args = porter_args(tmp_path, [q], cmd="status")
    r = subprocess.run([sys.executable, "-m", "helios", *args, "--json"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    quarantine = json.loads(r.stdout)["quarantine"]["environments"]["prod"]
    assert quarantine["events"] == 1 and quarantine["frames"] == 1 and quarantine["windows"] == 1
    text = subprocess.run([sys.executable, "-m", "helios", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60).stdout
    assert "quarantine prod: 1 event(s)" in text
    out = subprocess.run([sys.executable, "-m", "helios", *porter_args(tmp_path, [q], cmd="quarantine")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    (line,) = out.splitlines()
    assert json.loads(line)["time"] == TOP and json.loads(line)["id"] == top["id"].hex()

    # The report the porter left with the buck carries it to `helios status`.
    r = subprocess.run([sys.executable, "-m", "helios", "status", "--timeout", "2", "--query", q, "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    st = json.loads(r.stdout)
    assert any("kept in quarantine" in w for w in st["warnings"]), st["warnings"]
    assert r.returncode == 1  # a warning: until the quarantine is looked into and moved away


def test_a_buck_that_checks_every_event_refuses_fields_no_index_can_hold(tmp_path, buck):
    """With ``--check-events all`` a frame is decoded on arrival: a wrong
    type or fields of msgpack extension types refuse it (counted), and a
    forged header cannot hide an insane time (it is corrected, and the
    header rewritten)."""
    _, ingest, data = buck("a", None, "--window", "1", "--check-events", "all", "--event-max-age", "3600")
    now = time.time_ns()
    top, stale = event(1, TOP), event(5, now - 7200 * NS)
    push(ingest, frame([event(0, fields={"t": msgpack.ExtType(5, b"x")})]), frame([event(3, host=5), event(4)]),
         frame([top, event(2), stale], first=now - NS, last=now + NS))
    poll_until(lambda: stats(data).get("frames") == 1 and sum(stats(data).get("bad_frames", {}).values()) == 2,
               what="the buck to store one frame and refuse two")
    assert stats(data)["corrected_events"] == 2
    assert stats(data)["bad_frames"] == {"malformed event": 2}  # one reason, whichever event it was
    files = [p for _, p in layout.list_buckets(data / "buckets")]
    (stored,) = [f for p in files for f in read_records(p)]
    header, events = codec.decode(stored)
    assert header.last_time == max(e.time for e in events) < 2**63
    assert {e.id for e in events if codec.CORRECTED in (e.fields or {})} == {top["id"], stale["id"]}


def test_an_archive_object_rolled_back_to_an_older_sealed_copy_is_refused(tmp_path, procs):
    """Whoever can write to the archive can put back an older copy of a
    window's object: its seal is intact, its key is its own. The porter
    recorded how many events the window's object holds, and a window is only
    rewritten with more, so the older copy is refused on reading (by the
    porter before it merges into it, and by every reader of the porter's
    configuration: history builds, rebuild), naming the object."""
    from helios import archive as archive_mod
    from helios.archive.store import key_for
    from helios.errors import ArchiveError
    from helios.porter.archiving import open_archive
    from helios.wire.curve import write_keypair
    from tests.integration.test_porter import YESTERDAY, client_events, frames_of, plant, started_bucks_over

    public, secret = map(str, write_keypair(tmp_path / "keys", "archive"))
    keys = ("--archive-public-key", public, "--archive-secret-key", secret)
    start = YESTERDAY
    first, later = client_events(300, start), client_events(301, start)[100:]
    plant(tmp_path / "buck-a", "prod", start, frames_of(first))
    plant(tmp_path / "buck-b", "prod", start, frames_of(later))
    (qa,) = started_bucks_over(tmp_path, procs, "a")
    r = run_once(tmp_path, [qa], *keys)
    assert r.returncode == 0, r.stderr
    key = key_for("prod", start * NS, 60)
    path = tmp_path / "archive" / key
    older = path.read_bytes()

    # Buck b turns up with more of the window: the object is rewritten with every event.
    (qb,) = started_bucks_over(tmp_path, procs, "b")
    r = run_once(tmp_path, [qa, qb], *keys)
    assert r.returncode == 0, r.stderr
    spec = {"archive": "folder", "archive_dir": str(tmp_path / "archive"), "s3_bucket": "", "s3_prefix": "",
            "s3_endpoint": "", "archive_public_key": "", "archive_secret_key": secret,
            "state_dir": str(tmp_path / "porter")}
    assert len(archive_mod.load(open_archive(spec), key)) == len({e.id for e in first + later})

    path.write_bytes(older)  # rolled back: a valid sealed copy of the same window
    assert len(archive_mod.load(open_archive({**spec, "state_dir": ""}), key)) == len(first)  # the seal holds
    try:
        archive_mod.load(open_archive(spec), key)
        raise AssertionError("a rolled-back object was read")
    except ArchiveError as exc:
        assert f"archive object {key} holds {len(first)} event(s), fewer than the" in str(exc)
        assert "rolled back" in str(exc)

    # A third buck turns up with more of the window: the porter does not merge into the
    # older copy (what only the newer one held would be lost); it fails, and keeps buck c's copy.
    plant(tmp_path / "buck-c", "prod", start, frames_of(client_events(302, start)))
    (qc,) = started_bucks_over(tmp_path, procs, "c")
    r = run_once(tmp_path, [qa, qb, qc], *keys)
    assert r.returncode == 1 and "rolled back" in r.stderr, r.stderr
    assert path.read_bytes() == older
    assert held(qc), "the window was pruned from buck c though it is not archived"


def test_corrected_and_quarantined_events_show_in_the_metrics(procs, buck, tmp_path):
    from tests.integration.test_metrics import metrics_address, value
    from tests.integration.test_porter import status_file

    _, ingest, data = buck("a", None, "--window", "1", "--metrics", "127.0.0.1:0")
    q = buck_query(data)
    buck_metrics = metrics_address(data / "stats.json")
    now = time.time_ns()
    push(ingest, frame([event(0), event(1, TOP)]), frame([event(2), event(3, TOP)], first=now, last=now))
    poll_until(lambda: value(buck_metrics, "helios_corrected_events_total") == 1, what="one corrected event counted")
    text = subprocess.run([sys.executable, "-m", "helios", "status", "--timeout", "2", "--query", q], cwd=ROOT,
                          capture_output=True, text=True, timeout=60).stdout
    assert "1 event times corrected" in text
    procs(*porter_args(tmp_path, [q], "--metrics", "127.0.0.1:0"), name="porter")
    address = poll_until(lambda: status_file(tmp_path).get("metrics"), timeout=30, what="the porter's metrics address")
    poll_until(lambda: value(address, "helios_quarantined_events", environment="prod") == 1, timeout=30,
               what="one quarantined event in the porter's metrics")
    assert value(address, "helios_quarantined_frames", environment="prod") == 1


def test_a_quarantine_that_cannot_be_written_leaves_the_window_on_the_bucks(tmp_path, buck):
    """Nothing is pruned before what was set aside is on disk: with the
    quarantine unwritable, ``porter once`` exits 1 and the window stays on
    the buck, unmarked; once it can be written, the window goes through."""
    _, ingest, data = buck("a", None, "--window", "1")
    q = buck_query(data)
    now = time.time_ns()
    good, top = [event(i) for i in range(5)], event(100, TOP)
    push(ingest, frame(good + [top], first=now, last=now))
    poll_until(lambda: stats(data).get("events") == 6, what="the buck to store the frame")
    (tmp_path / "porter").mkdir()
    (tmp_path / "porter" / "quarantine").write_text("not a directory")

    def left():
        r = run_once(tmp_path, [q])
        return r if "Cannot keep 1 frame(s) of window" in r.stderr else None
    r = poll_until(left, timeout=30, interval=0.3, what="the porter to meet the closed window")
    assert r.returncode == 1, r.stderr
    assert held(q), "the window was pruned though what was set aside of it is nowhere"
    assert not (tmp_path / "index").exists() or not index_events(tmp_path)

    (tmp_path / "porter" / "quarantine").unlink()
    port_until_pruned(tmp_path, q, {e["id"] for e in good})
    assert [e["events"] for e in read_log(tmp_path / "porter" / "quarantine")] == [1]


def undecodable_frame(env="prod"):
    """A frame a buck takes (its header and checksum are right) whose payload is not msgpack."""
    import struct
    import zlib

    payload = b"\xc1"  # a byte msgpack never uses
    header = msgpack.packb([env, "web-1", 1, 0, 0, len(payload)])
    body = header + payload
    return struct.pack(">BBHI", codec.FORMAT_VERSION, 0, len(header), zlib.crc32(body)) + body


def test_what_an_older_buck_stored_is_quarantined_and_its_window_ported(tmp_path, procs):
    """Bucket files of an older buck (no event checks) hold an event at
    2**64-1 and a frame whose payload is not msgpack: the porter keeps both
    in its quarantine, ports the rest, prunes the window; exit 0."""
    from tests.integration.test_porter import YESTERDAY, plant, started_bucks_over

    good = [event(i, YESTERDAY * NS + i) for i in range(30)]
    bad = event(100, TOP)
    plant(tmp_path / "buck-a", "prod", YESTERDAY, [frame(good[:15] + [bad], first=YESTERDAY * NS,
                                                         last=YESTERDAY * NS), undecodable_frame(),
                                                   frame(good[15:])])
    (q,) = started_bucks_over(tmp_path, procs, "a")
    r = run_once(tmp_path, [q], "--recent-days", "3")
    assert r.returncode == 0, r.stderr
    assert {e.id for e in index_events(tmp_path)} == {e["id"] for e in good}
    archived = [e for events in archive_objects(FolderArchive(tmp_path / "archive")).values() for e in events]
    assert {e.id for e in archived} == {e["id"] for e in good}
    assert not held(q), "the window was not pruned"
    entries = read_log(tmp_path / "porter" / "quarantine")
    assert sorted((e["events"] is None, e["events"]) for e in entries) == [(False, 1), (True, None)]
    assert any("not valid msgpack" in e["reasons"][0] for e in entries)
