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

HTTP: ``/`` the page, ``/api/status`` the status as JSON, ``/static/...``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask_socketio import SocketIO
from werkzeug.serving import make_server

from helios import __version__
from helios.errors import FilterError, ServiceError
from helios.web.feed import Feed
from helios.web.filters import Filter
from helios.web.sessions import Batch, Hub, Session

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


def create_app(cfg) -> tuple[Flask, SocketIO, Feed]:
    """The Flask app, its SocketIO, and the (not yet started) feed."""
    app = Flask(__name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates"))
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 0
    sio = SocketIO(app, async_mode="threading", logger=False, engineio_logger=False,
                   ping_interval=10, ping_timeout=10)
    hub = Hub(cfg.session_rate, cfg.max_lag)

    def send(session: Session, batch: Batch) -> None:
        sio.server.emit("lines", {"rows": batch.rows, "dropped": batch.dropped}, to=session.sid,
                        callback=lambda *_: session.acked())

    def broadcast(status: dict) -> None:
        if hub.sessions:
            sio.server.emit("status", status)

    feed = Feed(cfg, hub, send, broadcast)

    @app.get("/")
    def page():
        return render_template("live.html", version=__version__)

    @app.get("/api/status")
    def status():
        out = dict(feed.status())
        out["sessions"] = [dict(s.stats(), sid=s.sid) for s in hub.snapshot()]
        return jsonify(out)

    @sio.on("connect")
    def connect(auth=None):
        hub.add(request.sid)
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
        if not hub.set_filter(request.sid, f):
            return {"error": "this page is not connected any more; reload it"}
        return {"ok": True, "filter": f.describe()}

    return app, sio, feed


class LiveTail:
    """The web process: the feed thread plus the HTTP/socket.io server."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.app, self.sio, self.feed = create_app(cfg)
        host, _, port = cfg.listen.rpartition(":")
        host = host.strip("[]")
        try:
            self.server = make_server(host, int(port), self.app, threaded=True)
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
        self.feed.start()
        log.info("Serving the live tail on %s, fed by %d buck(s): %s.", self.url, len(self.cfg.bucks_pub),
                 ", ".join(self.cfg.bucks_pub))
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self.feed.stop()
            self.feed.join(5)
            self.server.server_close()
            log.info("The live tail stopped.")
