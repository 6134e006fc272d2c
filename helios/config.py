"""The one configuration schema of Helios, and its loader.

One TOML file holds one table per service. Each section is a frozen dataclass
below, and each of its fields is declared with ``setting(default, doc,
*checks)``: the field carries its own default, its documentation and its
validation, and its annotation is its type. ``Config`` lists the sections; its
field names are the TOML table names. The loader is generic: it reads the file,
lays the CLI overrides over it, checks every key of every section present, and
collects every problem, each as ``"key.path: what is wrong"``, before raising
one ``ConfigError``.

To add a section, say ``[porter]``:

1. declare ``@dataclass(frozen=True) class Porter:`` with a docstring (it heads
   the section in ``describe()``) and one ``setting(...)`` per key, annotated
   ``str``, ``int``, ``float``, ``bool`` or ``tuple[str, ...]``;
2. add ``porter: Porter = Porter()`` to ``Config``.

A check is a function ``value -> problem text or None`` (see ``between``,
``endpoint``, ...), run only on a value of the right type; the first failing
check is the key's problem. ``each=`` checks apply to every item of a list and
report ``key[i]``. A section may define ``cross_check(values)`` for rules
between its keys; it sees only the keys whose values passed their own checks.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, get_args, get_origin, get_type_hints

from helios.errors import ConfigError

Check = Callable[[Any], "str | None"]

DAY = 86400


def setting(default: Any, doc: str, *checks: Check, each: tuple[Check, ...] = (),
            required: bool = False, example: Any = None) -> Any:
    """A config key: its default, its doc, its checks. A required key has no
    meaningful default; ``example`` is what ``describe()`` shows for it."""
    meta = {"doc": doc, "checks": checks, "each": each, "required": required, "example": example}
    return field(default=default, metadata=meta)


# --- checks: each returns None when the value is fine, else what is wrong ---

def between(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be {lo}..{hi}, got {v}"


def at_least(lo: float) -> Check:
    return lambda v: None if v >= lo else f"must be >= {lo}, got {v}"


def above(lo: float, at_most: float | None = None) -> Check:
    """lo < v (<= at_most). Written so that NaN fails too."""
    if at_most is None:
        return lambda v: None if v > lo else f"must be > {lo}, got {v}"
    return lambda v: None if lo < v <= at_most else f"must be > {lo} and <= {at_most}, got {v}"


def one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"


def divides(n: int, what: str) -> Check:
    return lambda v: None if n % v == 0 else f"must divide {n} ({what}), got {v}"


def matches(pattern: str, what: str) -> Check:
    rx = re.compile(pattern)
    return lambda v: None if rx.fullmatch(v) else f"{v!r} is not {what} ({pattern})"


def not_empty(v: Any) -> str | None:
    return None if len(v) else "must not be empty"


def unique(v: tuple) -> str | None:
    twice = sorted({x for x in v if v.count(x) > 1})
    return None if not twice else f"{', '.join(map(repr, twice))} listed more than once"


_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>[0-9]+)")


def endpoint(bind: bool = False) -> Check:
    """tcp://HOST:PORT, ipc://PATH or inproc://NAME; host ``*`` only if ``bind``."""
    def check(v: str) -> str | None:
        if v.startswith(("ipc://", "inproc://")) and v.partition("://")[2]:
            return None
        m = _TCP.fullmatch(v)
        if not m:
            return f"{v!r} is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)"
        if not 1 <= int(m["port"]) <= 65535:
            return f"{v!r}: port must be 1..65535"
        if m["host"] == "*" and not bind:
            return f"{v!r}: host '*' is for binding; name the host to connect to"
        return None
    return check


def time_zone(v: str) -> str | None:
    if v == "local":
        return None
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"{v!r} is not an IANA time zone name (like 'Europe/Paris') or 'local'"
    return None


# --- the sections ---

@dataclass(frozen=True)
class Buck:
    """A buck server: takes batches on its PULL ingest socket and appends them,
    as they arrived, to per-environment time bucket files."""

    name: str = setting("", 'Shown in logs and stats; "" means "buck-<port of ingest>".')
    data_dir: str = setting("./helios-data/buck", "Bucket files go under DATA_DIR/buckets/ENV/...",
                            not_empty)
    ingest: str = setting("tcp://127.0.0.1:7301", "PULL endpoint the buck binds for batches.",
                          endpoint(bind=True))
    window: int = setting(60, "Bucket width in seconds; 1..86400 and must divide 86400.",
                          between(1, DAY), divides(DAY, "a day"))
    fsync: bool = setting(False, "Fsync bucket files after each batch (default: write to the OS only).")
    max_frame_bytes: int = setting(64 * 1024 * 1024, "Larger batch frames are refused (>= 4096).",
                                   at_least(4096))
    stats_interval: float = setting(1.0, "Seconds between writes of DATA_DIR/stats.json (> 0).",
                                    above(0))
    rcvhwm: int = setting(1000, "ZeroMQ receive high-water mark, in messages (>= 1).", at_least(1))


