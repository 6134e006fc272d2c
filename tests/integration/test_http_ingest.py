"""A buck's HTTP ingest, against a real buck process: bodies, answers, limits,
durability levels and group commit."""

import gzip
import http.client
import json
import os
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import lz4.frame
import msgpack
import pytest
import zmq

from helios.wire import live
from helios.wire.ports import free_port
from tests.helpers import buck_events, buck_http, poll_until


class Http:
    """One keep-alive connection to a buck's HTTP ingest (closed at the end of the test)."""

    opened: list["Http"] = []

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.opened.append(self)

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data
        return resp.status, resp, parsed

    def post(self, body, content_type="application/json", **headers):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        return self.request("POST", "/v1/events", body, {"Content-Type": content_type, **headers})

    def close(self):
        self.conn.close()


@pytest.fixture(autouse=True)
def close_connections():
    yield
    while Http.opened:
        Http.opened.pop().close()


@pytest.fixture
def http_buck(buck):
    """Start a buck with HTTP ingest on an OS-assigned port; returns (proc, data, url)."""
    def start(name="a", *extra):
        proc, _, data = buck(name, None, "--http", "127.0.0.1:0", *extra)
        return proc, data, buck_http(data)
    return start


def stored(data, env=None):
    events, clean = buck_events(data, env)
    assert clean
    return events


def stats(data):
    return json.loads((data / "stats.json").read_text())


def test_a_json_array_of_events_is_stored_with_every_key_and_answered_200(http_buck):
    _, data, url = http_buck()
    ident = "00112233445566778899aabbccddeeff"
    events = [
        {"id": ident, "time": "2024-01-31T12:00:00.123456789Z", "environment": "shop", "host": "web-1",
         "app": "cart", "severity": "warning", "message": "payment failed", "order": 1234, "amount": 12.5},
        {"message": "second", "fields": {"host": "a field named host"}},
    ]
    before = time.time_ns()
    status, _, answer = Http(url).post(events)
    assert (status, answer) == (200, {"accepted": 2, "durability": "fsynced"})
    got = {e.message: e for e in stored(data)}  # fsynced (the default): in the file once answered
    first, second = got[b"payment failed"], got[b"second"]
    assert first.id == bytes.fromhex(ident) and first.environment == "shop"
    assert first.time == 1706702400123456789 and first.received >= before
    assert (first.host, first.app, first.severity) == ("web-1", "cart", 4)
    assert first.fields == {"order": 1234, "amount": 12.5}
    assert (first.source, first.offset) == ("", None)
    assert second.environment == "default" and second.host == "127.0.0.1"  # the sender's address
    assert second.fields == {"host": "a field named host"}
    assert len(second.id) == 16 and second.time == second.received >= before


def test_ndjson_msgpack_gzip_and_lz4_bodies_are_accepted(http_buck):
    _, data, url = http_buck()
    c = Http(url)
    lines = b'{"message": "nd-1"}\n\n{"message": "nd-2"}\n'
    assert c.post(lines, "application/x-ndjson")[0] == 200
    packed = msgpack.packb([{"message": b"mp-1", "time": msgpack.Timestamp.from_unix_nano(5_000_000_001),
                             "id": os.urandom(16), "blob": b"\x00\xff"}])
    assert c.post(packed, "application/msgpack")[0] == 200
    assert c.post(gzip.compress(b'[{"message": "gz-1"}]'), **{"Content-Encoding": "gzip"})[0] == 200
    assert c.post(lz4.frame.compress(b'[{"message": "lz-1"}]'), **{"Content-Encoding": "lz4"})[0] == 200
    got = {e.message: e for e in stored(data)}
    assert set(got) == {b"nd-1", b"nd-2", b"mp-1", b"gz-1", b"lz-1"}
    assert got[b"mp-1"].time == 5_000_000_001 and got[b"mp-1"].fields == {"blob": b"\x00\xff"}


