"""Attacks on ``helios web``, against a real process over real sockets:
slow and idle connections, DNS rebinding, a cookie copied before logout,
password guessing, probing other environments' history requests, and
headers that are not text. test_web_browser_attacks.py drives Chromium.

Attackers connect from other loopback addresses (127.0.0.2, ...: Linux
routes all of 127/8 to lo), as they would from other hosts."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time

import pytest
import requests

from helios.history.requests import RequestStore
from tests.helpers import poll_until
from tests.integration.test_http_slow_clients import closed, raise_fd_limit, slow
from tests.integration.test_web_auth import csrf_of, socketio_connect, start_auth_web
from tests.integration.webpage import PASSWORDS

NS = 1_000_000_000


def port_of(web) -> int:
    return int(web.url.rstrip("/").rsplit(":", 1)[1])


class Client:
    """A browser-like client from a chosen source address: keeps the session
    cookie, speaks plain HTTP/1.1 (a connection per request, as werkzeug closes each)."""

    def __init__(self, web, source: str = "127.0.0.1") -> None:
        self.port, self.source, self.cookie = port_of(web), source, None

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, str]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(self.source, 0))
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = "&".join(f"{k}={requests.utils.quote(v)}" for k, v in form.items())
            h["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            c.request(method, path, body, h)
            r = c.getresponse()
            text = r.read().decode("utf-8", "replace")
            got = r.getheader("Set-Cookie")
            if got and got.startswith("helios_session="):
                self.cookie = got.split(";", 1)[0]
            return r.status, dict(r.getheaders()), text
        finally:
            c.close()

    def login(self, user: str, password: str) -> tuple[int, dict, str]:
        _, _, page = self.request("GET", "/login")
        return self.request("POST", "/login", {"csrf_token": csrf_of(page), "user": user, "password": password})


# --- slow and idle connections (attack #4) ---

def test_500_idle_connections_from_other_hosts_do_not_keep_anyone_from_logging_in(procs, fake_buck, tmp_path,
                                                                                  users_toml):
    """Attack #4: 200 idle TCP connections took every thread of the web app,
    and /login answered 503 for 60 s. Now a connection waits for its headers
    without a thread, and 500 idle ones (over max_connections, 200) cost
    nobody anything."""
    raise_fd_limit(1200)
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    port = port_of(web)
    idle = [slow("127.0.0.1", port, f"127.0.0.{2 + i % 10}", b"") for i in range(500)]
    try:
        me = Client(web)
        for _ in range(3):
            assert me.request("GET", "/login")[0] == 200
        assert me.login("alice", PASSWORDS["alice"])[0] == 302
        status, _, page = me.request("GET", "/")
        assert status == 200 and "live.js" in page
        assert all(closed(s) is None for s in idle[:20])  # they are still open: nobody was refused
        connections = me.request("GET", "/api/status")[2]
        assert json.loads(connections)["connections"]["waiting"] >= 500
    finally:
        for s in idle:
            s.close()


def test_more_idle_connections_than_max_waiting_from_many_addresses_only_evict_each_other(
        procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml + "max_waiting = 50\n", fake_buck().endpoint)
    port = port_of(web)
    idle = [slow("127.0.0.1", port, f"127.0.0.{2 + i % 20}", b"") for i in range(200)]
    try:
        me = Client(web)
        for _ in range(5):
            assert me.request("GET", "/login")[0] == 200
        assert me.login("alice", PASSWORDS["alice"])[0] == 302
        gone = poll_until(lambda: sum(closed(s) is not None for s in idle) >= 150, what="the oldest evicted")
        assert gone
        assert json.loads(me.request("GET", "/api/status")[2])["connections"]["refused"]["evicted"] >= 150
    finally:
        for s in idle:
            s.close()


def test_a_slow_header_or_body_is_closed_after_its_timeout_and_the_others_are_served(procs, fake_buck, tmp_path,
                                                                                    users_toml):
    web = start_auth_web(procs, tmp_path, users_toml + "header_timeout = 1.0\nbody_timeout = 2.0\n",
                         fake_buck().endpoint)
    port = port_of(web)
    trickle = slow("127.0.0.1", port, "127.0.0.2", b"GET /login HTTP/1.1\r\n")
    body = slow("127.0.0.1", port, "127.0.0.2", b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                b"application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nuser=")
    try:
        def trickle_closed():
            try:
                trickle.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return True
            return closed(trickle) is not None
        started = time.monotonic()
        poll_until(trickle_closed, timeout=15, what="the trickling header closed")
        assert Client(web).request("GET", "/login")[0] == 200  # meanwhile, and after
        answer = poll_until(lambda: closed(body), timeout=15, what="the slow body's connection closed")
        assert answer.startswith(b"closed:HTTP/1.1 408") and b"body_timeout" in answer
        assert time.monotonic() - started < 14
    finally:
        trickle.close()
        body.close()
    assert Client(web).request("GET", "/login")[0] == 200
    assert "Traceback" not in web.proc.output()


def raw(web, request: bytes, pieces: int = 1) -> bytes:
    """Send a request (in ``pieces``, a moment apart) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port_of(web)), timeout=10) as s:
        step = -(-len(request) // pieces)
        for i in range(0, len(request), step):
            s.sendall(request[i:i + step])
            time.sleep(0.05)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def test_a_body_is_read_before_a_thread_is_given_and_bodies_it_cannot_take_are_refused_at_once(
        procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml + "max_message_bytes = 4096\n", fake_buck().endpoint)
    s = requests.Session()
    page = s.get(web.url + "login", timeout=10).text
    cookie = "; ".join(f"{k}={v}" for k, v in s.cookies.items())
    form = f"csrf_token={csrf_of(page)}&user=alice&password={requests.utils.quote(PASSWORDS['alice'])}".encode()
    head = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: " + cookie.encode() +
            b"\r\nContent-Type: application/x-www-form-urlencoded\r\n")
    # A login whose head and body come in 12 pieces logs in.
    answer = raw(web, head + b"Content-Length: %d\r\n\r\n" % len(form) + form, pieces=12)
    assert answer.startswith(b"HTTP/1.1 302"), answer[:300]
    # A client that waits for "100 Continue" before its body gets it from the gate.
    with socket.create_connection(("127.0.0.1", port_of(web)), timeout=10) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(form))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(form)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"HTTP/1.1 302" in answer, answer[:300]
    # Over the app's limit: 413 before a byte of the body is read.
    assert raw(web, head + b"Content-Length: 5000\r\n\r\n").startswith(b"HTTP/1.1 413")
    # Chunked: 411. A length that is no number: 400.
    assert raw(web, head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nuser=\r\n0\r\n\r\n").startswith(
        b"HTTP/1.1 411")
    assert raw(web, head + b"Content-Length: 12x\r\n\r\n").startswith(b"HTTP/1.1 400")
    # Headers that never end: 431 once they pass 64 KiB (sent to the byte, so that the
    # server has read all of it when it closes: unread bytes would make it a reset).
    start = b"GET / HTTP/1.1\r\nX-Pad: "
    assert raw(web, start + b"a" * (64 * 1024 + 1 - len(start))).startswith(b"HTTP/1.1 431")
    assert requests.get(web.url + "login", timeout=10).status_code == 200


