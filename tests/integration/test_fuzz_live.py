"""Fuzzing the sockets of running processes: a buck's bucket query ROUTER and
its ZeroMQ ingest, and the browser filter messages of ``helios web`` over
socket.io. Hostile messages get an error answer or nothing, each within a
bounded time; the process stays up; and valid traffic sent meanwhile, on
other connections, is served as if nothing happened. (The HTTP ingest's
fuzzing is in test_http_ingest_fuzz.py; the pure readers' in
tests/unit/test_fuzz_inputs.py.)"""

from __future__ import annotations

import threading
import time

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from helios import codec
from helios.errors import FrameError, QueryError
from helios.model import Event, random_id
from helios.query import protocol as p
from helios.query.client import QueryClient
from helios.store import layout
from helios.store.records import RecordReader
from tests.fuzzing import fuzz
from tests.helpers import ANY_PORT, Proc, bound_endpoints, poll_until, require
from tests.integration.webpage import FakeBuck, event, start_web
from tests.unit.test_fuzz_inputs import damaged_frames, filter_specs, packed, request_like, values

ANSWER_S = 5.0  # one hostile message's answer, at most


@pytest.fixture(scope="module")
def live_buck(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz-live")
    data = work / "buck"
    proc = Proc(["buck", "--name", "fuzz", "--ingest", ANY_PORT, "--publish", ANY_PORT, "--query", ANY_PORT,
                 "--data-dir", str(data), "--stats-interval", "0.2", "--max-frame-bytes", "65536"],
                work / "buck.out")
    try:
        stats = bound_endpoints(data, pid=proc.p.pid)
        yield proc, stats["ingest"], stats["query"], data
    finally:
        proc.finish()


class Valid(threading.Thread):
    """Valid traffic the whole time: ``work()`` in a loop, each outcome kept."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work, self.stop, self.outcomes = work, threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            self.outcomes.append(self.work())
            self.stop.wait(0.01)

    def finish(self):
        self.stop.set()
        self.join(30)
        return self.outcomes


def messages():
    """What reaches a ROUTER from a DEALER: [b"", body] like a client, or any parts."""
    bodies = st.binary(max_size=200) | request_like.map(packed) | values.map(packed)
    return bodies.map(lambda b: [b"", b]) | st.lists(st.binary(max_size=50), min_size=1, max_size=5)


def test_fuzzed_query_messages_get_an_error_reply_or_none_and_valid_queries_are_answered(live_buck):
    proc, _, query, _ = live_buck
    # Request-shaped messages on one socket (each gets exactly one reply), any
    # other parts on another (the buck may answer those or not).
    dealer, junk = (zmq.Context.instance().socket(zmq.DEALER) for _ in range(2))
    for s in (dealer, junk):
        s.setsockopt(zmq.LINGER, 0)
        s.connect(query)
    client = QueryClient(timeout=10)

    def valid_query():
        try:
            return "stats" if client.stats([query])[query]["name"] == "fuzz" else "wrong"
        except (QueryError, KeyError, TypeError) as exc:
            return f"failed: {exc}"
    valid = Valid(valid_query)
    valid.start()
    replies = []

    @fuzz(300)
    @given(messages())
    def ask(parts):
        if parts[0] != b"" or len(parts) != 2:
            junk.send_multipart(parts)  # not a request: the buck may drop it without a word
            return
        dealer.send_multipart(parts)
        assert dealer.poll(int(ANSWER_S * 1000)), f"no answer within {ANSWER_S} s to {parts!r:.200}"
        [empty, body] = dealer.recv_multipart()
        reply = p.decode_reply(body)  # well formed, whatever it says
        replies.append(type(reply).__name__)

    try:
        ask()
    finally:
        outcomes = valid.finish()
        dealer.close()
        junk.close()
        client.close()
    assert proc.alive()
    assert "ErrorReply" in replies
    assert outcomes and set(outcomes) == {"stats"}, set(outcomes)


def test_fuzzed_ingest_frames_never_stop_the_buck_and_valid_batches_are_stored(live_buck):
    proc, ingest, _, data = live_buck
    ctx = zmq.Context.instance()
    hostile, good = ctx.socket(zmq.PUSH), ctx.socket(zmq.PUSH)
    for s in (hostile, good):
        s.setsockopt(zmq.LINGER, 2000)
        s.connect(ingest)
    sent: set[bytes] = set()

    def valid_batch():
        evs = [Event(random_id(), time.time_ns(), time.time_ns(), "h", "valid", 6, "", None, b"valid", None)
               for _ in range(5)]
        good.send(codec.encode_events("prod", "valid-sender", evs))
        sent.update(e.id for e in evs)
        return "sent"
    before = len(stored_ids(data)[0])

    @fuzz(300)
    @given(st.lists(damaged_frames() | st.binary(max_size=300), min_size=1, max_size=3))
    def push(parts):
        hostile.send_multipart(parts)
        valid_batch()

    try:
        push()
        ids = poll_until(lambda: sent <= (got := stored_ids(data)[0]) and got, timeout=30,
                         what="every valid batch stored")
    finally:
        hostile.close()
        good.close()
    assert proc.alive()
    assert len(ids) > before
    assert stored_ids(data)[1] == 0  # every record of the bucket files whole


def stored_ids(data):
    """Ids of the events a buck stored, and how many damaged records its files
    hold. A frame whose header and checksum are right is stored as it came
    without being decoded (the buck never unpacks a batch); one that then does
    not decode is skipped, as the porter skips it."""
    ids, damaged = set(), 0
    for _, path in layout.list_buckets(data / "buckets"):
        reader = RecordReader(path)
        for frame in reader:
            try:
                ids.update(e.id for e in codec.decode(frame)[1])
            except FrameError:
                pass
        damaged += reader.stats.corrupt_records + bool(reader.stats.skipped_bytes)
    return ids, damaged


def test_fuzzed_filter_messages_over_socket_io_are_answered_and_another_page_keeps_its_lines(procs):
    try:
        import socketio
    except ImportError:
        require("socketio", "python-socketio (a flask-socketio dependency) is missing")
    buck = FakeBuck(name="fuzz")
    try:
        web = start_web(procs, buck.endpoint)
        watcher, fuzzer = socketio.Client(), socketio.Client()
        seen: list[str] = []
        dropped = [0]  # lines the server dropped for this page rather than fall behind (counted, never silent)

        @watcher.on("lines")
        def lines(data):
            seen.extend(row[5] for row in data["rows"])
            dropped[0] += data["dropped"]
            return True  # the acknowledgement a page sends once it has drawn a batch

        watcher.connect(web.url, transports=["polling"])
        fuzzer.connect(web.url, transports=["polling"])
        watcher.call("filter", {"text": "valid"}, timeout=10)
        buck.wait_subscribed()
        answers = []

        @fuzz(150, deadline_s=None)
        @given(filter_specs)
        def send(spec):
            answer = fuzzer.call("filter", spec, timeout=ANSWER_S)  # raises if none comes
            assert isinstance(answer, dict) and ("error" in answer or answer.get("ok")), answer
            answers.append("error" if "error" in answer else "ok")
            n = len(answers)
            buck.publish([event(n, f"valid {n}")])

        send()
        poll_until(lambda: len(seen) + dropped[0] == len(answers), what="every line shown or counted as dropped")
        assert set(seen) <= {f"valid {i}" for i in range(1, len(answers) + 1)}
        assert len(seen) == len(set(seen)) and len(seen) >= len(answers) // 2
        assert {"ok", "error"} <= set(answers)
        assert web.proc.alive()
        watcher.disconnect()
        fuzzer.disconnect()
    finally:
        buck.close()
