"""The live feed: topics and messages on every buck's PUB socket.

Both ends use this module: the buck publishes with ``message``, subscribers
(``helios subscribe``, the nagios check, the graphite bridge, the web live
tail, the porter) subscribe with ``prefix`` and read with ``read``.

Topic layout (bytes, each field ended by NUL so that a prefix never matches a
longer name: subscribing to app ``ssh`` must not match ``sshd``)::

    ENVIRONMENT \\0 APP \\0 SEVERITY \\0 HOST \\0

SEVERITY is one ASCII digit ``0`` (emerg) .. ``7`` (debug), or ``-`` when
unknown. ZeroMQ filters subscriptions by prefix, so what people filter on
most comes first: environment, then app, then severity, then host. A filter
that skips a level (host without app, say) subscribes to the longest prefix
it can and filters the rest itself.

A message is two frames: the topic, and a ``helios.codec`` batch frame (not
compressed) of the events that share that topic, in the order the buck stored
them. Events are published in small batches, not one by one, so a busy buck
publishes one message per topic per stored frame.
"""

from __future__ import annotations

from typing import Iterable

from helios import codec
from helios.errors import FrameError
from helios.model import Event

SEP = b"\x00"


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


def parse_topic(t: bytes) -> tuple[str, str, int | None, str]:
    env, app, sev, host, rest = t.split(SEP, 4)
    return env.decode(), app.decode(), None if sev == b"-" else int(sev), host.decode()


def message(environment: str, host: str, rows: list, first: int, last: int, row_topic: bytes) -> list[bytes]:
    """The frames of one live message (see the module docstring)."""
    return [row_topic, codec.encode_rows(environment, host, rows, first, last, compress=False)]


def group_rows(environment: str, rows: Iterable) -> dict[bytes, list]:
    """Rows (positional event arrays) grouped by their topic, order kept."""
    groups: dict[bytes, list] = {}
    env = environment.encode() + SEP
    for row in rows:
        # row: id, time, received, host, app, severity, ...
        sev = row[5]
        t = env + row[4].encode() + SEP + (b"-" if sev is None else b"%d" % sev) + SEP + row[3].encode() + SEP
        groups.setdefault(t, []).append(row)
    return groups


def read(frames: list[bytes]) -> list[Event]:
    """Events of one live message; raises ``FrameError`` for a bad one."""
    if len(frames) != 2:
        raise FrameError(f"a live message has 2 frames, this one has {len(frames)}")
    return codec.decode(frames[1])[1]
