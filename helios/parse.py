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
   *i*, and nothing needs aligning. The busiest of them, the BSD fast pass,
   also has a C twin (``helios/_speedups.c``, built by ``setup.py``
   when a compiler is there): the same answer, line for line, for a third of
   the cost, since the regex walks every message to its end a byte at a time.
2. ``zip(*matches)`` turns rows into columns, and each column is mapped
   through a dict whose ``__missing__`` does the real conversion. Logs repeat
   their timestamps, hosts, apps and priorities, so most values cost one dict
   lookup; only a new value runs Python code. Every cache is bounded.
3. User rules (``helios.parsing.rules``), when a file has some, run first,
   in their order, each over the lines the ones before did not match. Then
   ``auto`` runs its passes: BSD syslog (RFC 3164 and its real-world
   variants), RFC 5424, app logs (a timestamp first: ISO 8601 and a handful
   of other layouts, then a level, a logger, ...; also RFC 3339 BSD lines and
   CRI container records), Apache error log, Android logcat, web access
   logs (NCSA common/combined), glog, Redis and Ruby's Logger, and JSON line by line. Each pass runs over the lines the passes before left. The formats
   are told apart by their first bytes, so a line can match one pass only and
   the order of the passes changes nothing but the speed: the pass that
   recognised most of a chunk goes first for the next one. BSD syslog and
   app logs have two passes each: a fast one that takes only the canonical
   layout (most lines, at the speed of a simple pattern) and a loose one,
   starting after all the others, for every variant; on a canonical line
   both give the same answer, so a file of variants may put its loose pass
   first like any other.
4. ``level=``, ``lvl=`` and ``severity=`` are found by one more scan of the
   chunk and fill in what a header did not say; lines no pass recognised
   that hold ``key=value`` pairs (logfmt) get them as fields and columns;
   with ``key_values`` every line's pairs are fields (``helios.parsing.fields``).
5. Masks (per path) are applied to the chunk before all this; an
   ``encoding`` other than UTF-8 decodes each line first.

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

