"""Events out of an index, for incident recovery: bucket files or NDJSON.

**Bucket files** (``BucketExport``): the buck's own layout under a
directory, ``DIR/buckets/ENV/YYYYMMDD/HHMMSS-<width>s.bkt`` (windows of the
events' times), each record a batch frame of up to ``per_frame`` events
(``helios.store.records`` and ``helios.codec``: the formats the bucks
write). A buck started with ``--data-dir DIR`` serves them like its own:
the porter indexes and archives them, and ``helios rebuild`` reads them.
Events keep every field: the same ids, times, bytes and fields.

**NDJSON** (``to_json`` / ``from_json``, inverses): one object per event,
the keys of ``helios subscribe -o json`` (``id``, ``time``, ``time_ns``,
``received_ns``, ``environment``, ``host``, ``app``, ``severity``,
``severity_code``, ``source``, ``offset``, ``message``, ``fields``) plus what
makes it exact: ``source_id`` (hex), ``message_base64`` when the message is
not UTF-8, and ``fields_msgpack`` (base64) when there are fields, since
JSON cannot hold every msgpack value (bytes, integer keys).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Iterable

import msgpack

from helios import codec
from helios.model import Event, severity_name
from helios.store import layout
from helios.store.records import RecordWriter

__all__ = ["BucketExport", "from_json", "to_json"]

NS = 1_000_000_000
PER_FRAME = 1000
SENDER = "helios-export"


def _iso(ns: int) -> str:
    from helios.services.subscribe import iso

    return iso(ns)


def to_json(e: Event) -> bytes:
    """One line of NDJSON (with its newline); ``from_json`` reads it back."""
    try:
        message, exact = e.message.decode("utf-8"), True
    except UnicodeDecodeError:
        message, exact = e.message.decode("utf-8", "replace"), False
    obj = {"id": e.id.hex(), "time": _iso(e.time), "time_ns": e.time, "received_ns": e.received,
           "environment": e.environment, "host": e.host, "app": e.app,
           "severity": None if e.severity is None else severity_name(e.severity), "severity_code": e.severity,
           "source": e.source, "offset": e.offset, "message": message, "fields": None, "source_id": e.source_id.hex()}
    if not exact:
        obj["message_base64"] = base64.b64encode(e.message).decode()
    if e.fields is not None:
        packed = msgpack.packb(e.fields, use_bin_type=True)
        obj["fields_msgpack"] = base64.b64encode(packed).decode()
        obj["fields"] = msgpack.unpackb(packed, raw=False, strict_map_key=False)
        try:
            json.dumps(obj["fields"])
        except (TypeError, ValueError):
            obj["fields"] = None  # not plain JSON: fields_msgpack has them
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def from_json(line: bytes | str) -> Event:
    """The event of one NDJSON line written by ``to_json``; ValueError if it is not one."""
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


class BucketExport:
    """Writes events (in time order) as bucket files under ``root``; refuses
    to add to a bucket file that exists, so that an export never mixes with
    what a buck wrote."""

    def __init__(self, root: str | os.PathLike, width: int = 60, per_frame: int = PER_FRAME) -> None:
        self.root = layout.buckets_root(root)
        self.width = width
        self.per_frame = per_frame
        self.files: list[Path] = []
        self.events = 0
        self._writer: RecordWriter | None = None
        self._name: layout.BucketName | None = None
        self._pending: list[Event] = []

    def add(self, events: Iterable[Event]) -> None:
        for e in events:
            start = layout.window_start(e.time, self.width)
            if self._name is None or self._name.start != start or self._name.environment != e.environment:
                self._flush()
                self._open(layout.BucketName(e.environment, start, self.width))
            self._pending.append(e)
            if len(self._pending) >= self.per_frame:
                self._flush()

    def _open(self, name: layout.BucketName) -> None:
        if self._writer is not None:
            self._writer.close()
        path = self.root / name.relpath()
        if path in self.files:
            raise ValueError(f"events out of time order: window {layout.bucket_id(name)} came back")
        if path.exists():
            raise FileExistsError(f"{path} exists: export into a new directory (or one without these windows)")
        self._writer = RecordWriter(path)
        self._name = name
        self.files.append(path)

    def _flush(self) -> None:
        if self._pending:
            env = self._pending[0].environment
            self._writer.append(codec.encode_events(env, SENDER, self._pending))
            self.events += len(self._pending)
            self._pending = []

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
