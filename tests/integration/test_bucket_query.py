"""Bucket queries against real buck processes: list, fetch, stats and prune
over ZeroMQ, a dead buck among live ones, bad requests, and the CLI
(`helios buckets`, `helios audit --buck`) end to end."""

import json
import os
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from helios import codec
from helios.errors import QueryError
from helios.model import Event, line_id
from helios.query import protocol as p
from helios.query.client import QueryClient, holders
from helios.store import layout
from helios.store.records import RecordWriter
from helios.wire.ports import free_endpoint
from tests.helpers import ROOT, buck_query, poll_until

NS = 1_000_000_000
OLD = 1_706_659_200  # 2024-01-31T00:00:00Z: a window long closed


def stats_of(data):
    try:
        return json.loads((data / "stats.json").read_text())
    except (OSError, ValueError):
        return {}


def send(ingest, frames, data, expect_events):
    """Push frames to a buck and wait until it has stored them all."""
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(ingest)
    for frame in frames:
        sock.send(frame)
    poll_until(lambda: stats_of(data).get("events", 0) >= expect_events, what="the buck to store the frames")
    sock.close(linger=1000)


def client_events(n, env="prod", size=40, host="web-1"):
    now = time.time_ns()
    return [Event(os.urandom(16), now + i, now, host, "app", 6, "", None, os.urandom(size // 2).hex().encode(),
                  None, b"", env) for i in range(n)]


def frame(events, env="prod"):
    return codec.encode_events(env, "web-1", events)


def plant(data, env, start, payloads, width=60):
    """A bucket file from an earlier life of the buck (a window long closed)."""
    path = layout.bucket_path(data / "buckets", env, start, width)
    with RecordWriter(path) as w:
        for payload in payloads:
            w.append(payload)
    return layout.bucket_id(layout.BucketName(env, start, width)), path


def helios(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "helios", *args], capture_output=True, timeout=timeout, cwd=ROOT)


def test_list_fetch_stats_and_prune_round_trip_with_a_running_buck(buck):
    _, ingest, data = buck("a")
    q = buck_query(data)
    old_id, old_path = plant(data, "prod", OLD, [frame(client_events(3))])
    sent = client_events(50)
    send(ingest, [frame(sent[:25]), frame(sent[25:]), frame(client_events(5, env="dev"), env="dev")], data, 55)

    with QueryClient(timeout=5) as qc:
        [listed] = qc.list_buckets([q]).values()
        by_env = {}
        for e in listed:
            by_env.setdefault(e.environment, []).append(e)
        assert {e.id for e in by_env["prod"]} >= {old_id}
        assert {e.id: e.state for e in by_env["prod"]}[old_id] == "closed"
        assert all(e.state == "open" for e in by_env["dev"] + [e for e in by_env["prod"] if e.id != old_id])
        assert {e.id: e.size for e in listed}[old_id] == old_path.stat().st_size

        # Only what overlaps the range asked for.
        assert [e.id for e in qc.list_buckets([q], "prod", OLD * NS, (OLD + 60) * NS)[q]] == [old_id]

        live = [e for e in by_env["prod"] if e.id != old_id]
        got = [ev for e in live for f in qc.fetch_bucket(q, e.id) for ev in codec.decode(f)[1]]
        assert sorted(ev.id for ev in got) == sorted(ev.id for ev in sent)

        stats = qc.stats([q])[q]
        assert stats["events"] == 55 and stats["name"] == "buck-a" and stats["queries"]["fetch_requests"] >= 1

        # A buck prunes only what the asker's record shows indexed and archived.
        assert qc.record(q, "test", indexed=[old_id, live[0].id], archived=[old_id, live[0].id]) is None
        pruned = qc.prune([q], [old_id, live[0].id, "prod/20240131/000100-60s"])[q]
        assert pruned.deleted == (old_id,) and pruned.not_found == ("prod/20240131/000100-60s",)
        assert "open" in pruned.refused[live[0].id]
        assert not old_path.exists()
        assert old_id not in {e.id for e in qc.list_buckets([q])[q]}
        with pytest.raises(QueryError, match="holds no bucket"):
            list(qc.fetch_bucket(q, old_id))


