"""The web app's HTTP server: slow clients wait without a thread, and cannot
lock anybody out.

Werkzeug's threaded server gives every connection a thread from the moment it
is accepted, and that thread blocks reading the request line: 200 idle TCP
connections took every slot of ``max_connections`` and ``/login`` answered
503 for as long as they stayed open. Here a connection gets a thread only
once its whole request (request line, headers and body) has arrived:

- the **gate** thread holds every new connection in one selector and reads
  what it sends, without blocking, until the empty line that ends the
  headers. A connection that has not sent them ``header_timeout`` seconds
  after it opened is closed; so is one whose head grows over
  ``MAX_HEAD`` bytes (431). Then, for a request with a body
  (``Content-Length``), it reads the body too: it has ``body_timeout``
  seconds for it, and a body over ``max_body`` (the app's own limit,
  ``max_message_bytes``) gets 413 at once. A chunked body gets 411: no
  page or script of this app sends one, and its end could only be found
  by a thread. At most ``max_waiting`` connections wait at once (a socket
  and what they sent, no thread); past it, those that have waited longest
  are closed to make room for new ones;
- then the connection takes one of ``max_connections`` slots (503 if none is
  free) and a thread serves its one request (werkzeug closes every
  connection after its answer) from what the gate read. Every write waits
  at most ``body_timeout`` for a client that does not read (and reading,
  should the app read past what the gate took, has the same deadline); a
  websocket, once upgraded, has no timeout (socket.io pings it);
- ``max_connections_per_client`` caps the connections of one client address
  (waiting, served and websockets together); more are answered 503 and
  closed as they are accepted.

So a slowloris attacker holds sockets, never threads, and from one address
no more than its cap; the bound on everything is the file-descriptor limit
(``max_waiting`` and ``max_connections`` should stay well under it).
"""

from __future__ import annotations

import errno
import io
import logging
import resource
import selectors
import socket
import threading
import time
from collections import Counter, deque

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024  # bytes of request line and headers (http.server refuses lines over 64 KiB too)
EVICT_MARGIN = 64  # new connections the accepting thread takes past max_waiting, for the gate to evict old ones for


