"""The buck's HTTP ingest: ``POST /v1/events``, ``POST /v1/logs`` and ``GET /healthz``.

For applications in any language (and ``helios.client`` over HTTP): a body of
events as maps (``helios.eventmap``) goes in, and the answer says they are
stored, as durably as asked.

Two halves, two threads
-----------------------
Bucket files belong to the buck's loop thread (``Buck.run``), which is not
thread-safe and must not be slowed by HTTP. So:

- the **server half** runs aiohttp on an asyncio loop in a thread of its own.
  It reads and checks a whole request before anything of it is kept (size,
  encoding, content type, then every event), turns the events into codec
  frames, and hands them to the loop over an inproc PAIR pipe with a request
  id and the durability asked for;
- the **loop half** (``handle``, ``end_round``) runs in the buck's loop like
  any other socket handler: it accepts, stores and publishes the frames
  exactly as ZeroMQ ingest does, and answers on the pipe once the requested
  durability is reached.

Durability (the buck's ``durability``, or a request's ``Helios-Durability``
header): ``received`` answers 200 once the body is parsed and valid, before
the loop stored it (a crash of the buck can lose it); ``written`` once the
frames are in the bucket file (they survive a crash of the buck: the kernel
has them); ``fsynced`` once they are on disk. ``fsynced`` uses group commit:
the loop stores every request that arrived during a drain round, then fsyncs
each touched bucket file once (``BucketFiles.sync``) and answers them all, so
concurrent requests share one fsync and throughput grows with clients.

Answers: 200 ``{"accepted": N}``; 400 with ``{"error": ..., "event": I}``
naming the first bad event (``event`` is null when the body as a whole is
bad), and nothing of the request is stored; 401 without a valid bearer token
and 403 for events of an environment the token is not for, when
``http_tokens`` are set (nothing of the request is stored either); 413 for a
body or event count over the limits; 415 for an unknown content type or
encoding; 503 with ``Retry-After`` when ``http_max_pending`` requests are
already in progress (overload) or the buck could not store them, so clients
back off; 507 with ``Retry-After`` while the data directory is full
(``helios.buck.diskfull``).

Authentication (``http_tokens``, see docs/security.md): a request carries
``Authorization: Bearer TOKEN``; the buck keeps only SHA-256 hashes of the
tokens, per environment, and compares the request's hash with every one of
them in constant time (``hmac.compare_digest``, no early exit). It is checked
from the headers, before the body is read. Without tokens anybody who can
reach the port may write, which is fine on 127.0.0.1 and said loudly at start
otherwise. TLS: ``http_tls_cert`` and ``http_tls_key``, or a TLS proxy in
front (deploy/nginx-helios-http.conf).

Limits, each from the config: body size before and after decompression
(a gzip or lz4 bomb is cut off at the limit, never expanded whole), events per
request, fields per event and bytes per field or message, requests in
progress, and open connections, in all and per client address (past the
cap per address, newcomers are answered 503 and closed; past the total cap,
the connection that has waited longest for a request is closed to make room,
or, if none is waiting, the newcomer is refused).

Slow clients: a request takes one of ``http_max_pending`` only once its
whole body is in, so a client that sends slowly holds its own connection,
never a slot of the honest ones. Its headers must come within
``http_header_timeout`` of the connection's opening or its previous answer
(aiohttp's keep-alive timeout, which partial headers do not restart: idle
keep-alive connections close after it too), and its body within
``http_body_timeout`` (then 408, and the connection is closed unread).
With TLS, a handshake has the header timeout too (``_Site``).
A non-ASCII ``Authorization`` header gets 400 (``helios.tokens.bearer``).

Bodies: ``Content-Type`` ``application/json`` (an array of event maps, or one
map), ``application/x-ndjson`` (one map per line), or
``application/msgpack`` (an array of maps; ``time`` may be a msgpack
Timestamp; no other extension types). ``Content-Encoding`` ``gzip`` or
``lz4`` (the lz4 frame format, as ``lz4 -c`` writes it). Headers
``Helios-Environment``, ``Helios-Host`` and ``Helios-App`` give defaults for
events that name none; an event's host defaults to the sender's address.

OpenTelemetry logs (``POST /v1/logs``, unless ``[buck] otlp = false``): an
OTLP/HTTP ExportLogsServiceRequest in protobuf or OTLP/JSON, mapped to events
by ``helios.buck.otlp``, through the same authentication, limits (records
count as events), durability and hand-off to the loop. Its answers follow
the OTLP spec, in the request's encoding: 200 with an
ExportLogsServiceResponse whose ``partial_success`` counts and names the
records left out (over a field limit, an environment name Helios cannot
have), or a ``google.rpc.Status`` with 400, 401, 403 (a record for an
environment the token is not for: nothing stored), 413 or 415; a full disk
is 503 and an overload 429 (with Retry-After), since the exporters retry
only 429, 502, 503 and 504. A token for exactly one environment decides the
environment of every record (the resource's claim is kept as a field).

Why aiohttp: an event-driven HTTP/1.1 server with keep-alive, streaming
request bodies and no per-connection thread, so thousands of idle keep-alive
connections cost only their sockets; it is mature, widely deployed, keeps up
with CPython releases, and ships its own C-accelerated HTTP parser.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import itertools
import json
import logging
import os
import ssl
import struct
import threading
import time
import zlib
from collections import Counter
from typing import Any

import lz4.frame
import msgpack
import zmq
import zmq.asyncio
from aiohttp import web

from helios import codec, eventmap, tokens
from helios.buck import otlp
from helios.errors import EventError, FrameError, HeaderError, RecordError, ServiceError
from helios.store import layout

log = logging.getLogger(__name__)

LEVELS = {"received": b"r", "written": b"w", "fsynced": b"f"}
FRAME_EVENTS = 1000  # events per frame: keeps every frame far below the codec's size cap
RETRY_AFTER = "1"
MAX_SENDERS = 10_000  # per input, as the buck keeps them
STALL = 5.0  # seconds without a loop round before /healthz says the buck is stuck
_REQ = struct.Struct(">Q")
_BUSY = b'{"error": "too many open connections; retry later", "event": null}'
TOO_MANY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (RETRY_AFTER.encode(), len(_BUSY), _BUSY))

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines", "application/jsonlines"}
MSGPACK_TYPES = {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}


class Refused(Exception):
    """A request answered with an error: ``status`` and what the body says."""

    overload = False  # refused because the buck is busy (/v1/logs answers 429)

    def __init__(self, status: int, error: str, event: int | None = None, before: list | None = None,
                 headers: dict[str, str] | None = None, close: bool = False) -> None:
        super().__init__(error)
        self.status, self.error, self.event, self.headers = status, error, event, headers
        self.close = close  # close the connection after the answer (the rest of the body is not read)
        self.before = before or []  # events parsed before the bad one (NDJSON): checked first


class HttpIngest:
    """Both halves; ``buck`` is the ``Buck`` whose loop calls ``handle`` and
    ``end_round`` (its ``cfg``, ``name``, ``factory``, ``accept``, ``store``,
    ``publish`` and ``buckets`` are used, from the loop thread only)."""

    def __init__(self, buck) -> None:
        self.buck = buck
        self.cfg = buck.cfg
        host, _, port = self.cfg.http.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.address = ""  # HOST:PORT actually bound, once started
        self.endpoint = f"inproc://helios-http-{id(self):x}"
        self.counts: Counter[str] = Counter()  # written by the server thread only
        # input ("http", "otlp") -> "ENV/HOST" -> [last seen, events, newest event ns] (server thread)
        self.senders: dict[str, dict[str, list]] = {}
        self.fsync_rounds = 0  # written by the loop thread only
        self.pending = 0  # requests admitted and not yet stored by the loop (server thread)
        self.beat = time.monotonic()  # last loop round (set by the loop, read by /healthz)
        self._to_sync: list[bytes] = []  # fsynced requests of this round (loop thread)
        self._ids = itertools.count(1)
        self._waiting: dict[bytes, asyncio.Future | None] = {}
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        # (environment or "*", "sha256:HEX" as bytes) per configured token.
        self.tokens = [(env, h.encode()) for env, _, h in (t.partition("=") for t in self.cfg.http_tokens)]
        self.scheme = "https" if self.cfg.http_tls_cert else "http"

    # ---------------------------------------------------------------- loop half

    def start(self) -> zmq.Socket:
        """Bind the loop's end of the pipe, start the server thread, wait until
        it listens. Returns the socket for ``Buck.handlers``. Called from the
        loop thread; raises ServiceError if the server cannot listen."""
        self.sock = self.buck.factory.make("handoff", self.endpoint)
        self._thread = threading.Thread(target=self._serve, name="helios-http", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            self.sock.close(linger=0)
            raise ServiceError(f"HTTP ingest cannot listen on {self.cfg.http}: {self._failed}")
        log.info("Buck %s takes events over HTTP on %s://%s/v1/events%s (durability %s by default%s).",
                 self.buck.name, self.scheme, self.address,
                 " and OpenTelemetry logs on /v1/logs" if self.cfg.otlp else "", self.cfg.durability,
                 f", {len(self.tokens)} bearer token(s)" if self.tokens else ", no authentication")
        if not self.tokens and not _loopback(self.host):
            log.warning("Buck %s: its HTTP ingest listens on %s WITHOUT AUTHENTICATION: anybody who can "
                        "reach it can write events to any environment. Set [buck] http_tokens (see "
                        "docs/security.md), or listen on 127.0.0.1 only.", self.buck.name, self.address)
        return self.sock

    def handle(self, parts: list[bytes]) -> None:
        """One request's frames from the server half: store them like ZeroMQ
        ingest does, then answer now (received, written) or at the end of the
        round (fsynced)."""
        req, level, frames = parts[0], parts[1], parts[2:]
        accepted = self.buck.accept(frames)
        if len(accepted) != len(frames):  # cannot happen: the server half made them
            self._answer(req, b"fail", "the buck refused a frame made by its own HTTP ingest")
            return
        if not self.buck.store(accepted):
            if self.buck.disk.full:
                self._answer(req, b"full", "the buck's data directory is full; retry later")
            else:
                self._answer(req, b"fail", "the buck could not write the events to its bucket files")
            return
        self.buck.publish(accepted)
        if level == b"f":
            self._to_sync.append(req)
        else:
            self._answer(req, b"ok", "")

    def end_round(self) -> None:
        """After each drain round of the loop: one fsync per touched bucket
        file for every fsynced request of the round (group commit)."""
        self.beat = time.monotonic()
        if not self._to_sync:
            return
        reqs, self._to_sync = self._to_sync, []
        try:
            self.buck.buckets.sync()
        except RecordError as exc:
            log.error("Buck %s could not fsync its bucket files; %d HTTP request(s) get 503: %s",
                      self.buck.name, len(reqs), exc)
            status, why = b"fail", "the buck could not fsync its bucket files"
        else:
            status, why = b"ok", ""
            self.fsync_rounds += 1
        for req in reqs:
            self._answer(req, status, why)

    def _answer(self, req: bytes, status: bytes, why: str) -> None:
        try:
            self.sock.send_multipart([req, status, why.encode()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # no high-water mark on the pipe: only if it is closing
            log.warning("Buck %s could not answer an HTTP request on its pipe: %s.", self.buck.name, exc)

    def close(self) -> None:
        """Stop the server (waiting requests get 503) and its thread."""
        if self._aloop is not None and self._stop is not None:
            try:
                self._aloop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # its loop is already closed
                pass
        if self._thread is not None:
            self._thread.join(10)

    def stats(self) -> dict[str, Any]:
        # dict() of a Counter is one C-level copy under the GIL: safe while the
        # server thread counts.
        return {"address": self.address, "pending": self.pending, "fsync_rounds": self.fsync_rounds,
                "clients": len(getattr(self, "clients", ())), **dict(self.counts),
                "senders": {source: {k: {"last_seen": v[0], "events": v[1], "newest_event": v[2] / 1e9}
                                     for k, v in list(d.items())} for source, d in list(self.senders.items())}}

    # -------------------------------------------------------------- server half

    def _serve(self) -> None:
        self._aloop = asyncio.new_event_loop()
        try:
            self._aloop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start(), or logged
            if not self._ready.is_set():
                self._failed = exc
            else:
                log.error("Buck %s: its HTTP ingest stopped: %s", self.buck.name, exc)
        finally:
            self._ready.set()
            self._aloop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        sync_pipe = self.buck.factory.make("handback", self.endpoint)
        self.pipe = zmq.asyncio.Socket.from_socket(sync_pipe)
        app = web.Application()
        app.router.add_post("/v1/events", self._post_events)
        if self.cfg.otlp:
            app.router.add_post("/v1/logs", self._post_logs)
        app.router.add_get("/healthz", self._healthz)
        # auto_decompress off: bodies are decompressed here, under our size limit.
        # keepalive_timeout: aiohttp closes a connection that has not sent a whole request's
        # headers this long after its opening or its previous answer (partial headers do not
        # restart the clock), which is the header timeout.
        runner = web.AppRunner(app, access_log=None, auto_decompress=False, handle_signals=False,
                               keepalive_timeout=self.cfg.http_header_timeout,
                               lingering_time=min(10.0, self.cfg.http_body_timeout))
        await runner.setup()
        self._limit_connections(runner.server)
        reader = None
        try:
            site = _Site(runner, self.host, self.port, backlog=1024, shutdown_timeout=1.0,
                         ssl_context=self._tls(), handshake_timeout=self.cfg.http_header_timeout)
            await site.start()
            bound = runner.addresses[0]  # the real port when 0 was asked
            self.address = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
            reader = asyncio.ensure_future(self._read_answers())
            self._ready.set()
            await self._stop.wait()
        finally:
            for fut in self._waiting.values():
                if fut is not None and not fut.done():
                    fut.set_result((b"fail", "the buck is stopping"))
            await runner.cleanup()
            if reader is not None:
                reader.cancel()
            self.pipe.close(linger=0)

    async def _read_answers(self) -> None:
        while True:
            req, status, why = await self.pipe.recv_multipart()
            fut = self._waiting.pop(req, None)
            self.pending -= 1
            if fut is not None and not fut.done():
                fut.set_result((status, why.decode()))

    def _tls(self) -> ssl.SSLContext | None:
        if not self.cfg.http_tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.cfg.http_tls_cert, self.cfg.http_tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ServiceError(f"cannot load the TLS certificate {self.cfg.http_tls_cert} and key "
                               f"{self.cfg.http_tls_key}: {exc}") from None
        return ctx

    def _limit_connections(self, server: web.Server) -> None:
        """Answer connections past ``http_max_connections``, or past
        ``http_max_connections_per_client`` from one address, with 503 and
        close them as they are made: idle keep-alive connections cost a buck
        memory and file descriptors, and one client must not take them all."""
        made, lost = server.connection_made, server.connection_lost
        limit, per_client = self.cfg.http_max_connections, self.cfg.http_max_connections_per_client
        clients: Counter[str] = Counter()
        self.clients = clients
        where: dict[int, str] = {}  # id(handler) -> its client's address
        evicting: set[int] = set()  # id(handler) of connections closed to make room, until lost

        def connection_made(handler, transport) -> None:
            made(handler, transport)
            peer = transport.get_extra_info("peername")
            addr = peer[0] if isinstance(peer, tuple) and peer else ""
            where[id(handler)] = addr
            clients[addr] += 1
            if per_client and clients[addr] > per_client:
                self.counts["connections_refused_client"] += 1
            elif len(server.connections) - len(evicting) > limit:
                # Make room by closing the connection that has waited longest for
                # a request (idle, or sending its headers slowly): one from many
                # attacking addresses evicts another, not the honest newcomer.
                idle = next((h for h in server.connections
                             if h is not handler and id(h) not in evicting and _waiting(h)), None)
                if idle is None:
                    self.counts["connections_refused"] += 1
                else:
                    self.counts["connections_evicted"] += 1
                    evicting.add(id(idle))  # still listed until aiohttp sees it lost
                    idle.force_close()
                    return
            else:
                return
            transport.write(TOO_MANY)
            # After aiohttp has started the connection's task (it is made
            # after this call), or its start would find it already gone.
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, transport.close)

        def connection_lost(handler, exc) -> None:
            lost(handler, exc)
            evicting.discard(id(handler))
            addr = where.pop(id(handler), None)
            if addr is not None:
                clients[addr] -= 1
                if clients[addr] <= 0:
                    del clients[addr]

        server.connection_made = connection_made
        server.connection_lost = connection_lost

    def authorize(self, request: web.Request) -> frozenset[str] | None:
        """The environments a request may write (None: any), from its bearer
        token. Raises Refused(401) without a valid one."""
        if not self.tokens:
            return None
        try:
            token = tokens.bearer(request.headers.get("Authorization"))
        except HeaderError as exc:
            raise Refused(400, str(exc)) from None
        if token is None:
            raise Refused(401, "this buck needs a bearer token (Authorization: Bearer TOKEN)",
                          headers={"WWW-Authenticate": 'Bearer realm="helios"'})
        mine = tokens.hash_token(token).encode()
        envs = set()
        for env, h in self.tokens:  # every hash compared: the time says nothing about which matched
            if hmac.compare_digest(mine, h):
                envs.add(env)
        if not envs:
            raise Refused(401, "the bearer token is not valid for this buck",
                          headers={"WWW-Authenticate": 'Bearer realm="helios", error="invalid_token"'})
        return None if "*" in envs else frozenset(envs)

    async def _healthz(self, request: web.Request) -> web.Response:
        stalled = time.monotonic() - self.beat > STALL
        busy = self.pending >= self.cfg.http_max_pending
        full = self.buck.disk.full
        body = {"status": "stalled" if stalled else "full" if full else "busy" if busy else "ok",
                "buck": self.buck.name, "pending": self.pending}
        if stalled or busy or full:
            return web.json_response(body, status=503, headers={"Retry-After": RETRY_AFTER})
        return web.json_response(body)

    async def _post_events(self, request: web.Request) -> web.Response:
        return await self._post(request, None)

    async def _post_logs(self, request: web.Request) -> web.Response:
        """OTLP/HTTP logs (``helios.buck.otlp``): the same checks, limits,
        durability and answers' meaning as /v1/events, in OTLP's shapes."""
        return await self._post(request, otlp.kind_of(request.headers.get("Content-Type", "")) or "")

    async def _post(self, request: web.Request, kind: str | None) -> web.Response:
        """A request to /v1/events (``kind`` None) or /v1/logs (``kind``:
        "protobuf", "json", or "" for a content type OTLP does not have)."""
        self.counts["requests"] += 1
        source = "http" if kind is None else "otlp"
        refuse = _refuse if kind is None else _otlp_refuser(kind or "json")

        def fail(exc: Refused) -> web.Response:
            resp = refuse(request, exc)
            if exc.overload and kind is None:
                self.counts["overloaded"] += 1  # 503, as counted since before /v1/logs
            else:
                self.counts[f"status_{resp.status}"] += 1  # what was answered (/v1/logs: 507 is 503)
            self.counts[f"{source}_errors"] += 1
            return resp

        try:
            allowed = self.authorize(request)
        except Refused as exc:
            return fail(exc)
        if kind == "":
            return fail(Refused(415, f"Content-Type {request.headers.get('Content-Type', '')!r:.60} "
                                     "is not OTLP (use application/x-protobuf or application/json)"))
        if self.buck.disk.full:
            self.buck.disk.refused_request()
            return fail(Refused(507, "the buck's data directory is full; retry later"))
        if self.pending >= self.cfg.http_max_pending:  # no use reading a body we cannot take
            return fail(self._busy())
        handed = taken = False
        try:
            level = request.headers.get("Helios-Durability", self.cfg.durability).strip().lower()
            if level not in LEVELS:
                raise Refused(400, f"Helios-Durability must be one of {', '.join(LEVELS)}, got {level!r:.40}")
            # The slot is taken once the body is in: a client that sends its body
            # slowly holds its own connection (until http_body_timeout), never a slot.
            body = await self._read_body(request)
            if self.pending >= self.cfg.http_max_pending:
                return fail(self._busy())
            self.pending += 1
            taken = True
            if kind is None:
                count, frames = self._frames(request, body, allowed)
                rejected, why = 0, ""
            else:
                count, frames, rejected, why = self._otlp_frames(request, body, kind, allowed)
            if frames:
                req = _REQ.pack(next(self._ids))
                fut = None if level == "received" else asyncio.get_running_loop().create_future()
                self._waiting[req] = fut
                try:
                    await self.pipe.send_multipart([req, LEVELS[level], *frames])
                except zmq.ZMQError as exc:  # only while the buck is stopping
                    self._waiting.pop(req, None)
                    raise Refused(503, f"the buck is stopping ({exc})") from None
                handed = True  # from here the answer reader decrements pending
                if fut is not None:
                    status, why_not = await fut
                    if status != b"ok":
                        raise Refused(507 if status == b"full" else 503, why_not)
            self.counts["events"] += count
            self.counts[f"{source}_events"] += count
            self.counts[f"{source}_bytes"] += request.content_length or len(body)
            self.counts[f"{source}_frame_bytes"] += sum(map(len, frames))
            self.counts[f"ok_{level}"] += 1
            if rejected:
                self.counts[f"{source}_rejected"] += rejected
            self._seen(source, frames)
            if kind is None:
                return web.json_response({"accepted": count, "durability": level})
            return web.Response(body=otlp.response(kind, rejected, why), content_type=otlp.CONTENT_TYPES[kind])
        except Refused as exc:
            return fail(exc)
        finally:
            if taken and not handed:
                self.pending -= 1

    def _busy(self) -> Refused:
        exc = Refused(503, f"the buck is busy ({self.pending} requests in progress); retry later")
        exc.overload = True  # OTLP says 429 for it
        return exc

    def _seen(self, source: str, frames: list[bytes]) -> None:
        """Who sent what over HTTP (for ``helios status``, by input), keyed
        like the buck's own list of senders: environment and host of each
        frame's header (/v1/events: the sender; /v1/logs: host.name)."""
        senders = self.senders.setdefault(source, {})
        now = time.time()
        for frame in frames:
            header = codec.check_frame(frame)
            key, n, newest = f"{header.environment}/{header.host}", header.count, header.last_time
            s = senders.get(key)
            if s is None:
                if len(senders) >= MAX_SENDERS:  # forget the longest silent
                    del senders[min(senders, key=lambda k: senders[k][0])]
                s = senders[key] = [now, 0, 0]
            s[0] = now
            s[1] += n
            s[2] = max(s[2], newest)

    def _otlp_frames(self, request: web.Request, body: bytes, kind: str, allowed: frozenset[str] | None
                     ) -> tuple[int, list[bytes], int, str]:
        """Decode an OTLP logs request and make frames of its records (one
        environment each). Records that cannot be kept are left out and
        counted (partial success: how many, and why the first was refused).
        Raises Refused(400) for an undecodable body, 413 for too many records
        and 403, storing nothing, when a record is for an environment the
        token is not for."""
        try:
            decoded = otlp.decode(body, kind)
        except EventError as exc:
            raise Refused(400, str(exc)) from None
        count = sum(len(sl.log_records) for rl in decoded.resource_logs for sl in rl.scope_logs)
        if count > self.cfg.http_max_events:
            raise Refused(413, f"the body holds {count} log records, over the limit of {self.cfg.http_max_events}")
        copied = otlp.copied_bytes(decoded)
        if copied > self.cfg.http_max_body:
            raise Refused(413, f"the resource and scope attributes, copied into each of their log records, would "
                               f"take about {copied} bytes, over the limit of {self.cfg.http_max_body} "
                               "(send fewer records per request, or smaller resources)")
        records = otlp.rows(decoded, time.time_ns())
        headers = request.headers
        asked = headers.get("Helios-Environment")
        # A token for one environment decides it: whatever a resource says, its
        # records go there (the resource's word is kept as a field).
        bound = next(iter(allowed)) if allowed is not None and len(allowed) == 1 else None
        default_env = asked or bound or self.cfg.http_environment
        if not layout.valid_environment(default_env):
            raise Refused(400, f"Helios-Environment {default_env!r:.80} is not an environment name")
        sender = headers.get("Helios-Host") or request.remote or ""
        app = headers.get("Helios-App", "")
        max_fields, max_bytes = self.cfg.http_max_fields, self.cfg.http_max_field_bytes
        # No value takes more than ~6 bytes per byte of the body (a control character
        # in a map body, written as JSON, is \u00XX): a smaller body needs no look.
        small = 6 * len(body) + 64 <= max_bytes
        by_env: dict[str, list] = {}
        valid: dict[str, bool] = {}  # environment name -> valid (a request has few)
        rejected, first_why = 0, ""
        for i, rec in enumerate(records):
            why = rec.problem
            row = rec.row
            env = default_env
            if why is None:
                if rec.environment is not None and bound is None:
                    env = rec.environment  # the resource's word wins over the header's default
                elif rec.environment is not None and rec.environment != env:
                    row[9].setdefault("deployment.environment", rec.environment)
                if row[3] is None:
                    row[3] = sender
                if row[4] is None:
                    row[4] = app
                ok = valid.get(env)
                if ok is None:
                    ok = valid[env] = layout.valid_environment(env)
                if not ok:
                    why = f"deployment.environment {env!r:.80} is not an environment name"
                elif len(row[3]) > eventmap.MAX_NAME or len(row[4]) > eventmap.MAX_NAME:
                    why = f"host.name and service.name must be at most {eventmap.MAX_NAME} characters"
                elif len(row[9]) > max_fields:
                    why = f"{len(row[9])} attributes, over the limit of {max_fields}"
                else:
                    too_big = None if small else _too_big(row, max_bytes)
                    if too_big:
                        why = f"{too_big.replace('field', 'attribute')}, over the limit of {max_bytes} bytes"
                    elif allowed is not None and env not in allowed:
                        raise Refused(403, f"log record {i}: the token is not for environment {env!r} "
                                           f"(it may write: {', '.join(sorted(allowed))})")
            if why is not None:
                rejected += 1
                first_why = first_why or f"log record {i}: {why}"
                continue
            by_env.setdefault(env, []).append(row)
        frames = []
        for env, rows in by_env.items():
            # A frame per host (the resource's host.name): the buck's list of
            # senders and the frame headers name the hosts the logs are from.
            by_host: dict[str, list] = {}
            for row in rows:
                by_host.setdefault(row[3], []).append(row)
            for host, hrows in by_host.items():
                for k in range(0, len(hrows), FRAME_EVENTS):
                    chunk = hrows[k:k + FRAME_EVENTS]
                    try:
                        frames.append(_frame(env, host, chunk))
                    except FrameError:
                        chunk, bad = _packable(chunk)
                        rejected += len(bad)
                        first_why = first_why or f"a log record: {bad[0]}"
                        if chunk:
                            frames.append(_frame(env, host, chunk))
        if rejected > 1:
            first_why += f" ({rejected} records refused in all)"
        return len(records) - rejected, frames, rejected, first_why


    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.cfg.http_max_body
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"the body is {request.content_length} bytes, over the limit of {limit}")
        chunks, total = [], 0
        try:
            async with asyncio.timeout(self.cfg.http_body_timeout):
                async for chunk in request.content.iter_any():
                    total += len(chunk)
                    if total > limit:
                        raise Refused(413, f"the body is over the limit of {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            self.counts["body_timeouts"] += 1
            raise Refused(408, f"the body did not arrive within {self.cfg.http_body_timeout:g} s "
                               f"({total} bytes came)", close=True) from None
        except ConnectionError:
            # The client went away before its body was whole: nothing was taken,
            # and the answer goes nowhere (a 400 keeps aiohttp from logging a traceback).
            self.counts["body_lost"] += 1
            raise Refused(400, f"the connection ended after {total} bytes of the body", close=True) from None
        body = b"".join(chunks)
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        return decompress(body, encoding, limit)

    def _frames(self, request: web.Request, body: bytes,
                allowed: frozenset[str] | None = None) -> tuple[int, list[bytes]]:
        """Parse and check every event, then encode frames (one environment
        each). Raises Refused before anything is handed on; 403 when an event
        is of an environment not in ``allowed`` (None: any)."""
        try:
            events = parse_body(body, request.headers.get("Content-Type", ""))
        except Refused as exc:
            events, bad = exc.before, exc
        else:
            bad = None
        if len(events) > self.cfg.http_max_events:
            raise Refused(413, f"the body holds {len(events)} events, over the limit of {self.cfg.http_max_events}")
        headers = request.headers
        env = headers.get("Helios-Environment", self.cfg.http_environment)
        sender = headers.get("Helios-Host") or request.remote or ""
        app = headers.get("Helios-App", "")
        if not layout.valid_environment(env):
            raise Refused(400, f"Helios-Environment {env!r:.80} is not an environment name")
        if len(sender) > eventmap.MAX_NAME or len(app) > eventmap.MAX_NAME:
            raise Refused(400, f"Helios-Host and Helios-App must be at most {eventmap.MAX_NAME} characters")
        defaults = eventmap.Defaults(env, sender, app)
        now = time.time_ns()
        by_env: dict[str, tuple[list, list[int]]] = {}
        to_row = eventmap.to_row
        # Ids for events without one: one system call per request, not per event.
        ids = os.urandom(eventmap.ID_BYTES * len(events))
        max_fields, max_bytes = self.cfg.http_max_fields, self.cfg.http_max_field_bytes
        # msgpack takes at most ~3 bytes per byte of a JSON body (a float "1.5" becomes 9):
        # a smaller body cannot hold a field over the limit, and its fields need no look.
        small = 3 * len(body) + 16 <= max_bytes
        for i, obj in enumerate(events):
            try:
                e, row = to_row(obj, defaults, now, ids[16 * i:16 * i + 16])
            except EventError as exc:
                raise Refused(400, f"event {i}: {exc}", i) from None
            if len(row[9]) > max_fields:
                raise Refused(400, f"event {i}: {len(row[9])} fields, over the limit of {max_fields}", i)
            if not small:
                too_big = _too_big(row, max_bytes)
                if too_big:
                    raise Refused(400, f"event {i}: {too_big}, over the limit of {max_bytes} bytes", i)
            rows, where = by_env.setdefault(e, ([], []))
            rows.append(row)
            where.append(i)
        if bad is not None:  # the events before the unparsable one are fine: name it
            raise bad
        if allowed is not None:
            refused = sorted(by_env.keys() - allowed)
            if refused:
                first = min(by_env[refused[0]][1])
                raise Refused(403, f"event {first}: the token is not for environment {refused[0]!r} "
                                   f"(it may write: {', '.join(sorted(allowed))})", first)
        frames = []
        for e, (rows, where) in by_env.items():
            for k in range(0, len(rows), FRAME_EVENTS):
                chunk = rows[k:k + FRAME_EVENTS]
                times = [r[1] for r in chunk]
                try:
                    frames.append(codec.encode_rows(e, sender, chunk, min(times), max(times)))
                except FrameError:
                    i, why = _first_unpackable(chunk, where[k:k + FRAME_EVENTS])
                    raise Refused(400, f"event {i}: {why}", i) from None
        return len(events), frames


def _waiting(handler) -> bool:
    """Whether an aiohttp connection is waiting for (the rest of the headers
    of) a request: none in progress, none parsed and queued (a connection
    whose task has not run yet counts as waiting). Reads aiohttp's private
    state: if that changes, the answer is False and the cap refuses
    newcomers instead."""
    return (getattr(handler, "_request_in_progress", True) is False
            and not getattr(handler, "_messages", True) and getattr(handler, "_force_close", True) is False)


class _Site(web.TCPSite):
    """aiohttp's TCP site with a TLS handshake timeout: a connection that
    never finishes its handshake is not yet one of aiohttp's (no cap counts
    it), and asyncio would wait 60 s for it. Here it has the header timeout."""

    def __init__(self, *args, handshake_timeout: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handshake_timeout = handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None:
            await super().start()
            return
        await web.BaseSite.start(self)
        self._server = await asyncio.get_running_loop().create_server(
            self._runner.server, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
            ssl_handshake_timeout=self.handshake_timeout)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


def _otlp_refuser(kind: str):
    """How /v1/logs refuses: a google.rpc.Status in the request's encoding.
    The OpenTelemetry exporters retry 429, 502, 503 and 504 only, so a full
    disk (507 on /v1/events) is 503 here and an overload 429, both with
    Retry-After."""
    def refuse(request: web.Request, exc: Refused) -> web.Response:
        status = 429 if exc.overload else 503 if exc.status == 507 else exc.status
        headers = {"Retry-After": RETRY_AFTER} if status in (429, 503) else {}
        headers.update(exc.headers or {})
        resp = web.Response(status=status, body=otlp.status(kind, status, exc.error),
                            content_type=otlp.CONTENT_TYPES[kind], headers=headers)
        if exc.close:
            resp.force_close()
        return resp
    return refuse


def _frame(env: str, host: str, rows: list) -> bytes:
    times = [r[1] for r in rows]
    return codec.encode_rows(env, host, rows, min(times), max(times))


def _packable(rows: list) -> tuple[list, list[str]]:
    """The rows msgpack can carry, and why the others cannot be."""
    good, bad = [], []
    for row in rows:
        try:
            msgpack.packb(row, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            bad.append(f"a value cannot be stored: {exc}")
        else:
            good.append(row)
    return good, bad


def _refuse(request: web.Request, exc: Refused) -> web.Response:
    headers = {"Retry-After": RETRY_AFTER} if exc.status in (503, 507) else {}
    headers.update(exc.headers or {})
    # The connection stays open: aiohttp reads and drops an unread rest of the
    # body (for up to its lingering time), so the client gets this answer.
    resp = web.json_response({"error": exc.error, "event": exc.event}, status=exc.status, headers=headers)
    if exc.close:
        resp.force_close()
    return resp


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body under its Content-Encoding, refusing more than ``limit`` bytes
    of output (a small gzip bomb never gets to allocate its gigabytes)."""
    if encoding in ("identity", ""):
        return body
    if encoding in ("gzip", "x-gzip"):
        out, rest = [], body
        total = 0
        while rest:
            d = zlib.decompressobj(31)
            try:
                part = d.decompress(rest, limit + 1 - total)
            except zlib.error as exc:
                raise Refused(400, f"the gzip body does not decompress: {exc}") from None
            total += len(part)
            if total > limit or d.unconsumed_tail:
                raise Refused(413, f"the body is over the limit of {limit} bytes once decompressed")
            if not d.eof:
                raise Refused(400, "the gzip body is truncated")
            out.append(part)
            rest = d.unused_data
        return b"".join(out)
    if encoding == "lz4":
        d = lz4.frame.LZ4FrameDecompressor()
        try:
            out = d.decompress(body, max_length=limit + 1)
        except RuntimeError as exc:
            raise Refused(400, f"the lz4 body does not decompress: {exc}") from None
        if len(out) > limit:
            raise Refused(413, f"the body is over the limit of {limit} bytes once decompressed")
        if not d.eof:
            raise Refused(400, "the lz4 body is truncated (or not in the lz4 frame format)")
        if d.unused_data:
            raise Refused(400, "the lz4 body has bytes after its end")
        return out
    raise Refused(415, f"Content-Encoding {encoding!r:.40} is not supported (use gzip or lz4)")


def parse_body(body: bytes, content_type: str) -> list:
    """The list of event maps in a body (not yet checked one by one)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise Refused(400, f"the body is not valid JSON: {exc}") from None
    elif kind in NDJSON_TYPES:
        value = []
        for n, line in enumerate(body.split(b"\n")):
            if not line.strip():
                continue
            try:
                value.append(json.loads(line))
            except (ValueError, RecursionError) as exc:
                raise Refused(400, f"event {len(value)} (line {n + 1}) is not valid JSON: {exc}",
                              len(value), before=value) from None
        return value
    elif kind in MSGPACK_TYPES:
        try:
            value = msgpack.unpackb(body, raw=False, strict_map_key=True, ext_hook=_no_extensions)
        except Exception as exc:  # msgpack raises many types for garbage
            raise Refused(400, f"the body is not valid msgpack: {exc}") from None
    else:
        raise Refused(415, f"Content-Type {kind!r:.60} is not supported (use application/json, "
                           "application/x-ndjson or application/msgpack)")
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise Refused(400, f"the body must be an array of events, got {eventmap._kind(value)}")
    return value


def _no_extensions(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed (only Timestamp)")


def _first_unpackable(rows: list, where: list[int]) -> tuple[int, str]:
    for row, i in zip(rows, where):
        try:
            msgpack.packb(row, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            return i, f"a value cannot be stored: {exc}"
    return where[0], "the events cannot be encoded"


def _too_big(row: list, limit: int) -> str | None:
    """What in an event row is over ``limit`` bytes (msgpack-encoded), or None."""
    if len(row[8]) > limit:
        return f"its message is {len(row[8])} bytes"
    for name, value in row[9].items():
        kind = type(value)
        if kind is str:
            # UTF-8 takes at most 4 bytes a character: encode only when it could matter.
            size = len(value) if 4 * len(value) <= limit else len(value.encode("utf-8", "surrogatepass"))
        elif kind is bytes:
            size = len(value)
        elif kind in (int, float, bool) or value is None:
            continue
        else:
            try:
                size = len(msgpack.packb(value, use_bin_type=True))
            except (TypeError, ValueError, OverflowError):
                continue  # refused with its reason when the frame is encoded
        if size > limit:
            return f"field {name!r:.40} is {size} bytes"
    return None


def _loopback(host: str) -> bool:
    """Is this listening address reachable from this machine only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
