"""What the browser tests share (test_web_page.py, test_web_mesh.py,
test_web_auth.py, test_history_web.py, test_fuzz_live.py, test_web_cli.py):
Chromium's settings, a ``helios web`` process, a stand-in buck publishing
real live messages, and reading the page. The fixtures (``chromium``,
``page_of``, ``fake_buck``) are in tests/conftest.py."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import zmq

from helios import tokens
from helios.model import ROW_FIELDS, Event, line_id
from helios.wire import live
from tests.helpers import poll_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = os.environ.get("HELIOS_SCREENSHOTS")


class Web:
    def __init__(self, proc, url: str) -> None:
        self.proc, self.url = proc, url

    def status(self) -> dict:
        with urllib.request.urlopen(self.url + "api/status", timeout=5) as r:
            return json.load(r)


def web_url(proc, timeout: float = 20.0) -> str:
    """The URL a ``helios web`` started with ``--listen HOST:0`` serves on (it logs the port it got)."""
    import re

    def logged():
        assert proc.alive(), f"helios web exited:\n{proc.output()}"
        m = re.search(r"Serving the live tail on (http://\S+/),", proc.output())
        return m and m.group(1)
    return poll_until(logged, timeout, what="helios web to say where it serves")


_webs = itertools.count()


def start_web(procs, *bucks: str, extra: tuple[str, ...] = ()) -> Web:
    """``helios web`` on a port the OS picks, fed by ``bucks`` (live feed endpoints)."""
    args = ["web", "--listen", "127.0.0.1:0"]
    for ep in bucks:
        args += ["--feed", ep]
    proc = procs(*args, *extra, name=f"web-{next(_webs)}")
    web = Web(proc, web_url(proc))

    def answers():
        assert proc.alive(), f"helios web exited:\n{proc.output()}"
        try:
            return web.status()
        except OSError:
            return None

    poll_until(answers, what="helios web to answer")
    return web


class FakeBuck:
    """An XPUB socket publishing live messages, as a buck does."""

    def __init__(self, endpoint: str | None = None, name: str = "fake") -> None:
        self.name = name
        self.sock = zmq.Context.instance().socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        # On a port the OS picks, unless given (a buck that comes back on its address).
        self.sock.bind(endpoint or "tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.meta = live.Meta(name, live.new_incarnation(), 0, 0)
        self.seq: dict[bytes, list[int]] = {}

    def wait_subscribed(self, timeout: float = 10.0) -> bytes:
        """Wait until a subscription reaches us; returns its prefix."""
        if not self.sock.poll(int(timeout * 1000)):
            raise AssertionError(f"no subscription reached {self.endpoint} within {timeout} s")
        msg = self.sock.recv()
        assert msg[:1] == b"\x01", msg
        return msg[1:]

    def publish(self, events: list[Event], environment: str = "prod") -> None:
        """As a buck does: the whole batch on its whole-batch topic, and each
        topic's group on its topic; subscriptions pick which reach whom."""
        rows = [tuple(e)[:ROW_FIELDS] for e in events]
        whole = live.whole_topic(environment)
        seq = self.seq.setdefault(whole, [0, 0])
        times = [r[1] for r in rows]
        meta = self.meta._replace(seq=seq[0], events_before=seq[1])
        self.sock.send_multipart(live.message(environment, "sender", rows, min(times), max(times), whole, meta))
        seq[0] += 1
        seq[1] += len(rows)
        for topic, group in live.group_rows(environment, rows).items():
            seq = self.seq.setdefault(topic, [0, 0])
            meta = self.meta._replace(seq=seq[0], events_before=seq[1])
            times = [r[1] for r in group]
            self.sock.send_multipart(live.message(environment, "sender", group, min(times), max(times), topic, meta))
            seq[0] += 1
            seq[1] += len(group)

    def close(self) -> None:
        self.sock.close(linger=0)


def event(n: int, text: str | None = None, host: str = "web-1", app: str = "nginx", severity: int | None = 6,
          t: int | None = None, age: float = 0.0) -> Event:
    now = time.time_ns()
    received = now - int(age * 1e9)
    return Event(id=line_id(b"k" * 16, n), time=now if t is None else t, received=received, host=host, app=app,
                 severity=severity, source="/var/log/test.log", offset=n,
                 message=(text if text is not None else f"line {n:06d} GET /index.html 200").encode(),
                 fields=None)


def messages(page) -> list[str]:
    """The messages the page holds, oldest first (it draws only those in view)."""
    return page.evaluate("window.heliosLive.lines()")


VISIBLE_ROWS = """() => window.heliosLive.pool
    .filter(e => e.style.display !== "none" && !e.classList.contains("marker"))
    .sort((a, b) => a._seq - b._seq)
    .map(e => [e.className, [...e.children].map(c => c.textContent), e.lastChild.innerHTML])"""


def visible(page) -> list[tuple[str, list[str], str]]:
    """The rows drawn in the page, top to bottom: (class, column texts, message HTML)."""
    return page.evaluate(VISIBLE_ROWS)


def until_shown(page, count: int, timeout: float = 10.0) -> list[str]:
    return poll_until(lambda: len(m := messages(page)) >= count and m, timeout=timeout,
                      what=f"{count} lines in the page")


def set_filter(page, **fields) -> None:
    """Type a filter into the page and wait for the server's answer."""
    before = page.evaluate("window.heliosLive.filterAnswers")
    for name, value in fields.items():
        sel = f"#f-{name.replace('_', '-')}"
        if isinstance(value, bool):
            page.set_checked(sel, value)
        elif name == "severity":
            page.select_option(sel, value)
        else:
            page.fill(sel, value)
    page.press("#f-text", "Enter")
    poll_until(lambda: page.evaluate("window.heliosLive.filterAnswers") > before, what="the server to answer the filter")


def screenshot(page, name: str, tmp_path) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path))
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / name)
    return path


def all_delivered(page, web, check=lambda status: True, timeout: float = 20.0) -> dict:
    """Wait for the positive evidence a negative check needs: ``check`` holds
    for the server's status (say, the copies it must drop have arrived), the
    server holds no line back (its reorder buffer is empty) and the page has
    received every line the server sent it. Returns that status."""
    def done():
        s = web.status()
        counts = s.get("counts", {})
        return (check(s) and counts.get("held", 0) == 0
                and page.evaluate("window.heliosLive.received") >= counts.get("sent", 0) and s)
    return poll_until(done, timeout=timeout, what="the server to have sent, and the page to have, every line")


def wait_js(page, expression: str, timeout: float = 30_000):
    """Wait until a JavaScript expression is truthy in the page. Not
    Playwright's wait_for_function: it evals its predicate inside the page,
    which the pages' Content-Security-Policy (no unsafe-eval) refuses;
    page.evaluate runs through the DevTools protocol, outside the policy."""
    return poll_until(lambda: page.evaluate(expression), timeout=timeout / 1000, interval=0.05,
                      what=expression)


# The logins of the web tests with users (the ``users_toml`` fixture in tests/conftest.py).
PASSWORDS = {"alice": "correct horse battery staple", "bob": "tr0ub4dor&3"}
OPS_TOKEN = tokens.new_token()
