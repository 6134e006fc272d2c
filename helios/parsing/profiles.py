"""Per-path parsing: which parser reads a file, from the tailer's config.

``[[tailer.parse]]`` tables each name globs of paths and how their lines are
read: a time zone, ``key_values``, ``mask`` (regexes whose matches are
overwritten with ``*`` before a line leaves the host), ``rename`` (field
names to new names), ``fields`` (added to every line), ``encoding`` (of
the text: ``utf-16``, ``shift_jis``, ...), ``drop`` (regexes whose lines do
not leave the host), ``environment`` (the environment of the events of these
files, instead of the tailer's), and user rules (``helios.parsing.rules``;
a rule's ``environment`` moves the lines it matches, which wins over the
table's).
``format = "docker"`` or ``"cri"`` says a table's files are container logs
(``helios.parsing.containers``): records split by the runtime are joined,
wherever the files are. With ``format = "auto"`` (the default) the tailer
decides per file from its first line; any other format turns joining off.
A file takes the first table one of whose globs matches its path (``*``
matches ``/`` too), or its path without a rotation suffix (``.1``,
``-20240311``, ``.gz``...); a file that matches none is read by the default parser
with the tailer's own ``format``, ``timezone`` and ``app``::

    [[tailer.parse]]
    paths = ["/var/log/ras/*.log"]
    timezone = "UTC"

    [[tailer.parse.rules]]
    name = "ras"
    grok = '\\[%{WORD:host}\\] %{NUMBER:time} %{WORD:facility}\\.%{LOGLEVEL:severity} %{DATA:app}:'
    time_format = "epoch"
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Mapping

from helios.parse import FORMATS, Parser
from helios.parsing import encodings
from helios.parsing.rules import RuleError, compile_rules
from helios.parsing.timestamps import zone
from helios.store.layout import valid_environment

_ROTATED = re.compile(r"(?:\.\d{1,3}|-\d{8}(?:\d{2})?|\.old)(?:\.gz|\.bz2|\.xz|\.zst)?$")
# Formats of a table's files that are container logs: read by the auto parser, their records joined by the tailer.
CONTAINER_FORMATS = ("docker", "cri")
TABLE_KEYS = ("paths", "format", "timezone", "app", "key_values", "rules", "mask", "rename", "fields", "encoding", "drop",
              "environment")


def check_table(table: Any) -> str | None:
    """The config check of one ``[[tailer.parse]]`` table; every problem of
    the table in one message."""
    if not isinstance(table, dict):
        return "must be a table with paths and rules, timezone, ..."
    problems = []
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        problems.append(f"unknown key {', '.join(unknown)} (known: {', '.join(TABLE_KEYS)})")
    paths = table.get("paths")
    if not (isinstance(paths, list) and paths and all(isinstance(p, str) and p for p in paths)):
        problems.append("paths must be a non-empty list of globs")
    if "format" in table and table["format"] not in FORMATS + CONTAINER_FORMATS:
        problems.append(f"format must be one of {', '.join(FORMATS + CONTAINER_FORMATS)}")
    if "timezone" in table:
        try:
            zone(table["timezone"]) if isinstance(table["timezone"], str) else zone("?")
        except ValueError as exc:
            problems.append(f"timezone: {exc}")
    if "app" in table and not isinstance(table["app"], str):
        problems.append("app must be a string")
    if "environment" in table and not valid_environment(table["environment"]):
        problems.append(f"environment {table['environment']!r} is not a valid environment name (a letter or digit, "
                        "then letters, digits, '_', '.', '-'; at most 64)")
    for key in ("mask", "drop"):
        problems += _regexes(table, key)
    for key in ("rename", "fields"):
        if key in table and not isinstance(table[key], dict):
            problems.append(f"{key} must be a table of names to {'new names' if key == 'rename' else 'values'}")
    if isinstance(table.get("rename"), dict) and not all(isinstance(v, str) and v for v in table["rename"].values()):
        problems.append("rename: every new name must be a non-empty string")
    if "encoding" in table:
        what = encodings.check(table["encoding"]) if isinstance(table["encoding"], str) else "must be a string"
        if what:
            problems.append(f"encoding: {what}")
    if "key_values" in table and not isinstance(table["key_values"], bool):
        problems.append("key_values must be true or false")
    rules = table.get("rules", [])
    if not isinstance(rules, list):
        problems.append("rules must be a list of tables ([[tailer.parse.rules]])")
    else:
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                problems.append(f"rules[{i}]: must be a table")
                continue
            try:
                compile_rules([rule])
            except RuleError as exc:
                problems.append(f"rules[{i}] ({rule.get('name', 'unnamed')}): {exc}")
    return "; ".join(problems) or None


def _regexes(table: dict, key: str) -> list[str]:
    found = table.get(key, [])
    if not (isinstance(found, list) and all(isinstance(m, str) and m for m in found)):
        return [f"{key} must be a list of regular expressions"]
    problems = []
    for i, m in enumerate(found):
        try:
            rx = re.compile(m)
            re.compile(m.encode("utf-8"))
        except re.error as exc:
            problems.append(f"{key}[{i}]: not a valid regular expression ({exc})")
            continue
        if rx.match(""):
            problems.append(f"{key}[{i}]: matches the empty string")
    return problems


class Profiles:
    """Parsers by path: one per ``[[tailer.parse]]`` table, and the default."""

    def __init__(self, fmt: str = "auto", host: str = "", app: str = "", timezone: str = "UTC",
                 tables: tuple[Mapping[str, Any], ...] | list = ()) -> None:
        self.tables = [dict(t) for t in tables]
        self._base = dict(fmt=fmt, host=host, app=app, timezone=timezone)
        self.default = self._make({})
        self._parsers: dict[int, Parser] = {}
        self._by_path: dict[str, Parser] = {}
        self._env_by_path: dict[str, str] = {}

    def _make(self, table: Mapping[str, Any]) -> Parser:
        fmt = table.get("format", self._base["fmt"])
        return Parser("auto" if fmt in CONTAINER_FORMATS else fmt, default_host=self._base["host"],
                      default_app=table.get("app", self._base["app"]),
                      tz=zone(table.get("timezone", self._base["timezone"])),
                      rules=compile_rules(table.get("rules", [])), key_values=table.get("key_values", False),
                      masks=table.get("mask", ()), rename=table.get("rename"), add_fields=table.get("fields"),
                      encoding=table.get("encoding", ""), drops=table.get("drop", ()))

    def table_of(self, path: str) -> int | None:
        """The first table one of whose globs matches ``path``, or else
        the path without a rotation suffix (a rotated file is read to its
        end under its new name: ``app.log.1``, ``app.log-20240311.gz``)."""
        for candidate in dict.fromkeys((path, _ROTATED.sub("", path))):
            for i, table in enumerate(self.tables):
                if any(fnmatch.fnmatchcase(candidate, glob) for glob in table["paths"]):
                    return i
        return None

    def environment(self, path: str, default: str) -> str:
        """The environment of ``path``'s events: its table's, or ``default``."""
        env = self._env_by_path.get(path)
        if env is None:
            i = self.table_of(path)
            env = self.tables[i].get("environment", default) if i is not None else default
            if len(self._env_by_path) > 10_000:
                self._env_by_path.clear()
            self._env_by_path[path] = env
        return env

    def container_format(self, path: str) -> str:
        """How the tailer tells whether ``path`` is a container log whose
        split records it joins: "auto" (from the file's first line), "join"
        (a table says docker or cri), or "" (a table, or the tailer, names
        another format: never). Not cached: asked once per file."""
        i = self.table_of(path)
        fmt = self.tables[i].get("format", self._base["fmt"]) if i is not None else self._base["fmt"]
        return "join" if fmt in CONTAINER_FORMATS else "auto" if fmt == "auto" else ""

    def parser(self, path: str) -> Parser:
        parser = self._by_path.get(path)
        if parser is None:
            i = self.table_of(path)
            if i is None:
                parser = self.default
            else:
                parser = self._parsers.get(i)
                if parser is None:
                    parser = self._parsers[i] = self._make(self.tables[i])
            if len(self._by_path) > 10_000:
                self._by_path.clear()
            self._by_path[path] = parser
        return parser
