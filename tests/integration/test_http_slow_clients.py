"""Slow and hostile HTTP clients against a real buck's HTTP ingest: slowloris
headers and bodies, too many connections from one address, and headers that
are not text. Nobody who sends slowly locks the others out.

The attackers connect from other loopback addresses (127.0.0.2, ...: Linux
routes all of 127/8 to lo), as they would from other hosts; the honest
client is 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import resource
import socket
from urllib.parse import urlsplit

import pytest

from helios import tokens
from tests.helpers import buck_events, buck_http, poll_until

TOKEN = tokens.new_token()


def raise_fd_limit(need: int) -> None:
    """Sockets are file descriptors: make room for ``need`` more (in this
    process and in the processes it starts, which inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = soft + need if hard == resource.RLIM_INFINITY else min(hard, soft + need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def slow(host: str, port: int, source: str, first: bytes) -> socket.socket:
    s = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
    s.sendall(first)
    return s


_got: dict[int, bytes] = {}


def closed(s: socket.socket) -> bytes | None:
    """Everything the server sent on ``s`` once it has closed it (None while
    it is open; b"" + ... so a close without an answer is not None either)."""
    s.settimeout(0.05)
    key = id(s)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return b"closed:" + _got.pop(key, b"")
            _got[key] = _got.get(key, b"") + chunk
    except (TimeoutError, BlockingIOError):
        return None
    except ConnectionResetError:
        return b"closed:" + _got.pop(key, b"")


def post(url: str, events, headers=None) -> tuple[int, dict]:
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request("POST", "/v1/events", json.dumps(events), {"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def healthz(url: str) -> tuple[int, dict]:
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


@pytest.fixture
def held():
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def test_260_connections_that_send_headers_and_one_body_byte_block_no_other_post(buck, held):
    """Attack #3: before, each took a request slot before its body came, and
    256 slots were gone for 90 s: every POST 503, /healthz "busy"."""
    raise_fd_limit(600)
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-body-timeout", "3",
                      "--http-max-connections-per-client", "1000")
    url = buck_http(data)
    u = urlsplit(url)
    head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n[")
    for i in range(260):
        held.append(slow(u.hostname, u.port, f"127.0.0.{2 + i % 4}", head))
    for n in range(5):
        assert post(url, [{"message": f"honest {n}"}]) == (200, {"accepted": 1, "durability": "fsynced"})
    assert healthz(url) == (200, {"status": "ok", "buck": "buck-a", "pending": 0})
    # Each slow body ends with 408 once its time is up, and its connection is closed.
    answers = [poll_until(lambda s=s: closed(s), timeout=20, what="a slow body's connection closed")
               for s in held]
    assert all(a.startswith(b"closed:HTTP/1.1 408") for a in answers)
    assert b"did not arrive within 3 s" in answers[0]
    assert sorted(e.message for e in buck_events(data)[0]) == [f"honest {n}".encode() for n in range(5)]
    poll_until(lambda: json.loads((data / "stats.json").read_text())["http"].get("body_timeouts") == 260,
               what="260 body timeouts counted")


def test_a_connection_that_sends_its_headers_slowly_is_closed_after_the_header_timeout(buck, held):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-header-timeout", "1")
    url = buck_http(data)
    u = urlsplit(url)
    trickle = slow(u.hostname, u.port, "127.0.0.2", b"POST /v1/events HTTP/1.1\r\n")
    idle = slow(u.hostname, u.port, "127.0.0.2", b"")
    held += [trickle, idle]

    def gone():
        try:  # a header line now and then does not keep it open
            trickle.sendall(b"X-Slow: 1\r\n")
        except OSError:
            return True
        return closed(trickle) is not None
    poll_until(gone, timeout=10, what="the trickling connection closed")
    assert poll_until(lambda: closed(idle) is not None, timeout=10, what="the idle connection closed")
    assert post(url, [{"message": "fine"}])[0] == 200


def test_one_address_gets_at_most_its_share_of_connections_and_the_others_keep_working(buck, held):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-max-connections-per-client", "5")
    url = buck_http(data)
    u = urlsplit(url)
    held += [slow(u.hostname, u.port, "127.0.0.3", b"") for _ in range(5)]
    extra = slow(u.hostname, u.port, "127.0.0.3", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    held.append(extra)
    answer = poll_until(lambda: closed(extra), what="the sixth connection answered and closed")
    assert answer.startswith(b"closed:HTTP/1.1 503") and b"Retry-After" in answer
    assert post(url, [{"message": "from another address"}])[0] == 200
    assert healthz(url)[0] == 200
    held.pop(0).close()  # one of the five closes: that address may open one more

    def room():
        s = slow(u.hostname, u.port, "127.0.0.3", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.settimeout(10)
            return s.recv(100).startswith(b"HTTP/1.1 200")
        finally:
            s.close()
    poll_until(room, what="room for that address again")
    poll_until(lambda: json.loads((data / "stats.json").read_text())["http"].get("connections_refused_client"),
               what="the refused connection counted")


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", b"Bearer hlt_\xc3\x28", b"\x80"])
def test_an_authorization_header_that_is_not_ascii_gets_400_not_a_traceback(buck, value):
    proc, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-token", f"*={tokens.hash_token(TOKEN)}")
    url = buck_http(data)
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        body = b'[{"message": "x"}]'
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                  + value + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"printable ASCII" in answer
    assert post(url, [{"message": "ok"}], {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert [e.message for e in buck_events(data)[0]] == [b"ok"]
    assert "Traceback" not in proc.output() and "Error handling request" not in proc.output()


def test_with_tls_a_connection_that_never_finishes_its_handshake_is_closed_after_the_header_timeout(
        buck, held, tmp_path):
    import shutil
    import ssl

    from tests.integration.test_http_auth import make_certificate

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed: no certificate to test with")
    cert, key = make_certificate(tmp_path)
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-tls-cert", str(cert), "--http-tls-key", str(key),
                      "--http-header-timeout", "1")
    u = urlsplit(buck_http(data))
    stalled = slow(u.hostname, u.port, "127.0.0.2", b"\x16\x03\x01")  # the first bytes of a ClientHello, no more
    silent = slow(u.hostname, u.port, "127.0.0.2", b"")
    held += [stalled, silent]
    for s in (stalled, silent):
        poll_until(lambda s=s: closed(s) is not None, timeout=10, what="the unfinished handshake closed")
    ctx = ssl.create_default_context(cafile=str(cert))
    c = http.client.HTTPSConnection(u.hostname, u.port, timeout=10, context=ctx)
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    c.close()


def test_more_idle_connections_than_the_limit_from_many_addresses_do_not_lock_out_a_newcomer(buck, held):
    _, _, data = buck("a", None, "--http", "127.0.0.1:0", "--http-max-connections", "50")
    url = buck_http(data)
    u = urlsplit(url)
    for i in range(200):
        held.append(slow(u.hostname, u.port, f"127.0.0.{2 + i % 20}", b"POST /v1/events HTTP/1.1\r\n"))
    for n in range(5):
        assert post(url, [{"message": f"newcomer {n}"}])[0] == 200
    assert healthz(url)[0] == 200
    poll_until(lambda: json.loads((data / "stats.json").read_text())["http"].get("connections_evicted", 0) >= 150,
               what="the longest waiting evicted")
