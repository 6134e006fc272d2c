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
- an id made from a random base per frame and the event's place in it
  (there is no position to derive one from: ``codec.encode_messages``);
  every copy of the event (live, re-sent from the spool) is the same
  frame, so the same id.

Each read travels as one run of columns: the sender, input and receive
time once, the peer once (``shared`` fields) when the read has one, and a
block of newline-framed messages as the bytes that came (no object per
message is packed).
"""

from __future__ import annotations

import os
from typing import Any

from helios import codec
from helios.parse import LINE_BYTES, Parser
from helios.parsing import layouts as L
from helios.tail.encoder import tzinfo

MAX_EVENTS = 8000   # events per frame (a full read of short messages: READ_BYTES / 64)


class Framer:
    def __init__(self, environment: str, host: str, timezone: str = "local") -> None:
        self.environment = environment
        self.host = host      # the relay's host, in the frame header
        self.parser = Parser("auto", default_host="", default_app="", tz=tzinfo(timezone), containers=False)
        self._peer_fields: dict[tuple[str, str], dict[str, Any]] = {}

    def frames_of_block(self, block: bytes, peer: str, source: str, now_ns: int,
                        max_size: int) -> list[tuple[bytes, int, int]] | None:
        """``frames`` of the messages of a block of newline-framed ones
        (``framing.split_block``'s input) that holds no ``\\r``: when it
        holds no empty line either, the parser's cut of the block is the
        messages', so the block is cut once, and it travels as it is; when
        every line is canonical BSD syslog with a PRI (what network senders
        send), it is not cut at all (``Parser.parse_bsd_block``). None when
        a line is empty or over ``max_size`` (the block must go through
        ``split_block``; a list scan finds an empty line ten times faster
        than a search of the block for two newlines)."""
        chunk = block + b"\n"
        if len(block) > max_size and L.longest_line(block) > max_size:
            return None
        fast = self.parser.parse_bsd_block(chunk, now_ns)
        if fast is not None:    # (every line a canonical BSD one with a PRI: no empty line, nothing to cut)
            times, hosts, apps, sevs = fast
            n = len(times)
            return self._encode(n, times, hosts, apps, sevs, [None] * n, None, chunk, peer, source, now_ns, ())
        cols = self.parser.parse_chunk(chunk, now_ns)
        if b"" in cols.lines:
            return None
        return self._encode(len(cols.lines), cols.times, cols.hosts, cols.apps, cols.severities, cols.fields,
                            cols.lines, chunk, peer, source, now_ns, ())

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
        chunk += b"\n"
        cols = self.parser.parse_chunk(chunk, now_ns)
        if len(cols.lines) != n:    # cannot happen (one line a message); never lose one if it did
            cols = Parser("raw").parse_chunk(chunk, now_ns)
        if heads is not messages:
            chunk = None            # the messages are not the lines of the chunk
            fields = cols.fields
            for i, f in enumerate(fields):
                if f is not None and LINE_BYTES in f:
                    fields[i] = {k: v for k, v in f.items() if k != LINE_BYTES}
        return self._encode(n, cols.times, cols.hosts, cols.apps, cols.severities, cols.fields, messages, chunk,
                            peers, source, now_ns, truncated)

    def _encode(self, n: int, times: list[int], hosts: list[str], apps: list[str], sevs: list[int | None],
                fields: list[dict[str, Any] | None], messages: list[bytes] | None, block: bytes | None,
                peers: str | list[str], source: str, now_ns: int, truncated) -> list[tuple[bytes, int, int]]:
        """Frames of runs of ``n`` messages (``codec.encode_messages``): the
        parsed columns as they are, the block as it came when it is the
        messages (``block``; ``messages`` may then be None), the peer once
        per run when there is one."""
        shared: dict[str, Any] | None
        if isinstance(peers, str):
            if "" in hosts:
                ip = _ip(peers)
                hosts = [h or ip for h in hosts]
            shared = self._shared(peers)
        else:
            if "" in hosts:
                hosts = [h or _ip(p) for h, p in zip(hosts, peers)]
            fields = [self._shared(p) if f is None else {**f, "peer": p} for f, p in zip(fields, peers)]
            shared = None
        for i in truncated:
            fields[i] = {**(fields[i] or {}), "truncated": True}
        if n <= MAX_EVENTS:
            parts = [(0, n, block)]
        elif block is not None:     # cut after every MAX_EVENTS-th newline (what split leaves after them)
            ends, rest = [0], block
            for _ in range(MAX_EVENTS, n, MAX_EVENTS):
                rest = rest.split(b"\n", MAX_EVENTS)[-1]
                ends.append(len(block) - len(rest))
            ends.append(len(block))
            parts = [(a, min(a + MAX_EVENTS, n), block[ends[k]:ends[k + 1]])
                     for k, a in enumerate(range(0, n, MAX_EVENTS))]
        else:
            parts = [(a, min(a + MAX_EVENTS, n), None) for a in range(0, n, MAX_EVENTS)]
        out = []
        for a, b, part in parts:
            if part is None:
                assert messages is not None
                part = messages[a:b]
                size = sum(map(len, part))
            else:
                size = len(part) - (b - a)
            t = times[a:b]
            # The id base: made once, carried by every copy of the frame (see codec).
            run = (source, os.urandom(16), now_ns, t, hosts[a:b], apps[a:b], sevs[a:b], None, part,
                   fields[a:b], shared)
            frame = codec.encode_messages(self.environment, self.host, [run], min(t), max(t), input=source)
            out.append((frame, b - a, size))
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
