"""The tailer's inventory on the wire: one record per content it has seen.

The audit must know what existed, not only what arrived. So the tailer sends,
like its events and through the same spool and bucks, a record for every file
content (identity) it has seen, whenever the record changes: the paths it was
seen at, the largest size seen (uncompressed), the committed offset, the
first byte read, and how reading ended. ``helios audit`` takes the latest
record of each (host, identity) and compares it with the byte spans the bucks
hold. This module owns that format; ``to_event`` and ``from_event`` are
inverses (tested as a round trip).

An inventory record is an ``Event`` of the reserved app ``helios-inventory``,
in the tailer's environment, from the tailer's host::

    id        xxh3-128 of b"helios-inventory\\0", the host and the record (the
              same record sent twice has the same id; the porter merges them)
    time      when the record was made (ns); received: the same
    host      the tailer's host          app       "helios-inventory"
    severity  6 (info); 4 (warning) when reading ended short of the size seen
    source    ""                          offset    None (no byte span)
    message   a sentence for people, e.g. b"/var/log/app.log [3f2a9c0e11d4]:
              12,345 bytes seen, 12,345 read: read"
    source_id b""
    fields    {"inventory": 1,            the format version
               "identity": "<32 hex>",    the content's identity (events' source_id)
               "paths": ["/var/log/app.log", "/var/log/app.log.1"],  the last 8, oldest first
               "size": 12345,             largest size seen, uncompressed bytes
               "read": 12345,             committed offset: bytes before it are spooled/sent
               "first": 0,                first byte read (-1: none; > 0: started at the end)
               "end": "read",             "" (being read), "read", "deleted", "corrupt",
                                          "permission-denied", "unreadable", "skipped"
               "detail": "",              why, for an end other than "" and "read"
               "seq": 17}                 the tailer's counter: orders records of one time

Bytes ``[first, size)`` were seen on disk; a buck must hold every one of them
unless ``first`` is -1 (nothing read; then ``[0, size)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import xxhash

from helios.model import INVENTORY_APP, Event

APP = INVENTORY_APP
FORMAT = 1
ENDS = ("", "read", "deleted", "corrupt", "permission-denied", "unreadable", "skipped")
SHORT_ENDS = ENDS[2:]   # ends that say bytes may be missing


@dataclass(frozen=True)
class Record:
    identity: bytes
    paths: tuple[str, ...]
    size: int
    read: int
    first: int
    end: str
    detail: str = ""
    seq: int = 0

    @property
    def path(self) -> str:
        return self.paths[-1] if self.paths else ""

    @property
    def start(self) -> int:
        """The first byte the bucks must hold."""
        return max(self.first, 0)


def to_event(record: Record, host: str, time_ns: int, environment: str = "") -> Event:
    fields = {"inventory": FORMAT, "identity": record.identity.hex(), "paths": list(record.paths),
              "size": record.size, "read": record.read, "first": record.first, "end": record.end,
              "detail": record.detail, "seq": record.seq}
    state = record.end or "being read"
    message = (f"{record.path} [{record.identity.hex()[:12]}]: {record.size:,} bytes seen, "
               f"{record.read:,} read: {state}" + (f" ({record.detail})" if record.detail else ""))
    ident = xxhash.xxh3_128_digest(b"helios-inventory\0" + host.encode() + b"\0"
                                   + json.dumps(fields, sort_keys=True).encode())
    severity = 4 if record.end in SHORT_ENDS else 6
    return Event(ident, time_ns, time_ns, host, APP, severity, "", None,
                 message.encode(errors="surrogateescape"), fields, b"", environment)


def is_inventory(event: Event) -> bool:
    return event.app == APP and isinstance(event.fields, dict) and "inventory" in event.fields


def from_event(event: Event) -> Record:
    """The record an inventory event carries; ValueError (with what is wrong)
    for an event of the reserved app that is not a valid record."""
    f = event.fields
    if event.app != APP or not isinstance(f, dict):
        raise ValueError("not an inventory record")
    if f.get("inventory") != FORMAT:
        raise ValueError(f"unknown inventory format {f.get('inventory')!r}")
    try:
        identity = bytes.fromhex(f["identity"])
        paths = tuple(f["paths"])
        rec = Record(identity, paths, f["size"], f["read"], f["first"], f["end"], f.get("detail", ""), f["seq"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"inventory record field missing or wrong: {exc}") from None
    if len(identity) != 16 or not all(isinstance(p, str) for p in paths) or rec.end not in ENDS \
            or not all(type(v) is int for v in (rec.size, rec.read, rec.first, rec.seq)) \
            or not isinstance(rec.detail, str):
        raise ValueError("inventory record fields of the wrong type")
    return rec
