"""User rules: how to read a layout the default parser does not know.

A rule is a regular expression with named groups, or a grok pattern built
from the library below (``%{NAME}``, ``%{NAME:field}``), and says how its
``time`` group is read. Groups named ``time``, ``host``, ``app`` and
``severity`` fill those columns; every other named group becomes a field
(grok names may be dotted: ``%{WORD:disk.name}``). The message stays the
line as read.

``time_format`` is one of:

- ``auto`` (the default): the layouts the default parser knows (ISO 8601,
  BSD syslog's, the app-log ones);
- ``epoch``, ``epoch_ms``, ``epoch_us``, ``epoch_ns``: a number of seconds
  (milli-, micro-, nanoseconds) since 1970, with an optional fraction, read
  exactly (no float rounding);
- a ``strptime`` format (``%d/%b/%Y:%H:%M:%S %z``). Without ``%Y``/``%y``
  the year is inferred as for BSD syslog; without ``%z`` the time is in the
  rule's ``timezone``, else the file's.

Rules of a file are tried in order, each over the lines the ones before did
not match (first match wins); the default parser reads what is left. A rule
runs as one regex pass over a chunk, like the default passes, so a rule costs
about what a default layout costs. A pattern that can match across a line
end (``\\s`` does) is still read line by line: each line is matched alone.

``compile_rules`` turns the config's tables into ``Rule`` objects;
``check_rule`` is the config schema's check of one table (every problem in
one message).
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Mapping

from helios.parsing import severity as sev
from helios.parsing.timestamps import zone
from helios.store.layout import valid_environment

SPECIAL = ("time", "host", "app", "severity")
EPOCH_UNITS = {"epoch": 1_000_000_000, "epoch_s": 1_000_000_000, "epoch_ms": 1_000_000,
               "epoch_us": 1_000, "epoch_ns": 1}
RULE_KEYS = ("name", "regex", "grok", "time_format", "timezone", "app", "fields", "environment")

# The grok library: names to regular expressions (which may use other names).
GROK: dict[str, str] = {
    "WORD": r"\b\w+\b",
    "NOTSPACE": r"\S+",
    "SPACE": r"\s*",
    "DATA": r".*?",
    "GREEDYDATA": r".*",
    "INT": r"[+-]?\d+",
    "POSINT": r"\b[1-9]\d*\b",
    "NONNEGINT": r"\b\d+\b",
    "NUMBER": r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)",
    "BASE10NUM": r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)",
    "BASE16NUM": r"(?<![0-9A-Fa-f])[+-]?(?:0x)?[0-9A-Fa-f]+",
    "EPOCH": r"\d{9,10}(?:\.\d{1,9})?",
    "EPOCH_MS": r"\d{12,13}(?:\.\d{1,6})?",
    "IPV4": r"(?<![0-9])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9])",
    "IPV6": r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?",
    "IP": r"(?:%{IPV6}|%{IPV4})",
    "HOSTNAME": r"\b[0-9A-Za-z][0-9A-Za-z_-]{0,62}(?:\.[0-9A-Za-z][0-9A-Za-z_-]{0,62})*\.?\b",
    "HOST": r"%{HOSTNAME}",
    "IPORHOST": r"(?:%{IP}|%{HOSTNAME})",
    "HOSTPORT": r"%{IPORHOST}:%{POSINT}",
    "USERNAME": r"[a-zA-Z0-9._-]+",
    "USER": r"%{USERNAME}",
    "EMAILADDRESS": r"[a-zA-Z0-9_.+-]+@%{HOSTNAME}",
    "UUID": r"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}",
    "MAC": r"(?:[A-Fa-f0-9]{2}[:-]){5}[A-Fa-f0-9]{2}",
    "PATH": r"(?:/[^\s/]*)+/?",
    "URIPATH": r"(?:/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\-]*)+",
    "URIPARAM": r"\?[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*",
    "QUOTEDSTRING": r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'',
    "QS": r"%{QUOTEDSTRING}",
    "LOGLEVEL": sev.LEVEL_WORD.decode(),
    "MONTH": r"\b(?:[Jj]an(?:uary)?|[Ff]eb(?:ruary)?|[Mm]ar(?:ch)?|[Aa]pr(?:il)?|[Mm]ay|[Jj]une?|[Jj]uly?"
             r"|[Aa]ug(?:ust)?|[Ss]ep(?:t(?:ember)?)?|[Oo]ct(?:ober)?|[Nn]ov(?:ember)?|[Dd]ec(?:ember)?"
             r"|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\b",
    "MONTHNUM": r"(?:1[0-2]|0?[1-9])",
    "MONTHDAY": r"(?:3[01]|[12]\d|0?[1-9])",
    "DAY": r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)",
    "YEAR": r"\d{4}",
    "HOUR": r"(?:2[0-3]|[01]?\d)",
    "MINUTE": r"[0-5]\d",
    "SECOND": r"(?:60|[0-5]?\d)(?:[.,]\d+)?",
    "TIME": r"%{HOUR}:%{MINUTE}(?::%{SECOND})?",
    "ISO8601_TIMEZONE": r"(?:Z|[+-]%{HOUR}(?::?%{MINUTE})?)",
    "TIMESTAMP_ISO8601": r"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:%{MINUTE}(?::%{SECOND})?%{ISO8601_TIMEZONE}?",
    "DATE_US": r"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}",
    "DATE_EU": r"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}",
    "SYSLOGTIMESTAMP": r"%{MONTH} +%{MONTHDAY} %{TIME}",
    "HTTPDATE": r"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} [+-]\d{4}",
    "PROG": r"[\x21-\x5a\x5c\x5e-\x7e]+",
    "JAVACLASS": r"(?:[a-zA-Z$_][a-zA-Z$_0-9]*\.)*[a-zA-Z$_][a-zA-Z$_0-9]*",
    # Logstash's names for what its examples use most (their fields named for Helios' columns where
    # Logstash's are: SYSLOGBASE's logsource is the host, its timestamp the time, its program the app).
    "TZ": r"(?:[APMCE][SD]T|UTC|GMT)",
    "ISO8601_SECOND": r"%{SECOND}",
    "DATE": r"(?:%{DATE_US}|%{DATE_EU})",
    "DATESTAMP": r"%{DATE}[- ]%{TIME}",
    "HTTPDERROR_DATE": r"%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{YEAR}",
    "URIPROTO": r"[A-Za-z][A-Za-z0-9+\-.]*",
    "URIHOST": r"%{IPORHOST}(?::%{POSINT})?",
    "URIPATHPARAM": r"%{URIPATH}(?:%{URIPARAM})?",
    "URI": r"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?(?:%{URIHOST})?(?:%{URIPATHPARAM})?",
    "SYSLOGHOST": r"%{IPORHOST}",
    "SYSLOGFACILITY": r"<%{NONNEGINT:facility}\.%{NONNEGINT:priority}>",
    "SYSLOGPROG": r"%{PROG:program}(?:\[%{POSINT:pid}\])?",
    "SYSLOGBASE": r"%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:host} %{SYSLOGPROG}:",
    "HTTPDUSER": r"(?:%{EMAILADDRESS}|%{USER})",
    "COMMONAPACHELOG": r'%{IPORHOST:clientip} %{HTTPDUSER:ident} %{HTTPDUSER:auth} \[%{HTTPDATE:timestamp}\] '
                       r'"(?:%{WORD:verb} %{NOTSPACE:request}(?: HTTP/%{NUMBER:httpversion})?|%{DATA:rawrequest})" '
                       r'%{NUMBER:response} (?:%{NUMBER:bytes}|-)',
    "COMBINEDAPACHELOG": r"%{COMMONAPACHELOG} %{QS:referrer} %{QS:agent}",
}

_REF = re.compile(r"%\{(\w+)(?::([\w.@\[\]-]+))?(?::\w+)?\}")


class RuleError(ValueError):
    """A rule that cannot be compiled; the message says what to fix."""


# The time layout of a library pattern that ``auto`` does not read: a rule whose time
# group is one of these, without a time_format of its own, reads it so.
GROK_TIME_FORMATS = {"HTTPDATE": "%d/%b/%Y:%H:%M:%S %z", "HTTPDERROR_DATE": "%a %b %d %H:%M:%S %Y"}


def expand_grok(pattern: str, names: list[str] | None = None, depth: int = 0, capture: bool = True,
                kinds: list[str] | None = None) -> str:
    """A grok pattern as a regular expression. Named references become
    groups ``_gN`` (their field names, in order, are appended to ``names``);
    inside a named reference, the library's own named references do not
    capture (``%{COMBINEDAPACHELOG:line}`` is one field, as in Logstash)."""
    if depth > 12:
        raise RuleError("grok patterns nest too deep (a pattern that refers to itself?)")
    if names is None:
        names = []

    def sub(m: re.Match) -> str:
        name, field = m[1], m[2]
        if name not in GROK:
            raise RuleError(f"unknown grok pattern %{{{name}}} (known: {', '.join(sorted(GROK))})")
        named = field is not None and capture
        inner = expand_grok(GROK[name], names, depth + 1, capture and not named, kinds)
        if not named:
            return f"(?:{inner})"
        names.append(field)
        if kinds is not None:
            kinds.append(name)       # (the library pattern of each field, in the same order)
        return f"(?P<_g{len(names) - 1}>{inner})"

    return _REF.sub(sub, pattern)


class Rule:
    """One compiled rule. ``rows(text, lines)`` gives, for each line, None
    (no match) or the tuple of its groups; ``time``, ``host``, ``app`` and
    ``severity`` are indexes into that tuple (or None)."""

    def __init__(self, name: str, regex: str, field_names: dict[str, str], *, time_format: str = "auto",
                 timezone: str = "", set_app: str = "", add_fields: Mapping[str, Any] | None = None,
                 set_environment: str = "") -> None:
        self.name = name
        try:
            self.line_rx = re.compile(regex.encode("utf-8"))
            self.chunk_rx = re.compile(b"^(?:(" + regex.encode("utf-8") + b")|).*", re.M)
        except re.error as exc:
            raise RuleError(f"not a valid regular expression ({exc})") from None
        # Group index (in chunk_rx rows, where 0 is the whole match) -> field name.
        by_index = {}
        for group, index in self.line_rx.groupindex.items():
            by_index[index] = field_names.get(group, group)
        self.time = self.host = self.app = self.severity = None
        self.field_groups: list[tuple[int, str]] = []
        for index, fname in sorted(by_index.items()):
            role = {"time": "time", "timestamp": "time", "host": "host", "hostname": "host", "app": "app",
                    "program": "app", "severity": "severity", "level": "severity"}.get(fname)
            if role is not None and getattr(self, role) is None:
                setattr(self, role, index)
            elif fname not in ("message", "msg"):
                self.field_groups.append((index, fname))
        self.epoch_unit = EPOCH_UNITS.get(time_format, 0)
        self.strptime = time_format if "%" in time_format else ""
        if time_format not in EPOCH_UNITS and time_format != "auto" and not self.strptime:
            raise RuleError(f"time_format {time_format!r} is not auto, epoch, epoch_ms, epoch_us, epoch_ns "
                            "or a strptime format")
        try:
            self.tz: datetime.tzinfo | None = zone(timezone) if timezone else None
        except ValueError as exc:
            raise RuleError(str(exc)) from None
        self.set_app = set_app
        if set_environment and not valid_environment(set_environment):
            raise RuleError(f"environment {set_environment!r} is not a valid environment name (a letter or "
                            "digit, then letters, digits, '_', '.', '-'; at most 64)")
        self.set_environment = set_environment     # the lines it matches go to this environment
        self.add_fields = dict(add_fields or {})

    def rows(self, text: bytes, lines: list[bytes]) -> list:
        """One row per line of ``lines`` (``text`` is them joined by b"\\n")."""
        rows = self.chunk_rx.findall(text)
        n = len(lines)
        if rows and not isinstance(rows[0], tuple):
            rows = [(r,) for r in rows]
        # One row per line (and an empty one after a final b"\n"), and no
        # match that crossed a line end: then the rows are the lines'.
        if len(rows) == n + (text[-1:] == b"\n") and b"\n" not in b"".join([r[0] for r in rows]):
            del rows[n:]
            return [row if row[0] else None for row in rows]
        match = self.line_rx.match           # a pattern that spans lines: one line at a time
        out = []
        for line in lines:
            m = match(line)
            out.append(None if m is None or not m.group(0) else (m.group(0), *(g or b"" for g in m.groups())))
        return out

    def fields_of(self, row: tuple) -> dict | None:
        found = dict(self.add_fields) if self.add_fields else None
        for index, name in self.field_groups:
            value = row[index]
            if value:
                if found is None:
                    found = {}
                found[name] = value.decode("utf-8", "replace")
        return found


def compile_rule(table: Mapping[str, Any], position: int = 0) -> Rule:
    """A Rule from one config table (see the module docstring)."""
    unknown = sorted(set(table) - set(RULE_KEYS))
    if unknown:
        raise RuleError(f"unknown key {', '.join(unknown)} (known: {', '.join(RULE_KEYS)})")
    regex, grok = table.get("regex"), table.get("grok")
    if (regex is None) == (grok is None):
        raise RuleError("give exactly one of regex or grok")
    pattern = regex if regex is not None else grok
    if not isinstance(pattern, str) or not pattern:
        raise RuleError("the pattern must be a non-empty string")
    names: dict[str, str] = {}
    time_format = table.get("time_format", "auto")
    if grok is not None:
        order: list[str] = []
        kinds: list[str] = []
        pattern = expand_grok(grok, order, kinds=kinds)
        names = {f"_g{i}": name for i, name in enumerate(order)}
        if "time_format" not in table:
            time_kind = next((k for n, k in zip(order, kinds) if n in ("time", "timestamp")), "")
            time_format = GROK_TIME_FORMATS.get(time_kind, time_format)
    for key in ("name", "time_format", "timezone", "app", "environment"):
        if key in table and not isinstance(table[key], str):
            raise RuleError(f"{key} must be a string")
    if "fields" in table and not isinstance(table["fields"], dict):
        raise RuleError("fields must be a table of names to values")
    return Rule(table.get("name") or f"rule {position + 1}", pattern, names,
                time_format=time_format, timezone=table.get("timezone", ""),
                set_app=table.get("app", ""), add_fields=table.get("fields"),
                set_environment=table.get("environment", ""))


def compile_rules(tables) -> list[Rule]:
    return [compile_rule(t, i) for i, t in enumerate(tables)]


def check_rule(table: Any) -> str | None:
    """The config check of one rule table: None, or what is wrong."""
    if not isinstance(table, dict):
        return "must be a table (regex or grok, time_format, ...)"
    try:
        compile_rule(table)
    except RuleError as exc:
        return str(exc)
    return None
