"""The HTTP ingest's bearer tokens, TLS and limits, against real buck processes:
who may write what, that a refused request leaves nothing behind, and that
every input has a bound."""

import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
from urllib.parse import urlsplit

import pytest
import zmq

from helios import codec, tokens
from helios.model import Event, random_id
from tests.helpers import buck_events, buck_http, poll_until, require

PROD, STAGE, ALL = tokens.new_token(), tokens.new_token(), tokens.new_token()


def post(url, events, token=None, context=None, **headers):
    """POST events as JSON; (status, parsed answer, response headers)."""
    u = urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=15, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", "/v1/events", json.dumps(events), {"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), dict(resp.headers)
    finally:
        conn.close()


@pytest.fixture
def token_buck(buck):
    """A buck whose HTTP ingest takes the PROD token for prod, STAGE for
    staging, and ALL for every environment."""
    def start(*extra):
        proc, ep, data = buck("a", None, "--http", "127.0.0.1:0",
                              "--http-token", f"prod={tokens.hash_token(PROD)}",
                              "--http-token", f"staging={tokens.hash_token(STAGE)}",
                              "--http-token", f"*={tokens.hash_token(ALL)}", *extra)
        return proc, ep, data, buck_http(data)
    return start


def stored(data):
    return sorted(e.message for e in buck_events(data)[0])


def test_a_request_without_a_valid_token_gets_401_and_nothing_is_stored(token_buck):
    proc, _, data, url = token_buck()
    status, answer, headers = post(url, [{"environment": "prod", "message": "anonymous"}])
    assert status == 401 and "bearer token" in answer["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, answer, _ = post(url, [{"environment": "prod", "message": "forged"}], token=PROD[:-1] + "x")
    assert status == 401 and "not valid" in answer["error"]
    status, _, _ = post(url, [{"message": "basic"}], Authorization="Basic YWxpY2U6cHc=")
    assert status == 401
    assert post(url, [{"environment": "prod", "message": "signed"}], token=PROD)[0] == 200
    assert stored(data) == [b"signed"]


def test_a_token_of_another_environment_gets_403_and_nothing_of_its_request_is_stored(token_buck):
    proc, _, data, url = token_buck()
    mixed = [{"environment": "prod", "message": "prod line"}, {"environment": "staging", "message": "stage line"}]
    status, answer, _ = post(url, mixed, token=PROD)
    assert status == 403 and answer["event"] == 1 and "'staging'" in answer["error"]
    # The header's default environment is checked too.
    status, _, _ = post(url, [{"message": "via header"}], token=STAGE, **{"Helios-Environment": "prod"})
    assert status == 403
    assert stored(data) == []
    assert post(url, [{"environment": "staging", "message": "stage ok"}], token=STAGE)[0] == 200
    assert post(url, mixed, token=ALL)[0] == 200  # "*" writes every environment
    assert stored(data) == [b"prod line", b"stage line", b"stage ok"]


def test_the_client_library_sends_its_token_and_a_wrong_one_gets_its_events_logged(
        token_buck, recorders, caplog):
    _, _, data, url = token_buck()
    good = recorders(bucks=[url], environment="prod", token=PROD)
    good.record(message="from the library")
    assert good.flush(10)
    assert stored(data) == [b"from the library"]
    caplog.set_level(logging.ERROR, "helios.client")
    bad = recorders(bucks=[url], environment="prod", token=STAGE)
    bad.record(message="wrong environment")
    assert bad.flush(10)
    assert any("refused the batch with 403" in m for m in caplog.messages)
    assert stored(data) == [b"from the library"]


def make_certificate(tmp_path):
    cert, key = tmp_path / "buck.pem", tmp_path / "buck.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_direct_with_a_token_serves_https_and_the_client_library_trusts_its_ca(
        token_buck, recorders, tmp_path):
    if not shutil.which("openssl"):
        require("openssl", "openssl is not installed: no certificate to test with")
    cert, key = make_certificate(tmp_path)
    proc, _, data, url = token_buck("--http-tls-cert", str(cert), "--http-tls-key", str(key))
    url = url.replace("http://", "https://")
    trusted = ssl.create_default_context(cafile=str(cert))
    assert post(url, [{"environment": "prod", "message": "over tls"}], token=PROD, context=trusted)[0] == 200
    with pytest.raises(ssl.SSLError):  # an unknown CA is refused by a client that checks
        post(url, [{"environment": "prod", "message": "x"}], token=PROD, context=ssl.create_default_context())
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:  # plain HTTP gets no answer
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]")
        assert b"HTTP/1.1 200" not in s.recv(4096)
    r = recorders(bucks=[url], environment="prod", token=PROD, tls_ca=str(cert))
    r.record(message="library over tls")
    assert r.flush(10)
    assert stored(data) == [b"library over tls", b"over tls"]
    assert "https://" in proc.output()


