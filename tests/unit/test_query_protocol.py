"""The bucket query protocol: requests and replies round-trip, and anything
else becomes a QueryError that says what is wrong."""

import msgpack
import pytest

from helios.errors import QueryError
from helios.query import protocol as p
from helios.store import layout

ID = "prod/20240131/235900-60s"


def body(**fields):
    return msgpack.packb({"v": p.VERSION, "id": 1, **fields}, use_bin_type=True)


@pytest.mark.parametrize("request_", [
    p.ListRequest(),
    p.ListRequest("prod", 1_706_745_540_000_000_000, 1_706_745_600_000_000_000),
    p.FetchRequest(ID),
    p.FetchRequest(ID, offset=123_456, max_bytes=4096),
    p.StatsRequest(),
    p.PruneRequest(()),
    p.PruneRequest((ID, "not an id")),
    p.ReportRequest("porter@p", {"environments": {"prod": {"indexed": 1}}, "problems": []}),
])
def test_every_request_round_trips_with_its_id(request_):
    assert p.decode_request(p.encode_request(request_, 2**64 - 1)) == (2**64 - 1, request_)


@pytest.mark.parametrize("reply", [
    p.ListReply(buckets=(p.BucketEntry(ID, "prod", 1_706_745_540_000_000_000, 60, 1234, p.CLOSED),
                         p.BucketEntry("dev/20240201/000000-3600s", "dev", 1_706_745_600_000_000_000, 3600, 0,
                                       p.OPEN)), id=7),
    p.ListReply(),
    p.FetchReply(bucket=ID, offset=0, next=30, end=False, records=(b"\x01frame", b"", b"\xff" * 10),
                 state=p.OPEN, size=4000, id=3),
    p.FetchReply(bucket=ID, offset=30, next=30, end=True, torn_tail=True, skipped_bytes=5, corrupt_records=1,
                 reason="", id=4),
    p.StatsReply(stats={"name": "buck-a", "events": 5, "bad_frames": {"checksum": 1}, "live": None}),
    p.PruneReply(deleted=(ID,), not_found=("x/20240101/000000-60s",), refused={"y": "the bucket is open"}),
    p.ReportReply(id=7),
    p.ErrorReply(op="fetch", reason="this buck holds no bucket x", id=9),
    p.ErrorReply(op=None, reason="bad request: unknown op 'grep'"),
])
def test_every_reply_round_trips(reply):
    assert p.decode_reply(p.encode_reply(reply)) == reply


def test_replies_say_their_status():
    assert p.ListReply().status == "ok" and p.ListReply().ok
    err = p.ErrorReply(op="list", reason="no")
    assert err.status == "error" and not err.ok


def test_a_bucket_entry_knows_where_its_window_ends():
    e = p.BucketEntry(ID, "prod", 1_000_000_000_000, 60, 0, p.OPEN)
    assert e.end == 1_000_000_000_000 + 60_000_000_000 and e.open


def test_bucket_ids_are_the_layout_paths_without_root_and_suffix():
    name = layout.BucketName("prod", 1_706_745_540, 60)
    assert layout.bucket_id(name) == ID and layout.parse_bucket_id(ID) == name


@pytest.mark.parametrize("text", ["../etc/20240131/235900-60s", "prod//20240131/235900-60s",
                                  "prod/./20240131/235900-60s", "/prod/20240131/235900-60s",
                                  ID + ".bkt", "prod/20240131/235930-60s", "prod/20240131/235900-060s", ""])
def test_a_bucket_id_bucket_id_could_not_have_made_is_refused(text):
    with pytest.raises(ValueError, match="is not a bucket id"):
        layout.parse_bucket_id(text)


