"""Timestamps rendered from event times, so an archive need not store them twice.

Most log lines begin with the text their event time was parsed from. The
archive stores the time anyway (as deltas), so the text is derivable: if
rendering the time with a format reproduces the first bytes of the message
exactly, those bytes are dropped at pack and rendered again at unpack. A line
it does not reproduce (another format, a clock jump, an unparsed line) keeps
its text. Which format, and which UTC offset the times were parsed with, is
chosen per archive object from a sample (``choose``) and stored in its header.

Rendering is a pure function of (format, offset, time), independent of the
locale and the zone of the machine: a small strftime of our own, so that a
reader in any language can do the same (``docs/archive-format.md``):

    %Y year, 4 digits     %m month 01-12     %d day 01-31    %e day, space-padded " 1"-"31"
    %H hour 00-23         %M minute 00-59    %S second 00-59
    %b month name Jan-Dec (English)          %a weekday Mon-Sun (English)
    %3f %6f %9f  the first 3, 6 or 9 digits of the fraction of the second
    %% a percent sign; any other byte is itself

The time rendered is ``time + offset * 10**9`` nanoseconds (floor division
into seconds, so times before 1970 render like the ones after).
"""

from __future__ import annotations

import re
import time
from typing import Sequence

_NS = 1_000_000_000
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_WEEKDAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")   # tm_wday 0 is Monday
_TOKEN = re.compile(r"%(?:[YmdeHMSba%]|[369]f)|[^%]+|%")
_FRACTION = {"%3f": 3, "%6f": 6, "%9f": 9}

# What ``choose`` tries (the formats of the parsers in helios.parse, and a few
# close relatives). A reader needs none of this list: the header names the format.
CANDIDATES = (
    "%b %e %H:%M:%S",              # RFC 3164: "Jun  4 15:16:01"
    "%b %d %H:%M:%S",              # the same with a zero-padded day
    "%m-%d %H:%M:%S.%3f",          # Android logcat
    "%Y-%m-%d %H:%M:%S,%3f",       # log4j, Python logging
    "%Y-%m-%d %H:%M:%S.%3f",
    "%Y-%m-%d %H:%M:%S.%6f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%3f",       # ISO 8601 / RFC 3339
    "%Y-%m-%dT%H:%M:%S.%6f",
    "%Y-%m-%dT%H:%M:%S.%9f",
    "%Y-%m-%dT%H:%M:%S",
    "[%a %b %d %H:%M:%S %Y]",      # Apache error log
    "[%m.%d %H:%M:%S]",            # Proxifier (parsed since issue 19)
    "%Y%m%d-%H:%M:%S:%3f",         # HealthApp-style app logs
    "%Y/%m/%d %H:%M:%S",           # nginx error log
)
# UTC offsets tried, in seconds: quarter hours from -14 h to +14 h, nearest first.
OFFSETS = tuple(sorted(range(-14 * 3600, 14 * 3600 + 1, 900), key=abs))
_PROBE = 8       # lines an offset is searched on
_MIN_SHARE = 0.5  # of the sampled lines a format must reproduce to be used


class Stamp:
    """Render times with one format at one UTC offset (seconds)."""

    def __init__(self, fmt: str, offset: int) -> None:
        tokens = _TOKEN.findall(fmt)
        if "".join(tokens) != fmt or len(fmt) > 64:
            raise ValueError(f"not a timestamp format: {fmt!r}")
        digits = [_FRACTION[t] for t in tokens if t in _FRACTION]
        if len(digits) > 1:
            raise ValueError(f"a timestamp format has at most one fraction: {fmt!r}")
        self.fmt = fmt
        self.offset = offset
        self._shift = offset * _NS
        self._digits = digits[0] if digits else 0
        self._div = 10 ** (9 - self._digits)
        self._frac_fmt = b"%0" + str(self._digits).encode() + b"d"
        cut = next((i for i, t in enumerate(tokens) if t in _FRACTION), len(tokens))
        self._before, self._after = tokens[:cut], tokens[cut + 1:]
        self._cache: dict[int, tuple[bytes, bytes]] = {}

    def _seconds(self, s: int) -> tuple[bytes, bytes]:
        """The text before and after the fraction, for one second (cached)."""
        hit = self._cache.get(s)
        if hit is None:
            tm = time.gmtime(s)
            hit = (_render(self._before, tm), _render(self._after, tm))
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[s] = hit
        return hit

    def render(self, t_ns: int) -> bytes:
        s, ns = divmod(t_ns + self._shift, _NS)
        before, after = self._seconds(s)
        if self._digits:
            return before + self._frac_fmt % (ns // self._div) + after
        return before

    def strip(self, times: Sequence[int], messages: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
        """The messages without the rendering of their time where they start
        with it, and the positions of those that do not (kept whole)."""
        out: list[bytes] = []
        missed: list[int] = []
        put, miss, render = out.append, missed.append, self.render
        for i, (t, m) in enumerate(zip(times, messages)):
            try:
                text = render(t)
            except (OverflowError, OSError, ValueError):  # a time gmtime cannot take
                text = None
            if text is not None and m.startswith(text):
                put(m[len(text):])
            else:
                put(m)
                miss(i)
        return out, missed

    def restore(self, times: Sequence[int], rests: list[bytes], missed: Sequence[int]) -> list[bytes]:
        """The inverse of ``strip``."""
        render = self.render
        if not missed:
            return list(map(bytes.__add__, map(render, times), rests))
        skip = set(missed)
        return [m if i in skip else render(t) + m for i, (t, m) in enumerate(zip(times, rests))]


def _render(tokens: list[str], tm: time.struct_time) -> bytes:
    out = []
    for t in tokens:
        if t == "%Y":
            out.append(b"%04d" % tm.tm_year)
        elif t == "%m":
            out.append(b"%02d" % tm.tm_mon)
        elif t == "%d":
            out.append(b"%02d" % tm.tm_mday)
        elif t == "%e":
            out.append(b"%2d" % tm.tm_mday)
        elif t == "%H":
            out.append(b"%02d" % tm.tm_hour)
        elif t == "%M":
            out.append(b"%02d" % tm.tm_min)
        elif t == "%S":
            out.append(b"%02d" % tm.tm_sec)
        elif t == "%b":
            out.append(_MONTHS[tm.tm_mon - 1])
        elif t == "%a":
            out.append(_WEEKDAYS[tm.tm_wday])
        elif t == "%%":
            out.append(b"%")
        else:
            out.append(t.encode("ascii"))
    return b"".join(out)


def choose(times: Sequence[int], messages: Sequence[bytes]) -> Stamp | None:
    """The (format, offset) that reproduces the most leading bytes of a sample
    of lines, if it reproduces at least half of them; else None."""
    if not times:
        return None
    probe = list(zip(times[:_PROBE], messages[:_PROBE]))
    best, best_bytes = None, 0
    for fmt in CANDIDATES:
        if not fmt.isascii():
            continue
        for offset in OFFSETS:
            stamp = Stamp(fmt, offset)
            if any(_starts(stamp, t, m) for t, m in probe):
                break
        else:
            continue
        rests, missed = stamp.strip(times, messages)
        if len(missed) > len(times) * (1 - _MIN_SHARE):
            continue
        saved = sum(map(len, messages)) - sum(map(len, rests))
        if saved > best_bytes:
            best, best_bytes = stamp, saved
    if best is not None:
        best._cache.clear()
    return best


def _starts(stamp: Stamp, t: int, m: bytes) -> bool:
    try:
        return m.startswith(stamp.render(t))
    except (OverflowError, OSError, ValueError):
        return False
