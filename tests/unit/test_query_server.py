"""The buck's answers to bucket queries, on real bucket files (the socket
side is in tests/integration/test_bucket_query.py)."""

import os
import time

import pytest

from helios.query import protocol as p
from helios.query.server import QueryServer
from helios.store import layout
from helios.store.buckets import BucketFiles
from helios.store.records import RecordReader, RecordWriter

NS = 1_000_000_000
DAY0 = 1_706_659_200  # 2024-01-31T00:00:00Z: long past, so its buckets are closed


@pytest.fixture
def root(tmp_path):
    return tmp_path / "buckets"


@pytest.fixture
def server(root):
    files = BucketFiles(root, 60)
    yield QueryServer(None, root, files, lambda: {"name": "buck-t"}, max_bytes=64 * 1024)
    files.close()


def write_bucket(root, env, start, payloads, width=60):
    path = layout.bucket_path(root, env, start, width)
    with RecordWriter(path) as w:
        for payload in payloads:
            w.append(payload)
    return layout.bucket_id(layout.BucketName(env, start, width)), path


def fetch_all(server, bucket_id, max_bytes=None):
    """Every chunk a client would ask for, from offset 0 to the end."""
    chunks, offset = [], 0
    while True:
        reply = server.answer(p.FetchRequest(bucket_id, offset, max_bytes))
        assert reply.ok, reply
        chunks.append(reply)
        if reply.end:
            return chunks
        assert reply.next > offset
        offset = reply.next


def test_a_bucket_is_served_in_chunks_of_whole_records_within_max_bytes(server, root):
    payloads = [os.urandom(n) for n in (1000, 5000, 300, 20000, 7, 16000, 1, 12000) * 20]
    bucket_id, path = write_bucket(root, "prod", DAY0, payloads)
    chunks = fetch_all(server, bucket_id, max_bytes=32 * 1024)
    assert [r for c in chunks for r in c.records] == payloads
    assert all(sum(map(len, c.records)) <= 32 * 1024 for c in chunks) and len(chunks) > 10
    assert chunks[-1].next == os.path.getsize(path) == chunks[-1].size
    assert all(c.state == p.CLOSED and not c.torn_tail for c in chunks)


def test_the_buck_caps_what_a_client_asks_for(server, root):
    bucket_id, _ = write_bucket(root, "prod", DAY0, [b"x" * 10_000] * 30)
    reply = server.answer(p.FetchRequest(bucket_id, 0, 1 << 30))
    assert sum(map(len, reply.records)) <= server.max_bytes and not reply.end


def test_a_record_larger_than_a_chunk_is_sent_whole(server, root):
    big = os.urandom(200_000)
    bucket_id, _ = write_bucket(root, "prod", DAY0, [b"a", big, b"b"])
    chunks = fetch_all(server, bucket_id, max_bytes=1000)
    assert [c.records for c in chunks] == [(b"a",), (big,), (b"b",)]


def test_a_torn_tail_is_reported_and_the_valid_records_are_served(server, root):
    bucket_id, path = write_bucket(root, "prod", DAY0, [b"one", b"two"])
    valid = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x40\x12\x34")  # a record cut off after 6 bytes
    [reply] = fetch_all(server, bucket_id)
    assert reply.records == (b"one", b"two") and reply.torn_tail and reply.skipped_bytes == 6
    assert reply.next == valid and reply.size == valid + 6


def test_damage_in_the_middle_is_skipped_and_counted_once_over_all_chunks(server, root):
    payloads = [bytes([i]) * 3000 for i in range(40)]
    bucket_id, path = write_bucket(root, "prod", DAY0, payloads)
    offsets = [0]
    for rec in payloads:
        offsets.append(offsets[-1] + 8 + len(rec))
    with open(path, "r+b") as f:  # flip a byte in the payload of record 17
        f.seek(offsets[17] + 100)
        f.write(b"\xff" if payloads[17][100:101] != b"\xff" else b"\x00")
    chunks = fetch_all(server, bucket_id, max_bytes=10_000)
    assert [r for c in chunks for r in c.records] == payloads[:17] + payloads[18:]
    assert sum(c.corrupt_records for c in chunks) == 1
    assert sum(c.skipped_bytes for c in chunks) == 3008


def test_an_unknown_bucket_a_bad_id_and_an_offset_past_the_end_are_error_replies(server, root):
    bucket_id, path = write_bucket(root, "prod", DAY0, [b"x"])
    for request, says in [(p.FetchRequest("prod/20240131/000100-60s"), "holds no bucket"),
                          (p.FetchRequest("../../etc/passwd"), "is not a bucket id"),
                          (p.FetchRequest(bucket_id, 10_000), "is past the end")]:
        reply = server.answer(request, 5)
        assert (reply.status, reply.op, reply.id) == ("error", "fetch", 5) and says in reply.reason