Times, zones and the year of yearless dates: ``helios.parsing.clock``
(``Parser`` is a ``Clock``). The patterns of the passes:
``helios.parsing.layouts``.
"""

from __future__ import annotations

import datetime
import json
import operator
import re
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from helios.parsing import encodings, jsonlog
from helios.parsing import fields as kvfields
from helios.parsing import layouts as L
from helios.parsing import severity as sev
from helios.parsing.clock import Cache, Clock

FORMATS = ("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw")
# The field of an event whose message is shorter than its line as read: the
# line's length in bytes (helios.audit counts the file's bytes with it).
LINE_BYTES = "line_bytes"

_JSON = json.JSONDecoder()
_KV_TIME = ("time", "ts", "timestamp", "t", "@timestamp")
_KV_HOST = ("host", "hostname", "devname")
_KV_APP = ("app", "service", "logger", "component", "program")



_COL0, _COL1, _COL2, _COL3 = (operator.itemgetter(k) for k in range(4))
_GETTERS = tuple(operator.itemgetter(k) for k in range(16))


def _getters(n: int) -> Sequence[operator.itemgetter[Any]]:
    return _GETTERS[:n] if n <= len(_GETTERS) else [operator.itemgetter(k) for k in range(n)]

_PASS_NAMES = {"_run_3164_fast": "rfc3164", "_run_3164": "rfc3164", "_run_5424": "rfc5424",
               "_run_app_fast": "app log", "_run_app": "app log", "_run_apache": "apache error log",
               "_run_logcat": "logcat", "_parse_json": "json", "_run_access": "access log", "_run_glog": "glog",
               "_run_app_other": "app log"}


class Columns(NamedTuple):
    lines: list[bytes]            # each line as read, without its b"\n": offsets follow from these
    times: list[int]              # event time, ns since the epoch, UTC (else the receive time)
    hosts: list[str]              # parsed host, else the default host
    apps: list[str]               # parsed app name (no "[pid]"), else the default app
    severities: list[int | None]  # 0 (emerg) .. 7 (debug), None when unknown
    messages: list[bytes]         # what the event carries (no CRLF "\r"; a container record's text)
    fields: list[dict[str, Any] | None]     # parsed fields (key=value, JSON keys, RFC 5424), else None


class Parser(Clock):
    """Parses chunks of lines of one format (or ``auto``); see the module docstring.

    ``tz`` is the zone of timestamps that carry no offset (RFC 3164, most app
    logs); timestamps with an offset or ``Z`` use theirs. ``rules`` are
    compiled user rules (``helios.parsing.rules.compile_rules``), tried
    before the format's own passes. ``key_values`` turns ``key=value`` pairs
    on every line into fields (lines no pass recognised always get theirs);
    ``containers`` unwraps Docker json-file and CRI records; ``masks``
    are regexes whose matches never leave the host (see parse_chunk);
    ``rename`` renames fields and ``add_fields`` adds fields to every line;
    ``encoding`` names the text encoding of the lines (UTF-8 by default);
    ``drops`` are regexes whose lines do not leave the host."""

    def __init__(self, fmt: str = "auto", *, default_host: str = "", default_app: str = "",
                 tz: datetime.tzinfo = datetime.timezone.utc, rules: Sequence[Any] = (), key_values: bool = False,
                 containers: bool = True, masks: Iterable[str] = (), rename: Mapping[str, str] | None = None,
                 add_fields: Mapping[str, Any] | None = None, encoding: str = "", drops: Iterable[str] = ()) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.default_host = default_host
        self.default_app = default_app
        self.key_values = key_values
        self.rules = list(rules)
        Clock.__init__(self, tz, self.rules)

        def decode(raw: bytes) -> str:
            return raw.decode("utf-8", "replace").strip()

        self._hosts = Cache(decode, {b"": default_host, b"-": default_host})
        self._apps = Cache(decode, {b"": default_app, b"-": default_app})
        self._pri = Cache(lambda raw: int(raw) & 7 if int(raw) < 192 else None, {b"": None})
        self._level = Cache(sev.of_word, {b"": None})
        self._bracket_apps = Cache(_component_at, {b"": b""})
        self._java_apps = Cache(_java_class, {b"": b""})
        # Redis's whole seconds ("11 Mar 2024 10:32:01") -> ns or None, read as BSD syslog's "Mar 11 2024 ...".
        self._redis_seconds = Cache(lambda stamp: self._rfc3164_ns(_day_month(stamp)), size=20_000)
        # Headers of the fast BSD pass ("Dec  5 17:42:15 web-1 sshd") -> (time, host, app):
        # a new one each second per host and app. Cleared with the year (a new day).
        self._3164_names = Cache(self._3164_host_tag, size=20_000)    # b" web-1 sshd" -> ("web-1", "sshd")
        self._3164_heads = _BsdHeaders(self._bsd_times, self._3164_names, {b"": (0, default_host, default_app)},
                                       20_000)
        self._yearless = (*self._yearless, self._3164_heads)
        self._yearless = (*self._yearless, self._redis_seconds)     # (older Redis writes no year)
        # (procid, msgid) -> their fields. The dicts are shared by the events
        # that have the same pair: fields are never changed once made.
        self._5424_ids = Cache(_ids_fields)
        self._statuses = Cache(lambda raw: {"status": int(raw)})   # (shared: never changed once made)
        self._5424_sd = Cache(kvfields.structured_data)    # (SD repeats, as the rest of a header does)
        self._5424_fields = Cache(self._5424_merged, size=20_000)    # (procid, msgid, SD) -> fields (shared)
        passes: dict[str, Callable[..., Any]] = {
            "rfc3164": self._run_3164_fast, "rfc5424": self._run_5424, "iso8601": self._run_app_fast,
            "apache": self._run_apache, "logcat": self._run_logcat, "json": self._parse_json,  # json: line by line
            "access": self._run_access, "glog": self._run_glog, "app_other": self._run_app_other,
        }
        loose: dict[str, Callable[..., Any]] = {"rfc3164": self._run_3164, "iso8601": self._run_app}
        # The loose passes start last; one goes first only when it read most
        # of a chunk (a file of variants), and then the fast pass it backs
        # never needs to run on those lines.
        self._order: list[Callable[..., Any]]
        if fmt == "auto":
            self._order = list(passes.values()) + list(loose.values())
        else:
            self._order = ([passes[fmt]] if fmt in passes else []) + ([loose[fmt]] if fmt in loose else [])
        self._containers = containers
        self._inner: Parser | None = None   # parses the text of container records
        # With ``explain``, ``matched`` names, after each chunk, what read each
        # line: a rule's name, a layout, or None (helios parse-test).
        self.explain = False
        self.matched: list[str | None] = []
        self.masks = [re.compile(m.encode("utf-8"), re.M) for m in masks]
        # Drops: lines they match do not leave the host (see _drop); counted.
        self.drops = [re.compile(m.encode("utf-8"), re.M) for m in drops]
        self.last_dropped: list[int] = []
        # Lines a rule with an environment matched, after each chunk: line -> environment.
        self.environments: dict[int, str] = {}
        self.dropped = 0
        self._reshaped = False              # a container record's text replaced its line in this chunk
        self._left_text: tuple[Sequence[int] | None, bytes] = (None, b"")  # (lines left, their text) of the last pass that read none
        self.rename = dict(rename or {})
        # Lines in another encoding than UTF-8 (helios.parsing.encodings).
        self.encoding = "" if encoding.replace("-", "").replace("_", "").lower() in ("", "utf8") else encoding
        self._decoded: Parser | None = None
        self.add_fields = dict(add_fields or {})
        # Nothing to do but read headers (parse_bsd_block may stand for parse_chunk).
        self._plain = (fmt in ("auto", "rfc3164") and not (self.rules or self.masks or self.drops or self.encoding
                                                             or self.rename or self.add_fields or key_values))

    # -- the batch path ------------------------------------------------------

    def parse_chunk(self, chunk: bytes, now_ns: int) -> Columns:
        """Columns for every line of ``chunk`` (complete lines, each ending in
        b"\\n"; trailing bytes without one count as a last line)."""
        if not chunk:
            return Columns([], [], [], [], [], [], [])
        if self.encoding:
            return self._parse_decoded(chunk, now_ns)
        self.last_dropped = []
        self.environments = {}
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
        crlf = b"\r" in chunk
        if crlf:                            # CRLF: the "\r" is not part of the message
            messages = [line[:-1] if line[-1:] == b"\r" else line for line in lines]
        else:
            messages = lines.copy()         # (a container record's text replaces its line)
        out = Columns(lines, [now_ns] * n, [self.default_host] * n, [self.default_app] * n, [None] * n,
                      messages, [None] * n)
        left: Sequence[int] = range(n)
        self._left_text = (None, b"")
        if self.explain:
            self.matched = [None] * n
        for k, rule in enumerate(self.rules):
            was = left
            left = self._fill_rule(k, rule, out, left, chunk)
            if self.explain:
                self._note(was, left, rule.name)
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
        if b"=" in chunk:
            self._key_values(out, chunk, left)
            if self.explain:
                for i in left:
                    if out.fields[i] is not None:
                        self.matched[i] = "key=value"
        if self.drops:
            self._drop(out, chunk)
        if self.rename or self.add_fields:
            self._edit_fields(out.fields)
        if self._reshaped or crlf:
            # A message shorter than its line (a CRLF's "\r" left out, a
            # container record unwrapped) says how many bytes its line had,
            # so that what the audit counts is the file's bytes.
            fields = out.fields
            for i, (message, line) in enumerate(zip(messages, lines)):
                if len(message) != len(line):
                    fields[i] = {**(fields[i] or {}), LINE_BYTES: len(line)}
            self._reshaped = False
        return out

    def parse_bsd_block(self, chunk: bytes, now_ns: int) -> tuple[list[int], list[str], list[str], list[int]] | None:
        """``parse_chunk``'s (times, hosts, apps, severities) for a chunk
        whose every line is BSD syslog of the canonical layout with a PRI
        (``<13>Dec  5 17:42:15 web-1 sshd[7]: ...``, what network senders
        send), without cutting the chunk into lines (the syslog relay sends
        it as it came): a fifth of parse_chunk's cost. None when a line is
        not such, holds a ``\\r``, or this parser has more to do than read
        headers (rules, masks, drops, encodings, renames, added fields,
        ``key_values``): parse_chunk then. Every field of such a line is
        None, its message is its line."""
        if not (self._plain and chunk[:1] == b"<") or self.explain or b"\r" in chunk:
            return None
        n = chunk.count(b"\n") + (chunk[-1:] != b"\n")
        self._set_now(now_ns)
        self.last_dropped = []
        self.environments = {}
        pris, heads = L.fast_pri_heads(chunk, n)
        if b"" in heads or b"" in pris:
            return None
        sevs = list(map(self._pri.__getitem__, pris))
        if None in sevs:            # a PRI over 191: parse_chunk looks for a level= in the line
            return None
        rows = list(map(self._3164_heads.__getitem__, heads))
        return list(map(_COL0, rows)), list(map(_COL1, rows)), list(map(_COL2, rows)), sevs

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
            self._decoded.drops = self.drops
            self._decoded.explain = self.explain
        inner = self._decoded.parse_chunk(b"".join(d + b"\n" for d in decoded), now_ns)
        self.matched = self._decoded.matched
        self.last_dropped = self._decoded.last_dropped
        self.environments = self._decoded.environments
        self.dropped = self._decoded.dropped
        fields = inner.fields
        for i, (message, line) in enumerate(zip(inner.messages, lines)):
            if len(message) != len(line):
                f = {k: v for k, v in (fields[i] or {}).items() if k != LINE_BYTES}
                f[LINE_BYTES] = len(line)
                fields[i] = f
        return inner._replace(lines=lines)

    def _drop(self, out: Columns, chunk: bytes) -> None:
        """Lines a drop regex matches: their message is emptied and their
        fields say ``dropped``; ``last_dropped`` lists them (the encoder
        sends each run of them as one empty event, see helios.tail.encoder)."""
        hit: set[int] = set()
        for rx in self.drops:
            i = pos = 0
            for m in rx.finditer(chunk):
                i += chunk.count(b"\n", pos, m.start())
                pos = m.start()
                hit.add(i)
        hit.discard(len(out.lines))         # (a match on the empty end of the chunk)
        for i in hit:
            out.messages[i] = b""
            out.fields[i] = {"dropped": 1}
            if self.explain:
                self.matched[i] = "dropped"
        self.last_dropped = sorted(hit)
        self.dropped += len(hit)
        self._reshaped = self._reshaped or bool(hit)

    def _edit_fields(self, fields: list[dict[str, Any] | None]) -> None:
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

    def _note(self, before: Sequence[int], after: Sequence[int], name: str) -> None:
        gone = set(before).difference(after)
        for i in gone:
            self.matched[i] = name

    def _fill(self, run: Callable[..., Any], out: Columns, left: Sequence[int], chunk: bytes) -> Sequence[int]:
        """Runs a pass over the lines ``left`` by the passes before, writes
        what it recognised into ``out``, and returns the lines still left."""
        lines = out.lines
        whole = len(left) == len(lines)
        if whole:
            text = chunk
        elif self._left_text[0] is left:    # the pass before read none of these lines
            text = self._left_text[1]
        else:
            text = b"\n".join([lines[i] for i in left])
        hits, times, sevs, hosts, apps, extra = run(text, len(left))
        if not any(hits):                   # none recognised (a layout of another pass): as they were
            self._left_text = (left, text)
            return left
        if whole and all(hits):             # every line recognised: the usual case, all in C
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

    def _columns(self, rx: re.Pattern[bytes], text: bytes, n: int) -> list[Any]:  # one list a group
        rows = rx.findall(text)
        del rows[n:]                        # the empty match after a final b"\n"
        # (An itemgetter a group: zip(*rows) over 2,000 rows takes about twice as long.)
        if rx.groups == 1:                  # (findall gives the group itself, not a tuple)
            return [rows]
        return [list(map(get, rows)) for get in _getters(rx.groups)]

    def _names(self, cache: Cache, col: Sequence[bytes]) -> list[str] | None:
        """A host or app column through its cache; None when every value is empty."""
        return list(map(cache.__getitem__, col)) if any(col) else None

    # -- the passes: each returns (hits, times, severities, hosts, apps, extra) --

    def _run_3164_fast(self, text: bytes, n: int) -> tuple[Any, ...]:
        # The header (stamp to tag) goes through its cache to (time, host,
        # app), and the rows are turned into columns in C (an itemgetter a
        # column: zip(*rows) takes twice as long). Without a PRI on any line,
        # the findall has that one group: a list of bytes, no tuple a line.
        heads = None
        if text[:1] != b"<":
            heads = L.fast_heads(text, n)
            sevs = [None] * n
            if not all(heads) and b"\n<" in text:     # a line it did not take may have a PRI
                heads = None
        if heads is None:
            pris, heads = L.fast_pri_heads(text, n)
            sevs = list(map(self._pri.__getitem__, pris))
        if not any(heads):
            return heads, None, None, None, None, None
        rows = list(map(self._3164_heads.__getitem__, heads))
        return heads, list(map(_COL0, rows)), sevs, list(map(_COL1, rows)), list(map(_COL2, rows)), None

    def _3164_host_tag(self, names: bytes) -> tuple[str, str]:
        m = L.RFC3164_FAST_NAMES.fullmatch(names)
        assert m is not None   # the fast pass's header pattern matched these bytes already
        host, tag = m.groups()
        return self._hosts[host], self._apps[tag]

    def _run_app_fast(self, text: bytes, n: int) -> tuple[Any, ...]:
        stamp, word, bracket, logger = self._columns(L.APP_FAST, text, n)
        sevs = list(map(self._level.__getitem__, word))
        apps = list(map(self._bracket_apps.__getitem__, bracket)) if any(bracket) else bracket
        if any(apps):
            apps = [a or b for a, b in zip(apps, logger)]
        else:
            apps = logger
        if None in sevs or b"" in apps:     # not a level, or no app: the loose pass decides
            stamp = [s if v is not None and a else b"" for s, v, a in zip(stamp, sevs, apps)]
        # (Only ISO 8601 here: straight to its cache, one call less a line.)
        return (stamp, self.iso_column(stamp), sevs, None,
                list(map(self._apps.__getitem__, apps)), None)

    def _run_3164(self, text: bytes, n: int) -> tuple[Any, ...]:
        pri, stamp, first_tag, host, tag, bare_tag = self._columns(L.RFC3164, text, n)
        if any(first_tag):                  # "dhcpd[4305]: ..." with no host
            tag = [a or b for a, b in zip(first_tag, tag)]
        if any(bare_tag):                   # "host tag message", "host tag[12] message"
            tag = [a or b for a, b in zip(tag, bare_tag)]
        return (stamp, list(map(self._bsd_times.__getitem__, stamp)), list(map(self._pri.__getitem__, pri)),
                self._names(self._hosts, host), self._names(self._apps, tag), None)

    def _run_5424(self, text: bytes, n: int) -> tuple[Any, ...]:
        pri, stamp, host, app, procid, msgid, sd = self._columns(L.RFC5424, text, n)

        def extra(out: Columns, ks: Sequence[int], idx: Sequence[int]) -> None:
            # (procid, msgid, SD) -> fields through a cache: in C for every row, then placed.
            found = list(map(self._5424_fields.__getitem__, zip(procid, msgid, sd)))
            fields = out.fields
            if len(ks) == len(fields) == n:     # (every line, in order: ks and idx are both range(n))
                fields[:] = found
                return
            for k, i in zip(ks, idx):
                fields[i] = found[k]

        return (stamp, self.iso_column(stamp), list(map(self._pri.__getitem__, pri)),
                self._names(self._hosts, host), self._names(self._apps, app), extra)

    def _5424_merged(self, key: tuple[bytes, bytes, bytes]) -> dict[str, Any] | None:
        procid, msgid, sd = key
        found: dict[str, Any] | None = self._5424_ids[procid, msgid]
        if sd and sd != b"-":
            found = {**self._5424_sd[sd], **(found or {})}
        return found

    def _run_app(self, text: bytes, n: int) -> tuple[Any, ...]:
        (level0, stamp, stream, partial, monolog, py_name, level, column, bracket, logger, java, bsd_host, bsd_tag,
         bar, dash) = self._columns(L.APP, text, n)
        at = list(map(self._bracket_apps.__getitem__, bracket)) if any(bracket) else bracket
        for other in (level0, monolog):
            if any(other):
                level = [a or b for a, b in zip(level, other)]
        if any(java):                       # Tomcat: "[main] org.apache.catalina.startup.Catalina.start msg"
            # (only after a thread: "[ERROR] www.example.com down" names no logger)
            java_apps = self._java_apps
            logger = [a or (java_apps[j] if t else b"") for a, j, t in zip(logger, java, bracket)]
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
            def extra(out: Columns, ks: Sequence[int], idx: Sequence[int]) -> None:
                self._unwrap_cri(out, [(k, i) for k, i in zip(ks, idx) if stream[k]], stream, partial)
        return (stamp, list(map(self._app_times.__getitem__, stamp)), list(map(self._level.__getitem__, level)),
                hosts, self._names(self._apps, apps), extra)

    def _run_app_other(self, text: bytes, n: int) -> tuple[Any, ...]:
        # Redis and Ruby's Logger (see layouts.APP_OTHER): no line of theirs starts as another pass's do.
        if not any(map(text.__contains__, L.APP_OTHER_MARKS)):     # (lines nothing reads pass here too)
            return [b""] * n, None, None, None, None, None
        redis_stamp, redis_level, ruby_stamp, ruby_level, progname = self._columns(L.APP_OTHER, text, n)
        stamp = [a or b for a, b in zip(redis_stamp, ruby_stamp)]
        if not any(stamp):
            return stamp, None, None, None, None, None
        app_times, level = self._app_times, self._level
        times = [self._redis_ns(r) if r else app_times[b] for r, b in zip(redis_stamp, ruby_stamp)]
        sevs = [L.REDIS_SEVERITY[r] if r else level[w] for r, w in zip(redis_level, ruby_level)]
        return stamp, times, sevs, None, self._names(self._apps, progname), None

    def _redis_ns(self, stamp: bytes) -> int:
        # The milliseconds make each stamp new: the whole seconds go through a cache.
        head, _, frac = stamp.partition(b".")
        base = self._redis_seconds[head]
        if base is None:
            return self._now
        ns = base + int(frac.ljust(9, b"0")) if frac else base
        return ns if 0 <= ns < 1 << 63 else self._now      # (what int64 ns can carry)

    def _run_apache(self, text: bytes, n: int) -> tuple[Any, ...]:
        stamp, level = self._columns(L.APACHE, text, n)
        return stamp, list(map(self._apache_times.__getitem__, stamp)), list(map(self._level.__getitem__, level)), \
            None, None, None

    def _run_access(self, text: bytes, n: int) -> tuple[Any, ...]:
        stamp, status = self._columns(L.ACCESS, text, n)

        def extra(out: Columns, ks: Sequence[int], idx: Sequence[int]) -> None:
            statuses = self._statuses
            for k, i in zip(ks, idx):
                out.fields[i] = statuses[status[k]]

        return stamp, list(map(self._access_times.__getitem__, stamp)), [None] * n, None, None, extra

    def _run_glog(self, text: bytes, n: int) -> tuple[Any, ...]:
        level, stamp = self._columns(L.GLOG, text, n)
        return (stamp, list(map(self._glog_times.__getitem__, stamp)), [L.GLOG_SEVERITY.get(x) for x in level],
                None, None, None)

    def _run_logcat(self, text: bytes, n: int) -> tuple[Any, ...]:
        stamp, level, tag = self._columns(L.LOGCAT, text, n)
        return (stamp, list(map(self._logcat_times.__getitem__, stamp)), [L.LOGCAT_SEVERITY.get(x) for x in level],
                None, self._names(self._apps, tag), None)

    # -- user rules ------------------------------------------------------------

    def _fill_rule(self, k: int, rule: Any, out: Columns, left: Sequence[int], chunk: bytes) -> list[int]:
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
            if rule.set_environment:
                self.environments[i] = rule.set_environment
            if rule.severity is not None:
                word = row[rule.severity]
                out.severities[i] = int(word) if word.isdigit() and int(word) < 8 else self._level[word]
            found = rule.fields_of(row)
            if found:
                out.fields[i] = found
        return still

    # -- key=value, containers --------------------------------------------------

    def _key_values(self, out: Columns, chunk: bytes, unparsed: Sequence[int]) -> None:
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
            if "date" in f and "time" in f:     # date=2024-03-11 time=08:15:02 (FortiGate, ...)
                ns = self._json_time(f"{f['date']} {f['time']}")
                if ns is not None:
                    out.times[i] = ns
            for key in _KV_TIME if out.times[i] == self._now else ():
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
        count = chunk.count
        for m in L.KV_LEVEL_RX.finditer(chunk):   # (what comes before the key is checked by the regex)
            at = m.start()
            i += count(b"\n", pos, at)     # the line it is on (a count in C)
            pos = at
            if sevs[i] is None:
                sevs[i] = level[m[1]]

    def _inner_parser(self) -> Parser:
        if self._inner is None:
            self._inner = Parser("auto", default_host=self.default_host, default_app=self.default_app,
                                 tz=self._tz, rules=self.rules, key_values=self.key_values, containers=False)
        return self._inner

    def _unwrap(self, out: Columns, items: Sequence[tuple[int, bytes, int | None, str, bool]]) -> None:
        """Container records: ``items`` are (line, text, runtime time, stream,
        partial). The text is parsed as a line of its own; what it says wins
        over the runtime's time."""
        if not items:
            return
        if self.masks:
            # The application's text is masked as a line of its own (a mask anchored at
            # ^ does not match the record's JSON): neither the message nor a field holds it.
            items = [(i, _masked(text, self.masks), ns, stream, partial) for i, text, ns, stream, partial in items]
        inner_parser = self._inner_parser()
        inner = inner_parser.parse_chunk(
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
        for k, env in inner_parser.environments.items():     # a rule's environment, as on a plain line
            self.environments[items[k][0]] = env

    def _unwrap_cri(self, out: Columns, pairs: Iterable[tuple[int, int]], stream: Sequence[bytes],
                    partial: Sequence[bytes]) -> None:
        items = []
        for k, i in pairs:
            line = out.messages[i]
            text = line.split(b" ", 3)[3] if line.count(b" ", 0, 80) >= 3 else b""
            items.append((i, text, out.times[i], stream[k].decode(), partial[k] == b"P"))
        self._unwrap(out, items)

    # -- JSON lines (one at a time: json.loads is the cost anyway) ----------

    def _parse_json(self, out: Columns, indexes: Sequence[int]) -> list[int]:
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
            plan = jsonlog.plan(flat)           # which keys are time, host, app, level: per key set
            for key in plan.time:
                ns = self._json_time(flat[key])
                if ns is not None:
                    out.times[i] = ns
                    used.add(key)
                    break
            for keys, column in ((plan.host, out.hosts), (plan.app, out.apps)):
                for key in keys:
                    name = jsonlog.text(flat[key])
                    if name is not None:
                        column[i] = name
                        used.add(key)
                        break
            for keys, otel in ((plan.level, False), (plan.otel_level, True)):
                for key in keys:
                    level = sev.of_value(flat[key], otel)
                    if level is not None:
                        out.severities[i] = level
                        used.add(key)
                        break
                if out.severities[i] is not None:
                    used.update(plan.otel_level)   # (said by the text)
                    break
            out.fields[i] = jsonlog.rest(flat, used)
        if docker:
            self._unwrap(out, [(i, t.encode("utf-8"), ns, s, p) for i, t, ns, s, p in docker])
        return still



class _BsdHeaders(Cache):
    """Headers of the fast BSD pass ("Dec  5 17:42:15 web-1 sshd") -> (time, host, app).
    The stamp is the first 15 bytes; " web-1 sshd" goes through ``names``. A header
    whose time did not convert is not kept (its time is the receive time of one chunk).
    (One method a miss: a header is new each second per host and app.)"""

    def __init__(self, times: Cache, names: Cache, fixed: dict[bytes, tuple[int, str, str]], size: int) -> None:
        super().__init__(self.__missing__, fixed, size)   # (the fn is not used: __missing__ is this class's own)
        self.times, self.names = times, names

    def __missing__(self, head: bytes) -> tuple[int, str, str]:
        stamp = head[:15]
        times = self.times
        value = (times[stamp], *self.names[head[15:]])
        if stamp in times:
            if len(self) >= self.size:
                self.clear()
            self[head] = value
        return value


def _ids_fields(pair: tuple[bytes, bytes]) -> dict[str, str] | None:
    procid, msgid = pair
    found = {}
    if procid and procid != b"-":
        found["procid"] = procid.decode("utf-8", "replace")
    if msgid and msgid != b"-":
        found["msgid"] = msgid.decode("utf-8", "replace")
    return found or None


_AT = re.compile(rb"[\w.$]{1,64}(?=@\d+$)")
_DOTTED = re.compile(rb"[A-Za-z_$][\w$]*(?:\.[\w$]+)+")


def _component_at(bracket: bytes) -> bytes:
    """b"main:Connector@212" -> b"Connector" (log4j's %t:%C{1}@%L);
    b"o.e.n.Node   " -> b"o.e.n.Node" (a logger name); else b""."""
    m = _AT.search(bracket)
    if m:
        return m[0]
    name = bracket.strip()
    return name if _DOTTED.fullmatch(name) else b""


_METHOD = re.compile(rb"(.*\.[A-Z$_][\w$]*)\.[a-z_$<][\w$<>]*")


def _java_class(name: bytes) -> bytes:
    """b"org.apache.catalina.startup.Catalina.start" -> b"org.apache.catalina.startup.Catalina":
    the logger of JULI's OneLineFormatter (Tomcat), which prints the class and its method."""
    m = _METHOD.fullmatch(name)
    return m[1] if m else name


def _day_month(stamp: bytes) -> bytes:
    """b"11 Mar 2024 10:32:01.123" (Redis) -> b"Mar 11 2024 10:32:01.123" (a BSD stamp)."""
    day, month, rest = stamp.split(b" ", 2)
    return month + b" " + day + b" " + rest


_STARS = bytes(i if i in (10, 13) else 42 for i in range(256))   # every byte to "*", but b"\n" and b"\r"


def _masked(text: bytes, masks: Sequence[re.Pattern[bytes]]) -> bytes:
    for rx in masks:
        text = rx.sub(_stars, text)
    return text


def _stars(m: re.Match[bytes]) -> bytes:
    whole = m.group(0)
    if m.re.groups and m.start(1) >= 0:
        a, b = m.start(1) - m.start(), m.end(1) - m.start()
        return whole[:a] + whole[a:b].translate(_STARS) + whole[b:]
    return whole.translate(_STARS)


def _is_rfc3339(stamp: bytes) -> bool:
    """b"2024-03-11T08:15:02.1+02:00": a "T" and an offset or Z."""
    return stamp[10:11] in (b"T", b"t") and (stamp[-1:] in (b"Z", b"z") or stamp[-3:-2] == b":"
                                             or stamp[-5:-4] in (b"+", b"-"))