def test_a_multi_megabyte_bucket_streams_in_chunks_equal_to_the_file_byte_for_byte(buck, tmp_path):
    _, ingest, data = buck("a", None, "--query-max-bytes", "262144")
    q = buck_query(data)
    # Random messages: lz4 cannot shrink them, so the bucket is ~6 MB.
    frames = [frame(client_events(300, size=600)) for _ in range(35)]
    send(ingest, frames, data, 300 * 35)
    with QueryClient(timeout=5) as qc:
        for entry in qc.list_buckets([q], "prod")[q]:
            stream = qc.fetch_bucket(q, entry.id)
            copy = tmp_path / "copy.bkt"
            copy.unlink(missing_ok=True)
            with RecordWriter(copy) as w:
                for f in stream:
                    w.append(f)
            path = layout.bucket_path(data / "buckets", "prod", entry.start // NS, entry.width)
            assert copy.read_bytes() == path.read_bytes()
            assert stream.chunks >= path.stat().st_size // 262144
        assert sum(e.size for e in qc.list_buckets([q], "prod")[q]) > 5_000_000


def test_a_torn_bucket_file_is_served_up_to_its_last_whole_record_and_the_tear_reported(buck):
    _, _, data = buck("a")
    q = buck_query(data)
    frames = [frame(client_events(10)) for _ in range(3)]
    bucket_id, path = plant(data, "prod", OLD, frames)
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x10\x00\xde\xad")  # the start of a record cut off by a crash
    with QueryClient(timeout=5) as qc:
        stream = qc.fetch_bucket(q, bucket_id)
        assert list(stream) == frames
        assert stream.torn_tail and stream.skipped_bytes == 6 and stream.state == "closed"


def test_streams_and_lists_interleaved_on_one_client_each_get_their_own_replies(buck):
    _, _, data = buck("a", None, "--query-max-bytes", "65536")
    q = buck_query(data)
    frames_a = [frame(client_events(200, size=400)) for _ in range(6)]
    frames_b = [frame(client_events(200, size=400), env="dev") for _ in range(6)]
    id_a, _ = plant(data, "prod", OLD, frames_a)
    id_b, _ = plant(data, "dev", OLD, frames_b)
    with QueryClient(timeout=5) as qc:
        a, b = iter(qc.fetch_bucket(q, id_a)), iter(qc.fetch_bucket(q, id_b))
        got_a, got_b = [], []
        for _ in range(6):  # each next() leaves the stream's next chunk in flight
            got_a.append(next(a))
            assert {e.id for e in qc.list_buckets([q])[q]} == {id_a, id_b}
            got_b.append(next(b))
        assert got_a == frames_a and got_b == frames_b
        # A stream given up on midway leaves nothing behind for the next question.
        c = iter(qc.fetch_bucket(q, id_a))
        next(c)
        c.close()
        assert qc.stats([q])[q]["name"] == "buck-a"


def raw_ask(sock, *parts, timeout=5.0):
    sock.send_multipart(list(parts))
    assert sock.poll(timeout * 1000), "no reply"
    return sock.recv_multipart()


def test_malformed_requests_get_error_replies_and_the_buck_keeps_serving_and_ingesting(buck):
    proc, ingest, data = buck("a")
    q = buck_query(data)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(q)
    try:
        cases = [
            ((b"", b"\xc1\xc1 not msgpack"), "not valid msgpack"),
            ((b"", b""), "empty request"),
            ((b"", msgpack.packb({"v": 1, "id": 4, "op": "rm -rf"})), "unknown op"),
            ((b"", msgpack.packb({"v": 99, "id": 5, "op": "stats"})), "version 99"),
            ((b"", msgpack.packb({"v": 1, "id": 6, "op": "fetch", "bucket": "../../etc/passwd",
                                  "offset": 0, "max_bytes": None})), "is not a bucket id"),
            ((b"", b"one", b"two"), "one message part"),
        ]
        for parts, says in cases:
            reply = raw_ask(sock, *parts)
            assert reply[0] == b"" and len(reply) == 2
            decoded = p.decode_reply(reply[1])
            assert decoded.status == "error" and says in decoded.reason, (parts, decoded)
        assert p.decode_reply(raw_ask(sock, b"", msgpack.packb({"v": 1, "id": 4, "op": "rm -rf"}))[1]).id == 4
        # A DEALER that sends no delimiter gets its reply without one.
        ok = raw_ask(sock, p.encode_request(p.StatsRequest(), 77))
        assert len(ok) == 1 and p.decode_reply(ok[0]).id == 77
    finally:
        sock.close()
    assert proc.alive()
    send(ingest, [frame(client_events(7))], data, 7)
    with QueryClient(timeout=5) as qc:
        assert qc.stats([q])[q]["queries"]["errors"] >= 7
        assert len(qc.list_buckets([q])[q]) == 1


def test_a_dead_buck_among_live_ones_is_named_after_the_timeout_and_holds_up_no_one(buck):
    bucks = [buck(name) for name in ("a", "b")]
    live = [buck_query(data) for _, _, data in bucks]
    for _, ingest, data in bucks:
        send(ingest, [frame(client_events(5))], data, 5)
    dead = free_endpoint()  # nothing listens there
    hung = zmq.Context.instance().socket(zmq.ROUTER)  # takes requests, never answers
    hung.setsockopt(zmq.LINGER, 0)
    hung_ep = f"tcp://127.0.0.1:{hung.bind_to_random_port('tcp://127.0.0.1')}"
    try:
        with QueryClient(timeout=1.0) as qc:
            got = qc.list_buckets([live[0], dead, hung_ep, live[1]])
            assert all(len(got[ep]) == 1 for ep in live)
            for ep in (dead, hung_ep):
                assert isinstance(got[ep], QueryError) and ep in str(got[ep]) and "within 1 s" in str(got[ep])
            [(bucket_id, on)] = holders(got).items()
            assert set(on) == set(live)
            # The client goes on working with the live bucks after a timeout.
            assert all(isinstance(r, dict) for r in qc.stats(live).values())

        r = helios("buckets", "ls", "--query", live[0], "--query", dead, "--query", live[1], "--timeout", "1")
        out = r.stdout.decode()
        assert r.returncode == 1 and bucket_id in out and "?" in out and "1 of 3 bucks did not answer" in out
        assert dead in r.stderr.decode()
    finally:
        hung.close()


def test_helios_buckets_ls_and_get_end_to_end(buck, tmp_path):
    (_, ing_a, data_a), (_, ing_b, data_b) = buck("a"), buck("b")
    qa, qb = buck_query(data_a), buck_query(data_b)
    both, only_a = client_events(20), client_events(4, env="dev")
    send(ing_a, [frame(both), frame(only_a, env="dev")], data_a, 24)
    send(ing_b, [frame(both)], data_b, 20)

    r = helios("buckets", "ls", "--query", qa, "--query", qb)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.decode().splitlines()[1:-1]}
    [prod] = [k for k in rows if k.startswith("prod/")]
    [dev] = [k for k in rows if k.startswith("dev/")]
    assert rows[prod][1] == "open" and rows[prod][-2:] == ["yes", "yes"] and rows[dev][-2:] == ["yes", "-"]

    listing = json.loads(helios("buckets", "ls", "--query", qa, "--query", qb, "--json", "--env", "dev").stdout)
    assert [b["id"] for b in listing["buckets"]] == [dev] and list(listing["buckets"][0]["bucks"]) == [qa]

    out = tmp_path / "dev.bkt"
    r = helios("buckets", "get", "--query", qb, "--query", qa, dev, "--to", str(out))
    assert r.returncode == 0, r.stderr
    name = layout.parse_bucket_id(dev)
    assert out.read_bytes() == layout.bucket_path(data_a / "buckets", "dev", name.start, name.width).read_bytes()
    assert b"1 record(s)" in r.stderr and b"still open" in r.stderr

    r = helios("buckets", "get", "--query", qa, prod, "--ndjson")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["id"] for e in events] == [e.id.hex() for e in both]
    assert events[0]["message"] == both[0].message.decode()

    r = helios("buckets", "get", "--query", qa, "prod/20240131/000000-60s", "--to", str(tmp_path / "none.bkt"))
    assert r.returncode == 1 and b"no buck holds prod/20240131/000000-60s" in r.stderr
    assert not (tmp_path / "none.bkt").exists()

    stats = json.loads(helios("buckets", "stats", "--query", qa, "--query", qb, "-o", "json").stdout)
    assert (stats[qa]["events"], stats[qb]["events"]) == (24, 20)
    # For people: a table, one row per buck, named by the address each was given as.
    table = helios("buckets", "stats", "--buck", ing_a, "--buck", ing_b).stdout.decode().splitlines()
    assert table[0].split()[:5] == ["BUCK", "NAME", "UP", "FRAMES", "EVENTS"]
    assert [(row.split()[1], row.split()[5]) for row in table[1:]] == [("buck-a", "24"), ("buck-b", "20")]


