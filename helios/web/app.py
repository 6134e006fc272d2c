"""``helios web``: the page, its socket.io endpoint, and the process that runs them.

One process subscribes to every buck and serves every browser (rather than
each browser connecting to every buck): a browser keeps one connection
whatever the number of bucks, dedup and time-order merging happen once, and
filters run on the server, so only what a page shows crosses the network.

Socket.io runs in Flask-SocketIO's ``threading`` mode: websockets are served
by simple-websocket on Werkzeug's threaded server, and the feed is a plain
thread with plain (blocking) ZeroMQ sockets. eventlet and gevent would need
monkey-patching and green ZeroMQ sockets for no gain here: a live tail has a
handful of browsers, and the work per line (decode, dedup, filter) is the
same in any mode. eventlet is in maintenance mode besides.

Events, server to browser::

    hello   {max_lines, bucks, version}            on connect
    lines   {rows: [[time_ms, env, host, app, severity, message], ...], dropped: N}
            acknowledged by the page once rendered (flow control, see sessions)
    status  {bucks: [{endpoint, state, since, events, ...}], counts: {...}}   every second

browser to server::

    filter  {environment, host, app, severity, text, regex, ignore_case}
            answered {ok: true, filter: {...}} or {error: "what is wrong"}

HTTP: ``/`` the page, ``/api/status`` the status as JSON, ``/static/...``,
``/login`` and ``/logout``.

Every answer, socket.io's too, passes ``helios.web.guard`` (the Host
allow-list against DNS rebinding; CSP, X-Frame-Options, Referrer-Policy),
and connections are served by ``helios.web.gate`` (a thread only once a
request's headers are in; header and body timeouts; a cap per client).

Who may connect, and what each sees, is ``helios.web.auth``'s: every route
and socket.io connection passes its checks, and a session of an account
limited to some environments gets a filter restricted to them
(``helios.web.sessions.restricted``). Limits: ``max_message_bytes`` per
socket.io message (engine.io closes a connection that sends more), and
``max_connections`` requests in progress (a websocket holds one) and live
sessions.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Flask, jsonify, render_template, request, session
from flask_socketio import ConnectionRefusedError as SocketRefused
from flask_socketio import SocketIO

from helios import __version__
from helios.errors import FilterError, ServiceError
from helios.web.auth import Auth, loopback
from helios.web.feed import Feed
from helios.web.filters import Filter
from helios.web.gate import GatedServer, no_timeout_on_upgrade
from helios.web.guard import Hosts, guard
from helios.web.sessions import Batch, Hub, Session

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


class _UnreadableMessage(logging.Filter):
    """engine.io logs a traceback for every socket.io message that cannot be
    decoded; a broken or hostile client could fill the log with them. Such a
    message is one warning line; an error in our own handlers keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        tb = exc.__traceback__ if exc is not None else None
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        # Raised inside python-socketio itself (decoding), not in a handler of ours.
        if tb is not None and "/socketio/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            record.msg, record.args = "A socket.io message could not be read (%s: %.200s); ignored.", (
                type(exc).__name__, exc)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def create_app(cfg, full=None) -> tuple[Flask, SocketIO, Feed]:
    """The Flask app, its SocketIO, and the (not yet started) feed. With the
    whole config ``full``, also the search page and archie (``helios.web.indexes``)."""
    app = Flask(__name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates"))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 0
    sio = SocketIO(app, async_mode="threading", logger=False, engineio_logger=False,
                   ping_interval=10, ping_timeout=10, max_http_buffer_size=cfg.max_message_bytes)
    hub = Hub(cfg.session_rate, cfg.max_lag)
    auth = Auth(cfg)

    def logged_out(login_id: str) -> None:
        for s in hub.snapshot():
            if s.login == login_id:
                sio.server.disconnect(s.sid, namespace="/")

    auth.install(app, on_logout=logged_out)
    app.extensions["helios_auth"] = auth

    def send(session: Session, batch: Batch) -> None:
        sio.server.emit("lines", {"rows": batch.rows, "dropped": batch.dropped}, to=session.sid,
                        callback=lambda *_: session.acked())

    def broadcast(status: dict) -> None:
        if hub.sessions:
            sio.server.emit("status", status)

    feed = Feed(cfg, hub, send, broadcast)

    @app.get("/")
    def page():
        # Links to the search page and archie when this process serves them (a whole config).
        return render_template("live.html", version=__version__, pages="search" in app.blueprints)

    @app.get("/api/status")
    def status():
        out = dict(feed.status())
        account = auth.current()
        mine = session.get("login") if account.environments is not None else None
        # An account limited to some environments sees its own pages only, not
        # what the others watch.
        out["sessions"] = [dict(s.stats(), sid=s.sid) for s in hub.snapshot()
                           if account.environments is None or (mine and s.login == mine)]
        gate = app.extensions.get("helios_gate")
        if gate is not None:  # connections waiting for their request, refused, timed out
            out["connections"] = gate.stats()
        return jsonify(out)

    @sio.on("connect")
    def connect(data=None):
        account = auth.current()
        if account is None and isinstance(data, dict) and isinstance(data.get("token"), str):
            account = auth.check_token(data["token"])  # scripts: io({auth: {token}})
        if account is None:
            raise SocketRefused("login required")
        if len(hub.sessions) >= cfg.max_connections:
            raise SocketRefused("too many live pages open; try again later")
        hub.add(request.sid, allowed=account.environments, login=session.get("login", ""))
        sio.emit("hello", {"max_lines": cfg.max_lines, "bucks": list(cfg.bucks_pub), "version": __version__,
                           "status": feed.status()}, to=request.sid)

    @sio.on("disconnect")
    def disconnect(*_):
        hub.remove(request.sid)

    @sio.on("filter")
    def set_filter(spec=None):
        try:
            f = Filter.parse(spec)
        except FilterError as exc:
            return {"error": str(exc)}
        try:
            if not hub.set_filter(request.sid, f):
                return {"error": "this page is not connected any more; reload it"}
        except FilterError as exc:  # an environment this account may not see
            return {"error": str(exc)}
        s = hub.get(request.sid)
        return {"ok": True, "filter": (s.wanted if s is not None else f).describe()}

    if full is not None:
        from helios.web.indexes import install

        install(app, full)
    # Outside Flask-SocketIO's middleware, so that /socket.io/ passes the Host check too.
    app.wsgi_app = guard(no_timeout_on_upgrade(app.wsgi_app), Hosts(cfg.listen, cfg.allowed_hosts))
    return app, sio, feed


class LiveTail:
    """The web process: the feed thread plus the HTTP/socket.io server."""

    def __init__(self, cfg, full=None) -> None:
        self.cfg = cfg
        self.app, self.sio, self.feed = create_app(cfg, full)
        host, _, port = cfg.listen.rpartition(":")
        host = host.strip("[]")
        auth = self.app.extensions["helios_auth"]
        if not auth.required and not loopback(host):
            raise ServiceError(
                f"helios web would serve every log line to anybody who reaches {cfg.listen}: listening "
                "beyond 127.0.0.1 needs [web] users or tokens (see `helios hash-password` and "
                "docs/security.md), or listen on 127.0.0.1 behind a proxy that logs people in")
        try:
            self.server = GatedServer(host, int(port), self.app, cfg)
            self.app.extensions["helios_gate"] = self.server
        except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
            raise ServiceError(f"cannot listen on {cfg.listen}: {exc}") from None
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server.server_port}/"
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the server to finish; safe from a signal handler (the server's
        shutdown waits for its loop, so it runs on its own thread)."""
        if not self._stop.is_set():
            self._stop.set()
            self.feed.stop()
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def run(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        logging.getLogger("engineio.server").addFilter(_UnreadableMessage())
        self.metrics = None
        if self.cfg.metrics:
            from helios.metrics import Endpoint, web_families

            self.metrics = Endpoint.start("web", self.url, self.cfg.metrics, web_families(self.feed, self.feed.hub))
        self.feed.start()
        log.info("Serving the live tail on %s, fed by %d buck(s): %s; %s; %s.", self.url, len(self.cfg.bucks_pub),
                 ", ".join(self.cfg.bucks_pub),
                 "a login is required" if self.app.extensions["helios_auth"].required
                 else "no login (this machine only)",
                 f"search on {self.url}search, archie on {self.url}archie" if "search" in self.app.blueprints
                 else "no search or archie (they need the porter's settings: helios web -c helios.toml)")
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self.feed.stop()
            self.feed.join(5)
            self.server.server_close()
            if self.metrics is not None:
                self.metrics.close()
            log.info("The live tail stopped.")
