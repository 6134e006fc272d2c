"""How a Recorder's batches reach the bucks: ZeroMQ, HTTP, or this host's relay.

Both are driven by the recorder's background thread, which calls ``open``,
then ``send(environment, rows, items)`` per batch, then ``close``; ``abandon``
(from any thread) makes every wait give up, so a closing process is never
held longer than its flush timeout. Each batch ends in exactly one of
``recorder.delivered(items)`` or ``recorder.drop(items, reason)``.

ZeroMQ (``tcp://`` bucks)
    Like the tailer: each batch is one codec frame, sent with
    ``helios.wire.fanout.Fanout`` to ``copies`` distinct bucks chosen at
    random among the connected ones. The Fanout and its sockets are made and
    used in the background thread only (ZeroMQ sockets are not thread-safe).
    While no buck is connected, the batch waits (and the queue fills) for up
    to ``retry_for`` seconds. ZeroMQ has no acknowledgement: "delivered"
    means a buck's connection took the frame; a buck that dies with frames
    in its queues loses them, which is why each batch goes to two bucks.

HTTP (``http://`` bucks)
    Each batch is one ``POST /v1/events`` (msgpack, lz4-compressed when
    large) to one buck, acknowledged at the buck's durability (or the
    ``durability`` asked for). An asyncio loop in a second thread keeps a
    pool of keep-alive connections per buck, ``in_flight`` requests at once
    per buck. A failed request (connection refused or reset, timeout, 503,
    5xx) is retried with backoff, on another buck when there is one, for up
    to ``retry_for`` seconds; a 400 naming one event drops that event and
    resends the rest; a 413 splits the batch in halves. A retried batch may
    be stored twice: the ids are the same, so the copies are deduplicated
    downstream.

Relay (``[client] relay``, usually ``ipc:///run/helios/relay.sock``)
    The cheapest for the application: each batch is one codec frame PUSHed
    to the host's relay (``helios relay``) over a local socket, one send
    instead of two over the network. The relay appends it to its spool and
    sends it on to two bucks, as a tailer does, so bucks that are all down
    cost the application nothing. "Delivered" means the relay's connection
    took the frame; while the relay itself is down (restarting), batches
    wait for up to ``retry_for`` seconds, as with ZeroMQ.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import lz4.frame
import msgpack

from helios import codec
from helios.errors import FrameError
from helios.wire.fanout import Fanout
from helios.wire.sockets import SocketFactory

if TYPE_CHECKING:
    import ssl

    from helios.client.recorder import Item, Recorder

# This module is imported by the recorder's background thread, never by
# record(). aiohttp (some 150 ms to import) is imported by the HTTP
# transport's own loop thread, so the ZeroMQ transports never load it.

EXITING = "the process is exiting before a buck took it"
COMPRESS_OVER = 2048  # bytes of body; smaller bodies are sent as they are
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0


class ZmqTransport:
    NOBODY = "no buck took the batch"

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.cfg = recorder.cfg
        self._abandon = threading.Event()
        self.fanout: Fanout | None = None

    def open(self) -> None:
        self.fanout = Fanout(SocketFactory(curve=self.rec.curve), list(self.cfg.bucks), self.cfg.copies)

    def send(self, environment: str, rows: list, items: list[Item]) -> None:
        times = [r[1] for r in rows]
        try:
            frame = codec.encode_rows(environment, self.rec.host, rows, min(times), max(times))
        except FrameError as exc:
            self.rec.drop(items, f"the batch cannot be encoded ({exc})")
            return
        if self._abandon.is_set():
            # Exiting: one attempt, no waiting for a buck.
            sent = self.fanout.try_send(frame)
        else:
            sent = self.fanout.send_until(frame, stopping=self._abandon, timeout=self.cfg.retry_for)
        if sent:
            self.rec.delivered(items)
        elif self._abandon.is_set():
            self.rec.drop(items, EXITING)
        else:
            self.rec.drop(items, f"{self.NOBODY} within {self.cfg.retry_for:g} s (retry_for)")

    def abandon(self) -> None:
        self._abandon.set()

    def close(self) -> None:
        if self.fanout is not None:
            # The sender sockets linger (2 s at most) so queued frames still leave.
            self.fanout.close()


class RelayTransport(ZmqTransport):
    """ZeroMQ to one place: the host's relay, which spools and fans out."""

    NOBODY = "the relay did not take the batch"

    def open(self) -> None:
        self.fanout = Fanout(SocketFactory(curve=self.rec.curve), [self.cfg.relay], copies=1)


