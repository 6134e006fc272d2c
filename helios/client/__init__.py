"""The Helios client library: record structured events from an application.

::

    import helios.client as helios

    helios.configure(bucks=["http://buck-a:7380", "http://buck-b:7380"], app="shop")
    helios.record({"message": "order paid", "severity": "info", "order": 1234, "amount": 12.5})
    helios.record(message="cache warm", entries=5120)       # keywords work too

On a host that runs ``helios relay``, ``configure(relay="ipc:///run/helios/relay.sock")``
(or ``[client] relay``) sends every batch to the relay instead: one local send
per batch, and the relay spools and forwards to two bucks, so the application
keeps recording while every buck is down.

``record()`` returns at once and never raises, whatever the event or the
network does: the event goes on a bounded in-process queue and a background
thread batches and sends. An event that cannot be delivered (not a valid
event, not serialisable, queue full, refused by the buck, retries exhausted,
process exiting) is logged whole through ``logging`` (ERROR, logger
``helios.client``) and counted in ``stats()``; nothing is dropped silently.

- ``configure(config=None, **settings)`` sets up the default recorder:
  ``config`` is a TOML file whose ``[client]`` table is read (see
  ``helios check-config --example``), settings override its keys. Without
  it, the first ``record()`` uses the file named by ``$HELIOS_CONFIG``, or
  the defaults (ZeroMQ to ``tcp://127.0.0.1:7301``).
- ``Recorder(config=None, **settings)`` for several configurations in one
  process: each has ``record``, ``flush``, ``close`` and ``stats``.
- ``flush(timeout)`` waits until what was recorded is delivered or logged;
  at interpreter exit every recorder flushes for up to ``flush_timeout``.
- ``Handler`` is a ``logging.Handler`` that records log records as events
  (fields from ``extra=``).

The shape of an event map is ``helios.eventmap``'s; how batches travel is
``helios.client.transport``'s.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Mapping

from helios.client.handler import Handler
from helios.client.recorder import Recorder, new_id, render

__all__ = ["Handler", "Recorder", "configure", "default", "flush", "record", "stats"]

log = logging.getLogger("helios.client")

_default: Recorder | None = None
_default_failed: str | None = None
_lock = threading.Lock()


def configure(config: str | os.PathLike | None = None, **settings: Any) -> Recorder:
    """Make the default recorder (closing the previous one after flushing
    it). Raises ConfigError for wrong settings: this is set-up time."""
    global _default, _default_failed
    recorder = Recorder(config, **settings)
    with _lock:
        old, _default, _default_failed = _default, recorder, None
    if old is not None:
        old.close()
    return recorder


def default() -> Recorder:
    """The default recorder, made on first use from ``$HELIOS_CONFIG`` (or
    the defaults). Raises ConfigError if that file is wrong."""
    global _default, _default_failed
    recorder = _default
    if recorder is not None:
        return recorder
    with _lock:
        if _default is None:
            _default = Recorder(os.environ.get("HELIOS_CONFIG") or None)
        return _default


def record(event: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
    """Record one event through the default recorder. Returns at once; never raises."""
    global _default_failed
    try:
        recorder = _default or default()
    except Exception as exc:  # noqa: BLE001 - never raise: log the event instead
        why = f"the client library is not configured: {exc}"
        if _default_failed != why:
            _default_failed = why
            log.error("Helios client: %s", why)
        try:
            data = dict(event or {}, **fields)
        except Exception:  # noqa: BLE001
            data = {"event": event, **fields}
        log.error("Helios could not deliver an event because %s; the event follows: %s", why,
                  render((new_id(), time.time_ns(), data), 65536))
        return
    recorder.record(event, **fields)


def flush(timeout: float | None = 5.0) -> bool:
    """Wait until the default recorder's events are delivered or logged."""
    return True if _default is None else _default.flush(timeout)


def stats() -> dict[str, Any]:
    """The default recorder's counts (recorded, delivered, dropped, queued)."""
    return {} if _default is None else _default.stats()