def test_a_bad_event_gets_400_naming_it_and_nothing_of_its_request_is_stored(http_buck):
    _, data, url = http_buck()
    c = Http(url)
    body = [{"message": "fine"}, {"message": "also fine"}, {"message": "bad", "severity": 9}, {"time": "soon"}]
    status, _, answer = c.post(body)
    assert status == 400 and answer["event"] == 2
    assert answer["error"].startswith("event 2: severity must be 0..7")
    assert c.post([{"message": "after"}])[0] == 200  # the connection is still good
    assert [e.message for e in stored(data)] == [b"after"]


@pytest.mark.parametrize("body, content_type, status, error", [
    (b"[{]", "application/json", 400, "the body is not valid JSON"),
    (b'{"message": 1}\nnot json\n', "application/x-ndjson", 400, "event 0: message must be a string"),
    (b'{"message": "a"}\nnot json\n', "application/x-ndjson", 400, "event 1 (line 2) is not valid JSON"),
    (msgpack.packb([{"message": "a"}])[:-1], "application/msgpack", 400, "the body is not valid msgpack"),
    (msgpack.packb([msgpack.ExtType(7, b"x")]), "application/msgpack", 400, "the body is not valid msgpack"),
    (b'"just a string"', "application/json", 400, "the body must be an array of events"),
    (b"[1]", "application/json", 400, "event 0: an event must be a map"),
    (b'[{"big": 123456789012345678901234567890}]', "application/json", 400, "event 0: a value cannot be stored"),
    (b"[]", "text/plain", 415, "Content-Type 'text/plain' is not supported"),
])
def test_bad_bodies_get_a_4xx_that_says_why(http_buck, body, content_type, status, error):
    _, data, url = http_buck()
    got, _, answer = Http(url).post(body, content_type)
    assert got == status and answer["error"].startswith(error), answer
    assert stored(data) == []


def test_bodies_over_the_limit_get_413_compressed_or_not(http_buck):
    _, data, url = http_buck("a", "--http-max-body", "100000", "--http-max-events", "10")
    c = Http(url)
    assert c.post(b"[" + b" " * 200_000 + b"]")[0] == 413
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")  # 50 MB that packs into 50 kB
    assert len(bomb) < 100_000
    assert Http(url).post(bomb, **{"Content-Encoding": "gzip"})[0] == 413
    assert Http(url).post([{}] * 11)[0] == 413
    assert Http(url).post([{}] * 10)[0] == 200
    assert len(stored(data)) == 10


def test_an_unknown_content_encoding_or_durability_is_refused(http_buck):
    _, data, url = http_buck()
    c = Http(url)
    assert c.post(b"[]", **{"Content-Encoding": "br"})[0] == 415
    assert c.post(b"[]", **{"Helios-Durability": "eventually"})[0] == 400
    assert c.post(gzip.compress(b"[{}]")[:-4], **{"Content-Encoding": "gzip"})[0] == 400


def test_headers_give_defaults_to_events_that_name_none(http_buck):
    _, data, url = http_buck()
    headers = {"Helios-Environment": "staging", "Helios-Host": "api-7", "Helios-App": "billing"}
    assert Http(url).post([{"message": "x"}, {"message": "y", "app": "own"}], **headers)[0] == 200
    got = {e.message: e for e in stored(data)}
    assert {(e.environment, e.host, e.app) for e in got.values()} == {("staging", "api-7", "billing"),
                                                                      ("staging", "api-7", "own")}
    assert Http(url).post([{}], **{"Helios-Environment": "../etc"})[0] == 400


def test_each_durability_level_is_answered_as_asked(http_buck):
    _, data, url = http_buck("a", "--durability", "fsynced")
    c = Http(url)
    for level in ("received", "written", "fsynced"):
        status, _, answer = c.post([{"message": level}], **{"Helios-Durability": level})
        assert (status, answer["durability"]) == (200, level)
    assert c.post([{"message": "default"}])[2]["durability"] == "fsynced"
    poll_until(lambda: len(stored(data)) == 4, what="4 events stored")


def test_healthz_answers_200_for_load_balancers(http_buck):
    _, data, url = http_buck()
    status, _, answer = Http(url).request("GET", "/healthz")
    assert status == 200 and answer["status"] == "ok"


