"""Attacks on ``helios web`` that only a browser makes, in headless Chromium
against a real process: DNS rebinding, framing by another site, and that
every page still works under its Content-Security-Policy.

Chromium here resolves ``rebind.attacker.example`` and ``evil.example`` to
127.0.0.1 (``--host-resolver-rules``), which is what a rebinding attacker's
DNS server does once the attacker's page is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import poll_until
from tests.integration.test_web_auth import start_auth_web
from tests.integration.webpage import CHROMIUM, CHROMIUM_ARGS, PASSWORDS, event, wait_js

REBIND = "rebind.attacker.example"

# What the attacker's page does once its name points to 127.0.0.1: read the
# app as its own origin.
ATTACK = """<!doctype html><html><body><script>
window.results = {};
async function probe(path, init) {
  try { const r = await fetch(path, init); window.results[path] = [r.status, await r.text()]; }
  catch (e) { window.results[path] = ["error", String(e)]; }
}
(async () => {
  await probe("/api/status");
  await probe("/api/search?env=prod");
  await probe("/");
  await probe("/socket.io/?EIO=4&transport=polling");
  await probe("/api/history", {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify({environment: "prod", start: "-2h", end: "-1h"})});
  const ws = new WebSocket("ws://" + location.host + "/socket.io/?EIO=4&transport=websocket");
  ws.onmessage = (m) => { window.results.ws = ["message", m.data]; };
  ws.onerror = () => { window.results.ws = window.results.ws || ["error", ""]; };
  ws.onclose = () => { window.results.ws = window.results.ws || ["closed", ""]; };
})();
</script></body></html>"""


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian packages chromium and chromium-driver; `make sysdeps`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        # Recent Chromium refuses a public page's requests to 127.0.0.1 itself (Local Network
        # Access); Firefox and older browsers do not, so the web app must hold without it.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [
            f"--host-resolver-rules=MAP {REBIND} 127.0.0.1, MAP evil.example 127.0.0.1",
            "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
            "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults"])
        yield browser
        browser.close()


def test_in_chromium_a_rebinding_page_reads_nothing_and_opens_no_socket(procs, fake_buck, chromium, tmp_path):
    """Attack #5: the attacker's page, on its own name now resolving to
    127.0.0.1, fetched /api/search and the CSRF token, POSTed a history
    request and said hello on socket.io. Every one now gets 421."""
    buck = fake_buck()
    web = start_auth_web(procs, tmp_path, "[web]\n", buck.endpoint)  # no logins: the case that was open
    port = int(web.url.rstrip("/").rsplit(":", 1)[1])
    context = chromium.new_context()
    page = context.new_page()
    try:
        # The attacker's own server served this page before the name was rebound.
        page.route(f"http://{REBIND}:{port}/evil.html",
                   lambda route: route.fulfill(status=200, content_type="text/html", body=ATTACK))
        page.goto(f"http://{REBIND}:{port}/evil.html")
        results = poll_until(lambda: (r := page.evaluate("window.results")) and len(r) == 6 and r, timeout=20,
                             what="the attacker's probes")
        for path in ("/api/status", "/api/search?env=prod", "/", "/socket.io/?EIO=4&transport=polling",
                     "/api/history"):
            status, text = results[path]
            assert status == 421, (path, status, text[:200])
            assert "csrf" not in text.lower() and "sid" not in text
        assert results["ws"][0] in ("error", "closed"), results["ws"]
        # The app itself, by its own name, works in the same browser.
        ok = page.goto(web.url)
        assert ok.status == 200
        wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null", timeout=10_000)
        # Going to the attacker's name directly shows the refusal, not the page.
        refused = page.goto(f"http://{REBIND}:{port}/")
        assert refused.status == 421 and "allowed_hosts" in page.content()
    finally:
        context.close()


def full_toml(tmp_path: Path, users: str) -> str:
    return users.replace("[web]", f'[history]\ndir = "{tmp_path / "history"}"\n\n[porter]\nindex_dir = '
                                  f'"{tmp_path / "index"}"\n\n[web]')


def test_in_chromium_every_page_works_under_its_content_security_policy(procs, fake_buck, chromium, tmp_path,
                                                                       users_toml):
    buck = fake_buck()
    web = start_auth_web(procs, tmp_path, full_toml(tmp_path, users_toml), buck.endpoint)
    context = chromium.new_context(viewport={"width": 1400, "height": 800})
    # Init scripts come in through DevTools, outside the policy: they see every violation.
    context.add_init_script("window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
                            "(e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
    page = context.new_page()
    errors, console, sockets = [], [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("websocket", lambda ws: sockets.append(ws))
    try:
        page.goto(web.url + "login")
        assert page.evaluate("window.cspViolations") == []
        page.fill("#user", "alice")
        page.fill("#password", PASSWORDS["alice"])
        page.click("#login")
        wait_js(page, "window.heliosLive && window.heliosLive.filterSent !== null", timeout=10_000)
        buck.wait_subscribed()
        buck.publish([event(1, "under the policy")])
        poll_until(lambda: "under the policy" in page.text_content("#lines"), what="the line shown")
        # socket.io got its websocket (a blocked one would fall back to polling without a word).
        assert any("/socket.io/" in ws.url and "transport=websocket" in ws.url for ws in sockets)
        page.fill("#f-text", "nothing matches this")
        page.press("#f-text", "Enter")  # the form does not submit (its handler is in live.js now)
        assert page.url.rstrip("/") == web.url.rstrip("/")
        assert page.evaluate("window.cspViolations") == []
        for path, ready in (("search", "window.heliosSearch"), ("archie", "window.heliosArchie && "
                                                                         "window.heliosArchie.polls >= 1")):
            page.goto(web.url + path)
            wait_js(page, ready, timeout=10_000)
            assert page.evaluate("window.cspViolations") == [], path
        assert not errors, errors
        assert not [m for m in console if "Content Security Policy" in m], console
    finally:
        context.close()


def test_in_chromium_another_site_cannot_frame_the_pages(procs, fake_buck, chromium, tmp_path, users_toml):
    web = start_auth_web(procs, tmp_path, users_toml, fake_buck().endpoint)
    context = chromium.new_context()
    page = context.new_page()
    try:
        frame_html = (f'<!doctype html><iframe id="f" src="{web.url}login" width="600" height="400"></iframe>')
        page.route("http://evil.example/frame.html",
                   lambda route: route.fulfill(status=200, content_type="text/html", body=frame_html))
        page.goto("http://evil.example/frame.html")
        frame = poll_until(lambda: next((f for f in page.frames if f != page.main_frame), None),
                           what="the iframe")
        # A refused frame is Chromium's error page: no login form in it.
        poll_until(lambda: frame.url.startswith("chrome-error:") or frame.url.startswith(web.url), what="the frame")
        assert page.frame_locator("#f").locator("#login").count() == 0
        assert json.dumps(page.evaluate("document.getElementById('f').src")).find("login") > 0
    finally:
        context.close()
