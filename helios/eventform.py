"""The one home of an event's printed forms, used by every command that prints
events (``subscribe``, ``search``, ``buckets get``, ``export``/recovery):

- **JSON** (``to_json`` / ``from_json``, inverses): one object per line with
  ``id``, ``time`` (ISO, ms), ``time_ns``, ``received_ns``, ``environment``,
  ``host``, ``app``, ``severity``, ``severity_code``, ``source``, ``offset``,
  ``message``, ``fields``, ``source_id`` (hex), plus what makes it exact:
  ``message_base64`` when the message is not UTF-8, and ``fields_msgpack``
  (base64) when the fields are not plain JSON (bytes, integer keys, ...), in
  which case ``fields`` shows them readably (bytes as text, other values as
  ``str``) and ``fields_msgpack`` holds them exactly;
- **line**: ``TIME ENV HOST APP SEVERITY MESSAGE``, the message's bytes as
  read (the mesh never rewrites content);
- **raw**: the message alone, as read.

Pure functions: tested as round trips (tests/unit/test_export_format.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import msgpack

from helios.model import Event, severity_name
from helios.timespec import iso_ms

__all__ = ["FORMATTERS", "as_line", "as_raw", "from_json", "to_json"]


def as_line(e: Event) -> bytes:
    head = f"{iso_ms(e.time)} {e.environment} {e.host or '-'} {e.app or '-'} {severity_name(e.severity)} "
    return head.encode(errors="replace") + e.message + b"\n"


def as_raw(e: Event) -> bytes:
    return e.message + b"\n"


def _readable(o: Any) -> str:
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)


def _plain(fields: Any) -> bool:
    """Whether JSON holds these fields exactly (reads back equal)."""
    try:
        return json.loads(json.dumps(fields, allow_nan=False)) == fields
    except (TypeError, ValueError):
        return False


def to_json(e: Event) -> bytes:
    """One line of JSON (with its newline); ``from_json`` reads it back."""
    try:
        message, exact = e.message.decode("utf-8"), True
    except UnicodeDecodeError:
        message, exact = e.message.decode("utf-8", "replace"), False
    obj = {"id": e.id.hex(), "time": iso_ms(e.time), "time_ns": e.time, "received_ns": e.received,
           "environment": e.environment, "host": e.host, "app": e.app,
           "severity": None if e.severity is None else severity_name(e.severity), "severity_code": e.severity,
           "source": e.source, "offset": e.offset, "message": message, "fields": e.fields,
           "source_id": e.source_id.hex()}
    if not exact:
        obj["message_base64"] = base64.b64encode(e.message).decode()
    if e.fields is not None and not _plain(e.fields):
        try:
            obj["fields_msgpack"] = base64.b64encode(msgpack.packb(e.fields, use_bin_type=True)).decode()
        except (TypeError, ValueError, OverflowError):
            pass  # not msgpack either (never from the wire): the readable form is all there is
    return json.dumps(obj, default=_readable, ensure_ascii=False).encode() + b"\n"


def from_json(line: bytes | str) -> Event:
    """The event of one line written by ``to_json``; ValueError if it is not one."""
    try:
        o = json.loads(line)
        message = base64.b64decode(o["message_base64"]) if "message_base64" in o else o["message"].encode()
        if o.get("fields_msgpack") is not None:
            fields = msgpack.unpackb(base64.b64decode(o["fields_msgpack"]), raw=False, strict_map_key=False)
        else:
            fields = o.get("fields")
        return Event(bytes.fromhex(o["id"]), int(o["time_ns"]), int(o["received_ns"]), o["host"], o["app"],
                     o["severity_code"], o["source"], o["offset"], message, fields,
                     bytes.fromhex(o.get("source_id", "")), o["environment"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not an exported event: {exc}") from None


FORMATTERS: dict[str, Callable[[Event], bytes]] = {"line": as_line, "raw": as_raw, "json": to_json}