def test_list_gives_sizes_and_states_filtered_by_environment_and_time(server, root):
    a, pa = write_bucket(root, "prod", DAY0, [b"x" * 10])
    b, _ = write_bucket(root, "prod", DAY0 + 60, [b"y"])
    c, _ = write_bucket(root, "dev", DAY0, [b"z"])
    now = int(time.time())
    server.buckets.append("prod", [b"live"], now)  # the buck's current bucket
    live = layout.bucket_id(layout.BucketName("prod", now - now % 60, 60))

    entries = server.list(p.ListRequest())
    assert [e.id for e in entries] == [c, a, b, live]
    assert {e.id: e.state for e in entries} == {a: "closed", b: "closed", c: "closed", live: "open"}
    first = entries[1]
    assert (first.environment, first.start, first.width, first.size) == ("prod", DAY0 * NS, 60, os.path.getsize(pa))

    assert [e.id for e in server.list(p.ListRequest("prod", DAY0 * NS, (DAY0 + 60) * NS))] == [a]
    # Windows overlapping by a nanosecond count; the end is exclusive.
    assert [e.id for e in server.list(p.ListRequest("prod", (DAY0 + 60) * NS - 1, (DAY0 + 60) * NS + 1))] == [a, b]
    assert [e.id for e in server.list(p.ListRequest(None, None, DAY0 * NS))] == []


def test_a_bucket_still_held_open_after_its_window_is_open(server, root):
    past = int(time.time()) - 60
    server.buckets.append("prod", [b"late"], past)  # held open by its writer after its window
    [entry] = server.list(p.ListRequest("prod"))
    assert entry.state == p.OPEN
    server.buckets.close_idle(time.time() + 3600)
    [entry] = server.list(p.ListRequest("prod"))
    assert entry.state == p.CLOSED


def test_prune_deletes_closed_buckets_and_refuses_open_ones(server, root):
    a, pa = write_bucket(root, "prod", DAY0, [b"x"])
    b, pb = write_bucket(root, "prod", DAY0 + 86400, [b"y"])
    now = int(time.time())
    server.buckets.append("prod", [b"live"], now)
    live = layout.bucket_id(layout.BucketName("prod", now - now % 60, 60))
    gone = "prod/20240131/000500-60s"
    assert server.answer(p.RecordRequest("porter", (a, live, gone), (a, live, gone))).ok
    reply = server.answer(p.PruneRequest((a, live, gone, "nonsense", a)))
    assert reply.deleted == (a,)
    assert reply.not_found == ("prod/20240131/000500-60s", a)
    assert set(reply.refused) == {live, "nonsense"} and "open" in reply.refused[live]
    assert not pa.exists() and not pa.parent.exists()  # its day directory went with its last bucket
    assert pb.exists() and server.answer(p.FetchRequest(live)).records == (b"live",)


def test_stats_are_the_bucks_with_the_reports_left_with_it(server):
    assert server.answer(p.StatsRequest()).stats == {"name": "buck-t", "reports": {}}
    assert server.answer(p.ReportRequest("porter@p", {"environments": {"prod": {"indexed": 5}}})).ok
    reports = server.answer(p.StatsRequest()).stats["reports"]
    assert reports["porter@p"]["environments"] == {"prod": {"indexed": 5}} and reports["porter@p"]["received"] > 0


def test_reports_of_more_sources_than_the_bound_are_refused(server):
    from helios.query.server import MAX_REPORTS

    for i in range(MAX_REPORTS):
        assert server.answer(p.ReportRequest(f"s{i}", {})).ok
    reply = server.answer(p.ReportRequest("one-too-many", {}))
    assert not reply.ok and "at most" in reply.reason
    assert server.answer(p.ReportRequest("s0", {"again": 1})).ok  # a known source may always update


def test_a_fetch_of_an_open_bucket_sees_every_record_written_so_far(server, root):
    now = time.time()
    server.buckets.append("prod", [b"one"], now)
    [entry] = server.list(p.ListRequest("prod"))
    reply = server.answer(p.FetchRequest(entry.id))
    assert reply.records == (b"one",) and reply.end and reply.state == p.OPEN
    server.buckets.append("prod", [b"two", b"three"], now)
    more = server.answer(p.FetchRequest(entry.id, reply.next))
    assert more.records == (b"two", b"three")
    path = layout.bucket_path(root, "prod", entry.start // NS, 60)
    assert list(RecordReader(path)) == [b"one", b"two", b"three"]


def test_query_auto_is_the_ingest_port_plus_two_next_to_the_live_feed():
    from helios.errors import ServiceError
    from helios.buck.service import auto_publish, auto_query

    assert auto_query("tcp://127.0.0.1:7301") == "tcp://127.0.0.1:7303"
    assert auto_publish("tcp://127.0.0.1:7301") == "tcp://127.0.0.1:7302"
    assert auto_query("ipc:///run/buck") == "ipc:///run/buck.query"
    with pytest.raises(ServiceError, match="set \\[buck\\] query"):
        auto_query("tcp://127.0.0.1:65534")
