"""The live feed: topics and messages on every buck's PUB socket.

Both ends use this module: the buck publishes with ``message``, subscribers
(``helios subscribe``, the nagios check, the graphite bridge, the web live
tail, the porter) subscribe with ``prefix`` and read with ``read`` (or
``read_message``, which also returns the message's ``Meta``).

Topic layout
------------
Bytes, each field ended by NUL so that a prefix never matches a longer name
(subscribing to app ``ssh`` must not match ``sshd``)::

    ENVIRONMENT \\0 APP \\0 SEVERITY \\0 HOST \\0

SEVERITY is one ASCII digit ``0`` (emerg) .. ``7`` (debug), or ``-`` when
unknown. ZeroMQ filters subscriptions by prefix, so what people filter on
most comes first: environment, then app, then severity, then host. A filter
that skips a level (host without app, say) subscribes to the longest prefix
it can and filters the rest itself. A NUL inside a name would shift the
levels; such a name only ever costs the subscriber a wider subscription,
never a wrong event, because readers filter decoded events, not topics.

Messages
--------
A message is three frames::

    topic   the topic above
    batch   a ``helios.codec`` batch frame (not compressed) of the events of
            one stored frame that share the topic, in the order stored
    meta    msgpack [buck name, incarnation, seq, events_before]

Events are published in small batches, not one by one: a busy buck publishes
one message per topic per stored frame. ``meta`` lets a subscriber count what
it missed: ``incarnation`` is a random 63-bit number a buck draws when it
starts (and again if it ever resets its counters), ``seq`` numbers the
messages of one topic from that buck (0, 1, 2, ...), and ``events_before`` is
how many events that buck had published on that topic before this message.
A subscriber that sees seq jump from 4 to 7 on a topic knows it missed two
messages, and exactly how many events they held (``Gaps``). Readers of the
two-frame form of the first cut still work: ``read`` ignores ``meta``.

Drop reports (upstream)
-----------------------
A subscriber on an XSUB socket may send, upstream to every buck it is
connected to, a report of what it missed::

    b"\\x02helios-drops"   msgpack {incarnation: [messages, events], ...}

with cumulative counts per buck incarnation and a random subscriber id in the
first frame's tail (``report``). A buck adds up the latest report of each
subscriber for its own incarnation (``read_report``). Byte 0 and 1 start
subscription messages on XPUB; 2 is ours.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, NamedTuple

import msgpack

from helios import codec
from helios.errors import FrameError
from helios.model import Event

SEP = b"\x00"
REPORT = b"\x02helios-drops:"


def severity_char(severity: int | None) -> bytes:
    return b"-" if severity is None else b"%d" % severity


def topic(environment: str, app: str, severity: int | None, host: str) -> bytes:
    return SEP.join((environment.encode(), app.encode(), severity_char(severity), host.encode())) + SEP


def prefix(environment: str | None = None, app: str | None = None, severity: int | None = None,
           host: str | None = None, *, any_severity: bool = True) -> bytes:
    """The longest topic prefix that selects these filters (None: any). An
    unknown-severity filter needs ``any_severity=False`` with ``severity=None``."""
    out = b""
    parts = (
        None if environment is None else environment.encode(),
        None if app is None else app.encode(),
        None if severity is None and any_severity else severity_char(severity),
        None if host is None else host.encode(),
    )
    for part in parts:
        if part is None:
            break
        out += part + SEP
    return out


# Whole batches: a subscriber that filters on nothing finer than the
# environment subscribes to WHOLE (+ ENVIRONMENT + SEP) and gets every stored
# frame of that environment as it was stored, compressed, one message per
# frame, on the topic ``whole_topic(environment)``. The buck forwards those
# without decoding anything, so watching everything costs it almost nothing;
# the subscriber decodes and filters. Topic-level messages are for
# subscribers that name an app (and finer).
WHOLE = b"\x01"


def whole_topic(environment: str) -> bytes:
    return WHOLE + environment.encode() + SEP


def subscriptions(prefixes: Iterable[bytes]) -> list[bytes]:
    """What to subscribe to for these topic prefixes: a prefix that names no
    app (all, or one environment) takes the whole-batch stream instead."""
    out = set()
    for p in prefixes:
        out.add(WHOLE + p if p.count(SEP) < 2 else p)
    return sorted(out)


def parse_topic(t: bytes) -> tuple[str, str, int | None, str]:
    env, app, sev, host, rest = t.split(SEP, 4)
    return env.decode(), app.decode(), None if sev == b"-" else int(sev), host.decode()


class Meta(NamedTuple):
    """Who published a message, and its place in that topic's sequence."""

    buck: str
    incarnation: int
    seq: int
    events_before: int


def new_incarnation() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 1


def message(environment: str, host: str, rows: list, first: int, last: int, row_topic: bytes,
            meta: Meta | None = None) -> list[bytes]:
    """The frames of one live message (see the module docstring)."""
    frames = [row_topic, codec.encode_rows(environment, host, rows, first, last, compress=False)]
    if meta is not None:
        frames.append(msgpack.packb(tuple(meta)))
    return frames


