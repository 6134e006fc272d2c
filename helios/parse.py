"""Parse log lines into columns: event time, host, app, severity, message and
fields. Pure, no I/O.

Batch design
------------
The tailer hands over a chunk of complete lines and must get the columns back
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
3. User rules (``helios.parsing.rules``), when a file has some, run first,
   in their order, each over the lines the ones before did not match. Then
   ``auto`` runs its passes: BSD syslog (RFC 3164 and its real-world
   variants), RFC 5424, app logs (a timestamp first: ISO 8601 and a handful
   of other layouts, then a level, a logger, ...; also RFC 3339 BSD lines and
   CRI container records), Apache error log, Android logcat, and JSON line by
   line. Each pass runs over the lines the passes before left. The formats
   are told apart by their first bytes, so a line can match one pass only and
   the order of the passes changes nothing but the speed: the pass that
   recognised most of a chunk goes first for the next one.
4. ``key=value`` pairs (``helios.parsing.fields``) are read by one more
   findall over the chunk, when it holds a ``=`` at all; ``level=`` and the
   like fill in what the header did not say.

Where the layouts come from: BSD syslog follows rsyslog's pmrfc3164 and
Vector's syslog_loose (optional PRI; optional hostname: a first token that
is ``tag:`` or ``tag[pid]:`` is the tag; unpadded and upper-case dates; a year
or a colon after the date; an RFC 3339 time after the PRI; ``tag[pid]
(sub):``), checked against their public test vectors (tests/data/). One
difference: a tag must look like a program name when no ``:`` ends it
(rsyslog takes ``--`` of ``-- MARK --`` as a tag).

A line that nothing recognises is kept with the receive time, the default host
and app, and no severity. Parsing never raises on content and never drops a
line. ``lines`` are the lines as read (their lengths give the file offsets);
``messages`` are what the events carry: the line without the ``\\r`` of a
CRLF ending, or the application's text of a container record; such an event's
field ``line_bytes`` says how long its line was, for the audit. A parsed time
outside 1970..2262 (what fits in int64 nanoseconds) is treated as unparsed.

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
``limit``.) Feb 29 goes to the latest leap year that qualifies.
"""

from __future__ import annotations

import datetime
import itertools
import json
import operator
import re
from typing import Callable, NamedTuple

from helios.parsing import containers, encodings, fields as kvfields, jsonlog, severity as sev
from helios.parsing.timestamps import MONTHS, bsd_parts, other_parts

FORMATS = ("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw")
# The field of an event whose message is shorter than its line as read: the
# line's length in bytes (helios.audit counts the file's bytes with it).
LINE_BYTES = "line_bytes"

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_MAX_NS = 2**63 - 1                # what the wire's int64 can carry
_CACHE_MAX = 100_000
_FUTURE_DAYS = 3                   # see "Time zones and years"
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
# (Spelled out: a case-insensitive group costs the BSD pass half its speed.)
_MON = (rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
        rb"|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")
_ISO_TS = rb"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:[Zz]|[+-]\d\d(?::?\d\d)?)?"
_LEVEL = sev.LEVEL_WORD

# The patterns of the batch passes. None may consume a "\n" inside its header:
# each must match each line exactly once (see the module docstring). Captured
# fields are bounded (a longer host is cut) so that no cache key is huge.

# BSD syslog: "<PRI>Mmm dd hh:mm:ss host tag[pid]: msg", each part optional
# but the time. The host is left out when the first word is already a tag
# ("dhcpd[4305]:"), or has characters no host name has. The tag may hold
# one space ("syslogd 1.4.1: restart."), dots, slashes and parentheses but not
# ":" or "["; it ends in "[pid]:", "[pid] (sub):" or ":". As in rsyslog and
# Vector, a word after the host that ends in none of these ("host tag msg",
# "host tag[12] msg") is the tag too, if it looks like a program name.
# A tag: a word, or two ("syslogd 1.4.1:", "-- root[2421]:"); more words
# before a ":" are a message ("tag This msg contains: x" has the tag "tag").
_TAG = rb"[^ :\[\n][^ :\[\n]{0,47}(?: [^ :\[\n]{1,24})?"
_PID_SUB = rb"(?:\[[^\]\n]{0,32}\])?(?: \([^)\n]{0,64}\))?:"
# The fast pass takes only the canonical layout, "<PRI>Mmm dd hh:mm:ss host
# tag[pid]: msg" with every part but PRI and pid: most lines, at the speed of
# a simple pattern. Every other line is left to the loose pass, which runs
# after all the others (pinned last) and gives the same answer on a canonical
# line, so which one read a line changes nothing.
_RFC3164_FAST = re.compile(
    rb"^(?:(?:<(\d{1,3})>)?((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d)"
    rb" +(\S{1,255}+)\S*+(?<![:\]]) +(" + _TAG + rb")(?:\[[^\]\n]{0,32}\])?:)?.*", re.M)
