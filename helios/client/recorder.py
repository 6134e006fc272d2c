"""The Recorder: ``record()`` puts an event on a bounded queue and returns; a
background thread batches the queue and hands each batch to a transport.

The promises, and how they are kept:

- ``record()`` never blocks: it copies the map (a shallow copy: nested values
  are shared, so do not change them afterwards), stamps a random id and the
  time, and appends it to a bounded queue. No I/O, no system call, no
  encoding, and no lock that the background thread also takes (see
  ``Recorder``: that is what keeps the p99 in microseconds).
- ``record()`` never raises: every failure (not a map, queue full, recorder
  closed) is caught, and the event is logged instead.
- Nothing is dropped silently: an event that cannot be delivered (invalid,
  not serialisable, queue full, refused by a buck, retries exhausted, process
  exiting) is logged through ``logging`` at ERROR on the ``helios.client``
  logger with its id, its record time and the whole map as JSON (values JSON
  cannot show as their ``repr``); over ``log_max_bytes``, its first bytes and
  its size. Each is counted in ``stats()``.
- ``flush(timeout)`` waits until every event recorded so far is delivered or
  logged; at interpreter exit (atexit) the recorder flushes for up to
  ``flush_timeout`` seconds, then logs what is left.

What an event gets at ``record()`` time: a random 16-byte id (so a retried
send is deduplicated downstream), ``time`` (the map's, else now) and
``received`` (now: when the library took it; the buck does not change it).
Host, app and environment come from the map or the recorder's settings.
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import os
import collections
import random
import socket
import sys
import threading
import time
import weakref
from collections import Counter
from dataclasses import fields as dc_fields
from typing import Any, Mapping

import msgpack

from helios import config as config_schema
from helios import eventmap
from helios.errors import ConfigError, EventError

log = logging.getLogger("helios.client")

Item = tuple  # (id: bytes, recorded: int ns, map: dict)

# Ids without a system call: os.urandom releases the GIL, and getting it back
# can cost a whole switch interval (5 ms) when the background thread is busy,
# which record() must not pay. A generator seeded with 256 random bits (and
# reseeded in a forked child, so parent and child never share a stream) makes
# 128-bit ids that are unique in practice; they need not be unpredictable.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_id() -> bytes:
    return _ids.getrandbits(128).to_bytes(16, "big")


# A batch is taken from the queue at once when events wait; when none do,
# the background thread wakes this often to notice a close.
IDLE_WAKE = 0.2


def settings_of(cfg: config_schema.Client | str | os.PathLike | None, settings: Mapping[str, Any]
                ) -> config_schema.Client:
    """Validated client settings: a ``config.Client``, a TOML file whose
    ``[client]`` table is read, or None (defaults), with ``settings`` over
    it. Raises ConfigError listing every problem."""
    path = None
    overrides: dict[str, Any] = {}
    if isinstance(cfg, config_schema.Client):
        overrides = {f"client.{f.name}": getattr(cfg, f.name) for f in dc_fields(cfg)}
    elif cfg is not None:
        path = cfg
    for key, value in settings.items():
        overrides[f"client.{key}"] = list(value) if isinstance(value, (list, tuple)) else value
    return config_schema.load(path, overrides, require=("client",)).client


def curve_of(config: config_schema.Client | str | os.PathLike | None, cfg: config_schema.Client):
    """CURVE keys for the ZeroMQ transports (helios.wire.curve): from the
    [security] table of the config file when one is given, else the
    process's; towards the relay when [client] relay is set. None: plaintext."""
    if cfg.bucks[0].startswith(("http://", "https://")) and not cfg.relay:
        return None
    # helios.wire.curve imports ZeroMQ (25 ms), which record() must not wait
    # for: it is imported only when keys are to be read. A process that
    # installed keys has imported it already.
    if isinstance(config, (str, os.PathLike)):
        security = config_schema.load(config).security
        if not security.curve:
            return None
        from helios.wire import curve

        c = curve.load(security, relay=bool(cfg.relay), what="the client library")
    else:
        curve = sys.modules.get("helios.wire.curve")
        c = curve.installed() if curve is not None else None
    return c.to_relay() if c is not None and cfg.relay else c


def http_tls(cfg: config_schema.Client) -> Any:
    """What the HTTP transport verifies https:// bucks with: tls_ca, a private
    CA (or a self-signed buck), as an SSL context; True: the system's."""
    if not cfg.tls_ca:
        return True
    import ssl

    try:
        return ssl.create_default_context(cafile=cfg.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"client.tls_ca: cannot be read as PEM certificates ({exc})"]) from None


def program_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name in ("", "-c", "-m", "__main__.py"):
        name = "python"
    return name[:eventmap.MAX_NAME]