def _answer(status: bytes, text: bytes) -> bytes:
    return (b"HTTP/1.1 %s\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (status, len(text), text))


TOO_MANY = _answer(b"503 Service Unavailable", b"too many open connections; retry later\n")
TOO_MANY_CLIENT = _answer(b"503 Service Unavailable", b"too many open connections from your address; "
                                                      b"retry later\n")
HEAD_TOO_LARGE = _answer(b"431 Request Header Fields Too Large", b"the request's headers are too large\n")
BODY_TOO_LARGE = _answer(b"413 Content Too Large", b"the request's body is too large\n")
LENGTH_REQUIRED = _answer(b"411 Length Required", b"send the body with a Content-Length "
                                                  b"(chunked bodies are not taken)\n")
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TIMED_OUT = _answer(b"408 Request Timeout", b"the request's body did not arrive in time (body_timeout)\n")
BAD_LENGTH = _answer(b"400 Bad Request", b"the Content-Length header is not a number\n")


class _Prefixed(io.RawIOBase):
    """A socket read through what the gate already read of it, with a
    deadline for the whole request (its body): a read past it raises
    TimeoutError, which werkzeug treats as a dropped connection."""

    def __init__(self, head: bytes, sock: socket.socket, deadline: float, write_timeout: float) -> None:
        self.head, self.sock, self.deadline, self.write_timeout = memoryview(head), sock, deadline, write_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive within body_timeout")
        if self.sock.gettimeout() is None:  # upgraded to a websocket: no deadline any more
            return self.sock.recv_into(buf)
        self.sock.settimeout(left)
        try:
            return self.sock.recv_into(buf)
        finally:
            if self.sock.gettimeout() is not None:
                self.sock.settimeout(self.write_timeout)


class GatedHandler(WSGIRequestHandler):
    """Werkzeug's handler, reading the request through what the gate read."""

    def setup(self) -> None:
        super().setup()
        server: GatedServer = self.server  # type: ignore[assignment]
        head = server._local.head
        self.connection.settimeout(server.body_timeout)
        raw = _Prefixed(head, self.connection, time.monotonic() + server.body_timeout, server.body_timeout)
        self.rfile = io.BufferedReader(raw, 65536)

    def log_request(self, *args) -> None:  # werkzeug logs one line per request at INFO otherwise
        pass


def fit_fd_limit(max_waiting: int, max_connections: int, spare: int = 256) -> int:
    """``max_waiting``, lowered if the file-descriptor limit cannot hold it
    with ``max_connections`` served and ``spare`` for files and ZeroMQ.
    Raises the soft limit towards the hard one first (as Go programs do):
    a systemd service starts with 1,024."""
    need = max_waiting + max_connections + spare
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        want = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return max_waiting
    fits = max(16, soft - max_connections - spare)
    log.warning("helios web: the file-descriptor limit (%d) leaves room for %d connections waiting for their "
                "request, not max_waiting = %d; raise it (LimitNOFILE, ulimit -n).", soft, fits, max_waiting)
    return fits


class _Waiting:
    __slots__ = ("sock", "addr", "head", "deadline", "open", "want")

    def __init__(self, sock: socket.socket, addr, deadline: float) -> None:
        self.sock, self.addr, self.head, self.deadline, self.open = sock, addr, bytearray(), deadline, True
        self.want = -1  # bytes of head and body the request takes in all, once its headers are in


def body_length(head: bytes) -> tuple[int, bool] | bytes:
    """(the Content-Length of a request head (0 without one), whether it
    expects "100 Continue" before it sends its body), or the answer to
    refuse it with (chunked, or a length that is not a number)."""
    length, expect = 0, False
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return LENGTH_REQUIRED
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                return BAD_LENGTH
            length = int(value)
        elif name == b"expect" and value.strip().lower() == b"100-continue":
            expect = True
    return length, expect


class GatedServer(ThreadedWSGIServer):
    """See the module docstring. ``cfg`` is the ``[web]`` section."""

    def __init__(self, host: str, port: int, app, cfg) -> None:
        super().__init__(host, port, app, handler=GatedHandler)
        self.header_timeout = cfg.header_timeout
        self.body_timeout = cfg.body_timeout
        self.max_waiting = fit_fd_limit(cfg.max_waiting, cfg.max_connections)
        self.max_body = cfg.max_message_bytes
        self.per_client = cfg.max_connections_per_client
        self.slots = threading.BoundedSemaphore(cfg.max_connections)
        self.refused: Counter[str] = Counter()  # why connections were refused
        self.timeouts = 0  # connections closed for not sending their headers or body in time
        self._clients: Counter[str] = Counter()  # open connections per client address
        self._lock = threading.Lock()
        self._local = threading.local()
        self._new: deque[_Waiting] = deque()
        self._waiting = 0  # connections at the gate (queued to it or in its selector)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._closing = False
        self._gate = threading.Thread(target=self._run_gate, name="helios-web-gate", daemon=True)
        self._gate.start()

    # --- the accepting thread (serve_forever)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as exc:
            # Out of file descriptors: the listening socket stays readable, and
            # serve_forever would spin on it. Wait a little for some to close.
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self.refused["descriptors"] += 1
                time.sleep(0.05)
            raise

    def process_request(self, request: socket.socket, client_address) -> None:
        addr = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        # A flood of new connections can outrun the gate's evictions: give it a
        # moment to catch up before turning a connection away.
        for _ in range(100):
            if self._waiting < self.max_waiting + EVICT_MARGIN:
                break
            time.sleep(0.001)
        with self._lock:
            if self.per_client and self._clients[addr] >= self.per_client:
                why, answer = "client", TOO_MANY_CLIENT
            elif self._waiting >= self.max_waiting + EVICT_MARGIN:  # the gate has not caught up
                why, answer = "waiting", TOO_MANY
            else:
                self._clients[addr] += 1
                self._waiting += 1
                why = answer = None
        if why is not None:
            self._refuse(request, why, answer)
            return
        request.setblocking(False)
        self._new.append(_Waiting(request, client_address, time.monotonic() + self.header_timeout))
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:  # the gate has wake-ups pending already
            pass

    def _refuse(self, sock: socket.socket, why: str, answer: bytes) -> None:
        self.refused[why] += 1
        try:
            sock.setblocking(False)
            sock.send(answer)  # a fresh socket's buffer takes it whole; if not, never mind
        except OSError:
            pass
        self._close(sock)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()

    def _forget(self, client_address) -> None:
        addr = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        with self._lock:
            self._clients[addr] -= 1
            if self._clients[addr] <= 0:
                del self._clients[addr]

    def stats(self) -> dict:
        """For /api/status: connections waiting for their request, client
        addresses with a connection open, refusals by reason, timeouts."""
        with self._lock:
            return {"waiting": self._waiting, "clients": len(self._clients), "refused": dict(self.refused),
                    "timeouts": self.timeouts}

    # --- the gate thread

    def _run_gate(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ)
        # By deadline: every connection waiting for its headers has the same timeout,
        # and so has every one waiting for its body (a waiting body's entry in
        # ``order`` is stale: its deadline moved to ``bodies``).
        order: deque[_Waiting] = deque()
        bodies: deque[_Waiting] = deque()
        self._bodies = bodies
        try:
            while not self._closing:
                now = time.monotonic()
                while order and (not order[0].open or order[0].want >= 0 or order[0].deadline <= now):
                    w = order.popleft()
                    if w.open and w.want < 0:
                        self.timeouts += 1
                        self._drop(sel, w)
                while bodies and (not bodies[0].open or bodies[0].deadline <= now):
                    w = bodies.popleft()
                    if w.open:
                        self.timeouts += 1
                        self._drop(sel, w, TIMED_OUT)
                due = [q[0].deadline for q in (order, bodies) if q]
                timeout = max(0.0, min(due) - now) if due else None
                for key, _ in sel.select(timeout):
                    if key.fileobj is self._wake_r:
                        try:
                            self._wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                        while self._new:
                            w = self._new.popleft()
                            sel.register(w.sock, selectors.EVENT_READ, w)
                            order.append(w)
                        self._evict(sel, order, bodies)
                    else:
                        self._read(sel, key.data)
        finally:
            for w in [*order, *bodies]:
                if w.open:
                    self._drop(sel, w)
            sel.close()

    def _evict(self, sel: selectors.BaseSelector, order: deque, bodies: deque) -> None:
        """Over ``max_waiting``: close the connections that have waited
        longest for their headers (then for their bodies), not the new
        ones. A request sent at once waits for nothing, so an attacker who
        fills the gate from many addresses only evicts his own."""
        while self._waiting > self.max_waiting:
            for queue in (order, bodies):
                victim = next((w for w in queue if w.open and (queue is bodies or w.want < 0)), None)
                if victim is not None:
                    break
            else:
                return
            self.refused["evicted"] += 1
            self._drop(sel, victim, TOO_MANY)

    def _read(self, sel: selectors.BaseSelector, w: _Waiting) -> None:
        try:
            data = w.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, w)
            return
        seen = max(0, len(w.head) - 3)
        w.head += data
        if w.want < 0:
            # The head ends at its first empty line (CRLF or, leniently, LF line ends).
            ends = [(i, 4) for i in (w.head.find(b"\r\n\r\n", seen),) if i >= 0]
            ends += [(i, 2) for i in (w.head.find(b"\n\n", seen),) if i >= 0]
            if not ends:
                if len(w.head) > MAX_HEAD:
                    self.refused["head"] += 1
                    self._drop(sel, w, HEAD_TOO_LARGE)
                return
            end, sep = min(ends)
            found = body_length(bytes(w.head[:end]))
            if isinstance(found, bytes):
                self.refused["length"] += 1
                self._drop(sel, w, found)
                return
            length, expect = found
            if length > self.max_body:
                self.refused["body"] += 1
                self._drop(sel, w, BODY_TOO_LARGE)
                return
            w.want = end + sep + length
            if len(w.head) < w.want:  # now the body's clock runs
                w.deadline = time.monotonic() + self.body_timeout
                self._bodies.append(w)
                if expect:  # the client waits for this before it sends the body
                    try:
                        w.sock.send(CONTINUE)
                    except OSError:
                        pass
                return
        elif len(w.head) < w.want:
            return
        if not self.slots.acquire(blocking=False):
            self.refused["busy"] += 1
            self._drop(sel, w, TOO_MANY)
            return
        sel.unregister(w.sock)
        w.open = False
        with self._lock:
            self._waiting -= 1
        w.sock.setblocking(True)
        t = threading.Thread(target=self._serve, args=(w.sock, w.addr, bytes(w.head)),
                             name="helios-web-request", daemon=True)
        try:
            t.start()
        except RuntimeError:  # no thread can be made: the machine is out of them
            self.slots.release()
            self.refused["thread"] += 1
            self._refuse(w.sock, "thread", TOO_MANY)
            self._forget(w.addr)

    def _drop(self, sel: selectors.BaseSelector, w: _Waiting, answer: bytes | None = None) -> None:
        w.open = False
        try:
            sel.unregister(w.sock)
        except (KeyError, ValueError):
            pass
        if answer is not None:
            try:
                w.sock.send(answer)
            except OSError:
                pass
        self._close(w.sock)
        with self._lock:
            self._waiting -= 1
        self._forget(w.addr)

    # --- a request's thread

    def _serve(self, sock: socket.socket, client_address, head: bytes) -> None:
        self._local.head = head
        try:
            self.finish_request(sock, client_address)
        except OSError as exc:
            # The connection went away under its reader (the client reset it, or
            # shutdown closed it): nothing to answer and nothing of ours broke.
            log.debug("A connection from %s ended while it was read: %s.", client_address[0], exc)
        except Exception:  # noqa: BLE001 - socketserver's own policy: log it, serve the others
            self.handle_error(sock, client_address)
        finally:
            self._local.head = b""
            self.shutdown_request(sock)
            self.slots.release()
            self._forget(client_address)

    def server_close(self) -> None:
        if not hasattr(self, "_gate"):  # werkzeug closes a server that could not bind, before our __init__ ran
            super().server_close()
            return
        self._closing = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self._gate.join(5)
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()


def no_timeout_on_upgrade(app):
    """WSGI middleware: a websocket (socket.io) keeps its connection for as
    long as the page is open, so its socket loses the request's timeouts."""
    def wrapped(environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.settimeout(None)
        return app(environ, start_response)
    return wrapped