_RFC3164 = re.compile(
    rb"^(?:(?:<(\d{1,3})>)? ?(" + _MON + rb" {1,2}\d{1,2}(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{1,9})?|(?<=>)" + _ISO_TS
    + rb"):?(?: +(?:([^\s:\[\]]{1,48})" + _PID_SUB + rb"(?= |$)|(\S{1,255})\S*(?= |$)"
    rb"(?: +(?:(" + _TAG + rb")" + _PID_SUB + rb"|([A-Za-z_%/][\w.()/%-]{0,47})(?:\[[^\]\n]{0,32}\])?"
    rb"(?= |$)))?))?)?.*", re.M)
# RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] msg" ("-" is nil).
# The atomic groups keep a line with too few fields from backtracking through
# every way of cutting each one.
_SD = rb'(?:-|(?:\[[^\]\s"]{1,32}(?:\s+[^\s\]="]{1,32}=\s*"(?:[^"\\\n]|\\.)*")*\s*\])+)'
_RFC5424 = re.compile(
    rb"^(?:<(\d{1,3})>\d{1,2} (?>(\S{1,40})\S*) (?>(\S{1,255})\S*) (?>(\S{1,48})\S*)"
    rb"(?: (?>(\S{1,128})\S*) (?>(\S{1,32})\S*)(?: (" + _SD + rb"))?)?)?.*", re.M)
# App logs: a timestamp first (ISO 8601, bracketed or not, and the layouts of
# helios.parsing.timestamps), then one of: a CRI container record ("stdout
# F"); a level (after " ", " - ", ", ", "|", in brackets) with what app logs
# put around it (a pid, "name - " of Python's logging, a column of Windows
# CBS, Spring's "--- [thread]", "[thread:Component@line]", a logger name
# ending in ":" or " -"); or, for an RFC 3339 time, BSD syslog's "host tag:";
# or "|Component|" and "] program - ". A level may also come before the time,
# and a file name before it all ("nova-api.log.1 2017-05-16 ...", as grep -H
# or a concatenation of files writes).
_APP_TIME = (
    rb"\[?(?:" + _ISO_TS + rb"|\d{4}/\d\d?/\d\d?[ T]\d\d?:\d\d:\d\d(?:[.,]\d{1,9})?"
    rb"|\d\d/\d\d/\d\d \d\d:\d\d:\d\d(?:[.,]\d{1,9})?|\d{6} \d{6}|\d{8}-\d\d?:\d\d?:\d\d?(?::\d{1,3})?"
    rb"|\d\d?-" + _MON + rb"-\d{4} \d\d:\d\d:\d\d(?:[.,]\d{1,9})?|\d\d\.\d\d \d\d:\d\d:\d\d)\]?(?![\d:])")
# A bracket (one level of nesting: "[QuorumPeer[myid=1]/...:Component@774]"),
# taken whole and possessively (linear); its "Component@line" is read by a cache.
_BRACKET = rb"\[((?:[^\[\]\n]|\[[^\[\]\n]{0,64}\]){0,200}+)\][ \t]*(?:-[ \t]*)?"
_APP = re.compile(
    rb"^(?:(?:[\w.-]{1,64}\.log[\w.:-]{0,40}[ :])?(?:\[?(" + _LEVEL + rb")\]?[ \t]+)?(" + _APP_TIME + rb")(?:"
    rb" (stdout|stderr) ([PF])(?= |$)"
    rb"|(?:[ \t]*[-,|:][ \t]*|[ \t]+)(?:\d{1,10}[ \t]+)?(?:([\w.$-]{1,64})[ \t]+-[ \t]+)?\[?(" + _LEVEL + rb")\]?"
    rb"(?: {2,}([A-Za-z][\w.-]{0,31})(?= {2,})"
    rb"|(?:[ \t]+\d{1,10}[ \t]+---)?[ \t]*(?:[-:|][ \t]*)?(?:" + _BRACKET + rb"){0,3}"
    rb"(?:([\w.$/<>-]{1,128})(?:[ \t]*:(?=[ \t]|$)|[ \t]+-[ \t]|[ \t]+\[))?)?"
    rb"| (?!" + _LEVEL + rb")(?:([\w.:@/%-]{1,255}) )?([^\s:\[\]]{1,48})(?:\[[^\]\n]{0,32}\])?"
    rb"(?: \([^)\n]{0,64}\))?:(?= |$)"
    rb"|\|([\w.$-]{1,64})\||\s([\w.$-]{1,64}(?: \*\d{1,3})?) - )?)?.*", re.M)
