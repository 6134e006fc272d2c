"""The relay's syslog listeners: UDP, TCP and TLS (RFC 5426, 6587, 5425).

One thread, the relay's: the listening sockets and every connection are
polled with the relay's own ZeroMQ socket (``zmq.Poller`` takes plain file
descriptors), so the spool and the fanout, which are not thread-safe, are
used by one thread only, and there is no queue in memory to lose.

The guarantee, per transport:

- **TCP and TLS** have no acknowledgement of their own in syslog, so the
  only promise a receiver can keep is *read, spool, then read more*: each
  read is cut into messages (``framing.Deframer``), parsed and encoded into
  a frame (``events.Framer``), and appended to the spool, with at most
  ``syslog_workers`` reads between the socket and the spool: they are
  parsed in worker processes (``workers.Pool``) while the next read is
  taken, and spooled in the order they were read. With every worker busy
  the relay reads nothing, so this is a bounded extension of the kernel's
  receive buffer (at most ``syslog_workers`` x ``READ_BYTES``), never a
  queue that grows. A ``kill -9`` loses what the kernel's buffer and those
  reads held (the sender counted both as sent, and no receiver can take
  them back: TCP syslog has no acknowledgement); everything spooled is kept.
  When the spool cannot take more, the sockets are not read (they are left
  out of the poll): the kernel's buffers fill, TCP's window closes and the
  senders wait (rsyslog queues, ``logger`` blocks). That is back-pressure,
  never a drop. The spool "cannot take more" when a write fails (a full
  disk: the frame is kept and written again every housekeeping turn), or
  when it is at its size limit and its oldest bucket has never reached a
  buck, so that the prune that would make room would lose it
  (``spool_full``).
- **UDP** has no back-pressure at all: a datagram not read in time is
  dropped by the kernel, and counted there (``/proc/net/udp``, the column
  ``drops`` of the socket, read at each stats write). While the spool is
  full, datagrams are read and dropped with the reason ``spool full``.

Every problem has a counted reason (``drops[input][reason]``: oversized,
malformed octet count, empty message, incomplete frame, idle timeout,
tls handshake failed, too many connections, connection error, spool full,
accept error, receive error; for UDP also kernel receive buffer full),
logged at most once a second per reason, never fatal. A connection that
sends nothing for ``syslog_idle_timeout`` seconds (a half-open one: its
peer vanished without a FIN) is closed; what it had sent is kept.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections import Counter

import zmq

from helios.errors import ServiceError
from helios.gctune import tune_gc
from helios.parsing.layouts import speedups_missing
from helios.syslognet.events import Framer
from helios.syslognet.framing import Deframer
from helios.syslognet.workers import Pool

log = logging.getLogger(__name__)

READ_BYTES = 512 * 1024     # one TCP/TLS read: one frame of up to about four thousand messages
MAX_READS = 16              # reads of one connection per wake-up (then the others get a turn)
UDP_BATCH = 2000            # datagrams taken per wake-up
UDP_RCVBUF = 8 * 1024 * 1024
ACCEPT_BATCH = 64
KINDS = ("udp", "tcp", "tls")


class Conn:
    __slots__ = ("sock", "kind", "peer", "deframer", "last", "ready")

    def __init__(self, sock, kind: str, peer: str, max_size: int, ready: bool) -> None:
        self.sock, self.kind, self.peer = sock, kind, peer
        self.deframer = Deframer(max_size)
        self.last = time.monotonic()
        self.ready = ready          # False while a TLS handshake is in progress


class SyslogInput:
    """The listeners and connections; ``sink`` is the relay (``take_syslog``, ``spool_full``)."""

    def __init__(self, cfg, sink, host: str) -> None:
        self.cfg = cfg
        self.sink = sink
        self.max_size = cfg.syslog_max_message_bytes
        self.host = host
        self.framer = Framer(cfg.syslog_environment, host, cfg.syslog_timezone)
        self.listeners: dict[int, tuple[str, socket.socket]] = {}
        self.conns: dict[int, Conn] = {}
        self.bound: dict[str, list[str]] = {k: [] for k in KINDS}
        self.counts: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        self.drops: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        self._logged: dict[str, tuple[float, int]] = {}
        self.tls: ssl.SSLContext | None = None
        self.poller = zmq.Poller()
        self.paused = False
        self._zsock: zmq.Socket | None = None
        self.stuck = False          # a frame waits for a spool write that failed
        self.pending_frames: list[tuple[str, tuple[bytes, int, int]]] = []
        self.pool: Pool | None = None
        self._pool_fds: set[int] = set()

    # --- set-up and end ---

    def start(self) -> None:
        cfg = self.cfg
        if cfg.syslog_tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                self.tls.load_cert_chain(cfg.syslog_tls_cert, cfg.syslog_tls_key)
            except (OSError, ssl.SSLError) as exc:
                raise ServiceError(f"cannot load the syslog TLS certificate {cfg.syslog_tls_cert} and key "
                                   f"{cfg.syslog_tls_key}: {exc}") from None
        try:
            for kind, addresses in (("udp", cfg.syslog_udp), ("tcp", cfg.syslog_tcp), ("tls", cfg.syslog_tls)):
                for address in addresses:
                    self._bind(kind, address)
        except BaseException:
            self.close()
            raise
        for kind in KINDS:
            for address in self.bound[kind]:
                log.info("Relay takes syslog over %s on %s.", kind.upper(), address)
        missing = speedups_missing()
        if missing and any(self.bound.values()):
            log.warning("Relay: %s.", missing)
        workers = cfg.syslog_workers
        if workers:
            self.pool = Pool(cfg.syslog_environment, self.host, cfg.syslog_timezone, self.max_size, workers)
            self._watch_pool()
        tune_gc()   # a read makes thousands of short-lived rows and none is in a cycle (as in the tailer)

    def _bind(self, kind: str, address: str) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            info = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_DGRAM if kind == "udp"
                                      else socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(info[0], info[1])
            if kind == "udp":
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                except OSError:
                    pass
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
            if kind != "udp":
                sock.listen(128)
            sock.setblocking(False)
        except (OSError, ValueError) as exc:
            raise ServiceError(f"cannot listen for syslog over {kind.upper()} on {address}: {exc}") from None
        got = sock.getsockname()
        shown = f"[{got[0]}]:{got[1]}" if ":" in got[0] else f"{got[0]}:{got[1]}"
        self.bound[kind].append(shown)
        self.listeners[sock.fileno()] = (kind, sock)
        self.poller.register(sock.fileno(), zmq.POLLIN)

    def close(self) -> None:
        """Take what the open connections sent (a last message without its
        newline too), then close every socket."""
        for conn in list(self.conns.values()):
            if conn.ready and not self.paused:
                self._serve(conn)   # what waits in the kernel's buffer: its sender counts it as sent
            if conn.sock.fileno() in self.conns:
                self._close(conn, None)
        if self.pool is not None:
            self._spool_results(self.pool.drain())
            self.pool.close()
            self._watch_pool()
        if self.pending_frames:
            self._retry_pending()
            if self.pending_frames:
                lost = sum(n for _, (_, n, _) in self.pending_frames)
                log.error("Relay stops with %d syslog messages it read but could not spool (the spool "
                          "still fails to write): they are lost.", lost)
        for fd, (_, sock) in list(self.listeners.items()):
            sock.close()
        self.listeners.clear()

    # --- the loop's turn ---

    def poll(self, zsock: zmq.Socket, timeout_ms: int) -> bool:
        """Wait for the relay's socket or a syslog socket; serve the syslog
        ones; say whether the relay's socket has messages."""
        if self._zsock is not zsock:
            self.poller.register(zsock, zmq.POLLIN)
            self._zsock = zsock
        zmq_ready = False
        for item, _ in self.poller.poll(timeout_ms):
            if item is zsock:
                zmq_ready = True
                continue
            if item in self._pool_fds:
                self._spool_results(self.pool.collect(item))
                continue
            listener = self.listeners.get(item)
            if listener is not None:
                kind, sock = listener
                if kind == "udp":
                    self._read_udp(sock)
                else:
                    self._accept(kind, sock)
                continue
            conn = self.conns.get(item)
            if conn is not None:
                self._serve(conn)
        return zmq_ready

    def _registered(self):
        return {s for s, _ in self.poller.sockets}

    def tick(self, now: float) -> None:
        """Housekeeping: spool what waits, pause or resume reading, close idle connections."""
        if self.pool is not None:
            self._spool_results(self.pool.ready())
        if self.stuck:
            self._retry_pending()
        self._pause(self.stuck or self.sink.spool_full())
        if self.paused:
            return
        limit = self.cfg.syslog_idle_timeout
        mono = time.monotonic()
        for conn in list(self.conns.values()):
            if mono - conn.last > limit:
                self._close(conn, "idle timeout")

    def _pause(self, full: bool) -> None:
        """Stop or start reading the TCP/TLS connections (left out of the poll or put back)."""
        if full != self.paused:
            self.paused = full
            for fd, conn in self.conns.items():
                if full:
                    try:
                        self.poller.unregister(fd)
                    except KeyError:
                        pass
                else:
                    conn.last = time.monotonic()
                    self.poller.register(fd, zmq.POLLIN)
            if full:
                log.warning("Relay stops reading its syslog connections: the spool is %s; senders wait "
                            "(TCP back-pressure) and UDP datagrams are dropped (counted) until it has room.",
                            "failing to write" if self.stuck else "full of what no buck has had yet")
            else:
                log.info("Relay reads its syslog connections again: the spool has room.")
                for conn in list(self.conns.values()):
                    if conn.ready:
                        self._serve(conn)   # a TLS socket may hold decrypted bytes poll cannot see

    # --- UDP ---

    def _read_udp(self, sock: socket.socket) -> None:
        messages, peers, truncated = [], [], []
        counts, drops = self.counts["udp"], self.drops["udp"]
        limit = self.max_size
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._problem("udp", "receive error", str(exc))
                break
            counts["datagrams"] += 1
            if self.paused:
                self._problem("udp", "spool full", "the spool is full of what no buck has had yet")
                continue
            if data[-1:] == b"\n":
                data = data[:-1]
            if not data:
                drops["empty message"] += 1
                continue
            if len(data) > limit:
                self._problem("udp", "oversized", f"a {len(data)}-byte datagram was cut to {limit} bytes")
                truncated.append(len(messages))
                data = data[:limit]
            messages.append(data)
            peers.append(_peer(addr))
        if messages:
            self._take("udp", messages, peers, truncated, None)

    def udp_kernel_drops(self) -> int:
        """Datagrams the kernel dropped on our UDP sockets (its receive buffer was full)."""
        inodes = {str(os.fstat(sock.fileno()).st_ino) for kind, sock in self.listeners.values() if kind == "udp"}
        if not inodes:
            return 0
        total = 0
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table) as f:
                    next(f, None)
                    for line in f:
                        cols = line.split()
                        if len(cols) > 12 and cols[9] in inodes:
                            total += int(cols[12])
            except OSError:
                pass
        return total

    # --- TCP and TLS ---

    def _accept(self, kind: str, lsock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._problem(kind, "accept error", str(exc))
                return
            peer = _peer(addr)
            if len(self.conns) >= self.cfg.syslog_max_connections:
                self._problem(kind, "too many connections", f"{peer} was refused: "
                              f"{len(self.conns)} connections are open (syslog_max_connections)")
                sock.close()
                continue
            sock.setblocking(False)
            if kind == "tls":
                assert self.tls is not None
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                except (OSError, ssl.SSLError) as exc:
                    self._problem(kind, "tls handshake failed", f"{peer}: {exc}")
                    sock.close()
                    continue
            conn = Conn(sock, kind, peer, self.max_size, ready=kind != "tls")
            self.conns[sock.fileno()] = conn
            self.counts[kind]["connections"] += 1
            if not self.paused:
                self.poller.register(sock.fileno(), zmq.POLLIN)

    def _serve(self, conn: Conn) -> None:
        """Read, spool, then read more (a TLS record may hold more than one read)."""
        sock = conn.sock
        if not conn.ready:
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._close(conn, "tls handshake failed", str(exc))
                return
            conn.ready = True
            conn.last = time.monotonic()
        tls = conn.kind == "tls"
        for _ in range(MAX_READS):
            if self.paused:
                return
            # TCP: one read is one frame. TLS: a read gives one TLS record
            # (16 KiB at most), so records are gathered up to READ_BYTES, and
            # read until OpenSSL has nothing left: bytes it decrypted already
            # are invisible to poll.
            chunks: list[bytes] = []
            size = 0
            end: str | None = None
            while size < READ_BYTES:
                try:
                    data = sock.recv(READ_BYTES - size)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    end = ""
                    break
                except (OSError, ssl.SSLError) as exc:
                    end = str(exc) or type(exc).__name__
                    break
                if not data:
                    end = ""
                    break
                chunks.append(data)
                size += len(data)
                if not tls:
                    break
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                conn.last = time.monotonic()
                self.counts[conn.kind]["read_bytes"] += size
                d = conn.deframer
                if self.pool is None:
                    messages = d.feed(data)
                    self._note_framing(conn)
                    if messages:
                        self._take(conn.kind, messages, conn.peer, d.truncated, conn)
                else:   # the worker cuts the block of newline-framed messages
                    block, messages = d.feed_raw(data)
                    self._note_framing(conn)
                    if block or messages:
                        self._spool_results(self.pool.submit((conn.kind, block, messages, conn.peer,
                                                              d.truncated, time.time_ns())))
            if end is not None:
                self._close(conn, "connection error" if end else None, end)
                return
            if size < READ_BYTES and not (tls and sock.pending()):
                return   # drained: poll says when there is more

    def _close(self, conn: Conn, why: str | None, detail: str = "") -> None:
        fd = conn.sock.fileno()
        if why:
            self._problem(conn.kind, why, f"{conn.peer}{': ' + detail if detail else ''}; the connection "
                          "was closed, what it had sent is kept")
        messages = conn.deframer.finish()
        self._note_framing(conn)
        if messages:
            self._take(conn.kind, messages, conn.peer, conn.deframer.truncated, None)
        self.conns.pop(fd, None)
        if fd in self._registered():
            self.poller.unregister(fd)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _note_framing(self, conn: Conn) -> None:
        d = conn.deframer
        if d.problems:
            for reason, n in d.problems.items():
                self._problem(conn.kind, reason, f"from {conn.peer}", n)
            d.problems.clear()

    # --- to the spool ---

    def _take(self, kind: str, messages: list[bytes], peers, truncated, conn: Conn | None) -> None:
        if self.pool is None:
            self._spool(kind, self.framer.frames(messages, peers, f"syslog/{kind}", time.time_ns(), truncated))
            return
        self._spool_results(self.pool.submit((kind, b"", messages, peers, list(truncated), time.time_ns())))

    def _spool_results(self, results) -> None:
        if self._pool_fds and not self.pool.conns:
            self._watch_pool()   # a worker failed: the pool frames here from now on
        for job, (frames, problems) in results:
            kind = job[0]
            for reason, n in problems.items():
                self._problem(kind, reason, f"from {job[3]}", n)
            self._spool(kind, frames)

    def _watch_pool(self) -> None:
        """Poll the workers' pipes (a result in is spooled at once)."""
        for fd in self._pool_fds:
            try:
                self.poller.unregister(fd)
            except KeyError:
                pass
        self._pool_fds = set(self.pool.fds()) if self.pool is not None else set()
        for fd in self._pool_fds:
            self.poller.register(fd, zmq.POLLIN)

    def _spool(self, kind: str, frames: list[tuple[bytes, int, int]]) -> None:
        """Frames to the spool, in order; behind a failed write they wait their turn."""
        if self.stuck:
            self.pending_frames.extend((kind, f) for f in frames)
            return
        counts = self.counts[kind]
        durable = kind != "udp"
        for i, (frame, n, nbytes) in enumerate(frames):
            if not self.sink.take_syslog(frame, n, nbytes, durable):
                # The spool refused it (a full disk): keep it and stop reading until it is written.
                self.pending_frames.extend((kind, f) for f in frames[i:])
                if not self.stuck:
                    self.stuck = True
                    self._pause(True)
                return
            counts["events"] += n
            counts["bytes"] += nbytes
        if not self.paused and self.sink.spool_full():
            self._pause(True)   # before the next read, not at the next housekeeping turn

    def _retry_pending(self) -> None:
        waiting = self.pending_frames
        while waiting:
            kind, (frame, n, nbytes) = waiting[0]
            if not self.sink.take_syslog(frame, n, nbytes, kind != "udp"):
                return
            waiting.pop(0)
            self.counts[kind]["events"] += n
            self.counts[kind]["bytes"] += nbytes
        self.stuck = False

    def _problem(self, kind: str, reason: str, detail: str, n: int = 1) -> None:
        self.drops[kind][reason] += n
        key = f"{kind}/{reason}"
        last, suppressed = self._logged.get(key, (0.0, 0))
        now = time.monotonic()
        if now - last >= 1.0:
            more = f" ({suppressed} more like it since the last report)" if suppressed else ""
            log.warning("Syslog over %s: %s: %s%s.", kind.upper(), reason, detail, more)
            self._logged[key] = (now, 0)
        else:
            self._logged[key] = (last, suppressed + n)

    # --- reporting ---

    def stats(self) -> dict:
        drops = {k: dict(v) for k, v in self.drops.items()}
        if self.bound["udp"]:
            drops["udp"]["kernel receive buffer full"] = self.udp_kernel_drops()
        return {"listening": self.bound, "connections": len(self.conns), "paused": self.paused,
                "inputs": {k: dict(v) for k, v in self.counts.items()}, "drops": drops}

    def families(self):
        """Prometheus families per input (``input`` label: syslog/udp, syslog/tcp, syslog/tls)."""
        from prometheus_client.core import CounterMetricFamily

        from helios.metrics import counter, gauge

        s = self.stats()
        inputs = {f"syslog/{k}": v for k, v in s["inputs"].items() if self.bound[k]}
        yield counter("helios_input_events", "Events taken, per input.",
                      {k: v.get("events", 0) for k, v in inputs.items()}, "input")
        yield counter("helios_input_bytes", "Bytes of messages taken, per input.",
                      {k: v.get("bytes", 0) for k, v in inputs.items()}, "input")
        yield counter("helios_input_connections", "Connections accepted, per input.",
                      {k: v.get("connections", 0) for k, v in inputs.items() if k != "syslog/udp"}, "input")
        problems = CounterMetricFamily("helios_input_problems", "Messages, datagrams or connections with a "
                                       "problem, per input and reason (oversized: truncated and kept; the "
                                       "others: dropped or closed).", labels=["input", "reason"])
        for k, v in sorted(s["drops"].items()):
            for reason, n in sorted(v.items()):
                if self.bound[k]:
                    problems.add_metric([f"syslog/{k}", reason], n)
        yield problems
        yield gauge("helios_input_open_connections", "Open syslog connections.", len(self.conns))
        yield gauge("helios_input_paused", "1 while the syslog connections are not read (the spool is full).",
                    int(self.paused))


def _peer(addr) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"
    return str(addr)
