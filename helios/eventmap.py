"""An event as a map: the shape applications write, both to ``helios.client``
and to a buck's HTTP ingest. Pure: no I/O.

One contract for both ends, so that an event recorded in Python and one
POSTed by a Go service mean the same thing. A map's keys::

    key          type                                      when absent
    id           16 bytes: bytes, 32 hex digits or base64  a random id
    time         ISO 8601 string, seconds since the epoch  the time it was recorded
                 (int or float), or a msgpack Timestamp
    received     like time                                 the time it was recorded
    environment  name matching ENV_PATTERN                 the sender's default
    host         string (at most 255 characters)           the sender's host
    app          string (at most 255 characters)           the sender's app ("" if none)
    severity     0..7 (syslog), a name like "warning", or  unknown (None)
                 null
    message      string (stored as UTF-8) or bytes         b""
    fields       a map of fields                           {}
    (any other)  a field                                   -

Every key not in the table is a field, so ``{"message": "paid", "user": 7}``
has the field ``user``. Fields can also be given under ``fields`` (for a field
named like a reserved key, say ``host``); a name given both ways is an error.
Field values are whatever msgpack carries (maps need string keys); the codec
stores them as they are.

An ISO 8601 time without an offset is UTC; up to 9 fractional digits are
kept. A number is seconds, never milliseconds: there is no guessing by
magnitude. Times must fall between the years 1678 and 2261 (signed 64-bit
nanoseconds).

``to_row`` turns a map into a positional row for ``helios.codec`` or raises
``EventError`` saying which key is wrong and why.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
from typing import Any, Mapping, NamedTuple

import msgpack

from helios.errors import EventError
from helios.model import ID_BYTES, ROW_FIELDS, SEVERITY_BY_NAME, Event, random_id
from helios.store.layout import valid_environment

RESERVED = frozenset(("id", "time", "received", "environment", "host", "app", "severity", "message", "fields"))
MAX_NAME = 255
# Signed 64-bit nanoseconds since the epoch: about 1677-09-21 .. 2262-04-11.
MIN_NS, MAX_NS = -(2**63), 2**63 - 1
_MAX_SECONDS = MAX_NS / 1e9

# Row fields after ``fields`` (like ``source_id``) are about tailed files: an
# event map gets their defaults.
_TAIL = [Event._field_defaults[name] for name in Event._fields[10:ROW_FIELDS]]

_ISO_FRACTION = re.compile(r"(T\d\d:\d\d:\d\d)[.,](\d+)")


class Defaults(NamedTuple):
    """What an event gets for each key it does not set."""

    environment: str
    host: str
    app: str


def to_row(obj: Any, defaults: Defaults, now: int, id_: bytes | None = None) -> tuple[str, list]:
    """``(environment, row)`` of one event map; ``now`` (ns) stands in for a
    missing time and received, ``id_`` (else a random id) for a missing id."""
    if type(obj) is not dict:
        if not isinstance(obj, Mapping):
            raise EventError(f"an event must be a map of keys to values, got {_kind(obj)}")
        obj = dict(obj)
    get = obj.get
    fields = get("fields")
    if fields is None:
        fields = {k: v for k, v in obj.items() if k not in RESERVED}
    else:
        if not isinstance(fields, Mapping):
            raise EventError(f"fields must be a map, got {_kind(fields)}")
        fields = dict(fields)
        for k in obj.keys() - RESERVED:
            if k in fields:
                raise EventError(f"field {k!r} is given both at the top level and in fields")
            fields[k] = obj[k]
    for k in fields:
        if type(k) is not str:
            raise EventError(f"field names must be strings, got {_kind(k)} {k!r:.40}")

    value = get("id")
    if value is None:
        value = id_ if id_ is not None else random_id()
    elif type(value) is not bytes or len(value) != ID_BYTES:
        value = parse_id(value)
    ident = value

    value = get("time")
    time_ = now if value is None else event_time_ns(value, "time")
    value = get("received")
    received = now if value is None else event_time_ns(value, "received")

    env = get("environment")
    if env is None:
        env = defaults.environment
    elif not valid_environment(env):
        raise EventError(f"environment must be a name like 'prod' ({_ENV_DOC}), got {env!r:.80}")
    host = get("host")
    if host is None:
        host = defaults.host
    elif type(host) is not str or len(host) > MAX_NAME:
        _name(obj, "host", "")  # raises, saying what is wrong
    app = get("app")
    if app is None:
        app = defaults.app
    elif type(app) is not str or len(app) > MAX_NAME:
        _name(obj, "app", "")

    severity = get("severity")
    if severity is not None:
        kind = type(severity)
        found = _SEVERITY.get(severity) if kind is str or kind is int else None
        severity = parse_severity(severity) if found is None else found

    message = get("message")
    if message is None:
        message = b""
    elif type(message) is str:
        try:
            message = message.encode()
        except UnicodeEncodeError as exc:
            raise EventError(f"message is not valid Unicode: {exc.reason} at character {exc.start}") from None
    elif type(message) is not bytes:
        if isinstance(message, (bytes, bytearray, memoryview)):
            message = bytes(message)
        else:
            raise EventError(f"message must be a string, got {_kind(message)}")
    return env, [ident, time_, received, host, app, severity, "", None, message, fields, *_TAIL]


# Severities as most events spell them: a dict lookup, no call. (Only for
# str and int keys: True would find 1.)
_SEVERITY: dict = {**{i: i for i in range(8)}, **SEVERITY_BY_NAME,
                   **{k.upper(): v for k, v in SEVERITY_BY_NAME.items()}}

_ENV_DOC = "a letter or digit, then up to 63 letters, digits, '_', '.' or '-'"


def _name(obj: dict, key: str, default: str) -> str:
    value = obj.get(key)
    if value is None:
        return default
    if type(value) is not str:
        raise EventError(f"{key} must be a string, got {_kind(value)}")
    if len(value) > MAX_NAME:
        raise EventError(f"{key} is {len(value)} characters long, over the limit of {MAX_NAME}")
    return value


def parse_id(value: Any) -> bytes:
    """An event id from bytes, 32 hex digits or base64 (standard or URL-safe,
    padded or not)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) == ID_BYTES:
            return bytes(value)
        raise EventError(f"id must be {ID_BYTES} bytes, got {len(value)}")
    if type(value) is not str:
        raise EventError(f"id must be {ID_BYTES} bytes as 32 hex digits or base64, got {_kind(value)}")
    if len(value) == 2 * ID_BYTES:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    if 22 <= len(value) <= 24:
        text = value.rstrip("=")
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "==", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == ID_BYTES:
            return raw
    raise EventError(f"id must be {ID_BYTES} bytes as 32 hex digits or base64, got {value!r:.60}")


