"""Logging in to the web app, CSRF, authenticated sockets and users limited to
environments: plain HTTP against a real ``helios web`` process, and the live
page in headless Chromium (see test_web_page.py for how it is driven)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import requests

from helios import tokens
from helios.web.auth import hash_password
from helios.wire.ports import free_port
from tests.helpers import ROOT, poll_until
from tests.integration.webpage import OPS_TOKEN, PASSWORDS, event, messages, until_shown, wait_js, web_url



class AuthWeb:
    def __init__(self, proc, url):
        self.proc, self.url = proc, url

    def login(self, user: str, password: str | None = None, token: str | None = None) -> requests.Session:
        s = requests.Session()
        form = s.get(self.url + "login", timeout=10)
        fields = {"csrf_token": csrf_of(form.text)}
        fields.update({"token": token} if token else {"user": user, "password": password})
        r = s.post(self.url + "login", data=fields, timeout=10, allow_redirects=False)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        return s


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def start_auth_web(procs, tmp_path, toml: str, *bucks: str, listen: str | None = None) -> AuthWeb:
    path = tmp_path / f"web-{len(list(tmp_path.glob('web-*.toml')))}.toml"
    path.write_text(toml)
    # On a port the OS picks unless given; the web app logs where it serves.
    args = ["web", "-c", str(path), "--listen", listen or "127.0.0.1:0"]
    for ep in bucks:
        args += ["--feed", ep]
    proc = procs(*args, name=path.stem)
    web = AuthWeb(proc, web_url(proc))

    def answers():
        assert proc.alive(), f"helios web exited:\n{proc.output()}"
        try:
            return requests.get(web.url + "login", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False
    poll_until(answers, what="helios web to answer")
    return web


def socketio_connect(session: requests.Session, url: str, auth: dict | None = None) -> str:
    """Open a socket.io connection over engine.io long-polling, as a script
    would; returns what the server answers to the namespace connect."""
    base = url + "socket.io/?EIO=4&transport=polling"
    opened = session.get(base, timeout=10).text
    sid = json.loads(opened[opened.index("{"):])["sid"]
    session.post(f"{base}&sid={sid}", data="40" + (json.dumps(auth) if auth else ""), timeout=10)
    return session.get(f"{base}&sid={sid}", timeout=10).text


# --- plain HTTP ---

def test_without_a_login_the_page_sends_to_the_login_form_and_the_api_answers_401(procs, fake_buck, tmp_path,
                                                                                 users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    r = requests.get(web.url, timeout=10, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login?next=/")
    r = requests.get(web.url + "api/status", timeout=10)
    assert r.status_code == 401 and "log in" in r.json()["error"]
    assert "live.js" not in requests.get(web.url + "login", timeout=10).text


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_page(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    s = requests.Session()
    token = csrf_of(s.get(web.url + "login", timeout=10).text)
    for user, password in (("alice", "wrong"), ("mallory", PASSWORDS["alice"]), ("bob", PASSWORDS["alice"])):
        r = s.post(web.url + "login", data={"csrf_token": token, "user": user, "password": password}, timeout=10)
        assert r.status_code == 401 and "Wrong user name" in r.text
    assert s.get(web.url + "api/status", timeout=10).status_code == 401
    s = web.login("alice", PASSWORDS["alice"])
    page = s.get(web.url, timeout=10)
    assert page.status_code == 200 and "live.js" in page.text and ">alice<" in page.text
    assert s.get(web.url + "api/status", timeout=10).json()["bucks"]
    assert "A login to the web app failed" in web.proc.output()


def test_posts_without_the_session_csrf_token_are_refused(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    s = requests.Session()
    s.get(web.url + "login", timeout=10)
    # A login form posted from another site has no token of this session.
    r = s.post(web.url + "login", data={"user": "alice", "password": PASSWORDS["alice"]}, timeout=10)
    assert r.status_code == 403 and "CSRF" in r.text
    s = web.login("alice", PASSWORDS["alice"])
    for token in ("", "forged"):
        r = s.post(web.url + "logout", data={"csrf_token": token}, timeout=10, allow_redirects=False)
        assert r.status_code == 403
    assert s.get(web.url + "api/status", timeout=10).status_code == 200  # still logged in
    page = s.get(web.url, timeout=10).text
    r = s.post(web.url + "logout", headers={"X-CSRF-Token": csrf_of(page)}, timeout=10, allow_redirects=False)
    assert r.status_code == 302
    assert s.get(web.url + "api/status", timeout=10).status_code == 401


def test_a_token_logs_in_or_reads_the_api_as_a_bearer_and_a_wrong_one_does_not(procs, fake_buck, tmp_path,
                                                                              users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    r = requests.get(web.url + "api/status", headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=10)
    assert r.status_code == 200 and "bucks" in r.json()
    r = requests.get(web.url + "api/status", headers={"Authorization": "Bearer " + tokens.new_token()}, timeout=10)
    assert r.status_code == 401
    s = web.login("", token=OPS_TOKEN)
    assert s.get(web.url + "api/status", timeout=10).status_code == 200


def test_a_socket_io_connection_without_a_login_is_refused(procs, fake_buck, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    assert "login required" in socketio_connect(requests.Session(), web.url)
    assert "login required" in socketio_connect(requests.Session(), web.url, {"token": "forged"})
    answer = socketio_connect(web.login("alice", PASSWORDS["alice"]), web.url)
    assert "40{\"sid\"" in answer and "hello" in answer
    assert "hello" in socketio_connect(requests.Session(), web.url, {"token": OPS_TOKEN})


def test_beyond_127_0_0_1_the_web_app_refuses_to_start_without_users(procs, fake_buck, tmp_path):
    port = free_port()
    proc = procs("web", "--listen", f"0.0.0.0:{port}", "--feed", fake_buck().endpoint).expect_exit(1)
    poll_until(lambda: not proc.alive(), what="helios web to refuse to start")
    assert proc.stop() == 1
    assert "needs [web] users or tokens" in proc.output()


def test_a_session_key_file_readable_by_others_is_refused(procs, fake_buck, tmp_path, users_toml):
    key = tmp_path / "session.key"
    key.write_bytes(os.urandom(48).hex().encode())
    key.chmod(0o644)
    (tmp_path / "w.toml").write_text(users_toml + f'secret_file = "{key}"\n')
    proc = procs("web", "-c", str(tmp_path / "w.toml"), "--listen", "127.0.0.1:0",
                 "--feed", fake_buck().endpoint).expect_exit(1)
    poll_until(lambda: not proc.alive(), what="helios web to refuse to start")
    assert proc.stop() == 1
    assert "readable by others" in proc.output() and "chmod 600" in proc.output()


def test_a_login_outlives_a_restart_with_a_session_key_file_but_not_a_password_change(procs, fake_buck, tmp_path, users_toml):
    key = tmp_path / "session.key"
    key.write_bytes(os.urandom(48).hex().encode())
    key.chmod(0o600)
    toml = users_toml + f'secret_file = "{key}"\n'
    buck = fake_buck().endpoint
    web = start_auth_web(procs, tmp_path, toml, buck)
    port = web.url.rstrip("/").rpartition(":")[2]  # restarted on the same address: the login must outlive it
    s = web.login("alice", PASSWORDS["alice"])
    web.proc.stop()
    web = start_auth_web(procs, tmp_path, toml, buck, listen=f"127.0.0.1:{port}")
    assert s.get(web.url + "api/status", timeout=10).status_code == 200
    # A new password for alice ends the sessions opened with the old one.
    web.proc.stop()
    changed = re.sub(r'"alice:[^"]+"', f'"alice:{hash_password("a new one")}"', toml)
    web = start_auth_web(procs, tmp_path, changed, buck, listen=f"127.0.0.1:{port}")
    assert s.get(web.url + "api/status", timeout=10).status_code == 401
    assert web.login("alice", "a new one").get(web.url + "api/status", timeout=10).status_code == 200


def test_past_max_waiting_the_connection_that_waited_longest_gets_503_and_the_new_one_is_served(
        procs, fake_buck, tmp_path):
    web = start_auth_web(procs, tmp_path, "[web]\nmax_waiting = 3\n", fake_buck().endpoint)
    port = int(web.url.rsplit(":", 1)[1].strip("/"))
    held = []
    try:
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.05)  # in order
        new = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(new)
        assert held[0].recv(200).startswith(b"HTTP/1.1 503")  # the oldest made room
        new.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert new.recv(200).startswith(b"HTTP/1.1 200")
    finally:
        for s in held:
            s.close()
    poll_until(lambda: requests.get(web.url, timeout=5).status_code == 200, what="room again")


# --- in Chromium ---

def login_page(chromium, web, user, password):
    context = chromium.new_context(viewport={"width": 1400, "height": 800})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(web.url)
    assert "/login" in page.url
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("#login")
    wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null", timeout=10_000)
    return context, page, errors


def test_in_chromium_a_user_logs_in_watches_the_live_tail_and_logs_out(procs, fake_buck, chromium, tmp_path,
                                                                      users_toml):
    buck = fake_buck()
    web = start_auth_web(procs, tmp_path, users_toml, buck.endpoint)
    context = chromium.new_context()
    page = context.new_page()
    page.goto(web.url)
    page.fill("#user", "alice")
    page.fill("#password", "not it")
    page.click("#login")
    assert "Wrong user name" in page.text_content("#login-error")
    context.close()
    context, page, errors = login_page(chromium, web, "alice", PASSWORDS["alice"])
    try:
        buck.wait_subscribed()
        buck.publish([event(1, "after login")])
        assert until_shown(page, 1) == ["after login"]
        assert page.text_content("#who") == "alice"
        page.click("#logout button")
        page.wait_for_url("**/login")
        # The socket of that login is closed: nothing more reaches the old page's socket.
        poll_until(lambda: page.goto(web.url) and "/login" in page.url, what="logged out")
        assert not errors
    finally:
        context.close()


def test_in_chromium_a_user_limited_to_prod_receives_no_other_environment_on_any_filter(
        procs, fake_buck, chromium, tmp_path, users_toml):
    buck = fake_buck()
    web = start_auth_web(procs, tmp_path, users_toml, buck.endpoint)
    ctx_a, alice, errors_a = login_page(chromium, web, "alice", PASSWORDS["alice"])
    ctx_b, bob, errors_b = login_page(chromium, web, "bob", PASSWORDS["bob"])
    try:
        buck.wait_subscribed()
        buck.publish([event(1, "staging secret")], environment="staging")
        buck.publish([event(2, "prod line")], environment="prod")
        assert until_shown(alice, 2) == ["staging secret", "prod line"]
        assert until_shown(bob, 1) == ["prod line"]
        # Bob asks for staging: refused, with the reason, and his old filter stays.
        bob.fill("#f-environment", "staging")
        bob.press("#f-text", "Enter")
        poll_until(lambda: bob.is_visible("#filter-error"), what="the refusal")
        assert "you may not see staging" in bob.text_content("#filter-error")
        # A page that bypasses the form (a hand-made socket.io message) gets no more.
        answers = bob.evaluate("""() => new Promise(done => {
            window.rogue = [];
            const s = io({transports: ["websocket"]});
            s.on("lines", (d, ack) => { window.rogue.push(...d.rows); if (ack) ack(); });
            s.on("connect", () => s.emit("filter", {environment: "staging,prod"}, r1 =>
                s.emit("filter", {environment: ""}, r2 => done([r1, r2]))));
        })""")
        assert "you may not see staging" in answers[0]["error"]
        assert answers[1]["ok"] and answers[1]["filter"]["environment"] == "prod"
        buck.publish([event(3, "staging again")], environment="staging")
        buck.publish([event(4, "prod again")], environment="prod")
        assert until_shown(alice, 4)[2:] == ["staging again", "prod again"]
        poll_until(lambda: "prod again" in messages(bob), what="bob's next prod line")
        assert messages(bob) == ["prod line", "prod again"]
        rogue = poll_until(lambda: (r := bob.evaluate("window.rogue")) and r, what="the hand-made socket's lines")
        assert [row[5] for row in rogue] == ["prod again"] and {row[1] for row in rogue} == {"prod"}
        assert bob.evaluate("window.heliosLive.received") == 2
        assert not errors_a and not errors_b
    finally:
        ctx_a.close()
        ctx_b.close()


def test_in_chromium_a_socket_io_message_over_max_message_bytes_closes_its_socket(procs, fake_buck, chromium,
                                                                                 tmp_path):
    web = start_auth_web(procs, tmp_path, "[web]\nmax_message_bytes = 2048\n", fake_buck().endpoint)
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(web.url)
        wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null", timeout=10_000)
        outcome = page.evaluate("""() => new Promise(done => {
            const s = io({transports: ["websocket"], reconnection: false});
            let small = null;
            s.on("connect", () => s.emit("filter", {text: "small"}, r => {
                small = r;
                s.emit("filter", {text: "x".repeat(5000)}, big => done(["answered", small, big]));
            }));
            s.on("disconnect", reason => done(["disconnected", small]));
        })""")
        assert outcome[0] == "disconnected" and outcome[1]["ok"], outcome
        # The page's own socket is still there and answers.
        assert page.evaluate("""() => new Promise(done =>
            io({transports: ["websocket"]}).emit("filter", {text: "ok"}, r => done(r.ok)))""")
    finally:
        context.close()


def test_hash_password_prints_a_users_entry_that_logs_in(procs, fake_buck, tmp_path):
    done = subprocess.run([sys.executable, "-m", "helios", "hash-password", "--user", "carol", "--env", "prod",
                           "--stdin"], input="s3cret pass\n", capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    entry = done.stdout.strip()
    assert entry.startswith('"carol:$argon2id$') and entry.endswith(':prod"')
    web = start_auth_web(procs, tmp_path, f"[web]\nusers = [{entry}]\n", fake_buck().endpoint)
    s = web.login("carol", "s3cret pass")
    assert s.get(web.url + "api/status", timeout=10).status_code == 200
    empty = subprocess.run([sys.executable, "-m", "helios", "hash-password", "--stdin"], input="\n",
                           capture_output=True, text=True, cwd=ROOT)
    assert empty.returncode == 2 and "empty" in empty.stderr