def test_one_address_may_hold_only_its_share_of_connections(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml + "max_connections_per_client = 5\n", fake_buck().endpoint)
    port = port_of(web)
    held = [slow("127.0.0.1", port, "127.0.0.3", b"") for _ in range(5)]
    try:
        extra = slow("127.0.0.1", port, "127.0.0.3", b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = poll_until(lambda: closed(extra), what="the sixth connection answered")
        extra.close()
        assert answer.startswith(b"closed:HTTP/1.1 503") and b"from your address" in answer
        assert Client(web, "127.0.0.4").request("GET", "/login")[0] == 200
        held.pop().close()
        poll_until(lambda: Client(web, "127.0.0.3").request("GET", "/login")[0] == 200,
                   what="room for that address again")
    finally:
        for s in held:
            s.close()


# --- DNS rebinding (attack #5) ---

ROUTES = [("GET", "/"), ("GET", "/login"), ("GET", "/api/status"), ("GET", "/api/search?env=prod"),
          ("GET", "/api/history"), ("POST", "/api/history"), ("GET", "/search"), ("GET", "/archie"),
          ("GET", "/static/live.js"), ("GET", "/socket.io/?EIO=4&transport=polling"),
          ("GET", "/no/such/page")]


def test_a_request_naming_another_host_gets_421_on_every_route_socket_io_included(procs, fake_buck, tmp_path):
    """Attack #5: with the attacker's name resolving to 127.0.0.1, its page
    read /api/search, the CSRF token and socket.io of a web app without
    logins. The Host header still names the attacker: 421."""
    web = start_auth_web(procs, tmp_path, '[web]\nallowed_hosts = ["logs.example.com", "tail.example.com:8443"]\n',
                         fake_buck().endpoint)
    port = port_of(web)
    me = Client(web)
    for method, path in ROUTES:
        for host in ("rebind.attacker.example", f"rebind.attacker.example:{port}", "logs.example.com.evil",
                     "tail.example.com", f"tail.example.com:{port}", "127.0.0.2"):
            status, headers, text = me.request(method, path, headers={"Host": host})
            assert status == 421, (method, path, host, status, text[:200])
            assert "csrf" not in text.lower() and headers["X-Frame-Options"] == "DENY"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "logs.example.com",
                 "logs.example.com.:80", "tail.example.com:8443"):
        status, _, text = me.request("GET", "/api/status", headers={"Host": host})
        assert status == 200 and "bucks" in json.loads(text), (host, status)
    polled = me.request("GET", "/socket.io/?EIO=4&transport=polling", headers={"Host": f"localhost:{port}"})
    assert polled[0] == 200 and '"sid"' in polled[2]
    # A websocket handshake is refused as well, before engine.io sees it.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: rebind.attacker.example\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 421")