def event_time_ns(value: Any, key: str = "time") -> int:
    """Nanoseconds since the epoch from an ISO 8601 string, a number of
    seconds, a msgpack Timestamp or a datetime."""
    kind = type(value)
    if kind is int:
        if -_MAX_SECONDS < value < _MAX_SECONDS:
            return value * 1_000_000_000
    elif kind is float:
        if math.isfinite(value) and -_MAX_SECONDS < value < _MAX_SECONDS:
            return int(value * 1e9)
    elif kind is str:
        return _parse_iso(value, key)
    elif kind is msgpack.Timestamp:
        ns = value.to_unix_nano()
        if MIN_NS <= ns <= MAX_NS:
            return ns
    elif isinstance(value, datetime.datetime):
        return _datetime_ns(value, 0, key)
    else:
        raise EventError(f"{key} must be an ISO 8601 string or seconds since the epoch, got {_kind(value)}")
    raise EventError(f"{key} {value!r:.60} is out of range (years 1678 to 2261)")


def _parse_iso(text: str, key: str) -> int:
    if len(text) > 64:
        raise EventError(f"{key} is not an ISO 8601 time: {text!r:.60}")
    ns = 0
    m = _ISO_FRACTION.search(text)
    if m:
        digits = m.group(2)
        if len(digits) > 9:
            raise EventError(f"{key} has more than 9 fractional digits: {text!r}")
        ns = int(digits.ljust(9, "0"))
        text = text[:m.start()] + m.group(1) + text[m.end():]
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"{key} is not an ISO 8601 time like 2024-01-31T12:00:00.5Z: {text!r:.60}") from None
    return _datetime_ns(dt, ns, key)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _datetime_ns(dt: datetime.datetime, extra_ns: int, key: str) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    try:
        delta = dt - _EPOCH
    except OverflowError:
        raise EventError(f"{key} is out of range (years 1678 to 2261)") from None
    ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + extra_ns
    if not MIN_NS <= ns <= MAX_NS:
        raise EventError(f"{key} is out of range (years 1678 to 2261)")
    return ns


def parse_severity(value: Any) -> int:
    if type(value) is int:
        if 0 <= value <= 7:
            return value
    elif type(value) is str:
        found = SEVERITY_BY_NAME.get(value.lower())
        if found is not None:
            return found
    raise EventError(f"severity must be 0..7, a name like 'warning', or null; got {value!r:.40}")


def _kind(value: Any) -> str:
    """A value's type in the words of JSON and msgpack."""
    return {dict: "a map", list: "an array", tuple: "an array", str: "a string", bytes: "bytes",
            int: "an integer", float: "a number", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}")
