"""Window arithmetic of the porter: which bucket windows are done, how old
they are, and the archive blacklist. Pure: every function takes ``now``.

A bucket window is a ``layout.BucketName`` (environment, start and width in
seconds). Bucks file frames by arrival time, so a window is complete once
the bucks' clocks have passed its end; the porter waits ``grace`` seconds
more before loading it, for clocks that disagree by a little and for the
buck to close its file. Ages count from a window's end, not its start: a
window of a day is not "48 hours old" while it is still being written.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from helios.store import layout
from helios.store.layout import BucketName

__all__ = ["Blacklist", "age", "day_of", "due", "last_due_start", "older_than", "parse_blacklist_entry"]

DAY = layout.DAY


def due(name: BucketName, now: float, grace: float) -> bool:
    """Has the window ended at least ``grace`` seconds before ``now``?"""
    return name.end + grace <= now


def age(name: BucketName, now: float) -> float:
    """Seconds since the window ended (negative while it is open)."""
    return now - name.end


def older_than(name: BucketName, now: float, seconds: float) -> bool:
    """Did the window end at least ``seconds`` before ``now``?"""
    return name.end + seconds <= now


def last_due_start(now: float, width: int, grace: float) -> int:
    """The start of the latest window of ``width`` that is ``due`` at ``now``:
    every window starting at or before it is due, none after it is."""
    if width <= 0 or DAY % width:
        raise ValueError(f"A window width must divide 86400, not {width!r}.")
    limit = int((now - grace) // 1)  # whole seconds: window ends are whole
    return (limit - width) - (limit - width) % width


def day_of(start: int) -> int:
    """The UTC midnight (seconds) of the day a window lies in (windows never
    cross midnight)."""
    return start - start % DAY


# --------------------------------------------------------------------------- the blacklist

_TIME_FORM = re.compile(r"(?P<env>[^/]+)/(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)")


@dataclass(frozen=True)
class _Entry:
    environment: str
    at: int | None = None             # an instant (s): every window of the environment holding it
    bucket: BucketName | None = None  # or exactly this bucket


def parse_blacklist_entry(text: str) -> _Entry:
    """``ENV/2026-11-20T10:00`` (UTC unless an offset is given; the window of
    ENV holding that instant, whatever its width) or a bucket id
    ``ENV/20261120/100000-60s`` (exactly that window). ``ValueError`` says
    what is wrong."""
    m = _TIME_FORM.fullmatch(text.strip())
    if m:
        env = m["env"]
        if not layout.valid_environment(env):
            raise ValueError(f"{env!r} is not an environment name")
        try:
            t = _dt.datetime.fromisoformat(m["time"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{m['time']!r} is not a time ({exc})") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return _Entry(env, at=int(t.timestamp()))
    try:
        name = layout.parse_bucket_id(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither ENV/YYYY-MM-DDTHH:MM[:SS] (UTC unless an offset is given) "
                         "nor a bucket id ENV/YYYYMMDD/HHMMSS-<width>s") from None
    return _Entry(name.environment, bucket=name)


class Blacklist:
    """Windows the archiver skips (``[porter] archive_blacklist``)."""

    def __init__(self, entries: tuple[str, ...] | list[str] = ()) -> None:
        self.entries = [parse_blacklist_entry(e) for e in entries]
        self.texts = list(entries)

    def matches(self, name: BucketName) -> str | None:
        """The entry (as configured) that blacklists this window, or None."""
        for text, e in zip(self.texts, self.entries):
            if e.environment != name.environment:
                continue
            if e.bucket is not None and e.bucket == name:
                return text
            if e.at is not None and name.start <= e.at < name.end:
                return text
        return None

    def __bool__(self) -> bool:
        return bool(self.entries)