@dataclass(frozen=True)
class Tailer:
    """The tailer of one host: follows files by glob, parses their lines, and
    sends each batch to several bucks."""

    environment: str = setting(
        "default", "Environment of the events; it becomes a directory name.",
        matches(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", "an environment name"))
    host: str = setting("", 'Host name of the events; "" means this machine\'s hostname.')
    paths: tuple[str, ...] = setting((), "Globs of the files to follow.", not_empty,
                                     each=(not_empty,), required=True,
                                     example=["/var/log/syslog", "/var/log/app/*.log"])
    format: str = setting("auto", "Line format: auto, rfc3164, rfc5424, iso8601, json or raw.",
                          one_of("auto", "rfc3164", "rfc5424", "iso8601", "json", "raw"))
    app: str = setting("", "App name for lines that do not name one.")
    timezone: str = setting("UTC", "Zone of timestamps without an offset: an IANA name "
                            '(like "Europe/Paris") or "local".', time_zone)
    start_at: str = setting("end", "end or beginning: where to start in files that exist at first "
                            "start (files created later are always read from the beginning).",
                            one_of("end", "beginning"))
    bucks: tuple[str, ...] = setting((), "Buck ingest endpoints to connect to.", not_empty, unique,
                                     each=(endpoint(),), required=True,
                                     example=["tcp://buck-a:7301", "tcp://buck-b:7301"])
    copies: int = setting(2, "Each batch goes to this many distinct bucks (1..8, at most the "
                          "number of bucks).", between(1, 8))
    batch_events: int = setting(2000, "A batch closes at this many events (1..100000)...",
                                between(1, 100_000))
    batch_bytes: int = setting(1024 * 1024, "... or this many bytes of lines (1024..67108864)...",
                               between(1024, 64 * 1024 * 1024))
    batch_delay: float = setting(0.1, "... or this many seconds after its first line (0 < x <= 60).",
                                 above(0, 60))
    poll_interval: float = setting(0.02, "Seconds between looks at idle files (0 < x <= 10).",
                                   above(0, 10))
    rescan_interval: float = setting(1.0, "Seconds between glob rescans for new files "
                                     "(0 < x <= 3600).", above(0, 3600))
    sndhwm: int = setting(1000, "ZeroMQ send high-water mark per buck, in messages (>= 1).",
                          at_least(1))

    @staticmethod
    def cross_check(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        bucks, copies = values.get("bucks"), values.get("copies")
        if bucks and copies is not None and copies > len(bucks):
            yield "copies", f"must be at most the number of bucks ({len(bucks)}), got {copies}"


@dataclass(frozen=True)
class Config:
    """The whole configuration: one attribute per section (the TOML table name)."""

    buck: Buck = Buck()
    tailer: Tailer = Tailer()
    sections_present: frozenset[str] = frozenset()


SECTIONS: dict[str, type] = {
    name: kind for name, kind in get_type_hints(Config).items() if is_dataclass(kind)}


# --- the loader ---

def load(path: str | os.PathLike | None, overrides: Mapping[str, Any] | None = None,
         require: Iterable[str] = ()) -> Config:
    """Read ``path`` (None: no file), lay ``overrides`` ("section.key" -> value,
    as click gives them) over it, and validate. Overrides of None or () are
    ignored: that is what click passes for a flag not given. Sections present in
    the file or the overrides are fully checked; a section in ``require`` is
    checked even when absent, so its required keys are reported missing.
    Raises ConfigError listing every problem found."""
    require = set(require)
    if require - SECTIONS.keys():
        raise ValueError(f"unknown sections required: {sorted(require - SECTIONS.keys())}")
    problems: list[str] = []
    raw = _read(path, problems)
    file_ok = not problems  # if the file is unreadable, don't also call its keys missing
    known_sections = f"(known: {', '.join(SECTIONS)})"
    data: dict[str, dict[str, Any]] = {}
    for name, table in raw.items():
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section {known_sections}")
        elif not isinstance(table, dict):
            problems.append(f"{name}: must be a table ([{name}]), got {_show(table)}")
        else:
            data[name] = dict(table)
    for dotted, value in (overrides or {}).items():
        if value is None or value == ():
            continue
        name, _, key = dotted.partition(".")
        if name not in SECTIONS:
            problems.append(f"{dotted}: unknown section {known_sections}")
            continue
        data.setdefault(name, {})[key] = list(value) if isinstance(value, tuple) else value
    built = {}
    for name, cls in SECTIONS.items():
        if name in data or name in require:
            built[name] = _build(name, cls, data.get(name, {}), problems, file_ok)
        else:
            built[name] = cls()
    if problems:
        raise ConfigError(problems, source="flags" if path is None else str(path))
    return Config(**built, sections_present=frozenset(data))


def _read(path: str | os.PathLike | None, problems: list[str]) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        problems.append(f"file: cannot be read ({e.strerror or e})")
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        problems.append(f"file: not valid TOML: {e}")
    except UnicodeDecodeError as e:
        problems.append(f"file: not valid UTF-8 ({e.reason} at byte {e.start})")
    return {}


def _build(name: str, cls: type, table: dict[str, Any], problems: list[str],
           check_required: bool) -> Any:
    """Validate one section's table and return the section; invalid keys keep
    their defaults (the caller raises anyway)."""
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            problems.append(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, f in known.items():
        path = f"{name}.{key}"
        if key not in table:
            if not f.metadata["required"]:
                values[key] = f.default
            elif check_required:
                problems.append(f"{path}: required, not set")
            continue
        value, found = _check(path, table[key], hints[key], f.metadata)
        problems.extend(found)
        if not found:
            values[key] = value
    for key, what in getattr(cls, "cross_check", lambda _: ())(values):
        problems.append(f"{name}.{key}: {what}")
    return cls(**values)


def _check(path: str, value: Any, kind: Any, meta: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Type-check and check one value; return it converted, and its problems."""
    if get_origin(kind) is tuple:
        item_kind = get_args(kind)[0]
        if not isinstance(value, (list, tuple)):
            return value, [f"{path}: must be a list of {_KINDS[item_kind]}s, got {_show(value)}"]
        items, found = [], []
        for i, item in enumerate(value):
            item, what = _convert(item, item_kind)
            what = what or _first(meta["each"], item)
            items.append(item)
            if what:
                found.append(f"{path}[{i}]: {what}")
        if found:
            return value, found
        value = tuple(items)
    else:
        value, what = _convert(value, kind)
        if what:
            return value, [f"{path}: {what}"]
    what = _first(meta["checks"], value)
    return value, [f"{path}: {what}"] if what else []


_KINDS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _convert(value: Any, kind: type) -> tuple[Any, str | None]:
    """Strict types: bool is not an int, but an int is a fine float."""
    if isinstance(value, bool) and kind is not bool:
        ok = False
    elif kind is float and isinstance(value, int):
        value, ok = float(value), True
    else:
        ok = isinstance(value, kind)
    if not ok:
        return value, f"must be {_a(_KINDS[kind])}, got {_show(value)}"
    if kind is float and not math.isfinite(value):
        return value, f"must be a finite number, got {value}"
    return value, None


def _first(checks: Iterable[Check], value: Any) -> str | None:
    return next((what for check in checks if (what := check(value))), None)


def _show(value: Any) -> str:
    """A value as the user wrote it, and its TOML type."""
    kind = {bool: "boolean", int: "integer", float: "float", str: "string",
            list: "list", tuple: "list", dict: "table"}.get(type(value), type(value).__name__)
    text = _toml(value) if isinstance(value, (bool, list, tuple)) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_a(kind)})"


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


# --- the schema as data, for the CLI and the docs ---

def _field(section: str, key: str) -> Any:
    try:
        return next(f for f in fields(SECTIONS[section]) if f.name == key)
    except (KeyError, StopIteration):
        raise KeyError(f"{section}.{key}: no such config key") from None


def default(section: str, key: str) -> Any:
    """The default of ``section.key`` (for --help texts)."""
    return _field(section, key).default


def doc(section: str, key: str) -> str:
    """The documentation of ``section.key`` (for --help texts)."""
    return _field(section, key).metadata["doc"]


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every section's effective values, lists as lists (for printing)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        section = getattr(cfg, name)
        out[name] = {f.name: getattr(section, f.name) for f in fields(section)}
        out[name].update({k: list(v) for k, v in out[name].items() if isinstance(v, tuple)})
    return out


def describe() -> str:
    """A commented TOML file of every section and key with its default and doc.
    Required keys show an example value. It loads back without problems."""
    out = ["# Helios configuration: every section and key, with its default.",
           "# A service reads only its own section; unknown keys are errors.", ""]
    for name, cls in SECTIONS.items():
        out += _comment(cls.__doc__ or "")
        out.append(f"[{name}]")
        for f in fields(cls):
            out += _comment(f.metadata["doc"])
            value = f.default
            if f.metadata["required"]:
                out.append("# REQUIRED; an example:")
                value = f.metadata["example"]
            out.append(f"{f.name} = {_toml(value)}")
        out.append("")
    return "\n".join(out)


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(" ".join(text.split()), 76)]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a TOML basic string; these escapes are TOML's too
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