def test_an_http_ingest_beyond_127_0_0_1_without_tokens_says_so_loudly(buck):
    proc, _, data = buck("a", None, "--http", "0.0.0.0:0")
    buck_http(data)
    poll_until(lambda: "WITHOUT AUTHENTICATION" in proc.output(), what="the warning")
    proc2, _, data2 = buck("b", None, "--http", "127.0.0.1:0")
    buck_http(data2)
    assert "WITHOUT AUTHENTICATION" not in proc2.output()


def test_past_the_connection_limit_the_longest_idle_one_is_closed_and_busy_ones_are_not(buck):
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-max-connections", "3")
    url = buck_http(data)
    u = urlsplit(url)
    held = [http.client.HTTPConnection(u.hostname, u.port, timeout=5) for _ in range(3)]
    for c in held:  # three idle keep-alive connections
        c.request("GET", "/healthz")
        assert c.getresponse().read()
    extra = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    extra.request("GET", "/healthz")
    assert extra.getresponse().status == 200  # served: the oldest idle one made room
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        held[0].request("GET", "/healthz")
        held[0].getresponse()
    for c in held[1:]:  # the others kept their connections
        c.request("POST", "/v1/events", json.dumps([{"message": "kept"}]), {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        resp.read()
    for c in held + [extra]:
        c.close()
    # Three requests in progress (bodies on their way) are not idle: a fourth is refused.
    def http_stats():
        return json.loads((data / "stats.json").read_text())["http"]
    # (stats.json is written every 0.2 s: wait until it shows the two POSTs above)
    poll_until(lambda: (st := http_stats())["clients"] == 0 and st.get("requests") == 2,
               what="the closed connections gone")
    before = 2
    busy = []
    for k in range(3):
        s = socket.create_connection((u.hostname, u.port), timeout=5)
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n[")
        busy.append(s)
        poll_until(lambda k=k: http_stats().get("requests", 0) == before + k + 1, what="the request in progress")

    def refused():
        with socket.create_connection((u.hostname, u.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = s.recv(4096)
            return answer.startswith(b"HTTP/1.1 503") and b"too many" in answer and b"Retry-After" in answer
    try:
        poll_until(refused, what="a connection over the limit refused")
    finally:
        for s in busy:
            s.close()
    stats = poll_until(lambda: (st := json.loads((data / "stats.json").read_text())["http"]).get(
        "connections_refused") and st, what="the refused connection counted")
    assert stats["connections_evicted"] >= 1


def test_too_many_fields_or_a_field_too_large_gets_400_naming_the_event(buck):
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-max-fields", "3",
                         "--http-max-field-bytes", "1000")
    url = buck_http(data)
    ok = {"message": "fine", "a": 1, "b": "x" * 900, "c": [1, 2, 3]}
    many = {"message": "many", "a": 1, "b": 2, "c": 3, "d": 4}
    status, answer, _ = post(url, [ok, many])
    assert status == 400 and answer["event"] == 1 and "4 fields, over the limit of 3" in answer["error"]
    for big in ({"message": "m" * 1001}, {"blob": "é" * 600}, {"nested": {"k": ["v" * 400] * 3}}):
        status, answer, _ = post(url, [ok, ok, big])
        assert status == 400 and answer["event"] == 2 and "over the limit of 1000 bytes" in answer["error"], big
    assert stored(data) == []
    assert post(url, [ok])[0] == 200


def test_zeromq_frames_over_the_event_or_uncompressed_size_limits_are_refused_unread(buck):
    proc, ep, data = buck("a", None, "--max-batch-events", "50", "--max-raw-bytes", "8192")
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.connect(ep)

    def frame(n, size=10):
        return codec.encode_events("prod", "h", [Event(random_id(), 1, 2, "h", "a", 6, "", None, os.urandom(size), None)
                                                 for _ in range(n)])
    push.send(frame(51))             # one event too many
    push.send(frame(10, size=1000))  # 10 kB of events: over 8 kB uncompressed
    push.send(frame(50))             # at the limits: stored
    try:
        s = poll_until(lambda: (s := json.loads((data / "stats.json").read_text())) and s["events"] == 50 and s,
                       what="the valid frame stored")
        reasons = s["bad_frames"]
        assert sum(reasons.values()) == 2, reasons
        assert "batch of 51 events" in reasons and any("over the limit of 8192" in r for r in reasons), reasons
    finally:
        push.close()
