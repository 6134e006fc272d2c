"""The one place that creates ZeroMQ sockets.

Every socket of the mesh is made here from a role, so linger, high-water
marks, reconnect intervals and message size limits are set in one table, and
CURVE keys are applied (``helios.wire.curve``): nothing else may open a
socket, so nothing can open a plaintext one by accident. ZeroMQ's size
limit (MAXMSGSIZE) is per part; ``Receiver`` (at the end) limits whole
messages, all parts together, on the sockets others send to.

CURVE: with a ``Curve`` (given, or the process's, ``curve.installed()``),
every socket over tcp:// or ipc:// is a CURVE socket: a binding role serves
with the server key pair and admits clients through ZAP against the
allow-list (``curve.ZapHandler``, one per context, started here on first
use); a connecting role uses its own key pair and checks the server's
public key. A socket that lacks the keys its side needs is refused
(``ServiceError``), never made in plaintext. inproc:// sockets (the buck's
HTTP pipe) stay plain: they never leave the process.

Roles::

    role     type  binds/connects  used by
    ingest   PULL  bind            buck: batches from tailers and clients
    sender   PUSH  connect         tailer, client: one socket per buck
    handoff  PAIR  bind            buck loop: its end of the inproc pipe from the HTTP ingest thread
    handback PAIR  connect         buck HTTP ingest thread: its end of that pipe
    subscriber SUB connect         live feed readers (web live tail): one socket per buck PUB
    publisher XPUB bind            buck: the live feed; sees subscriptions (helios.wire.publisher)
    listener XSUB  connect         helios subscribe, check, graphite: one socket per buck PUB;
                                   XSUB so that it can report its drops upstream
    query    ROUTER bind           buck: bucket queries (helios.query.server)
    asker    DEALER connect        porter, archie, helios buckets/audit: one socket per buck query

``sender`` sockets set ZMQ_IMMEDIATE: a message is queued only on a completed
connection, so a non-blocking send to a buck that is down fails at once with
``zmq.Again`` instead of piling up in a queue for a peer that may never come
back. That is how a sender knows which bucks are connected.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import zmq

from helios.errors import ServiceError
from helios.wire import curve as curve_mod

log = logging.getLogger(__name__)


# What a live subscriber may send up (a subscription, a drop report), and in how many parts.
UPSTREAM_MAX_BYTES = 32 * 1024  # a drop report of 1,024 incarnations fits
UPSTREAM_MAX_PARTS = 4
# Parts of a bucket query: the ROUTER's routing ids (more than one through a proxy), "", the body.
QUERY_MAX_PARTS = 16


@dataclass(frozen=True)
class Role:
    kind: int
    bind: bool
    options: dict[int, Any] = field(default_factory=dict)


ROLES: dict[str, Role] = {
    "ingest": Role(zmq.PULL, True, {zmq.RCVHWM: 1000, zmq.LINGER: 0}),
    "sender": Role(
        zmq.PUSH,
        False,
        {
            zmq.SNDHWM: 1000,
            zmq.IMMEDIATE: 1,
            # On close, give queued batches a moment to leave; never hang forever.
            zmq.LINGER: 2000,
            zmq.RECONNECT_IVL: 100,
            zmq.RECONNECT_IVL_MAX: 2000,
            zmq.TCP_KEEPALIVE: 1,
        },
    ),
    # A live subscriber reconnects by itself to a buck that went away; when it
    # falls behind, ZeroMQ drops at the high-water mark rather than slow the buck.
    "subscriber": Role(
        zmq.SUB,
        False,
        {
            zmq.RCVHWM: 10000,
            zmq.LINGER: 0,
            zmq.RECONNECT_IVL: 100,
            zmq.RECONNECT_IVL_MAX: 1000,
            zmq.TCP_KEEPALIVE: 1,
        },
    ),
    # Sends never block: a subscriber whose queue is full misses messages, the
    # others do not. NODROP is the publisher's way to notice (it toggles it).
    "publisher": Role(
        zmq.XPUB,
        True,
        # VERBOSE: every subscription comes up with its sender, so that it is
        # charged to a peer (helios.wire.publisher). What comes up is a prefix
        # or a drop report: small (MAXMSGSIZE, and Receiver for the whole message).
        {zmq.SNDHWM: 10000, zmq.XPUB_NODROP: 1, zmq.XPUB_VERBOSE: 1, zmq.MAXMSGSIZE: UPSTREAM_MAX_BYTES,
         zmq.LINGER: 0, zmq.TCP_KEEPALIVE: 1},
    ),
    "listener": Role(
        zmq.XSUB,
        False,
        {
            zmq.RCVHWM: 10000,
            zmq.SNDHWM: 100,
            zmq.LINGER: 0,
            zmq.RECONNECT_IVL: 100,
            zmq.RECONNECT_IVL_MAX: 1000,
            zmq.TCP_KEEPALIVE: 1,
        },
    ),
    # The inproc pipe between a buck's HTTP thread and its loop. No high-water
    # mark: what is in it is bounded by the HTTP ingest's pending-request
    # limit, and a reply dropped at a mark would leave a client without an answer.
    "handoff": Role(zmq.PAIR, True, {zmq.SNDHWM: 0, zmq.RCVHWM: 0, zmq.LINGER: 0}),
    "handback": Role(zmq.PAIR, False, {zmq.SNDHWM: 0, zmq.RCVHWM: 0, zmq.LINGER: 0}),
    # Bucket queries. A request is small (MAXMSGSIZE keeps a hostile one from
    # costing the buck memory); a reply is up to a fetch chunk (4 MiB), so
    # SNDHWM bounds what a client that stops reading costs the buck (16
    # chunks), and clients keep only a few requests in flight. Sends never
    # block the buck: without ROUTER_MANDATORY, a reply to a client that is
    # gone or past its SNDHWM is dropped (the client times out).
    "query": Role(
        zmq.ROUTER,
        True,
        {zmq.SNDHWM: 16, zmq.RCVHWM: 1000, zmq.MAXMSGSIZE: 16 * 1024 * 1024, zmq.LINGER: 0, zmq.TCP_KEEPALIVE: 1},
    ),
    # Not IMMEDIATE: a request waits for the connection being made, so the
    # first query to a buck needs no warm-up; a buck that is down costs its
    # timeout, and the client closes the socket then, dropping what waited.
    "asker": Role(
        zmq.DEALER,
        False,
        {
            zmq.LINGER: 0,
            zmq.RECONNECT_IVL: 100,
            zmq.RECONNECT_IVL_MAX: 2000,
            zmq.TCP_KEEPALIVE: 1,
        },
    ),
}

# Options a caller may override by name (the config speaks in these words).
OPTION_NAMES = {
    "hwm": None,  # resolved per role: SNDHWM for senders, RCVHWM for receivers
    "max_msg_size": zmq.MAXMSGSIZE,
    "linger_ms": zmq.LINGER,
}


class SocketFactory:
    """Makes sockets by role on one context. Not thread-safe, like the sockets
    themselves: each thread that needs sockets uses its own factory or gets its
    sockets made before it starts."""

    _UNSET: Any = object()

    def __init__(self, context: zmq.Context | None = None, curve: "curve_mod.Curve | None" = _UNSET) -> None:
        self.context = context or zmq.Context.instance()
        # None: plaintext. Not given: the process's (the CLI installs [security]).
        self.curve = curve_mod.installed() if curve is SocketFactory._UNSET else curve
        # CURVE server sockets made here and where they are bound, to end
        # their connections when a key leaves the allow-list (reload_allow_list).
        self._served: list[tuple[weakref.ref, str]] = []

    def make(self, role: str, endpoint: str, **overrides: Any) -> zmq.Socket:
        return self._make(role, endpoint, 0, overrides)[0]

    def make_monitored(self, role: str, endpoint: str, events: int,
                       **overrides: Any) -> tuple[zmq.Socket, zmq.Socket]:
        """Like ``make``, plus a PAIR socket that receives the socket's
        connection ``events`` (zmq_socket_monitor; read them with
        ``zmq.utils.monitor``). The monitor is attached before the socket
        connects, so no event is missed. Close it, after
        ``sock.disable_monitor()``, before the socket."""
        return self._make(role, endpoint, events, overrides)

    def _make(self, role: str, endpoint: str, events: int,
              overrides: dict[str, Any]) -> tuple[zmq.Socket, zmq.Socket | None]:
        spec = ROLES[role]
        sock = self.context.socket(spec.kind)
        mon = None
        try:
            for opt, value in spec.options.items():
                sock.setsockopt(opt, value)
            if endpoint.startswith("tcp://["):   # an IPv6 address (helios.wire.address: [::1]:7301)
                sock.setsockopt(zmq.IPV6, 1)
            for name, value in overrides.items():
                if value is None:
                    continue
                opt = OPTION_NAMES[name]
                if opt is None:
                    opt = zmq.SNDHWM if spec.kind in (zmq.PUSH, zmq.PUB, zmq.XPUB) else zmq.RCVHWM
                sock.setsockopt(opt, value)
            secure = self.curve is not None and not endpoint.startswith("inproc://")
            if secure:
                self._secure(sock, role, spec, endpoint)
            if events:
                mon = sock.get_monitor_socket(events)
            if spec.bind:
                sock.bind(endpoint)
                if secure:
                    self._served.append((weakref.ref(sock), sock.getsockopt_string(zmq.LAST_ENDPOINT)))
            else:
                sock.connect(endpoint)
        except ServiceError:
            sock.close(linger=0)
            raise
        except zmq.ZMQError as exc:
            if mon is not None:
                sock.disable_monitor()
                mon.close(linger=0)
            sock.close(linger=0)
            verb = "bind" if spec.bind else "connect to"
            raise ServiceError(f"cannot {verb} {endpoint} ({role} socket): {exc}") from None
        return sock, mon

    def _secure(self, sock: zmq.Socket, role: str, spec: Role, endpoint: str) -> None:
        """Make ``sock`` a CURVE server or client, or refuse (ServiceError)."""
        c = self.curve
        problem = c.server_problem() if spec.bind else c.client_problem()
        if problem:
            verb = "bind" if spec.bind else "connect to"
            raise ServiceError(f"will not {verb} {endpoint} ({role} socket) in plaintext: [security] curve is "
                               f"on, and {problem}")
        if spec.bind:
            # The ZAP handler must run before the first client can knock:
            # with ZAP_ENFORCE_DOMAIN a missing handler refuses, never admits.
            curve_mod.zap_handler(self.context, c.allow_dir)
            sock.curve_server = True
            sock.curve_secretkey = c.server.secret
            sock.curve_publickey = c.server.public
            # The live feed has a ZAP domain of its own: only keys that may
            # subscribe get in (an XPUB cannot refuse a subscription later).
            sock.zap_domain = curve_mod.LIVE_DOMAIN if spec.kind == zmq.XPUB else curve_mod.ZAP_DOMAIN
            sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        else:
            sock.curve_serverkey = c.server_public
            sock.curve_publickey = c.own.public
            sock.curve_secretkey = c.own.secret

    def rights_lookup(self):
        """With CURVE serving: a function from a message's User-Id to the
        current rights of the key ZAP let in (``ZapHandler.rights_of``);
        None without CURVE (no key identifies a peer)."""
        if self.curve is None or self.curve.allow_dir is None or self.curve.server is None:
            return None
        return curve_mod.zap_handler(self.context, self.curve.allow_dir).rights_of

    def curve_counts(self) -> dict | None:
        """With CURVE serving: the ZAP handler's counts (clients allowed,
        refused for their key, refused the live feed for their role)."""
        if self.rights_lookup() is None:
            return None
        return dict(curve_mod.zap_handler(self.context, self.curve.allow_dir).counts)

    def reload_allow_list(self) -> tuple[list[str], list[str]]:
        """Re-read the CURVE allow-list (SIGHUP); returns the names of the keys
        added and removed. When a key was removed, every CURVE server socket
        made here is unbound and bound again: that ends every connection, so
        each client handshakes again and the removed one is refused. (ZAP is
        asked only during a handshake; there is no other way to end one
        client's connection on a bound socket.) Call it from the thread that
        owns the sockets. Clients reconnect by themselves within their
        reconnect interval; what was in flight on a connection may be lost,
        which senders cover (spool re-sends, query timeouts)."""
        if self.curve is None or self.curve.allow_dir is None:
            return [], []
        handler = curve_mod.zap_handler(self.context, self.curve.allow_dir)
        added, removed = handler.reload()
        if removed or handler.changed:  # a changed key is checked again at its next handshake
            live = [(ref(), ep) for ref, ep in self._served]
            self._served = [(weakref.ref(sock), ep) for sock, ep in live if sock is not None and not sock.closed]
            for sock, ep in live:
                if sock is not None and not sock.closed:
                    _rebind(sock, ep)
        return added, removed


def _rebind(sock: zmq.Socket, endpoint: str, timeout: float = 5.0) -> None:
    """Unbind and bind ``endpoint`` again. Unbinding is asynchronous (the I/O
    thread closes the listener), so the port may still be taken for a moment."""
    sock.unbind(endpoint)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                raise ServiceError(f"cannot bind {endpoint} again after reloading the allow-list: {exc}") from None
            time.sleep(0.01)


# ----------------------------------------------------------------------------- whole-message limits

# A refused message this large (all parts) is followed by malloc_trim: see ``Receiver``.
TRIM_BYTES = 4 * 1024 * 1024
REFUSAL_LOG_S = 1.0


class Receiver:
    """Reads one message at a time from a socket, within limits on the whole
    message: at most ``max_parts`` parts and ``max_bytes`` bytes, all parts
    together. ZMQ_MAXMSGSIZE (set by role) limits each part only, so without
    this, 48 parts of 16 MiB each make one 768 MiB message.

    ``recv()`` returns the parts as bytes, None for a refused message (counted
    in ``refused`` by reason, logged at most once per ``REFUSAL_LOG_S`` with
    how many were refused since), or raises ``zmq.Again`` when none waits.
    Parts are taken one by one: once the message is over a limit, what was
    taken is let go and the rest is read as ZeroMQ frames and dropped
    without being copied into Python. After a large refused message the
    freed memory is handed back to the system (glibc ``malloc_trim``): its
    big blocks would otherwise stay in the process's heap, and the buck's
    RSS with them.

    What it cannot do: ZeroMQ delivers a multipart message whole, so while
    one arrives libzmq holds all of its parts (each at most MAXMSGSIZE); a
    sender that never ends a message is bounded only by who may connect
    (CURVE's allow-list).

    With ``peer=True`` the sender of the last message is kept in ``peer``:
    the name of its key as ZAP authenticated it (CURVE), else its IP address
    (the XPUB socket charges subscriptions to it). With ``frames=True`` the
    parts come back as ``zmq.Frame`` (received with copy=False), which carry
    the sender's key (User-Id) and address (Peer-Address) for rights checks."""

    def __init__(self, sock: zmq.Socket, name: str, max_bytes: int, max_parts: int, *,
                 owner: str = "This process", peer: bool = False, frames: bool = False) -> None:
        self.sock = sock
        self.name = name    # of the socket, in logs and stats: "ingest", "query", ...
        self.owner = owner  # who reads it, in logs: "Buck a", "Relay"
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self.want_peer = peer
        self.frames = frames
        self.peer: str | None = None
        self.refused: dict[str, int] = {}
        self.dropped_bytes = 0
        self._logged = -1e9
        self._unlogged = 0

    def recv(self) -> list[Any] | None:
        sock = self.sock
        copy = not self.frames
        first: Any
        if self.want_peer or self.frames:
            frame = sock.recv(zmq.NOBLOCK, copy=False)
            if self.want_peer:
                self.peer = peer_of(frame)
            first = frame if self.frames else frame.bytes
        else:
            first = sock.recv(zmq.NOBLOCK)
        parts = [first]
        size = len(first)
        # The rest of a message is there already: ZeroMQ delivers all of its parts or none.
        while sock.getsockopt(zmq.RCVMORE):
            if size > self.max_bytes or len(parts) >= self.max_parts:
                self._drop(len(parts), size)
                return None
            part = sock.recv(copy=copy)
            parts.append(part)
            size += len(part)
        if size > self.max_bytes:
            self._drop(len(parts), size, done=True)
            return None
        return parts

    def _drop(self, count: int, size: int, done: bool = False) -> None:
        """Read and drop the rest of a message over a limit; count and log it."""
        reason = "too many parts" if count >= self.max_parts and size <= self.max_bytes else "too large"
        sock = self.sock
        who = self.peer if self.want_peer else None
        if not done:
            while sock.getsockopt(zmq.RCVMORE):
                frame = sock.recv(copy=False)  # never copied into a Python object
                if who is None:
                    who = peer_of(frame)
                count += 1
                size += len(frame)
                del frame
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self.dropped_bytes += size
        now = time.monotonic()
        if now - self._logged >= REFUSAL_LOG_S:
            more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
            self._logged, self._unlogged = now, 0
            sender = f" from {who}" if who and who != "?" else ""
            log.warning("%s refused a message of %d parts and %d bytes%s on its %s socket: %s (at most %d "
                        "parts and %d bytes in all)%s.", self.owner, count, size, sender, self.name, reason,
                        self.max_parts, self.max_bytes, more)
        else:
            self._unlogged += 1
        if size >= TRIM_BYTES:
            release_memory()

    def stats(self) -> dict:
        return {"refused": dict(self.refused), "dropped_bytes": self.dropped_bytes}


def peer_of(frame: zmq.Frame) -> str:
    """Who sent ``frame``: the ZAP user id (the z85 key; ``Buck.peer_name``
    gives its name in the allow-list) when there is one, else the peer's IP address, else "?"."""
    for prop in ("User-Id", "Peer-Address"):
        try:
            value = frame.get(prop)
        except zmq.ZMQError:
            continue
        if value:
            return str(value)
    return "?"


_libc: Any = None


def release_memory() -> None:
    """Give freed heap memory back to the system (glibc's malloc_trim; a
    no-op elsewhere). Large blocks freed by libzmq's I/O thread and by
    Python stay in the process otherwise, once glibc's dynamic mmap
    threshold has grown past their size."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
