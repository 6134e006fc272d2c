"""Reading times: zones, the year of yearless dates, and caches that make a
repeated timestamp cost one dict lookup. The time half of ``helios.parse.Parser``.

Time zones and years
--------------------
A timestamp without an offset is read in ``tz`` (the tailer gives the host's
local zone unless the config names one, per path). RFC 3164, logcat and a few
app layouts have no year. The year is the latest one that puts the timestamp
before ``limit``, the UTC midnight that starts the third day after the day
of ``now_ns``: so the line is put as close as it can be to the time it was
read, never more than about two days after it (clock skew, a zone ahead of
ours). Read on December 6th, a January 1st line is this year's (a past
line); read late on December 31st, it is next year's; read on January 2nd,
a December 31st line is last year's. ``limit`` moves once a day, and the
caches that depend on it are cleared when it does. (The comparison is made
on the start of the line's hour, which matters only within the hour around
``limit``.) Feb 29 goes to the latest leap year that qualifies. A time of
day without a date (logback's ``08:15:02.118``) is today's in ``tz``, or
yesterday's when that would be more than an hour after the read time.

Fractions make most timestamps new, so they are cut off and whole seconds
go through a cache (``_iso_ns``, ``_app_ns``); a time that does not convert
is not cached and gives the receive time (``TimeCache``).
"""

from __future__ import annotations

import datetime
import operator
import re
from typing import Callable

from helios.parsing.timestamps import MONTHS, bsd_parts, epoch_ns, other_parts

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_NS = 2**63 - 1                # what the wire's int64 can carry
_CACHE_MAX = 100_000
_FUTURE_DAYS = 3                   # see "Time zones and years"
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()

# An ISO timestamp without its fraction (see Clock._iso_ns).
ISO_PARTS = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d) ?(?:([Zz]|UTC|GMT)|([+-])(\d\d)(?::?(\d\d))?)?")
# A fraction after the seconds: ".123", ",123", or ":606" (a count of ms, as
# some Java apps print them unpadded: ":6" is 6 ms).
FRACTION = re.compile(rb"(.*\d:\d\d?:\d\d?)([.,:])(\d{1,9})")

# An ISO timestamp cut where _iso_ns cuts it: its first 19 bytes, a fraction
# (with its "." or ","), the rest (a zone); see Clock.iso_column.
_ISO_CUT = re.compile(rb"^(.{0,19})([.,][0-9]*|)(.*)", re.M)
_CUTS = tuple(operator.itemgetter(k) for k in range(3))
_DIGITS = operator.itemgetter(slice(1, 10))          # b".123" -> b"123" (at most 9 digits)
_NINE = operator.methodcaller("ljust", 9, b"0")      # b"123" -> b"123000000": ns


class Cache(dict):
    """A memo of ``fn``: ``cache[key]`` computes a missing value once. Cleared
    when it passes ``size`` entries or is cleared; ``fixed`` entries survive that."""

    def __init__(self, fn: Callable, fixed: dict | None = None, size: int = _CACHE_MAX) -> None:
        super().__init__(fixed or {})
        self.fn = fn
        self.fixed = dict(fixed or {})
        self.size = size

    def __missing__(self, key):
        value = self.fn(key)
        self._keep(key, value)
        return value

    def _keep(self, key, value) -> None:
        if len(self) >= self.size:
            self.clear()
        self[key] = value

    def clear(self) -> None:
        """Forgets every entry but the ``fixed`` ones."""
        super().clear()
        self.update(self.fixed)


class TimeCache(Cache):
    """Timestamp bytes -> ns. A timestamp that does not convert is not cached:
    it gets ``now``, the receive time of the chunk being parsed."""

    now = 0

    def __missing__(self, key):
        ns = self.fn(key)
        if ns is None or not 0 <= ns <= _MAX_NS:
            return self.now
        self._keep(key, ns)
        return ns


