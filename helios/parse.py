"""Parse log lines into columns: event time, host, app and severity. Pure, no I/O.

Batch design
------------
The tailer hands over a chunk of complete lines and must get four columns back
at several hundred thousand lines a second: about a microsecond a line for
everything. A Python loop calling a regex per line already spends that, so the
work is done per chunk, in C wherever possible:

1. One ``findall`` of a multi-line pattern over the whole chunk. Every pattern
   has the shape ``^(?:HEADER)?.*``, so it matches every line exactly once (a
   line whose header is not recognised gives empty groups): match *i* is line
   *i*, and nothing needs aligning.
2. ``zip(*matches)`` turns rows into columns, and each column is mapped
   through a dict whose ``__missing__`` does the real conversion. Logs repeat
   their timestamps, hosts, apps and priorities, so most values cost one dict
   lookup; only a new value runs Python code. Every cache is bounded.
3. ``auto`` runs the RFC 3164 pass over the chunk first. The lines it did not
   recognise are joined into a smaller chunk for the next pass (RFC 5424, ISO
   8601, Apache error log, Android logcat), and what is still left is tried as
   JSON, line by line. The formats are told apart by their first bytes, so a
   line can match one pass only and the order of the passes changes nothing
   but the speed: the pass that recognised most of a chunk goes first for the
   next one, and a file of one format pays for one pass a chunk.

A line that nothing recognises is kept with the receive time, the default host
and app, and no severity. Parsing never raises on content and never drops a
line: the message bytes are the line as read (a ``\\r`` before the newline is
kept). A parsed time outside 1970..2262 (what fits in int64 nanoseconds) is
treated as unparsed.

Year inference
--------------
RFC 3164 and logcat timestamps have no year. The year is the latest one that
puts the timestamp before ``limit``, the UTC midnight that starts the 32nd day
after the day of ``now_ns``: so a line up to a month in the future (clock skew,
a zone ahead of ours) stays in the current year, and anything later than that
belongs to the year before. The window is thus (now - ~11 months, now + ~1
month]. Read in January, a December line is last year's; read late on
December 31st, a January 1st line is next year's. ``limit`` moves once a day,
and the caches that depend on it are cleared when it does. (The comparison is
made on the start of the line's hour, which matters only within the hour
around ``limit``.) Feb 29 goes to the latest leap year that qualifies.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Callable, NamedTuple

from helios.model import SEVERITY_BY_NAME

FORMATS = ("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw")

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_NS = 2**63 - 1                # what the wire's int64 can carry
_CACHE_MAX = 100_000
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_MONTHS = {m: i for i, m in enumerate(
    (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"), 1)}
_MON = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_ISO_TS = rb"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:[Zz]|[+-]\d\d(?::?\d\d)?)?"
# A level word right after a timestamp: "INFO", "[warn]", "| ERROR" (loguru).
_LEVEL = rb"(?: +[\[|]? *([A-Za-z]{1,13}\d?)\b)?"

# The patterns of the batch passes. None may consume a "\n" inside its header:
# each must match each line exactly once (see the module docstring). Captured
# fields are bounded (a longer host is cut) so that no cache key is huge.
# RFC 3164: "<PRI>Mmm dd hh:mm:ss host tag[pid]: msg". The tag may hold spaces
# ("syslogd 1.4.1: restart.") but not ":" or "[", and must end in "[pid]:" or
# ":", else the line has a host and no app.
_RFC3164 = re.compile(
    rb"^(?:(?:<(\d{1,3})>)?(" + _MON + rb" [ \d]\d \d\d:\d\d:\d\d) +(\S{1,255})\S*"
    rb"(?: +([^ :\[\n][^:\[\n]{0,47})(?:\[[^\]\n]{0,32}\])?:)?)?.*", re.M)
# RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID ..." ("-" is nil).
# The atomic groups keep a line with too few fields from backtracking through
# every way of cutting each one.
_RFC5424 = re.compile(
    rb"^(?:<(\d{1,3})>\d{1,2} (?>(\S{1,40})\S*) (?>(\S{1,255})\S*) (?>(\S{1,48})\S*))?.*", re.M)
_ISO8601 = re.compile(rb"^(?:(" + _ISO_TS + rb")" + _LEVEL + rb")?.*", re.M)
# Apache httpd error log: "[Sun Dec 04 04:47:44 2005] [notice] msg" (2.4: "[core:notice]").
_APACHE = re.compile(
    rb"^(?:\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (" + _MON + rb" [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})? \d{4})\]"
    rb" \[(?:\w{1,32}:)?(\w{1,16})\])?.*", re.M)
# Android logcat threadtime: "03-17 16:13:38.811  1702  2395 D Tag: msg".
_LOGCAT = re.compile(
    rb"^(?:(\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +\d+ +\d+ ([VDIWEFA]) ([^:\n]{0,64}?) ?:)?.*", re.M)

# An ISO timestamp without its fraction (see Parser._iso_ns).
_ISO_PARTS = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d) ?(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)?")
_LOGCAT_SEVERITY = {b"V": 7, b"D": 7, b"I": 6, b"W": 4, b"E": 3, b"F": 2, b"A": 0}
# Bunyan and pino write numeric levels: 10 trace .. 60 fatal.
_BUNYAN_SEVERITY = {10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2}
_JSON = json.JSONDecoder()
_JSON_TIME_KEYS = ("time", "timestamp", "@timestamp", "ts")
_JSON_HOST_KEYS = ("host", "hostname")
_JSON_APP_KEYS = ("app", "service", "program", "logger")
_JSON_LEVEL_KEYS = ("level", "severity")


class Columns(NamedTuple):
    lines: list[bytes]            # each line as read, without its b"\n"
    times: list[int]              # event time, ns since the epoch, UTC (else the receive time)
    hosts: list[str]              # parsed host, else the default host
    apps: list[str]               # parsed app name (no "[pid]"), else the default app
    severities: list[int | None]  # 0 (emerg) .. 7 (debug), None when unknown


class _Cache(dict):
    """A memo of ``fn``: ``cache[key]`` computes a missing value once. Cleared
    when it passes ``_CACHE_MAX`` entries; ``fixed`` entries survive that."""

    def __init__(self, fn: Callable, fixed: dict | None = None) -> None:
        super().__init__(fixed or {})
        self.fn = fn
        self.fixed = dict(fixed or {})

    def __missing__(self, key):
        value = self.fn(key)
        self._keep(key, value)
        return value

    def _keep(self, key, value) -> None:
        if len(self) >= _CACHE_MAX:
            self.clear()
            self.update(self.fixed)
        self[key] = value


class _TimeCache(_Cache):
    """Timestamp bytes -> ns. A timestamp that does not convert is not cached:
    it gets ``now``, the receive time of the chunk being parsed."""

    now = 0

    def __missing__(self, key):
        ns = self.fn(key)
        if ns is None or not 0 <= ns <= _MAX_NS:
            return self.now
        self._keep(key, ns)
        return ns


class _Pass(NamedTuple):
    rx: re.Pattern
    times: _TimeCache
    severities: _Cache | None
    fields: tuple          # group index of (time, severity, host, app); None when absent


def _level_severity(word: bytes) -> int | None:
    # "WARN" -> 4; Apache 2.4 "trace1".."trace8" -> trace.
    return SEVERITY_BY_NAME.get(word.decode("ascii", "replace").lower().rstrip("0123456789"))


class Parser:
    """Parses chunks of lines of one format (or ``auto``); see the module docstring.

    ``tz`` is the zone of timestamps that carry no offset (RFC 3164, most app
    logs); timestamps with an offset or ``Z`` use theirs."""

    def __init__(self, fmt: str = "auto", *, default_host: str = "", default_app: str = "",
                 tz: datetime.tzinfo = datetime.timezone.utc) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.default_host = default_host
        self.default_app = default_app
        self._tz = tz
        # A fixed-offset zone converts by arithmetic; a zone with rules (DST) through datetime.
        offset = tz.utcoffset(None)
        self._fixed_offset = None if offset is None else int(offset.total_seconds())
        self._limit = None                  # see "Year inference"
        self._limit_year = 0

        def decode(raw: bytes) -> str:
            return raw.decode("utf-8", "replace").strip()

        self._hosts = _Cache(decode, {b"": default_host, b"-": default_host})
        self._apps = _Cache(decode, {b"": default_app, b"-": default_app})
        # Hours of yearless timestamps: b"Jun 14 15" (RFC 3164), b"03-17 16" (logcat).
        self._hours_3164 = _Cache(lambda k: self._yearless_hour_ns(_MONTHS[k[:3]], int(k[4:6]), int(k[7:9])))
        self._hours_logcat = _Cache(lambda k: self._yearless_hour_ns(int(k[:2]), int(k[3:5]), int(k[6:8])))
        pri = _Cache(lambda raw: int(raw) & 7, {b"": None})
        level = _Cache(_level_severity, {b"": None})
        iso = _TimeCache(self._iso_ns)
        self._iso_seconds = _Cache(self._iso_seconds_ns)
        self._iso_times = iso
        self._yearless = (_TimeCache(self._rfc3164_ns), _TimeCache(self._logcat_ns))
        apache = _TimeCache(self._apache_ns)
        self._time_caches = (iso, apache, *self._yearless)
        passes = {
            "rfc3164": _Pass(_RFC3164, self._yearless[0], pri, (1, 0, 2, 3)),
            "rfc5424": _Pass(_RFC5424, iso, pri, (1, 0, 2, 3)),
            "iso8601": _Pass(_ISO8601, iso, level, (0, 1, None, None)),
            "apache": _Pass(_APACHE, apache, level, (0, 1, None, None)),
            "logcat": _Pass(_LOGCAT, self._yearless[1], _Cache(_LOGCAT_SEVERITY.get), (0, 1, None, 2)),
            "json": _Pass(None, iso, None, ()),       # line by line, see _parse_json
        }
        if fmt == "auto":
            self._order = list(passes.values())
        else:
            self._order = [passes[fmt]] if fmt in passes else []

    # -- the batch path ------------------------------------------------------

    def parse_chunk(self, chunk: bytes, now_ns: int) -> Columns:
        """Columns for every line of ``chunk`` (complete lines, each ending in
        b"\\n"; trailing bytes without one count as a last line)."""
        if not chunk:
            return Columns([], [], [], [], [])
        lines = chunk.split(b"\n")
        if chunk[-1] == 10:                 # b"\n": split() left an empty string after it
            lines.pop()
        n = len(lines)
        self._set_now(now_ns)
        if not self._order:                 # raw
            return self._unparsed(lines, now_ns)

        first, *rest = self._order
        if first.rx is None:
            out = self._unparsed(lines, now_ns)
            left = self._parse_json(out, range(n))
        else:
            stamps, times, sevs, hosts, apps = self._run(first, chunk, n)
            out = Columns(lines, times, hosts, apps, sevs)
            left = [i for i, stamp in enumerate(stamps) if not stamp] if b"" in stamps else []
        best, best_count = first, n - len(left)
        for p in rest:                      # only in auto
            if not left:
                break
            before = len(left)
            left = self._parse_json(out, left) if p.rx is None else self._fill(p, out, left, chunk)
            if before - len(left) > best_count:
                best, best_count = p, before - len(left)
        if best is not first:
            # The formats are told apart by their first bytes, so the order of
            # the passes changes only the speed: put the busiest one first.
            self._order.remove(best)
            self._order.insert(0, best)
        return out

    def _unparsed(self, lines: list[bytes], now_ns: int) -> Columns:
        n = len(lines)
        return Columns(lines, [now_ns] * n, [self.default_host] * n, [self.default_app] * n, [None] * n)

    def _fill(self, p: _Pass, out: Columns, left: list[int], chunk: bytes) -> list[int]:
        """Runs ``p`` over the lines ``left`` by the passes before, writes what
        it recognised into ``out``, and returns the lines still left."""
        lines = out.lines
        text = chunk if len(left) == len(lines) else b"\n".join([lines[i] for i in left])
        stamps, times, sevs, hosts, apps = self._run(p, text, len(left))
        still = []
        for k, i in enumerate(left):
            if stamps[k]:
                out.times[i] = times[k]
                out.hosts[i] = hosts[k]
                out.apps[i] = apps[k]
                out.severities[i] = sevs[k]
            else:
                still.append(i)
        return still

    def _run(self, p: _Pass, text: bytes, n: int) -> tuple:
        """One pass of ``p`` over ``text`` (n lines): its stamp column (empty
        where the line was not recognised) and the four parsed columns."""
        rows = p.rx.findall(text)
        del rows[n:]                        # the empty match after a final b"\n"
        cols = list(zip(*rows))
        t, s, h, a = p.fields
        stamps = cols[t]
        times = list(map(p.times.__getitem__, stamps))
        sevs = list(map(p.severities.__getitem__, cols[s]))
        hosts = list(map(self._hosts.__getitem__, cols[h])) if h is not None else [self.default_host] * n
        apps = list(map(self._apps.__getitem__, cols[a])) if a is not None else [self.default_app] * n
        return stamps, times, sevs, hosts, apps

    def _set_now(self, now_ns: int) -> None:
        limit = (now_ns // _DAY_NS + 32) * _DAY_NS
        if limit != self._limit:            # a new day: yearless timestamps may change year
            self._limit = limit
            self._limit_year = datetime.datetime.fromtimestamp(limit // _NS, datetime.timezone.utc).year
            self._hours_3164.clear()
            self._hours_logcat.clear()
            for cache in self._yearless:
                cache.clear()
        for cache in self._time_caches:
            cache.now = now_ns
            cache[b""] = cache[b"-"] = now_ns   # unrecognised, and RFC 5424's nil time

    # -- timestamp conversions (cache misses) --------------------------------

    def _local_ns(self, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
        """ns of a wall-clock time in ``tz``; ValueError when there is no such time."""
        if h > 23 or mi > 59 or s > 60:
            raise ValueError("time out of range")
        if self._fixed_offset is not None:
            days = datetime.date(y, mo, d).toordinal() - _EPOCH_ORDINAL
            return (days * 86_400 + h * 3600 + mi * 60 + s - self._fixed_offset) * _NS
        stamp = datetime.datetime(y, mo, d, h, mi, min(s, 59), tzinfo=self._tz).timestamp()
        return (round(stamp) + (s > 59)) * _NS

    def _yearless_hour_ns(self, mo: int, d: int, h: int) -> int | None:
        """ns of the start of an hour in the inferred year (see the module docstring)."""
        for year in range(self._limit_year + 1, self._limit_year - 8, -1):
            try:
                ns = self._local_ns(year, mo, d, h)
            except ValueError:
                continue                    # no such date (Feb 29) in that year
            if ns < self._limit:
                return ns
        return None

    def _rfc3164_ns(self, ts: bytes) -> int | None:
        # b"Jun 14 15:16:01": the pattern guarantees the layout. The hour goes
        # through a cache of its own, so a new second costs only this.
        base = self._hours_3164[ts[:9]]
        mi, s = int(ts[10:12]), int(ts[13:15])
        if base is None or mi > 59 or s > 60:
            return None
        return base + (mi * 60 + s) * _NS

    def _logcat_ns(self, ts: bytes) -> int | None:
        # b"03-17 16:13:38.811"
        base = self._hours_logcat[ts[:8]]
        mi, s = int(ts[9:11]), int(ts[12:14])
        if base is None or mi > 59 or s > 60:
            return None
        return base + (mi * 60 + s) * _NS + int(ts[15:18]) * 1_000_000

    def _apache_ns(self, ts: bytes) -> int | None:
        # b"Dec 04 04:47:44 2005", maybe with a fraction: b"Dec 04 04:47:44.123456 2005"
        mon, day, clock, year = ts.split()
        hms, _, frac = clock.partition(b".")
        try:
            ns = self._local_ns(int(year), _MONTHS[mon], int(day), int(hms[:2]), int(hms[3:5]), int(hms[6:8]))
        except (ValueError, OverflowError):
            return None
        return ns + (int(frac.ljust(9, b"0")) if frac else 0)

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

    def _iso_seconds_ns(self, ts: bytes) -> int | None:
        m = _ISO_PARTS.fullmatch(ts)
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

    # -- JSON lines (one at a time: json.loads is the cost anyway) ----------

    def _parse_json(self, out: Columns, indexes) -> list[int]:
        """Parses the lines ``indexes`` that are JSON objects into ``out``;
        returns the others."""
        decode = _JSON.raw_decode
        lines = out.lines
        still = []
        for i in indexes:
            line = lines[i]
            if line[:1] != b"{":
                still.append(i)
                continue
            try:
                text = line.decode("utf-8")
                obj, end = decode(text)
            except (ValueError, RecursionError):    # not JSON, bad UTF-8, absurdly nested
                still.append(i)
                continue
            if end != len(text) and not text[end:].isspace():
                still.append(i)
                continue
            for key in _JSON_TIME_KEYS:
                ns = self._json_time(obj.get(key))
                if ns is not None:
                    out.times[i] = ns
                    break
            out.hosts[i] = _json_text(obj, _JSON_HOST_KEYS, self.default_host)
            out.apps[i] = _json_text(obj, _JSON_APP_KEYS, self.default_app)
            for key in _JSON_LEVEL_KEYS:
                sev = _json_severity(obj.get(key))
                if sev is not None:
                    out.severities[i] = sev
                    break
        return still

    def _json_time(self, value) -> int | None:
        if isinstance(value, str):
            if not value or value == "-" or len(value) > 40:  # (no timestamp is that long)
                return None
            if not (value.isascii() and value.isdigit()):
                key = value.encode("utf-8", "replace")
                ns = self._iso_times.get(key)
                if ns is None:
                    ns = self._iso_ns(key)
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


def _json_text(obj: dict, keys: tuple, default: str) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value:
            # json.loads lets lone surrogates ("\ud800") through; they cannot be encoded later.
            return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")
    return default


def _json_severity(value) -> int | None:
    if isinstance(value, str):
        if len(value) == 1 and "0" <= value <= "7":
            return int(value)
        return SEVERITY_BY_NAME.get(value.lower())
    if type(value) is int:
        return value if 0 <= value <= 7 else _BUNYAN_SEVERITY.get(value)
    return None
