"""Syslog messages to batch frames: parse, make rows, encode. Pure, no I/O.

The messages of one read (a TCP/TLS read, or the datagrams waiting on a UDP
socket) are parsed as one chunk by the tailer's parser
(``helios.parse.Parser``, format ``auto``: RFC 3164 and its variants, RFC
5424 with its structured data), so a message costs what a tailed line
costs. Each event keeps:

- ``message``: the message as it arrived, byte for byte (no framing, not
  even a trailing ``\\r``);
- ``host``, ``app``, ``severity``, ``time`` as parsed; a message that names
  no host gets its sender's IP address (as rsyslog's ``fromhost``);
- ``source``: ``syslog/udp``, ``syslog/tcp`` or ``syslog/tls``, also the
  frames' input kind (``helios status`` lists senders by it);
- ``fields``: ``peer`` (``IP:PORT`` of the sender), what the parser found
  (RFC 5424 ``procid``, ``msgid``, structured data, ``key=value``), and
  ``truncated: true`` on a message cut to the size limit;
- a random id (there is no position to derive one from); every copy of the
  event (live, re-sent from the spool) is the same frame, so the same id.
"""

from __future__ import annotations

import os
import struct
from itertools import repeat
from typing import Any

from helios import codec
from helios.parse import LINE_BYTES, Parser
from helios.tail.encoder import tzinfo

MAX_EVENTS = 4000   # events per frame


class Framer:
    def __init__(self, environment: str, host: str, timezone: str = "local") -> None:
        self.environment = environment
        self.host = host      # the relay's host, in the frame header
        self.parser = Parser("auto", default_host="", default_app="", tz=tzinfo(timezone), containers=False)
        self._peer_fields: dict[tuple[str, str], dict[str, Any]] = {}

    def frames_of_block(self, block: bytes, peer: str, source: str, now_ns: int,
                        max_size: int) -> list[tuple[bytes, int, int]] | None:
        """``frames`` of the messages of a block of newline-framed ones
        (``framing.split_block``'s input) that holds no empty line and no
        ``\r``: the parser's cut of the block is the messages', so the
        block is cut once. None when a line is over ``max_size`` (the block
        must go through ``split_block``)."""
        cols = self.parser.parse_chunk(block + b"\n", now_ns)
        lines = cols.lines
        if len(block) > max_size and max(map(len, lines)) > max_size:
            return None
        return self._encode(cols, lines, False, peer, source, now_ns, ())

    def frames(self, messages: list[bytes], peers: str | list[str], source: str, now_ns: int,
               truncated: list[int] | tuple[int, ...] = ()) -> list[tuple[bytes, int, int]]:
        """Frames of ``messages`` (one peer ``IP:PORT`` for all, or one per
        message), as (frame, events, message bytes)."""
        n = len(messages)
        if not n:
            return []
        chunk = b"\n".join(messages)
        heads = messages
        if chunk.count(b"\n") != n - 1 or b"\r" in chunk:
            # A message holding newlines (octet counting allows them): its
            # first line says its header. A "\r" stays in the message.
            heads = [m.split(b"\n", 1)[0].rstrip(b"\r") for m in messages]
            chunk = b"\n".join(heads)
        cols = self.parser.parse_chunk(chunk + b"\n", now_ns)
        if len(cols.lines) != n:    # cannot happen (one line a message); never lose one if it did
            cols = Parser("raw").parse_chunk(chunk + b"\n", now_ns)
        return self._encode(cols, messages, heads is not messages, peers, source, now_ns, truncated)

    def _encode(self, cols, messages: list[bytes], cut_heads: bool, peers: str | list[str], source: str,
                now_ns: int, truncated) -> list[tuple[bytes, int, int]]:
        n = len(messages)
        hosts = cols.hosts
        fields: list[dict[str, Any]]
        if isinstance(peers, str):
            if "" in hosts:
                ip = _ip(peers)
                hosts = [h or ip for h in hosts]
            shared = self._shared(peers)
            fields = [shared if f is None else {**f, "peer": peers} for f in cols.fields]
        else:
            if "" in hosts:
                hosts = [h or _ip(p) for h, p in zip(hosts, peers)]
            fields = [self._shared(p) if f is None else {**f, "peer": p} for f, p in zip(cols.fields, peers)]
        if cut_heads:
            for i, f in enumerate(fields):
                if LINE_BYTES in f:
                    fields[i] = {k: v for k, v in f.items() if k != LINE_BYTES}
        for i in truncated:
            fields[i] = {**fields[i], "truncated": True}
        ids = struct.unpack("16s" * n, os.urandom(16 * n))   # n ids in one C call (a slice each costs 15x that)
        rows = list(zip(ids, cols.times, repeat(now_ns), hosts, cols.apps, cols.severities, repeat(source),
                        repeat(None), messages, fields, repeat(b"")))
        out = []
        times = cols.times
        for a in range(0, n, MAX_EVENTS):
            part = rows[a:a + MAX_EVENTS]
            t = times[a:a + MAX_EVENTS]
            frame = codec.encode_rows(self.environment, self.host, part, min(t), max(t), input=source)
            out.append((frame, len(part), sum(map(len, messages[a:a + MAX_EVENTS]))))
        return out

    def _shared(self, peer: str) -> dict[str, Any]:
        """{"peer": peer}, one dict per peer (never changed once made)."""
        f = self._peer_fields.get((peer, ""))
        if f is None:
            if len(self._peer_fields) > 10000:
                self._peer_fields.clear()
            f = self._peer_fields[(peer, "")] = {"peer": peer}
        return f


def _ip(peer: str) -> str:
    ip = peer.rpartition(":")[0]
    return ip[1:-1] if ip.startswith("[") else ip