class Recorder:
    """One configuration of the client library: its queue, its background
    thread and its transport. Several may live in one process.

    Why no ``queue.Queue``: its mutex is shared with the background thread,
    and a thread that blocks on a lock gives up the GIL, and getting that
    back can take a whole switch interval (5 ms) while the other thread
    runs. So ``record()`` takes no lock the background thread also takes: the
    queue is a ``deque`` (``append`` and ``popleft`` are atomic), bounded by a
    length check (two threads racing past it overshoot by an event or two),
    and the background thread is woken through an Event only when it sleeps
    on an empty queue. ``flush`` puts a marker in the queue and waits for the
    background thread to reach it with nothing in flight."""

    def __init__(self, config: config_schema.Client | str | os.PathLike | None = None, **settings: Any) -> None:
        cfg = self.cfg = settings_of(config, settings)
        self.curve = curve_of(config, cfg)
        self.host = cfg.host or socket.gethostname()
        self.defaults = eventmap.Defaults(cfg.environment, self.host, cfg.app or program_name())
        self.http = cfg.bucks[0].startswith(("http://", "https://"))
        self._queue: collections.deque = collections.deque()
        self._max = cfg.queue_size
        self._idle = False  # the background thread sleeps on _wake
        self._wake = threading.Event()
        self._counts: Counter[str] = Counter()
        self._recorded = 0  # only record() adds (one bytecode under the GIL: no lock needed)
        self._lock = threading.Condition()  # counts, _inflight: background and transport threads
        self._inflight = 0  # taken from the queue, not yet delivered or logged
        self._closed = False
        self._stopping = threading.Event()  # no more waiting: log what is left
        self._done = threading.Event()
        self.http = self.http and not cfg.relay
        # The transport (and what it imports: ZeroMQ, or aiohttp for HTTP) is
        # made in the background thread, so that no record(), the first
        # included, waits for those imports. Its settings are checked here.
        self.tls = http_tls(cfg) if self.http else None
        self.transport: Any = None
        self._thread = threading.Thread(target=self._run, name="helios-client", daemon=True)
        self._thread.start()
        # atexit holds only a weak reference: a recorder dropped early is not kept alive.
        ref = weakref.ref(self)
        self._atexit = lambda: (r := ref()) is not None and r.close()
        atexit.register(self._atexit)

    # ------------------------------------------------------------ the front

    def record(self, event: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Queue one event (a map, see ``helios.eventmap``; keyword arguments
        are added to it). Returns at once; never raises."""
        item = None
        try:
            ident = new_id()
            now = time.time_ns()
            if event is None:
                data = fields
            elif fields:
                data = {**event, **fields}
            else:
                data = dict(event)
            item = (ident, now, data)
            self._recorded += 1
            if self._closed:
                self._drop([item], "the recorder is closed")
            elif len(self._queue) >= self._max:
                self._drop([item], f"the queue is full ({self._max} events wait to be sent)")
            else:
                self._queue.append(item)
                if self._idle:
                    self._idle = False
                    self._wake.set()
        except Exception as exc:  # noqa: BLE001 - the promise is: never raise
            try:
                if item is None:
                    self._recorded += 1
                    item = (new_id(), time.time_ns(), {"event": event, **fields})
                    self._drop([item], f"it is not a map of keys to values ({exc})")
                else:
                    self._drop([item], f"it could not be queued ({exc})")
            except Exception:  # noqa: BLE001 - logging itself failed; nothing more to do
                pass

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every event recorded so far is delivered or logged.
        Returns False if ``timeout`` passed first."""
        if not self._thread.is_alive():
            return not self._queue and not self._inflight
        marker = threading.Event()
        self._queue.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking events, deliver what is queued for up to ``timeout``
        seconds (default ``flush_timeout``), log what is left, and stop the
        background thread. Returns True if everything was delivered."""
        if self._closed:
            return self.flush(0)
        self._closed = True
        atexit.unregister(self._atexit)
        done = self.flush(self.cfg.flush_timeout if timeout is None else timeout)
        self._stopping.set()
        self._wake.set()
        if self.transport is not None:  # else the thread sees _stopping once it made one
            self.transport.abandon()
        self._thread.join(5.0)
        # Anything the thread did not get to is logged here.
        self._drop_queued("the process is exiting before it could be sent")
        return done

    def stats(self) -> dict[str, Any]:
        """Counts: recorded, delivered, dropped (and dropped by reason),
        queued, in flight."""
        out: dict[str, Any] = {"delivered": 0, "dropped": 0}
        with self._lock:
            out.update(self._counts)
            out["in_flight"] = self._inflight
        out["recorded"] = self._recorded
        out["queued"] = sum(1 for x in list(self._queue) if type(x) is tuple)
        return out

    # ------------------------------------------------------------- the back

    def _run(self) -> None:
        try:
            from helios.client import transport

            self.transport = (transport.RelayTransport if self.cfg.relay else
                              transport.HttpTransport if self.http else transport.ZmqTransport)(self)
            if self._stopping.is_set():  # close() came first and found no transport to abandon
                self.transport.abandon()
            self.transport.open()
            while not self._stopping.is_set():
                items, markers = self._take()
                if items:
                    self._send(items)
                for marker in markers:
                    self._settle()
                    marker.set()
            self.transport.close()
        except BaseException as exc:  # noqa: BLE001 - a dead sender must be loud
            log.error("The Helios client's background thread failed; events recorded from now on "
                      "are logged instead of sent: %r", exc)
            self._closed = True
            self._drop_queued(f"the client's background thread failed ({exc!r})")
        finally:
            self._done.set()

    def _take(self) -> tuple[list[Item], list[threading.Event]]:
        """The next batch (and flush markers met): sleeps while the queue is
        empty (waking to notice a close), then takes what waits, up to
        ``batch_events``: a batch leaves as soon as the queue is empty, never
        waiting to fill up."""
        q = self._queue
        if not q:
            self._idle = True
            if not q:  # checked again after saying so: record() wakes us from now on
                self._wake.wait(IDLE_WAKE)
            self._idle = False
            self._wake.clear()
        items: list[Item] = []
        markers: list[threading.Event] = []
        pop = q.popleft
        try:
            while len(items) < self.cfg.batch_events:
                x = pop()
                if type(x) is tuple:
                    items.append(x)
                else:
                    markers.append(x)
        except IndexError:
            pass
        if items:
            with self._lock:
                self._inflight += len(items)
        return items, markers

    def _settle(self) -> None:
        """Wait until every batch handed to the transport is delivered or logged."""
        with self._lock:
            while self._inflight and not self._stopping.is_set():
                self._lock.wait(IDLE_WAKE)

    def _send(self, items: list[Item]) -> None:
        """Rows per environment for the transport; bad events are logged."""
        by_env: dict[str, tuple[list, list[Item]]] = {}
        defaults = self.defaults
        for item in items:
            ident, now, data = item
            try:
                env, row = eventmap.to_row(data, defaults, now, ident)
            except EventError as exc:
                self.drop([item], f"it is not a valid event: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a map whose methods fail, say
                self.drop([item], f"it is not a valid event ({exc!r})")
                continue
            rows, kept = by_env.setdefault(env, ([], []))
            rows.append(row)
            kept.append(item)
        for env, (rows, kept) in by_env.items():
            rows, kept = self._serialisable(rows, kept)
            if not rows:
                continue
            try:
                self.transport.send(env, rows, kept)
            except Exception as exc:  # noqa: BLE001 - a bug must not lose a batch silently
                self.drop(kept, f"sending failed unexpectedly ({exc!r})")

    def _serialisable(self, rows: list, items: list[Item]) -> tuple[list, list[Item]]:
        """Keep the rows msgpack can carry and every decoder can read back
        (map keys must be strings); log the others."""
        try:
            msgpack.unpackb(msgpack.packb(rows, use_bin_type=True), strict_map_key=True)
            return rows, items
        except Exception:  # noqa: BLE001 - find which
            pass
        good_rows, good_items = [], []
        for row, item in zip(rows, items):
            try:
                msgpack.unpackb(msgpack.packb(row, use_bin_type=True), strict_map_key=True)
            except Exception as exc:  # noqa: BLE001 - msgpack raises many types
                self.drop([item], f"a value cannot be serialised ({type(exc).__name__}: {exc})")
                continue
            good_rows.append(row)
            good_items.append(item)
        return good_rows, good_items

    # ---------------------------------------------------------- accounting

    def delivered(self, items: list[Item]) -> None:
        """Called by the transport: these events are with a buck."""
        with self._lock:
            self._counts["delivered"] += len(items)
            self._inflight -= len(items)
            if not self._inflight:
                self._lock.notify_all()

    def _drop(self, items: list[Item], reason: str) -> None:
        """Log each event whole (ERROR: data that did not reach a buck) and
        count it."""
        with self._lock:
            self._counts["dropped"] += len(items)
            self._counts["dropped: " + reason.split(" (", 1)[0].split(":", 1)[0]] += len(items)
        for item in items:
            log.error("Helios could not deliver event %s because %s; the event follows: %s",
                      item[0].hex(), reason, render(item, self.cfg.log_max_bytes))

    def drop(self, items: list[Item], reason: str) -> None:
        """Called by the background thread and the transport for events taken
        from the queue (so no longer in flight)."""
        self._drop(items, reason)
        with self._lock:
            self._inflight -= len(items)
            if not self._inflight:
                self._lock.notify_all()

    def _drop_queued(self, reason: str) -> None:
        items = []
        try:
            while True:
                x = self._queue.popleft()
                if type(x) is tuple:
                    items.append(x)
        except IndexError:
            pass
        if items:
            self._drop(items, reason)


def render(item: Item, limit: int) -> str:
    """An event as logged: its id, record time and the whole map as JSON
    (``repr`` for what JSON cannot show), cut to ``limit`` bytes with its size."""
    ident, recorded, data = item
    try:
        body = json.dumps(data, default=repr, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - keys JSON cannot take; repr shows them all
        try:
            body = repr(data)
        except Exception as exc:  # noqa: BLE001
            body = f"<a map whose repr fails: {exc!r}>"
    when = datetime.datetime.fromtimestamp(recorded / 1e9, datetime.timezone.utc).isoformat()
    text = f'{{"id": "{ident.hex()}", "recorded": "{when}", "event": {body}}}'
    raw = text.encode("utf-8", "backslashreplace")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + f"... [cut: the event is {len(raw)} bytes in all]"