# The fast app pass: an ISO time, a word (a level, checked by its cache), an
# optional "[thread]" or "[thread:Component@line]" and an optional logger
# ending in ":" or " - ". A line is taken only when its word is a level and
# it names an app; every other line is left to the loose pass (_APP).
_APP_FAST = re.compile(
    rb"^(?:(" + _ISO_TS + rb")(?:[ \t]*[-,|][ \t]*|[ \t]+)\[?([A-Za-z]{1,13})\]?"
    rb"(?:[ \t]+\[((?:[^\[\]\n]|\[[^\[\]\n]{0,64}\]){0,200}+)\])?"
    rb"(?:[ \t]+(?:-[ \t]+)?([\w.$/<>-]{1,128})(?:[ \t]*:(?=[ \t]|$)|[ \t]+-[ \t]))?)?.*", re.M)
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
# A fraction after the seconds: ".123", ",123", or ":606" (a count of ms, as
# some Java apps print them unpadded: ":6" is 6 ms).
_FRACTION = re.compile(rb"(.*\d:\d\d?:\d\d?)([.,:])(\d{1,9})")
_LOGCAT_SEVERITY = {b"V": 7, b"D": 7, b"I": 6, b"W": 4, b"E": 3, b"F": 2, b"A": 0}
_JSON = json.JSONDecoder()
_KV_TIME = ("time", "ts", "timestamp", "t", "@timestamp")
# (It starts with the literal "=": sre then finds candidates with a fast scan,
# several times faster than an alternation of the keys first.)
# The key must start the line or follow a space, comma, semicolon, bracket or
# dot ("log.level="), not a word character ("xlevel=", "log_level=").
_KV_LEVEL_RX = re.compile(
    rb'=(?:(?<=[\s,;(\[{.]level=)|(?<=^level=)|(?<=[\s,;(\[{.]lvl=)|(?<=^lvl=)'
    rb'|(?<=[\s,;(\[{.]severity=)|(?<=^severity=))"?([A-Za-z]{1,16})', re.M)
_KV_HOST = ("host", "hostname")
_KV_APP = ("app", "service", "logger", "component", "program")


_PASS_NAMES = {"_run_3164_fast": "rfc3164", "_run_3164": "rfc3164", "_run_5424": "rfc5424",
               "_run_app_fast": "app log", "_run_app": "app log", "_run_apache": "apache error log",
               "_run_logcat": "logcat", "_parse_json": "json"}


class Columns(NamedTuple):
    lines: list[bytes]            # each line as read, without its b"\n": offsets follow from these
    times: list[int]              # event time, ns since the epoch, UTC (else the receive time)
    hosts: list[str]              # parsed host, else the default host
    apps: list[str]               # parsed app name (no "[pid]"), else the default app
    severities: list[int | None]  # 0 (emerg) .. 7 (debug), None when unknown
    messages: list[bytes]         # what the event carries (no CRLF "\r"; a container record's text)
    fields: list[dict | None]     # parsed fields (key=value, JSON keys, RFC 5424), else None


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


