"""The pieces of /v1/logs around the format: how refusals are answered (the
OpenTelemetry exporters retry 429, 502, 503 and 504 only), the counts per
input behind the Prometheus metrics, and `helios status`'s senders by input."""

from google.rpc import status_pb2

from helios.buck.http_ingest import Refused, _otlp_refuser
from helios.commands.status import assess, by_input, render
from helios.metrics import input_counts


def _answer(kind, exc):
    resp = _otlp_refuser(kind)(None, exc)
    st = status_pb2.Status()
    if kind == "protobuf":
        st.ParseFromString(resp.body)
    return resp, st


def test_a_full_disk_is_503_and_an_overload_429_both_with_retry_after():
    resp, st = _answer("protobuf", Refused(507, "the buck's data directory is full; retry later"))
    assert (resp.status, resp.headers["Retry-After"], st.code) == (503, "1", 14)
    busy = Refused(503, "the buck is busy")
    busy.overload = True
    resp, st = _answer("protobuf", busy)
    assert (resp.status, resp.headers["Retry-After"], st.code, st.message) == (429, "1", 8, "the buck is busy")
    assert resp.content_type == "application/x-protobuf"


def test_refusals_a_retry_cannot_mend_have_no_retry_after():
    for status in (400, 401, 403, 413, 415):
        resp, _ = _answer("json", Refused(status, "no"))
        assert resp.status == status and "Retry-After" not in resp.headers
        assert resp.content_type == "application/json"


def test_counts_per_input_leave_zeromq_what_http_did_not_store():
    buck = {"events": 110, "bytes": 5000, "write_errors": 1}
    http = {"http_events": 7, "http_bytes": 900, "http_frame_bytes": 400, "http_errors": 2,
            "otlp_events": 3, "otlp_bytes": 300, "otlp_frame_bytes": 100, "otlp_rejected": 4, "otlp_errors": 5}
    got = input_counts(buck, {"bad checksum": 2}, http)
    assert got == {"zmq": {"events": 100, "bytes": 4500, "dropped": 2, "errors": 1},
                   "http": {"events": 7, "bytes": 900, "dropped": 0, "errors": 2},
                   "otlp": {"events": 3, "bytes": 300, "dropped": 4, "errors": 5}}
    assert input_counts(buck, {}, None) == {"zmq": {"events": 110, "bytes": 5000, "dropped": 0, "errors": 1}}


def test_status_lists_senders_by_input_summed_over_bucks():
    now = 1000.0

    def buck(zmq_events, otlp_events):
        return {"events": 1, "started": 0, "senders": {
            "prod/web-1": {"last_seen": now, "events": zmq_events + otlp_events, "newest_event": now},
            "prod/old": {"last_seen": 0.0, "events": 5, "newest_event": 0.0}},
            "http": {"senders": {"otlp": {"prod/web-1": {"last_seen": now, "events": otlp_events},
                                          "prod/old": {"last_seen": 0.0, "events": 5}}}}}
    stats = {"tcp://a:1": buck(10, 2), "tcp://b:1": buck(0, 3)}
    assert by_input(stats, {"prod/web-1"}) == {"zmq": {"prod/web-1": 10}, "otlp": {"prod/web-1": 5}}
    st = assess(stats, stats, 1.0, now, seen=600.0)
    assert st.inputs == {"zmq": {"prod/web-1": 10}, "otlp": {"prod/web-1": 5}}  # prod/old: silent too long
    text = render(st, colour=False)
    assert "otlp (/v1/logs): 1 sender(s), 5 copies stored: prod/web-1" in text
    assert "zmq (clients, relayed applications, older senders): 1 sender(s), 10 copies stored: prod/web-1" in text