class Clock:
    """Timestamps of every layout the parser knows to ns since the epoch, UTC,
    in zone ``tz``; ``rules`` bring their own time readers."""

    def __init__(self, tz: datetime.tzinfo, rules=()) -> None:
        self._tz = tz
        # A fixed-offset zone converts by arithmetic; a zone with rules (DST) through datetime.
        offset = tz.utcoffset(None)
        self._fixed_offset = None if offset is None else int(offset.total_seconds())
        self._limit = None                  # see "Time zones and years"
        self._limit_year = 0
        self._now = 0
        self._hour = 0
        # Hours of yearless timestamps: b"jun 14 15" (RFC 3164), b"03-17 16" (logcat).
        self._hours_3164 = Cache(lambda k: self._yearless_hour_ns(MONTHS.get(k[:3].lower()), int(k[4:6]),
                                                                   int(k[7:9])))
        self._hours_logcat = Cache(lambda k: self._yearless_hour_ns(int(k[:2]), int(k[3:5]), int(k[6:8])))
        self._iso_seconds = Cache(self._iso_seconds_ns)
        self._other_seconds = Cache(self._other_seconds_ns)
        self._iso_times = TimeCache(self._iso_ns)
        self._bsd_times = TimeCache(self._rfc3164_ns)
        self._app_times = TimeCache(self._app_ns)
        self._logcat_times = TimeCache(self._logcat_ns)
        self._apache_times = TimeCache(self._apache_ns)
        self._access_times = TimeCache(self._access_ns)
        self._glog_times = TimeCache(self._glog_ns)
        # The caches whose values depend on the year (cleared with it); a subclass adds its own.
        self._yearless: tuple[Cache, ...] = (self._bsd_times, self._app_times, self._logcat_times,
                                             self._other_seconds, self._glog_times)
        self._time_caches = (self._iso_times, self._bsd_times, self._app_times, self._logcat_times,
                             self._apache_times, self._access_times, self._glog_times)
        self._rule_times = [TimeCache(self._rule_reader(r)) for r in rules]

    def _set_now(self, now_ns: int) -> None:
        self._now = now_ns
        limit = (now_ns // _DAY_NS + _FUTURE_DAYS) * _DAY_NS
        if limit != self._limit:            # a new day: yearless timestamps may change year
            self._limit = limit
            self._limit_year = datetime.datetime.fromtimestamp(limit // _NS, datetime.timezone.utc).year
            self._hours_3164.clear()
            self._hours_logcat.clear()
            for cache in self._yearless:
                cache.clear()
            for cache in self._rule_times:
                cache.clear()
        hour = now_ns // (3600 * _NS)
        if hour != self._hour:              # a time of day without a date depends on the hour
            self._hour = hour
            self._other_seconds.clear()
            self._app_times.clear()
        for cache in (*self._time_caches, *self._rule_times):
            cache.now = now_ns
            cache[b""] = cache[b"-"] = now_ns   # unrecognised, and RFC 5424's nil time

    def _local_ns(self, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0,
                  tz: datetime.tzinfo | None = None) -> int:
        """ns of a wall-clock time in ``tz`` (the parser's); ValueError when there is no such time."""
        if h > 23 or mi > 59 or s > 60:
            raise ValueError("time out of range")
        if tz is None and self._fixed_offset is not None:
            days = datetime.date(y, mo, d).toordinal() - _EPOCH_ORDINAL
            return (days * 86_400 + h * 3600 + mi * 60 + s - self._fixed_offset) * _NS
        stamp = datetime.datetime(y, mo, d, h, mi, min(s, 59), tzinfo=tz or self._tz).timestamp()
        return (round(stamp) + (s > 59)) * _NS

    def _yearless_hour_ns(self, mo: int | None, d: int, h: int, tz: datetime.tzinfo | None = None) -> int | None:
        """ns of the start of an hour in the inferred year (see the module docstring)."""
        if mo is None:
            return None
        for year in range(self._limit_year + 1, self._limit_year - 8, -1):
            try:
                ns = self._local_ns(year, mo, d, h, tz=tz)
            except (ValueError, OverflowError):
                continue                    # no such date (Feb 29) in that year
            if ns < self._limit:
                return ns
        return None

    def _rfc3164_ns(self, ts: bytes) -> int | None:
        # b"Jun 14 15:16:01", the usual case: the hour goes through a cache of
        # its own, so a new second costs only this.
        if len(ts) == 15 and ts[3] == 32 and ts[6] == 32:
            try:
                base = self._hours_3164[ts[:9]]
                mi, s = int(ts[10:12]), int(ts[13:15])
            except ValueError:
                return None
            if base is None or mi > 59 or s > 60:
                return None
            return base + (mi * 60 + s) * _NS
        if ts[:1].isdigit():                # "<14>2010-08-30T23:00:05Z ..."
            return self._iso_ns(ts)
        parts = bsd_parts(ts)               # unpadded day, a year, a fraction
        if parts is None:
            return None
        y, mo, d, h, mi, s, frac = parts
        try:
            if y is None:
                base = self._yearless_hour_ns(mo, d, h)
                return None if base is None or mi > 59 or s > 60 else base + (mi * 60 + s) * _NS + frac
            return self._local_ns(y, mo, d, h, mi, s) + frac
        except (ValueError, OverflowError):
            return None

    def _logcat_ns(self, ts: bytes) -> int | None:
        # b"03-17 16:13:38.811"
        base = self._hours_logcat[ts[:8]]
        mi, s = int(ts[9:11]), int(ts[12:14])
        if base is None or mi > 59 or s > 60:
            return None
        return base + (mi * 60 + s) * _NS + int(ts[15:18]) * 1_000_000

    def _glog_ns(self, ts: bytes) -> int | None:
        # b"0311 08:15:02.118123" (no year)
        base = self._hours_logcat[ts[:2] + b"-" + ts[2:4] + b" " + ts[5:7]]
        mi, s = int(ts[8:10]), int(ts[11:13])
        if base is None or mi > 59 or s > 60:
            return None
        return base + (mi * 60 + s) * _NS + int(ts[14:20]) * 1000

    def _access_ns(self, ts: bytes) -> int | None:
        # b"11/Mar/2024:08:15:02 +0100"
        mo = MONTHS.get(ts[3:6].lower())
        try:
            days = datetime.date(int(ts[7:11]), mo or 0, int(ts[:2])).toordinal() - _EPOCH_ORDINAL
            h, mi, s = int(ts[12:14]), int(ts[15:17]), int(ts[18:20])
            offset = int(ts[22:24]) * 3600 + int(ts[24:26]) * 60
        except ValueError:
            return None
        if h > 23 or mi > 59 or s > 60:
            return None
        return (days * 86_400 + h * 3600 + mi * 60 + s - (offset if ts[21:22] == b"+" else -offset)) * _NS

    def _apache_ns(self, ts: bytes) -> int | None:
        # b"Dec 04 04:47:44 2005", maybe with a fraction: b"Dec 04 04:47:44.123456 2005"
        mon, day, clock, year = ts.split()
        hms, _, frac = clock.partition(b".")
        try:
            ns = self._local_ns(int(year), MONTHS[mon.lower()], int(day), int(hms[:2]), int(hms[3:5]),
                                int(hms[6:8]))
        except (ValueError, OverflowError, KeyError):
            return None
        return ns + (int(frac.ljust(9, b"0")) if frac else 0)

    def _app_ns(self, ts: bytes) -> int | None:
        """An app-log timestamp: ISO 8601, else one of the layouts of
        ``helios.parsing.timestamps``; the fraction is cut off first, so
        that whole seconds go through a cache."""
        if ts[:1] == b"[":
            ts = ts.strip(b"[]")
        if ts[4:5] == b"-":
            return self._iso_ns(ts)
        if ts[10:11] == b"." and ts[:10].isdigit():   # b"1709964000.123": epoch seconds
            return epoch_ns(ts, _NS)
        m = FRACTION.fullmatch(ts)
        if m is None:
            return self._other_seconds[ts]
        base = self._other_seconds[m[1]]
        if base is None:
            return None
        return base + (int(m[3]) * 1_000_000 if m[2] == b":" else int(m[3].ljust(9, b"0")))

    def _other_seconds_ns(self, ts: bytes) -> int | None:
        if len(ts) == 8 and ts[2] == 58:    # b"08:15:02", no date: today's, or yesterday's if
            try:                            # that is more than an hour ahead of the read time
                h, mi, s = int(ts[:2]), int(ts[3:5]), int(ts[6:8])
                today = datetime.datetime.fromtimestamp(self._now // _NS, self._tz).date()
                ns = self._local_ns(today.year, today.month, today.day, h, mi, s)
            except (ValueError, OverflowError):
                return None
            return ns - _DAY_NS if ns > self._now + 3600 * _NS else ns
        parts = other_parts(ts)
        if parts is None:
            return None
        y, mo, d, h, mi, s = parts
        try:
            if y is None:
                base = self._yearless_hour_ns(mo, d, h)
                return None if base is None or mi > 59 or s > 60 else base + (mi * 60 + s) * _NS
            return self._local_ns(y, mo, d, h, mi, s)
        except (ValueError, OverflowError):
            return None

    def _iso_ns(self, ts: bytes) -> int | None:
        """ISO 8601 / RFC 3339 timestamp -> ns; None when it is not one.

        Fractions make most timestamps new, so the fraction is cut out here
        and the rest (b"2026-11-20T10:00:01Z") goes through a cache of whole
        seconds: a new timestamp costs a few slices."""
        head, rest = ts[:19], ts[19:]
        if rest[:1] == b"." or rest[:1] == b",":
            zone = rest[1:].lstrip(b"0123456789")
            frac = rest[1:len(rest) - len(zone)]
            if not frac:
                return None
            base = self._iso_seconds[head + zone]
            return None if base is None else base + int(frac[:9].ljust(9, b"0"))
        return self._iso_seconds[ts]

    def iso_column(self, stamps) -> list[int]:
        """``[self._iso_times[s] for s in stamps]``, faster. Stamps with a
        fraction are all new, so instead of a cache miss each (three calls
        and a dict entry), one findall cuts every stamp as ``_iso_ns`` does
        and one loop adds its fraction to the whole seconds. (Which way a
        column goes, by its first stamp, changes only the speed.)"""
        if stamps[0][19:20] not in (b".", b","):
            return list(map(self._iso_times.__getitem__, stamps))
        seconds, now = self._iso_seconds, self._now
        rows = _ISO_CUT.findall(b"\n".join(stamps))
        heads, fracs, zones = (list(map(get, rows)) for get in _CUTS)
        if min(map(len, fracs)) > 1:        # every stamp has a fraction: all in C if every base is known
            bases = list(map(seconds.__getitem__, map(operator.add, heads, zones)))
            if None not in bases:
                out = list(map(operator.add, bases, map(int, map(_NINE, map(_DIGITS, fracs)))))
                if min(out) >= 0 and max(out) <= _MAX_NS:
                    return out
        out = []
        for head, frac, zone in rows:
            if frac:
                base = None if len(frac) == 1 else seconds[head + zone]
                ns = now if base is None else base + int(frac[1:10].ljust(9, b"0"))
            else:
                base = seconds[head + zone]
                ns = now if base is None else base
            out.append(ns if 0 <= ns <= _MAX_NS else now)
        return out

    def _iso_seconds_ns(self, ts: bytes) -> int | None:
        m = ISO_PARTS.fullmatch(ts)
        if m is None:
            return None
        y, mo, d, h, mi, s, zulu, sign, off_h, off_m = m.groups()
        try:
            if zulu or sign:
                days = datetime.date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
                h, mi, s = int(h), int(mi), int(s)
                if h > 23 or mi > 59 or s > 60:
                    return None
                offset = int(off_h) * 3600 + int(off_m or 0) * 60 if sign else 0
                ns = (days * 86_400 + h * 3600 + mi * 60 + s - (offset if sign == b"+" else -offset)) * _NS
            else:
                ns = self._local_ns(int(y), int(mo), int(d), int(h), int(mi), int(s))
        except (ValueError, OverflowError):
            return None
        return ns

    def _rule_reader(self, rule) -> Callable[[bytes], int | None]:
        """The time conversion of a rule: its own (epoch, strptime), in its
        zone or the parser's; ``auto`` tries the layouts the passes know."""
        if rule.epoch_unit:
            return lambda ts: epoch_ns(ts, rule.epoch_unit)
        if rule.strptime:
            tz = rule.tz or self._tz

            def read(ts: bytes) -> int | None:
                try:
                    dt = datetime.datetime.strptime(ts.decode("utf-8", "replace"), rule.strptime)
                except ValueError:
                    return None
                if "%Y" not in rule.strptime and "%y" not in rule.strptime:
                    hour = self._yearless_hour_ns(dt.month, dt.day, dt.hour, tz)
                    if hour is None:
                        return None
                    return hour + (dt.minute * 60 + dt.second) * _NS + dt.microsecond * 1000
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=tz)
                return (int(dt.timestamp()) if dt.microsecond == 0 else int(dt.replace(microsecond=0).timestamp())) \
                    * _NS + dt.microsecond * 1000
            return read
        return self._any_ns

    def _any_ns(self, ts: bytes) -> int | None:
        if ts[:1].isalpha():
            return self._rfc3164_ns(ts)
        return self._app_ns(ts)

    def _json_time(self, value) -> int | None:
        if isinstance(value, str):
            if not value or value == "-" or len(value) > 40:  # (no timestamp is that long)
                return None
            if not (value.isascii() and value.isdigit()):
                key = value.encode("utf-8", "replace")
                ns = self._iso_times.get(key)
                if ns is None:
                    ns = self._app_ns(key)
                    if ns is None or not 0 <= ns <= _MAX_NS:
                        return None
                    self._iso_times._keep(key, ns)
                return ns
            value = int(value)
        if type(value) is not int and type(value) is not float:  # bool is not a time
            return None
        # Seconds, ms, us or ns since the epoch, judged by magnitude
        # (1e11 s is the year 5138; 1e11 ms is 1973).
        size = abs(value)
        scale = _NS if size < 1e11 else 1_000_000 if size < 1e14 else 1_000 if size < 1e17 else 1
        try:
            # A float holds about 16 digits: of epoch seconds, microseconds are all it can tell.
            ns = value * scale if type(value) is int else round(value * scale / 1000) * 1000
        except (ValueError, OverflowError):  # nan, inf
            return None
        return ns if 0 <= ns <= _MAX_NS else None