class Parser:
    """Parses chunks of lines of one format (or ``auto``); see the module docstring.

    ``tz`` is the zone of timestamps that carry no offset (RFC 3164, most app
    logs); timestamps with an offset or ``Z`` use theirs. ``rules`` are
    compiled user rules (``helios.parsing.rules.compile_rules``), tried
    before the format's own passes. ``key_values`` turns ``key=value`` pairs
    on every line into fields (lines no pass recognised always get theirs);
    ``containers`` unwraps Docker json-file and CRI records; ``masks``
    are regexes whose matches never leave the host (see parse_chunk);
    ``rename`` renames fields and ``add_fields`` adds fields to every line;
    ``encoding`` names the text encoding of the lines (UTF-8 by default)."""

    def __init__(self, fmt: str = "auto", *, default_host: str = "", default_app: str = "",
                 tz: datetime.tzinfo = datetime.timezone.utc, rules=(), key_values: bool = False,
                 containers: bool = True, masks=(), rename=None, add_fields=None, encoding: str = "") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.default_host = default_host
        self.default_app = default_app
        self.key_values = key_values
        self.rules = list(rules)
        self._tz = tz
        # A fixed-offset zone converts by arithmetic; a zone with rules (DST) through datetime.
        offset = tz.utcoffset(None)
        self._fixed_offset = None if offset is None else int(offset.total_seconds())
        self._limit = None                  # see "Time zones and years"
        self._limit_year = 0
        self._now = 0

        def decode(raw: bytes) -> str:
            return raw.decode("utf-8", "replace").strip()

        self._hosts = _Cache(decode, {b"": default_host, b"-": default_host})
        self._apps = _Cache(decode, {b"": default_app, b"-": default_app})
        # Hours of yearless timestamps: b"jun 14 15" (RFC 3164), b"03-17 16" (logcat).
        self._hours_3164 = _Cache(lambda k: self._yearless_hour_ns(MONTHS.get(k[:3].lower()), int(k[4:6]),
                                                                    int(k[7:9])))
        self._hours_logcat = _Cache(lambda k: self._yearless_hour_ns(int(k[:2]), int(k[3:5]), int(k[6:8])))
        self._pri = _Cache(lambda raw: int(raw) & 7 if int(raw) < 192 else None, {b"": None})
        self._level = _Cache(sev.of_word, {b"": None})
        self._bracket_apps = _Cache(_component_at, {b"": b""})
        # (procid, msgid) -> their fields. The dicts are shared by the events
        # that have the same pair: fields are never changed once made.
        self._5424_ids = _Cache(_ids_fields)
        self._5424_sd = _Cache(kvfields.structured_data)    # (SD repeats, as the rest of a header does)
        self._iso_seconds = _Cache(self._iso_seconds_ns)
        self._other_seconds = _Cache(self._other_seconds_ns)
        self._iso_times = _TimeCache(self._iso_ns)
        self._bsd_times = _TimeCache(self._rfc3164_ns)
        self._app_times = _TimeCache(self._app_ns)
        self._logcat_times = _TimeCache(self._logcat_ns)
        self._apache_times = _TimeCache(self._apache_ns)
        self._yearless = (self._bsd_times, self._app_times, self._logcat_times, self._other_seconds)
        self._time_caches = (self._iso_times, self._bsd_times, self._app_times, self._logcat_times,
                             self._apache_times)
        self._rule_times = [_TimeCache(self._rule_reader(r)) for r in self.rules]
        passes = {
            "rfc3164": self._run_3164_fast, "rfc5424": self._run_5424, "iso8601": self._run_app_fast,
            "apache": self._run_apache, "logcat": self._run_logcat, "json": self._parse_json,  # json: line by line
        }
        loose = {"rfc3164": self._run_3164, "iso8601": self._run_app}
        if fmt == "auto":
            self._order = list(passes.values())
            self._pinned = list(loose.values())
        else:
            self._order = [passes[fmt]] if fmt in passes else []
            self._pinned = [loose[fmt]] if fmt in loose else []
        self._containers = containers
        self._inner: Parser | None = None   # parses the text of container records
        # With ``explain``, ``matched`` names, after each chunk, what read each
        # line: a rule's name, a layout, or None (helios parse-test).
        self.explain = False
        self.matched: list[str | None] = []
        self.masks = [re.compile(m.encode("utf-8"), re.M) for m in masks]
        self._reshaped = False              # a container record's text replaced its line in this chunk
        self.rename = dict(rename or {})
        # Lines in another encoding than UTF-8 (helios.parsing.encodings).
        self.encoding = "" if encoding.replace("-", "").replace("_", "").lower() in ("", "utf8") else encoding
        self._decoded: Parser | None = None
        self.add_fields = dict(add_fields or {})

    # -- the batch path ------------------------------------------------------

    def parse_chunk(self, chunk: bytes, now_ns: int) -> Columns:
        """Columns for every line of ``chunk`` (complete lines, each ending in
        b"\\n"; trailing bytes without one count as a last line)."""
        if not chunk:
            return Columns([], [], [], [], [], [], [])
        if self.encoding:
            return self._parse_decoded(chunk, now_ns)
        for rx in self.masks:
            # What a mask matches (its first group if it has one) becomes as
            # many "*" bytes before anything is read from the line: the bytes
            # never leave the host, no field holds them, and every line keeps
            # its length (offsets and the audit's byte counts still add up).
            chunk = rx.sub(_stars, chunk)
        lines = chunk.split(b"\n")
        if chunk[-1] == 10:                 # b"\n": split() left an empty string after it
            lines.pop()
        n = len(lines)
        self._set_now(now_ns)
        if b"\r" in chunk:                  # CRLF: the "\r" is not part of the message
            messages = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        else:
            messages = lines.copy()         # (a container record's text replaces its line)
        out = Columns(lines, [now_ns] * n, [self.default_host] * n, [self.default_app] * n, [None] * n,
                      messages, [None] * n)
        left = range(n)
        if self.explain:
            self.matched = [None] * n
        for k, rule in enumerate(self.rules):
            before = left
            left = self._fill_rule(k, rule, out, left, chunk)
            if self.explain:
                self._note(before, left, rule.name)
            if not left:
                break
        if left and self._order:
            best, best_count = None, 0
            for p in self._order:
                before = len(left)
                was = left
                left = self._parse_json(out, left) if p == self._parse_json else self._fill(p, out, left, chunk)
                if self.explain:
                    self._note(was, left, _PASS_NAMES[p.__name__])
                if before - len(left) > best_count:
                    best, best_count = p, before - len(left)
                if not left:
                    break
            if best is not None and best is not self._order[0]:
                # The formats are told apart by their first bytes, so the order of
                # the passes changes only the speed: put the busiest one first.
                self._order.remove(best)
                self._order.insert(0, best)
            for p in self._pinned:
                if not left:
                    break
                was = left
                left = self._fill(p, out, left, chunk)
                if self.explain:
                    self._note(was, left, _PASS_NAMES[p.__name__])
        if b"=" in chunk:
            self._key_values(out, chunk, left)
            if self.explain:
                for i in left:
                    if out.fields[i] is not None:
                        self.matched[i] = "key=value"
        if self.rename or self.add_fields:
            self._edit_fields(out.fields)
        if self._reshaped or b"\r" in chunk:
            # A message shorter than its line (a CRLF's "\r" left out, a
            # container record unwrapped) says how many bytes its line had,
            # so that what the audit counts is the file's bytes.
            fields = out.fields
            for i, (message, line) in enumerate(zip(messages, lines)):
                if len(message) != len(line):
                    fields[i] = {**(fields[i] or {}), LINE_BYTES: len(line)}
            self._reshaped = False
        return out

    def _parse_decoded(self, chunk: bytes, now_ns: int) -> Columns:
        """A chunk in ``encoding``: each line decoded to UTF-8 and parsed
        as such; ``lines`` stay the bytes as read, the messages are the
        UTF-8 text, and each event says its line's length (``line_bytes``)."""
        lines = chunk.split(b"\n")
        if chunk[-1] == 10:
            lines.pop()
        decoded = [encodings.decode_line(line, self.encoding) for line in lines]
        if self._decoded is None:
            self._decoded = Parser(self.fmt, default_host=self.default_host, default_app=self.default_app,
                                   tz=self._tz, rules=self.rules, key_values=self.key_values,
                                   containers=self._containers, masks=(), rename=self.rename,
                                   add_fields=self.add_fields)
            self._decoded.masks = self.masks
            self._decoded.explain = self.explain
        inner = self._decoded.parse_chunk(b"".join(d + b"\n" for d in decoded), now_ns)
        self.matched = self._decoded.matched
        fields = inner.fields
        for i, (message, line) in enumerate(zip(inner.messages, lines)):
            if len(message) != len(line):
                f = {k: v for k, v in (fields[i] or {}).items() if k != LINE_BYTES}
                f[LINE_BYTES] = len(line)
                fields[i] = f
        return inner._replace(lines=lines)

    def _edit_fields(self, fields: list) -> None:
        """Renames (``rename``: old name -> new) and added fields
        (``add_fields``, which the line's own fields win over)."""
        rename, add = self.rename, self.add_fields
        for i, f in enumerate(fields):
            if f is None:
                if add:
                    fields[i] = add                 # (shared: fields are never changed once made)
                continue
            if rename and not rename.keys().isdisjoint(f):
                f = {rename.get(k, k): v for k, v in f.items()}
            fields[i] = {**add, **f} if add else f

    def _note(self, before, after, name: str) -> None:
        gone = set(before).difference(after)
        for i in gone:
            self.matched[i] = name

    def _fill(self, run: Callable, out: Columns, left, chunk: bytes) -> list[int]:
        """Runs a pass over the lines ``left`` by the passes before, writes
        what it recognised into ``out``, and returns the lines still left."""
        lines = out.lines
        whole = len(left) == len(lines)
        text = chunk if whole else b"\n".join([lines[i] for i in left])
        hits, times, sevs, hosts, apps, extra = run(text, len(left))
        if whole and b"" not in hits:       # every line recognised: the usual case, all in C
            out.times[:] = times
            out.severities[:] = sevs
            if hosts is not None:
                out.hosts[:] = hosts
            if apps is not None:
                out.apps[:] = apps
            if extra is not None:
                extra(out, range(len(lines)), range(len(lines)))
            return []
        still, got_k, got_i = [], [], []
        for k, i in enumerate(left):
            if hits[k]:
                out.times[i] = times[k]
                out.severities[i] = sevs[k]
                if hosts is not None:
                    out.hosts[i] = hosts[k]
                if apps is not None:
                    out.apps[i] = apps[k]
                got_k.append(k)
                got_i.append(i)
            else:
                still.append(i)
        if extra is not None and got_k:
            extra(out, got_k, got_i)
        return still

    def _columns(self, rx: re.Pattern, text: bytes, n: int) -> list:
        rows = rx.findall(text)
        del rows[n:]                        # the empty match after a final b"\n"
        return list(zip(*rows))

    def _names(self, cache: _Cache, col) -> list[str] | None:
        """A host or app column through its cache; None when every value is empty."""
        return list(map(cache.__getitem__, col)) if any(col) else None

    # -- the passes: each returns (hits, times, severities, hosts, apps, extra) --

    def _run_3164_fast(self, text: bytes, n: int) -> tuple:
        pri, stamp, host, tag = self._columns(_RFC3164_FAST, text, n)
        return (stamp, list(map(self._bsd_times.__getitem__, stamp)), list(map(self._pri.__getitem__, pri)),
                list(map(self._hosts.__getitem__, host)), list(map(self._apps.__getitem__, tag)), None)

    def _run_app_fast(self, text: bytes, n: int) -> tuple:
        stamp, word, bracket, logger = self._columns(_APP_FAST, text, n)
        sevs = list(map(self._level.__getitem__, word))
        apps = list(map(self._bracket_apps.__getitem__, bracket)) if any(bracket) else bracket
        if any(apps):
            apps = [a or b for a, b in zip(apps, logger)]
        else:
            apps = logger
        if None in sevs or b"" in apps:     # not a level, or no app: the loose pass decides
            stamp = [s if v is not None and a else b"" for s, v, a in zip(stamp, sevs, apps)]
        # (Only ISO 8601 here: straight to its cache, one call less a line.)
        return (stamp, list(map(self._iso_times.__getitem__, stamp)), sevs, None,
                list(map(self._apps.__getitem__, apps)), None)

    def _run_3164(self, text: bytes, n: int) -> tuple:
        pri, stamp, first_tag, host, tag, bare_tag = self._columns(_RFC3164, text, n)
        if any(first_tag):                  # "dhcpd[4305]: ..." with no host
            tag = [a or b for a, b in zip(first_tag, tag)]
        if any(bare_tag):                   # "host tag message", "host tag[12] message"
            tag = [a or b for a, b in zip(tag, bare_tag)]
        return (stamp, list(map(self._bsd_times.__getitem__, stamp)), list(map(self._pri.__getitem__, pri)),
                self._names(self._hosts, host), self._names(self._apps, tag), None)

    def _run_5424(self, text: bytes, n: int) -> tuple:
        pri, stamp, host, app, procid, msgid, sd = self._columns(_RFC5424, text, n)

        def extra(out: Columns, ks, idx) -> None:
            ids, sds = self._5424_ids, self._5424_sd
            for k, i in zip(ks, idx):
                s = sd[k]
                found = ids[procid[k], msgid[k]]
                if s and s != b"-":
                    found = {**sds[s], **(found or {})}
                out.fields[i] = found

        return (stamp, list(map(self._iso_times.__getitem__, stamp)), list(map(self._pri.__getitem__, pri)),
                self._names(self._hosts, host), self._names(self._apps, app), extra)

    def _run_app(self, text: bytes, n: int) -> tuple:
        (level0, stamp, stream, partial, py_name, level, column, bracket, logger, bsd_host, bsd_tag, bar,
         dash) = self._columns(_APP, text, n)
        at = list(map(self._bracket_apps.__getitem__, bracket)) if any(bracket) else bracket
        if any(level0):
            level = [a or b for a, b in zip(level, level0)]
        apps = logger
        for other in (at, column, py_name, bar, dash, bsd_tag):
            if any(other):
                apps = [a or b for a, b in zip(other, apps)]
        hosts = None
        if any(bsd_tag):
            # "host tag:" after the time is BSD syslog's only with an RFC 3339 time ("T" and a zone).
            bad = {k for k in range(n) if bsd_tag[k] and not _is_rfc3339(stamp[k])}
            if bad:
                bsd_host = [b"" if k in bad else h for k, h in enumerate(bsd_host)]
                apps = [b"" if k in bad and a == bsd_tag[k] else a for k, a in enumerate(apps)]
            hosts = self._names(self._hosts, bsd_host)
        extra = None
        if any(stream):
            def extra(out: Columns, ks, idx) -> None:
                self._unwrap_cri(out, [(k, i) for k, i in zip(ks, idx) if stream[k]], stream, partial)
        return (stamp, list(map(self._app_times.__getitem__, stamp)), list(map(self._level.__getitem__, level)),
                hosts, self._names(self._apps, apps), extra)

    def _run_apache(self, text: bytes, n: int) -> tuple:
        stamp, level = self._columns(_APACHE, text, n)
        return stamp, list(map(self._apache_times.__getitem__, stamp)), list(map(self._level.__getitem__, level)), \
            None, None, None

    def _run_logcat(self, text: bytes, n: int) -> tuple:
        stamp, level, tag = self._columns(_LOGCAT, text, n)
        return (stamp, list(map(self._logcat_times.__getitem__, stamp)), [_LOGCAT_SEVERITY.get(x) for x in level],
                None, self._names(self._apps, tag), None)

    # -- user rules ------------------------------------------------------------

    def _fill_rule(self, k: int, rule, out: Columns, left, chunk: bytes) -> list[int]:
        lines = out.lines
        subset = [lines[i] for i in left]
        rows = rule.rows(chunk if len(subset) == len(lines) else b"\n".join(subset), subset)
        times = self._rule_times[k]
        still = []
        for row, i in zip(rows, left):
            if row is None:
                still.append(i)
                continue
            if rule.time is not None:
                out.times[i] = times[row[rule.time]]
            if rule.host is not None and row[rule.host]:
                out.hosts[i] = self._hosts[row[rule.host]]
            if rule.app is not None and row[rule.app]:
                out.apps[i] = self._apps[row[rule.app]]
            elif rule.set_app:
                out.apps[i] = rule.set_app
            if rule.severity is not None:
                word = row[rule.severity]
                out.severities[i] = int(word) if word.isdigit() and int(word) < 8 else self._level[word]
            found = rule.fields_of(row)
            if found:
                out.fields[i] = found
        return still

    def _rule_reader(self, rule) -> Callable[[bytes], int | None]:
        """The time conversion of a rule: its own (epoch, strptime), in its
        zone or the parser's; ``auto`` tries the layouts the passes know."""
        if rule.epoch_unit:
            from helios.parsing.timestamps import epoch_ns
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

    # -- key=value, containers --------------------------------------------------

    def _key_values(self, out: Columns, chunk: bytes, unparsed: list[int]) -> None:
        """``key=value`` pairs. Lines that no pass recognised and that hold
        pairs (logfmt: ``time=... level=info msg=...``) get them as fields,
        and the usual keys fill in their columns. Every line's ``level=``,
        ``lvl=`` or ``severity=`` gives its severity when its header did not.
        With ``key_values``, every line's pairs become fields too (a regex
        pass that costs about as much as the rest of parsing: off by default,
        see the README)."""
        fields = out.fields
        if self.key_values:
            # Lines whose pass gave fields (JSON, RFC 5424 structured data, containers) keep those.
            kvfields.chunk_pairs(chunk, fields, {i for i, f in enumerate(fields) if f is not None})
        lines = out.lines
        for i in unparsed:
            f = fields[i] if self.key_values else kvfields.key_values(lines[i])
            if f is None:
                continue
            fields[i] = f
            for key in _KV_TIME:
                if key in f:
                    ns = self._json_time(f[key])
                    if ns is not None:
                        out.times[i] = ns
                        break
            for key in _KV_HOST:
                if f.get(key):
                    out.hosts[i] = f[key]
                    break
            for key in _KV_APP:
                if f.get(key):
                    out.apps[i] = f[key]
                    break
        sevs = out.severities
        if None not in sevs:                # every line's header said its severity
            return
        i = pos = 0
        level = self._level
        for m in _KV_LEVEL_RX.finditer(chunk):
            at = m.start()
            i += chunk.count(b"\n", pos, at)  # the line it is on (a count in C)
            pos = at
            if sevs[i] is None:
                sevs[i] = level[m[1]]

    def _inner_parser(self) -> Parser:
        if self._inner is None:
            self._inner = Parser("auto", default_host=self.default_host, default_app=self.default_app,
                                 tz=self._tz, rules=self.rules, key_values=self.key_values, containers=False)
        return self._inner

    def _unwrap(self, out: Columns, items: list[tuple[int, bytes, int | None, str, bool]]) -> None:
        """Container records: ``items`` are (line, text, runtime time, stream,
        partial). The text is parsed as a line of its own; what it says wins
        over the runtime's time."""
        if not items:
            return
        inner = self._inner_parser().parse_chunk(
            b"".join(t.split(b"\n", 1)[0].rstrip(b"\r") + b"\n" for _, t, _, _, _ in items), self._now)
        messages = out.messages
        self._reshaped = True
        for k, (i, text, ns, stream, partial) in enumerate(items):
            messages[i] = text
            # The runtime's time is exact and has its zone: it wins over the text's.
            out.times[i] = ns if ns is not None and ns != self._now else inner.times[k]
            out.hosts[i] = inner.hosts[k]
            out.apps[i] = inner.apps[k]
            out.severities[i] = inner.severities[k]
            f = dict(inner.fields[k] or {})
            f["stream"] = stream
            if partial:
                f["partial"] = True
            out.fields[i] = f

    def _unwrap_cri(self, out: Columns, pairs, stream, partial) -> None:
        items = []
        for k, i in pairs:
            line = out.messages[i]
            text = line.split(b" ", 3)[3] if line.count(b" ", 0, 80) >= 3 else b""
            items.append((i, text, out.times[i], stream[k].decode(), partial[k] == b"P"))
        self._unwrap(out, items)

    # -- time ------------------------------------------------------------------

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
        m = _FRACTION.fullmatch(ts)
        if m is None:
            return self._other_seconds[ts]
        base = self._other_seconds[m[1]]
        if base is None:
            return None
        return base + (int(m[3]) * 1_000_000 if m[2] == b":" else int(m[3].ljust(9, b"0")))

    def _other_seconds_ns(self, ts: bytes) -> int | None:
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
        docker = []
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
            if self._containers and jsonlog.is_docker(obj):
                log = obj["log"]
                partial = not log.endswith("\n")
                docker.append((i, jsonlog.text(log.rstrip("\n")) or "", self._json_time(obj.get("time")),
                               str(obj.get("stream")), partial))
                continue
            try:
                flat = jsonlog.flatten(obj)
            except RecursionError:
                still.append(i)
                continue
            used = set()
            found = jsonlog.roles(flat)
            for key, value in found.get("time", ()):
                ns = self._json_time(value)
                if ns is not None:
                    out.times[i] = ns
                    used.add(key)
                    break
            for role, column in (("host", out.hosts), ("app", out.apps)):
                for key, value in found.get(role, ()):
                    name = jsonlog.text(value)
                    if name is not None:
                        column[i] = name
                        used.add(key)
                        break
            for role in ("level", "otel_level"):
                for key, value in found.get(role, ()):
                    level = sev.of_value(value, role == "otel_level")
                    if level is not None:
                        out.severities[i] = level
                        used.add(key)
                        break
                if out.severities[i] is not None:
                    used.update(key for key, _ in found.get("otel_level", ()))  # (said by the text)
                    break
            out.fields[i] = jsonlog.rest(flat, used)
        if docker:
            self._unwrap(out, [(i, t.encode("utf-8"), ns, s, p) for i, t, ns, s, p in docker])
        return still

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


