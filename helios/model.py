"""The event model: what every part of the mesh passes around. No I/O here.

An ``Event`` is a NamedTuple on purpose: a batch on the wire is a msgpack list
of events as positional arrays (see ``helios.codec``), and a NamedTuple *is*
such an array, so encoding costs no conversion. Its first ``ROW_FIELDS``
fields are what travels per event; ``environment`` travels once per batch, in
the frame header.

Ids
---
Every copy of a tailed line must carry the same id, wherever and however often
it is sent (two bucks, spool re-sends, restarts), so that the porter can
deduplicate. The id of a tailed line is therefore derived, never random: a
128-bit hash of the source identity key (device, inode, fingerprint of the
first line; see ``source_key``) and the byte offset of the line in that file.
Client events get a random id when they are recorded, so a retried send is
deduplicated the same way. A tailed event also carries its file's identity
(``source_id``), so that ``helios audit`` can merge the byte spans held for
each file and prove there is no gap.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, NamedTuple

import xxhash

ID_BYTES = 16

# Syslog severities (RFC 5424 numbering). None means "not known".
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SEVERITY_BY_NAME: dict[str, int] = {name: i for i, name in enumerate(SEVERITIES)}
# Common spellings found in application logs, mapped to the syslog numbers.
SEVERITY_BY_NAME.update(
    {
        "emergency": 0,
        "panic": 0,
        "fatal": 2,
        "critical": 2,
        "error": 3,
        "eror": 3,
        "warn": 4,
        "information": 6,
        "informational": 6,
        "trace": 7,
        "verbose": 7,
    }
)


class Event(NamedTuple):
    id: bytes                     # 16 bytes; see the module docstring
    time: int                     # event time, ns since the epoch, UTC
    received: int                 # when Helios first read or received it, ns, UTC
    host: str                     # host the event is about (parsed, or the sender's)
    app: str                      # application name ("" when unknown)
    severity: int | None          # 0 (emerg) .. 7 (debug), None when unknown
    source: str                   # path of the tailed file ("" for client events)
    offset: int | None            # byte offset of the line in ``source`` (None for client events)
    message: bytes                # the line as read, bytes preserved, without its newline
    fields: Mapping[str, Any] | None  # structured fields (client events, line markers), else None
    source_id: bytes = b""        # identity of the tailed file (``source_key``), b"" for client events
    environment: str = ""         # travels in the batch header, not per event


# How many leading fields of an Event travel in each positional array.
ROW_FIELDS = len(Event._fields) - 1

# The app of the tailers' inventory records (helios.tail.inventory): events the
# audit reads, which live views (subscribe, check, graphite, the web's live tail)
# leave out unless their filter names this app.
INVENTORY_APP = "helios-inventory"
# Rows of the first cut had no source_id; they still decode (with b"").
SHORT_ROW_FIELDS = ROW_FIELDS - 1


def source_key(dev: int, inode: int, fingerprint: bytes) -> bytes:
    """The identity of a tailed file as 16 bytes: stable across renames and
    restarts, different after a copytruncate or an inode reuse (the first
    line differs)."""
    return xxhash.xxh3_128_digest(b"%d:%d:" % (dev, inode) + fingerprint)


def line_id(key: bytes, offset: int) -> bytes:
    """The id of the line at ``offset`` of the file whose identity is ``key``."""
    return xxhash.xxh3_128_digest(key + offset.to_bytes(8, "big"))


def random_id() -> bytes:
    """A fresh id for an event that has no source position (client events)."""
    return os.urandom(ID_BYTES)


def now_ns() -> int:
    return time.time_ns()


def severity_name(severity: int | None) -> str:
    return SEVERITIES[severity] if severity is not None and 0 <= severity < 8 else "-"