def tailed(key, lines, env="prod"):
    """Events as the tailer makes them for consecutive lines of one file."""
    out, offset = [], 0
    for ln in lines:
        out.append(Event(line_id(key, offset), time.time_ns(), time.time_ns(), "web-1", "app", 6, "/var/log/app.log",
                         offset, ln, None, key, env))
        offset += len(ln) + 1
    return out


def test_helios_audit_asks_running_bucks_and_finds_the_gap_the_data_dirs_show(buck):
    (_, ing_a, data_a), (_, ing_b, data_b) = buck("a"), buck("b")
    key = os.urandom(16)
    lines = [b"line %04d" % i for i in range(40)]
    events = tailed(key, lines)
    # Each line on one buck or the other; line 17 on neither.
    send(ing_a, [frame(events[:10]), frame(events[20:30])], data_a, 20)
    send(ing_b, [frame(events[10:17]), frame(events[18:20]), frame(events[30:])], data_b, 19)

    by_query = helios("audit", "--query", buck_query(data_a), "--query", buck_query(data_b), "--json")
    by_dirs = helios("audit", "--data-dir", str(data_a), "--data-dir", str(data_b), "--json")
    assert by_query.returncode == by_dirs.returncode == 1
    report, want = json.loads(by_query.stdout), json.loads(by_dirs.stdout)
    assert report["sources"] == want["sources"]
    # The same bucks by their addresses, and the data directories after one --data-dir (or none).
    for args in (("--buck", ing_a, "-b", ing_b, "-o", "json"), ("--data-dir", str(data_a), str(data_b), "-o", "json"),
                 (str(data_a), str(data_b), "-o", "json")):
        again = helios("audit", *args)
        assert again.returncode == 1 and json.loads(again.stdout)["sources"] == want["sources"], (args, again)
    [src] = report["sources"]
    assert src["gaps"] == [{"start": 170, "end": 180, "bytes": 10}] and src["events"] == 39

    dead = free_endpoint()
    r = helios("audit", "--query", buck_query(data_a), "--query", dead, "--timeout", "1")
    assert r.returncode == 1 and f"not audited: buck {dead} did not answer" in r.stdout.decode()


def test_buckets_get_writes_no_bucket_file_to_a_terminal_and_says_what_to_use(tmp_path):
    import pty

    leader, follower = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "helios", "buckets", "get", "prod/20240131/000000-60s",
                            "--query", free_endpoint()], stdout=follower, stderr=subprocess.PIPE, cwd=ROOT,
                           timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 2
    assert b"refusing to write a binary bucket file to a terminal: use -o ndjson" in r.stderr