@pytest.mark.parametrize("raw, says", [
    (b"", "empty request"),
    (b"\xc1garbage", "not valid msgpack"),
    (msgpack.packb([1, 2, 3]), "must be a msgpack map, not an array"),
    (msgpack.packb({"v": 1, "id": 1, "op": "list", "environment": None, "start": None, "end": None}) + b"x",
     "not valid msgpack"),
    (msgpack.packb({"id": 1, "op": "stats"}), "has no version"),
    (msgpack.packb({"v": 2, "id": 1, "op": "stats"}), "has version 2; this end speaks version 1"),
    (body(op="grep"), "unknown op 'grep'"),
    (body(), "'op' is missing"),
    (body(op="stats", extra=1), "unknown key(s) 'extra' in a stats request"),
    (body(op="fetch", bucket=ID, offset=-1, max_bytes=None), "'offset' must be 0.."),
    (body(op="fetch", bucket=ID, offset=True, max_bytes=None), "'offset' must be an integer"),
    (body(op="fetch", bucket=ID, offset=0, max_bytes=0), "'max_bytes' must be 1.."),
    (body(op="fetch", bucket=b"bin", offset=0, max_bytes=None), "'bucket' must be a string"),
    (body(op="fetch", offset=0, max_bytes=None), "'bucket' is missing"),
    (body(op="list", environment="../x", start=None, end=None), "'environment' must be an environment name"),
    (body(op="list", environment=None, start=5, end=4), "'start' (5) is after 'end' (4)"),
    (body(op="list", environment=None, start=1.5, end=None), "'start' must be an integer"),
    (body(op="prune", buckets=[ID, 3]), "'buckets' must be an array of strings"),
    (msgpack.packb({"v": 1, "id": -1, "op": "stats"}), "'id' must be 0.."),
    (msgpack.packb({"v": 1, 5: 1, "op": "stats"}), "not valid msgpack"),
])
def test_a_malformed_request_is_a_query_error_saying_what_is_wrong(raw, says):
    with pytest.raises(QueryError) as info:
        p.decode_request(raw)
    assert says in str(info.value)


def test_peek_id_finds_the_id_and_op_of_a_bad_request_and_never_raises():
    assert p.peek_id(body(op="fetch", bucket=3)) == (1, "fetch")
    assert p.peek_id(body(op="grep")) == (1, None)
    for junk in (b"", b"\xc1", msgpack.packb([1]), msgpack.packb({"id": "x"}), msgpack.packb({(1,): 1})):
        assert p.peek_id(junk) == (0, None)


@pytest.mark.parametrize("raw, says", [
    (b"\x93", "not valid msgpack"),
    (msgpack.packb({"v": 1, "id": 1, "op": "list", "status": "maybe", "reason": ""}), "'status' must be"),
    (msgpack.packb({"v": 1, "id": 1, "op": "list", "status": "ok", "reason": ""}), "'buckets' is missing"),
    (msgpack.packb({"v": 1, "id": 1, "op": "list", "status": "ok", "reason": "", "buckets": [{"id": ID}]}),
     "'environment' is missing"),
    (msgpack.packb({"v": 1, "id": 1, "op": None, "status": "ok", "reason": ""}), "must name its op"),
])
def test_a_malformed_reply_is_a_query_error(raw, says):
    with pytest.raises(QueryError, match="malformed reply|not valid msgpack") as info:
        p.decode_reply(raw)
    assert says in str(info.value)


def test_fetch_reply_records_must_be_binary():
    good = msgpack.unpackb(p.encode_reply(p.FetchReply(bucket=ID, offset=0, next=0, end=True)))
    good["records"] = ["text"]
    with pytest.raises(QueryError, match="'records' must be an array of binary payloads"):
        p.decode_reply(msgpack.packb(good, use_bin_type=True))


def test_split_message_finds_route_and_body_as_a_router_receives_them():
    assert p.split_message([b"peer", b"", b"body"]) == ([b"peer", b""], b"body")
    assert p.split_message([b"peer", b"body"]) == ([b"peer"], b"body")  # a DEALER without the delimiter
    assert p.split_message([b"peer", b"", b"a", b"b"]) == ([b"peer", b""], None)
    assert p.split_message([b"peer"]) == ([b"peer"], None)