def _ids_fields(pair: tuple[bytes, bytes]) -> dict | None:
    procid, msgid = pair
    found = {}
    if procid and procid != b"-":
        found["procid"] = procid.decode("utf-8", "replace")
    if msgid and msgid != b"-":
        found["msgid"] = msgid.decode("utf-8", "replace")
    return found or None


_AT = re.compile(rb"[\w.$]{1,64}(?=@\d+$)")


def _component_at(bracket: bytes) -> bytes:
    """b"main:Connector@212" -> b"Connector" (log4j's %t:%C{1}@%L); else b""."""
    m = _AT.search(bracket)
    return m[0] if m else b""


_STARS = bytes(i if i in (10, 13) else 42 for i in range(256))   # every byte to "*", but b"\n" and b"\r"


def _stars(m: re.Match) -> bytes:
    whole = m.group(0)
    if m.re.groups and m.start(1) >= 0:
        a, b = m.start(1) - m.start(), m.end(1) - m.start()
        return whole[:a] + whole[a:b].translate(_STARS) + whole[b:]
    return whole.translate(_STARS)


def _is_rfc3339(stamp: bytes) -> bool:
    """b"2024-03-11T08:15:02.1+02:00": a "T" and an offset or Z."""
    return stamp[10:11] in (b"T", b"t") and (stamp[-1:] in (b"Z", b"z") or stamp[-3:-2] == b":"
                                             or stamp[-5:-4] in (b"+", b"-"))


def unwrap_container_line(line: bytes):
    """The container record of one line (see ``helios.parsing.containers``)."""
    return containers.record(line)