def group_rows(environment: str, rows: Iterable) -> dict[bytes, list]:
    """Rows (positional event arrays) grouped by their topic, order kept.
    Grouped by (app, severity, host) first, and the topic built once per
    group: the buck runs this on every batch someone watches."""
    by_key: dict[tuple, list] = {}
    for row in rows:
        # row: id, time, received, host, app, severity, ...
        key = (row[4], row[5], row[3])
        group = by_key.get(key)
        if group is None:
            by_key[key] = [row]
        else:
            group.append(row)
    return {topic(environment, app, sev, host): group for (app, sev, host), group in by_key.items()}


def read_message(frames: list[bytes]) -> tuple[list[Event], Meta | None]:
    """Events and meta of one live message; raises ``FrameError`` for a bad one."""
    if len(frames) not in (2, 3):
        raise FrameError(f"a live message has 2 or 3 frames, this one has {len(frames)}")
    events = codec.decode(frames[1])[1]
    if len(frames) == 2:
        return events, None
    try:
        buck, incarnation, seq, before = msgpack.unpackb(frames[2], raw=False, max_str_len=255,
                                                         max_array_len=4, max_map_len=0, max_bin_len=0)
    except Exception as exc:  # msgpack raises many types; a bad shape raises on unpacking
        raise FrameError(f"live message meta is not [buck, incarnation, seq, events_before]: {exc}") from None
    if not (isinstance(buck, str) and all(type(v) is int and v >= 0 for v in (incarnation, seq, before))):
        raise FrameError("live message meta is not [buck, incarnation, seq, events_before]")
    return events, Meta(buck, incarnation, seq, before)


def read(frames: list[bytes]) -> list[Event]:
    """Events of one live message; raises ``FrameError`` for a bad one."""
    return read_message(frames)[0]


class Gaps:
    """Counts, per buck, the messages and events a subscriber missed, from
    the ``seq`` and ``events_before`` of each message's ``Meta``.

    What it cannot see: messages dropped at the end of a topic's stream (no
    later message on that topic shows the gap), and anything before the first
    message it saw of a topic. What it counts that the buck does not: messages
    missed while disconnected from a buck. Memory is bounded by ``max_topics``
    (then it starts afresh, which can only miss gaps, never invent them)."""

    def __init__(self, max_topics: int = 100_000) -> None:
        self.max_topics = max_topics
        self.next: dict[tuple[int, bytes], tuple[int, int]] = {}
        self.names: dict[int, str] = {}
        self.messages: dict[int, int] = {}   # incarnation -> messages missed
        self.events: dict[int, int] = {}     # incarnation -> events missed

    def see(self, t: bytes, meta: Meta, count: int) -> int:
        """Note a message of ``count`` events on topic ``t``; returns how many
        events were missed on that topic just before it."""
        key = (meta.incarnation, t)
        expected = self.next.get(key)
        if expected is None and len(self.next) >= self.max_topics:
            self.next.clear()
        self.next[key] = (meta.seq + 1, meta.events_before + count)
        if expected is None:
            self.names.setdefault(meta.incarnation, meta.buck)
            return 0
        seq, before = expected
        if meta.seq <= seq:  # in order (or a replay: nothing missed)
            return 0
        missed = max(0, meta.events_before - before)
        inc = meta.incarnation
        self.messages[inc] = self.messages.get(inc, 0) + meta.seq - seq
        self.events[inc] = self.events.get(inc, 0) + missed
        return missed

    def forget(self, keep: Callable[[bytes], bool]) -> None:
        """Forget where each topic that ``keep`` rejects was: after an
        unsubscribe, what others read meanwhile is no gap of ours, so the
        topic's next message starts afresh, like a first one."""
        self.next = {k: v for k, v in self.next.items() if keep(k[1])}

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    def by_buck(self) -> dict[str, int]:
        """Events missed per buck name (incarnations of one name added up)."""
        out: dict[str, int] = {}
        for inc, n in self.events.items():
            name = self.names.get(inc, str(inc))
            out[name] = out.get(name, 0) + n
        return out


def report(subscriber: bytes, gaps: Gaps) -> list[bytes]:
    """The upstream drop report of a subscriber (see the module docstring)."""
    counts = {inc: [gaps.messages.get(inc, 0), n] for inc, n in gaps.events.items()}
    return [REPORT + subscriber, msgpack.packb(counts)]


def read_report(frames: list[bytes]) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """(subscriber id, {incarnation: (messages, events)}) of a drop report;
    raises ``FrameError`` for anything else."""
    if len(frames) != 2 or not frames[0].startswith(REPORT):
        raise FrameError("not a drop report")
    try:
        counts = msgpack.unpackb(frames[1], strict_map_key=False, max_map_len=1024, max_array_len=2048,
                                 max_str_len=0, max_bin_len=0)
        out = {int(k): (int(v[0]), int(v[1])) for k, v in counts.items()
               if type(k) is int and isinstance(v, list) and len(v) == 2}
    except Exception as exc:
        raise FrameError(f"drop report is not a map of counts: {exc}") from None
    return frames[0][len(REPORT):][:64], out