def test_overload_gets_503_with_retry_after_and_clears_when_the_load_goes(http_buck):
    """A request holds one of http_max_pending from the moment its body is in
    until it is stored (a slow body holds none: test_http_slow_clients.py).
    With one slot and many clients posting at once, some are turned away."""
    _, data, url = http_buck("a", "--http-max-pending", "1")
    answers = []

    def client(n):
        c = Http(url)
        for r in range(5):
            status, resp, answer = c.post([{"message": f"c{n} r{r}", "pad": "x" * 20_000} for _ in range(20)])
            answers.append((status, resp.getheader("Retry-After"), answer))

    def a_round():
        threads = [threading.Thread(target=client, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return any(a[0] == 503 for a in answers)
    poll_until(a_round, timeout=60, interval=0, what="a request turned away")
    busy = [a for a in answers if a[0] == 503]
    assert all(retry == "1" and "busy" in answer["error"] for _, retry, answer in busy)
    assert {a[0] for a in answers} <= {200, 503}
    accepted = sum(a[2]["accepted"] for a in answers if a[0] == 200)
    assert Http(url).post([{"message": "welcome"}])[0] == 200
    assert Http(url).request("GET", "/healthz")[0] == 200
    assert len(stored(data)) == accepted + 1  # what was turned away left nothing behind


def test_concurrent_fsynced_requests_share_fsyncs(http_buck):
    _, data, url = http_buck("a", "--durability", "fsynced")
    clients, rounds = 32, 10
    statuses = []

    def client(n):
        c = Http(url)
        for r in range(rounds):
            statuses.append(c.post([{"message": f"c{n} r{r} e{i}"} for i in range(20)])[0])
        c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * (clients * rounds)
    assert len(stored(data)) == clients * rounds * 20
    s = poll_until(lambda: (s := stats(data))["http"].get("ok_fsynced") == clients * rounds and s,
                   what="stats of every request")
    # Group commit: fewer fsync rounds than requests.
    assert s["http"]["fsync_rounds"] < clients * rounds


def test_events_acked_fsynced_survive_kill_9_of_the_buck(buck, tmp_path):
    port = free_port()
    proc, ep, data = buck("a", None, "--http", f"127.0.0.1:{port}", "--durability", "fsynced")
    url = buck_http(data)
    acked = set()
    c = Http(url)
    for batch in range(20):
        events = [{"id": os.urandom(16).hex(), "message": f"batch {batch} event {i}"} for i in range(100)]
        status, _, _ = c.post(events)
        assert status == 200
        acked |= {bytes.fromhex(e["id"]) for e in events}
    proc.stop(signal.SIGKILL)  # right after the last ack
    proc.start()
    poll_until(lambda: stats(data)["pid"] == proc.p.pid, what="the restarted buck to run")
    assert Http(url).request("GET", "/healthz")[0] == 200
    events, clean = buck_events(data)
    assert acked <= {e.id for e in events}


def test_a_thousand_keep_alive_connections_are_served(http_buck):
    # From one address, so without the cap per client (test_http_slow_clients.py tests it).
    _, data, url = http_buck("a", "--http-max-connections-per-client", "0")
    u = urlsplit(url)
    conns = [socket.create_connection((u.hostname, u.port)) for _ in range(1000)]
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for round_ in range(2):  # the second round goes over the same, kept-alive connections
        for s in conns:
            s.sendall(request)
        for s in conns:
            s.settimeout(15)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
    for s in conns:
        s.close()


def test_events_taken_over_http_are_published_on_the_live_feed_like_zeromq_ingest(http_buck):
    _, data, url = http_buck()
    sub = zmq.Context.instance().socket(zmq.XSUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        sub.connect(stats(data)["publish"])
        sub.send(b"\x01" + live.prefix("shop"))
        poll_until(lambda: stats(data)["live"]["subscriptions"] >= 1, what="the subscription")
        events = [{"environment": "shop", "app": "cart", "severity": "err", "host": "web-1", "message": "boom"}]
        assert Http(url).post(events)[0] == 200
        assert sub.poll(10_000), "nothing was published"
        frames = sub.recv_multipart()
        [e], _ = live.read_message(frames)
        assert frames[0] == live.topic("shop", "cart", 3, "web-1") and e.message == b"boom"
    finally:
        sub.close()
