"""Times as operators type them: ISO 8601 (UTC unless an offset is given),
relative to now (``-2h``, ``-30m``, ``-1d``, ``-90s``), ``now``, or seconds
since the epoch. ``parse_time`` returns seconds since the epoch (float), ``parse_time_ns``
nanoseconds. This module is also the one home of the ISO forms times are
printed in: ``iso_ms`` (event times, to the millisecond) and ``iso_s`` (to
the second). (A time *inside an event* sent by a client is read by
``helios.eventmap.event_time_ns``, which keeps nanoseconds exactly.)"""

from __future__ import annotations

import datetime
import re
import time
from decimal import Decimal

from helios.errors import HeliosError


class TimeSpecError(HeliosError):
    """A time given on the command line or in a request cannot be read."""


_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _read(text: str, now: float | None) -> float | Decimal | datetime.datetime:
    t = text.strip()
    if t == "now":
        return time.time() if now is None else now
    m = _RELATIVE.match(t)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNIT[m.group(2)]
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return Decimal(t)
    try:
        dt = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise TimeSpecError(f"{text!r} is not a time: use ISO 8601 (2026-11-20T10:00, UTC unless an offset "
                            "is given), a relative time like -2h, -30m, -1d, 'now', or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt


def parse_time(text: str, now: float | None = None) -> float:
    v = _read(text, now)
    return v.timestamp() if isinstance(v, datetime.datetime) else float(v)


# --------------------------------------------------------------------------- the one home of time formats

NS = 1_000_000_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def parse_time_ns(text: str, now: float | None = None) -> int:
    """``parse_time`` in nanoseconds since the epoch (the unit of event times)."""
    v = _read(text, now)
    if isinstance(v, datetime.datetime):  # exact to the microsecond, not through a float
        ns = (v - _EPOCH) // datetime.timedelta(microseconds=1) * 1000
    else:
        ns = round(v * NS)
    if not -(2**63) <= ns < 2**63:  # what an event time (int64 ns) can be: the indexes and frames hold no more
        raise TimeSpecError(f"{text!r} is out of range: times are 1677-09-21 .. 2262-04-11 (int64 nanoseconds)")
    return ns


def iso_ms(ns: int) -> str:
    """An event time (ns) as ISO 8601 UTC to the millisecond: ``2026-11-20T10:00:00.123Z``."""
    s, rest = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s)) + f"{rest // 1_000_000:03d}Z"


def iso_s(seconds: float) -> str:
    """A time in seconds since the epoch as ISO 8601 UTC to the second (floored): ``2026-11-20T10:00:00Z``.
    OverflowError, OSError or ValueError when the platform cannot represent it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