class HttpTransport:
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.cfg = recorder.cfg
        self.urls = [_events_url(u) for u in self.cfg.bucks]
        self.slots = threading.Semaphore(self.cfg.in_flight * len(self.urls))
        self._abandon = threading.Event()
        self._ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._down_until = {u: 0.0 for u in self.urls}
        self._backoff = {u: 0.0 for u in self.urls}
        self._headers = {"Content-Type": "application/msgpack"}
        if self.cfg.durability:
            self._headers["Helios-Durability"] = self.cfg.durability
        # tls_ca: trust a private CA (or a self-signed buck) for https:// bucks; else the system's
        # (checked when the recorder was made: helios.client.recorder.http_tls).
        self._tls: ssl.SSLContext | bool = recorder.tls
        if self.cfg.token:  # the bucks' [buck] http_tokens; a wrong one is a 401 (the batch is logged)
            self._headers["Authorization"] = f"Bearer {self.cfg.token}"

    # --- the background (batching) thread's side

    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="helios-client-http", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def send(self, environment: str, rows: list, items: list[Item]) -> None:
        """Hand the batch to the loop once one of the request slots is free."""
        while not self.slots.acquire(timeout=0.2):
            if self._abandon.is_set():
                self.rec.drop(items, EXITING)
                return
        try:
            fut = asyncio.run_coroutine_threadsafe(self._deliver(environment, rows, items), self.loop)
        except RuntimeError:  # the loop is gone (closing)
            self.slots.release()
            self.rec.drop(items, EXITING)
            return
        fut.add_done_callback(lambda _: self.slots.release())

    def abandon(self) -> None:
        self._abandon.set()
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._cancel_all)
            except RuntimeError:  # already closed
                pass

    def close(self) -> None:
        if self.loop is not None and self._closing is not None:
            try:
                self.loop.call_soon_threadsafe(self._closing.set)
            except RuntimeError:
                pass
            self._thread.join(5.0)

    # --- the loop thread's side

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        import aiohttp

        self._closing = asyncio.Event()
        # Idle connections are dropped here before the buck does ([buck] http_header_timeout,
        # 10 s by default), so a request is never sent on one the buck is closing.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.cfg.in_flight, keepalive_timeout=5,
                                         ssl=self._tls)
        self.session = aiohttp.ClientSession(connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        self._ready.set()
        try:
            await self._closing.wait()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await self.session.close()

    def _cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _deliver(self, environment: str, rows: list, items: list[Item]) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        deadline = time.monotonic() + self.cfg.retry_for
        parts = [(rows, items)]  # 413 splits a batch into parts
        try:
            while parts:
                rows, items = parts[-1]
                outcome = await self._post(environment, rows, items, deadline)
                parts.pop()
                if outcome is not None:  # too large: send it as two halves
                    half = len(rows) // 2
                    parts += [(rows[half:], items[half:]), (rows[:half], items[:half])]
        except asyncio.CancelledError:
            for _, left in parts:
                self.rec.drop(left, EXITING)
        except Exception as exc:  # noqa: BLE001 - a bug here must not lose events silently
            for _, left in parts:
                self.rec.drop(left, f"sending failed unexpectedly ({exc!r})")
        finally:
            self._tasks.discard(task)

    async def _post(self, environment: str, rows: list, items: list[Item], deadline: float) -> str | None:
        """Deliver or drop ``items`` (both lists shrink as events are
        refused). Returns "split" when the buck says the batch is too large."""
        import aiohttp  # loaded by _main already

        body, headers = self._body(environment, rows)
        last = "no attempt"
        while rows:
            if self._abandon.is_set():
                raise asyncio.CancelledError
            url = await self._pick(deadline)
            if url is None:
                self.rec.drop(list(items), f"no buck acknowledged it within {self.cfg.retry_for:g} s "
                                           f"(retry_for); the last attempt: {last}")
                return None
            try:
                async with self.session.post(url, data=body, headers=headers) as resp:
                    status, payload = resp.status, await resp.read()
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last = f"{url}: {type(exc).__name__} {exc}".rstrip()
                self._failed(url, None)
                continue
            if status == 200:
                self._succeeded(url)
                self.rec.delivered(list(items))
                return None
            error, index = _error_of(payload)
            if status == 400 and index is not None and 0 <= index < len(rows):
                self.rec.drop([items[index]], f"the buck refused it: {error}")
                del rows[index], items[index]
                body, headers = self._body(environment, rows)
                continue
            if status == 413 and len(rows) > 1:
                return "split"
            if 400 <= status < 500 and status not in (408, 429):
                self.rec.drop(list(items), f"the buck refused the batch with {status}: {error}")
                return None
            last = f"{url} answered {status}: {error}"
            self._failed(url, retry_after)
        return None

    async def _pick(self, deadline: float) -> str | None:
        """A buck to try: at random among those not backing off; waits for
        the first one back, unless that is past ``deadline``."""
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            ready = [u for u in self.urls if self._down_until[u] <= now]
            if ready:
                return random.choice(ready)
            wake = min(self._down_until.values())
            if wake > deadline:
                return None
            await asyncio.sleep(wake - now)

    def _failed(self, url: str, retry_after: str | None) -> None:
        self._backoff[url] = min(max(self._backoff[url] * 2, BACKOFF_MIN), BACKOFF_MAX)
        wait = self._backoff[url]
        if retry_after:
            try:
                wait = min(max(float(retry_after), 0.0), 60.0)
            except ValueError:
                pass
        self._down_until[url] = time.monotonic() + wait * random.uniform(0.8, 1.2)

    def _succeeded(self, url: str) -> None:
        self._backoff[url] = 0.0
        self._down_until[url] = 0.0

    def _body(self, environment: str, rows: list) -> tuple[bytes, dict[str, str]]:
        ts = msgpack.Timestamp.from_unix_nano
        body = msgpack.packb(
            [{"id": r[0], "time": ts(r[1]), "received": ts(r[2]), "environment": environment,
              "host": r[3], "app": r[4], "severity": r[5], "message": r[8], "fields": r[9]}
             for r in rows],
            use_bin_type=True)
        if len(body) <= COMPRESS_OVER:
            return body, self._headers
        return lz4.frame.compress(body), {**self._headers, "Content-Encoding": "lz4"}


def _events_url(url: str) -> str:
    """A buck's base URL becomes its ``/v1/events``; a URL with a path is kept."""
    return url.rstrip("/") + "/v1/events" if urlsplit(url).path in ("", "/") else url


def _error_of(payload: bytes) -> tuple[str, int | None]:
    try:
        info: Any = json.loads(payload)
        index = info.get("event")
        return str(info.get("error", ""))[:500], index if type(index) is int else None
    except (ValueError, AttributeError):
        return payload[:200].decode("utf-8", "replace"), None
