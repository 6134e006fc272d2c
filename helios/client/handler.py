"""A ``logging.Handler`` that records each log record as an event, so code
that already logs sends its records to Helios without changes::

    logging.getLogger().addHandler(helios.client.Handler())
    log.warning("payment failed", extra={"order": 1234, "amount": 12.5})

An event gets: ``time`` (the record's creation time), ``severity`` (the
level mapped to syslog: CRITICAL crit, ERROR err, WARNING warning, INFO info,
DEBUG and below debug), ``message`` (the formatted message, with the
traceback appended when the record has ``exc_info``), and fields ``logger``,
``file``, ``line``, ``function``, plus every ``extra=`` key. An extra value
that is not a string, number, boolean, None, bytes, list or map becomes its
``repr``, as ``%s`` formatting would have shown it.

Records of the ``helios.client`` logger (events the library could not
deliver) are never recorded again: that would loop.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from helios.client.recorder import Recorder

# Attributes every LogRecord has; the rest came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_PLAIN = (str, int, float, bool, bytes, type(None))


def syslog_severity(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class Handler(logging.Handler):
    """Records log records through ``recorder`` (default: the library's
    default recorder, ``helios.client.default()``)."""

    def __init__(self, recorder: Recorder | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.recorder = recorder
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "helios.client" or record.name.startswith("helios.client."):
            return
        if getattr(self._inside, "active", False):  # something below logged again
            return
        self._inside.active = True
        try:
            recorder = self.recorder
            if recorder is None:
                from helios.client import default
                recorder = default()
            recorder.record(self.event(record))
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)
        finally:
            self._inside.active = False

    def event(self, record: logging.LogRecord) -> dict[str, Any]:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatter_for_exceptions().formatException(record.exc_info)
        elif record.exc_text:
            message += "\n" + record.exc_text
        if record.stack_info:
            message += "\n" + record.stack_info
        fields: dict[str, Any] = {"logger": record.name, "file": record.pathname, "line": record.lineno,
                                  "function": record.funcName}
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                fields[key] = value if isinstance(value, _PLAIN) or _packable(value) else repr(value)
        return {"time": record.created, "severity": syslog_severity(record.levelno),
                "message": message, "fields": fields}

    def formatter_for_exceptions(self) -> logging.Formatter:
        return self.formatter or _FORMATTER


_FORMATTER = logging.Formatter()


def _packable(value: Any, depth: int = 0) -> bool:
    """A list or map of plain values (string keys), a few levels deep."""
    if isinstance(value, _PLAIN):
        return True
    if depth > 8:
        return False
    if isinstance(value, (list, tuple)):
        return all(_packable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and _packable(v, depth + 1) for k, v in value.items())
    return False
