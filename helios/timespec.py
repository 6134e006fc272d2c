"""Times as operators type them: ISO 8601 (UTC unless an offset is given),
relative to now (``-2h``, ``-30m``, ``-1d``, ``-90s``), ``now``, or seconds
since the epoch. All return seconds since the epoch (float)."""

from __future__ import annotations

import datetime
import re
import time

from helios.errors import HeliosError


class TimeSpecError(HeliosError):
    """A time given on the command line or in a request cannot be read."""


_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> float:
    now = time.time() if now is None else now
    t = text.strip()
    if t == "now":
        return now
    m = _RELATIVE.match(t)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    try:
        dt = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise TimeSpecError(f"{text!r} is not a time: use ISO 8601 (2026-11-20T10:00, UTC unless an offset "
                            "is given), a relative time like -2h, -30m, -1d, 'now', or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()