def test_every_answer_carries_csp_x_frame_options_and_referrer_policy(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    me = Client(web)
    me.login("alice", PASSWORDS["alice"])
    for method, path in ROUTES + [("GET", "/logout")]:
        status, headers, _ = me.request(method, path)
        csp = headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, status, headers)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"


# --- logout, password guessing ---

def test_a_cookie_copied_before_logout_no_longer_works_not_even_after_a_restart(procs, fake_buck, tmp_path,
                                                                              users_toml):
    key = tmp_path / "session.key"
    key.write_text("k" * 48)
    key.chmod(0o600)
    toml = users_toml + f'secret_file = "{key}"\n'
    buck = fake_buck()
    web = start_auth_web(procs, tmp_path, toml, buck.endpoint)
    alice = web.login("alice", PASSWORDS["alice"])
    thief = requests.Session()
    thief.cookies.update(alice.cookies)
    assert thief.get(web.url + "api/status", timeout=10).status_code == 200
    other = web.login("alice", PASSWORDS["alice"])  # her other login (another browser) is not ended
    page = alice.get(web.url, timeout=10).text
    r = alice.post(web.url + "logout", data={"csrf_token": csrf_of(page)}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    assert thief.get(web.url + "api/status", timeout=10).status_code == 401
    assert thief.get(web.url, timeout=10, allow_redirects=False).status_code == 302
    assert "login required" in socketio_connect(thief, web.url)
    assert other.get(web.url + "api/status", timeout=10).status_code == 200
    web.proc.stop()
    port = port_of(web)
    web = start_auth_web(procs, tmp_path, toml, buck.endpoint, listen=f"127.0.0.1:{port}")
    assert thief.get(web.url + "api/status", timeout=10).status_code == 401
    assert other.get(web.url + "api/status", timeout=10).status_code == 200


def test_password_guesses_wait_longer_and_longer_per_user_and_per_client(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml + "login_max_failures = 3\nlogin_backoff = 2.0\n",
                         fake_buck().endpoint)
    guesser = Client(web, "127.0.0.2")
    for n in range(3):
        assert guesser.login("bob", f"guess {n}")[0] == 401
    status, headers, text = guesser.login("bob", PASSWORDS["bob"])  # even the right one must wait
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "Too many failed logins" in text
    # Per user: bob's account waits from any address; per client: that address waits for any user.
    assert Client(web, "127.0.0.3").login("bob", PASSWORDS["bob"])[0] == 429
    assert guesser.login("alice", PASSWORDS["alice"])[0] == 429
    assert Client(web, "127.0.0.4").login("alice", PASSWORDS["alice"])[0] == 302
    # Guessing many names from one address: the address waits.
    spray = Client(web, "127.0.0.5")
    for n in range(3):
        assert spray.login(f"user{n}", "password")[0] == 401
    assert spray.login("alice", PASSWORDS["alice"])[0] == 429
    # After the wait, the right password works, and a success forgets the failures.
    assert poll_until(lambda: Client(web, "127.0.0.6").login("bob", PASSWORDS["bob"])[0] == 302, timeout=15,
                      interval=0.5, what="bob's wait to end")
    assert "too many failed logins" in web.proc.output()


# --- rights before anything else ---

def test_a_limited_user_learns_nothing_of_another_environments_history_request(procs, fake_buck, tmp_path,
                                                                              users_toml):
    """Before, bob (prod only) got 409 "is queued" for a staging request,
    and so learnt it existed: now it is as unknown to him as a made-up id."""
    history = tmp_path / "history"
    with RequestStore(history) as store:
        now = int(time.time()) * NS
        hidden, _ = store.submit("staging", now - 7200 * NS, now - 3600 * NS, "sqlite", expiry=3600)
        mine, _ = store.submit("prod", now - 7200 * NS, now - 3600 * NS, "sqlite", expiry=3600)
    toml = users_toml.replace("[web]", f'[history]\ndir = "{history}"\n\n[porter]\nindex_dir = "{tmp_path / "ix"}"'
                                       "\n\n[web]")
    web = start_auth_web(procs, tmp_path, toml, fake_buck().endpoint)
    bob, alice = web.login("bob", PASSWORDS["bob"]), web.login("alice", PASSWORDS["alice"])
    made_up = "0" * len(hidden.id)

    def answer(session, path):
        r = session.get(web.url + path, timeout=10)
        return r.status_code, r.json()["error"]

    for path in ("api/search?history={}", "api/search?history={}&env=prod", "api/history/{}"):
        got = answer(bob, path.format(hidden.id))
        unknown = answer(bob, path.format(made_up))
        assert got[0] == unknown[0] == 404, (path, got, unknown)
        assert got[1] == unknown[1].replace(made_up, hidden.id)
    page = bob.get(web.url + "archie", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)[1]
    r = bob.post(web.url + f"api/history/{hidden.id}/retry", headers={"X-CSRF-Token": token}, timeout=10)
    assert r.status_code == 404
    assert hidden.id not in bob.get(web.url + "api/history", timeout=10).text
    # Those who may see it are told its state.
    assert answer(alice, f"api/search?history={hidden.id}")[0] == 409
    assert answer(bob, f"api/search?history={mine.id}")[0] == 409


# --- headers that are not text ---

@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", b"Bearer hlt_\xc3\x28", b"\x80\x81"])
def test_an_authorization_header_that_is_not_ascii_gets_400_not_a_traceback(procs, fake_buck, tmp_path,
                                                                            users_toml, value):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    with socket.create_connection(("127.0.0.1", port_of(web)), timeout=10) as s:
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + value + b"\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"printable ASCII" in answer
    assert web.login("alice", PASSWORDS["alice"]).get(web.url + "api/status", timeout=10).status_code == 200
    assert "Traceback" not in web.proc.output()
