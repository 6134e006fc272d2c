"""The search query: what every index backend answers, and what the CLI and
the web page build. Pure: no I/O.

A ``Query`` asks for the events of one environment in a time range
[start, end) (ns, UTC) that match all of:

- ``terms``: whole words, ASCII case-insensitive. A word character is an
  ASCII letter or digit or any non-ASCII character (so a word in any script
  stays whole); everything else splits words. ``error`` matches ``Error:``,
  ``[error]`` and ``error_code`` but not ``errors``.
- ``substrings``: exact bytes, case-sensitive, as ``grep -F`` finds them.
  Indexes answer needles of 3 characters or more from a trigram index; a
  shorter one (or one that is not UTF-8) is found by scanning the range.
- ``hosts`` / ``apps``: any of these (exact names); ``severity``: this
  severe or worse (syslog numbers, 0 is emerg), as the live filters read it;
  events of unknown severity pass only when no severity is asked for.
- ``fields``: (key, values) pairs: the event has field ``key`` with one of
  ``values``, exactly (case-sensitive). What a field's value is as text,
  and which fields are searchable, is ``field_pairs``: the one definition
  every backend indexes and ``matches`` reads.

Hits come in time order (``order`` "asc" or "desc"), ties broken by event
id, so an answer is deterministic on every backend. ``limit`` caps a page;
``after`` (the (time, id) of the last hit of the previous page) continues
past it: ``q.next_page(hits)`` builds the next page's query.

``matches(q, event)`` is the reference meaning of a query: every backend's
answer is what it would keep (the tests hold them to it), and a live feed
can be filtered with it.

The query string
----------------
``parse_query`` reads what a user types::

    error host:web1 app:nginx,haproxy sev:err "conn reset" "\\xff\\xfe"

- a bare word made of word characters is a term (``error``); a bare word
  with other characters in it (``user=bob``, ``10.0.0.1``, ``/api/v1``) is a
  substring, since it cannot be one whole word;
- ``"..."`` is a substring; inside it ``\\"`` is a quote, ``\\\\`` a
  backslash and ``\\xHH`` one raw byte; any other backslash is itself;
- ``host:``, ``app:`` (comma-separated or repeated: any of them) and
  ``sev:`` / ``severity:`` (a syslog name or 0..7) filter; a value may be
  quoted.
- any other ``key:value`` is a field (``user:alice``, ``http.status:500``,
  ``msg:"payment declined"``, ``status:404,500``): the event's field
  ``key`` (dotted for nested keys) is one of the values. A key is a letter,
  ``_`` or ``@``, then letters, digits, ``_``, ``.``, ``-``, ``@``. A value
  that starts with ``//`` (``http://x``) is refused with a hint to quote it.

``format_query`` writes the text back; ``parse_query(format_query(q))``
gives ``q`` again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Sequence

from helios.errors import SearchError
from helios.model import SEVERITIES, SEVERITY_BY_NAME, Event
from helios.store.layout import valid_environment

__all__ = [
    "Cursor",
    "ORDERS",
    "Query",
    "field_pairs",
    "field_text",
    "format_query",
    "is_word",
    "matches",
    "parse_query",
    "word_regex",
]

Cursor = tuple  # (time ns, id bytes) of the last hit of a page
ORDERS = ("asc", "desc")
DEFAULT_LIMIT = 100
FILTER_KEYS = {"host": "hosts", "app": "apps", "sev": "severity", "severity": "severity"}
MAX_PAIRS = 128             # searchable fields of one event (values of a list count one each)
MAX_VALUE = 1024            # characters of a searchable value: a longer one is kept, not indexed
MAX_QUERY_FIELDS = 64       # fields one query may name ...
MAX_QUERY_VALUES = 1024     # ... and values of them in all (each is an SQL variable, a keyword term)
_FIELD_KEY = re.compile(r"[A-Za-z_@][\w.@-]{0,127}")
_KEY_OK: dict[str, bool] = {}      # keys repeat: each is checked once

# A word character: an ASCII letter or digit, or any non-ASCII character
# (as bytes: any byte >= 0x80, so the rule also holds on bytes that are
# not UTF-8). Lucene regexps (Elasticsearch, OpenSearch) express the same
# class, so every backend draws word boundaries at the same places.
_WORD_RE = re.compile(r"[A-Za-z0-9\x80-\U0010ffff]+")
_WORD_BYTES = rb"A-Za-z0-9\x80-\xff"


def is_word(text: str) -> bool:
    """Is ``text`` one whole word (only word characters)?"""
    return isinstance(text, str) and _WORD_RE.fullmatch(text) is not None


@lru_cache(maxsize=256)
def word_regex(term: str) -> re.Pattern:
    """A bytes regex finding ``term`` as a whole word, ASCII case-insensitive."""
    return re.compile(rb"(?<![" + _WORD_BYTES + rb"])" + re.escape(term.encode()) + rb"(?![" + _WORD_BYTES + rb"])",
                      re.IGNORECASE)


def _as_tuple(values, name: str) -> tuple:
    if values is None:
        return ()
    if isinstance(values, (str, bytes)):
        return (values,)
    try:
        return tuple(values)
    except TypeError:
        raise SearchError(f"{name} must be a list, not {type(values).__name__}") from None


@dataclass(frozen=True)
class Query:
    environment: str
    start: int                              # ns since the epoch, UTC, inclusive
    end: int                                # ns, exclusive
    terms: tuple[str, ...] = ()             # whole words, ASCII case-insensitive
    substrings: tuple[bytes, ...] = ()      # exact bytes (str is taken as UTF-8)
    hosts: tuple[str, ...] = ()             # any of these
    apps: tuple[str, ...] = ()              # any of these
    severity: int | None = None             # this severe or worse (0 = emerg)
    limit: int | None = DEFAULT_LIMIT       # None: every hit
    order: str = "asc"                      # "asc" or "desc" by (time, id)
    after: Cursor | None = field(default=None)  # (time, id) of the last hit already seen
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (key, any of these values), all of them

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not valid_environment(self.environment):
            raise SearchError(f"environment {self.environment!r} is not a valid environment name "
                              "(a letter or digit, then letters, digits, '_', '.', '-'; at most 64)")
        for name in ("start", "end"):
            if type(getattr(self, name)) is not int:
                raise SearchError(f"{name} must be an integer (ns since the epoch)")
        if self.end < self.start:
            raise SearchError("the time range ends before it starts")
        terms = _as_tuple(self.terms, "terms")
        for t in terms:
            if not is_word(t):
                raise SearchError(f"term {t!r} is not one whole word (ASCII letters, digits or non-ASCII "
                                  "characters only): search for it as a substring instead")
        set_(self, "terms", terms)
        subs = []
        for s in _as_tuple(self.substrings, "substrings"):
            b = s.encode() if isinstance(s, str) else bytes(s)
            if not b:
                raise SearchError("an empty substring matches everything: leave it out")
            subs.append(b)
        set_(self, "substrings", tuple(subs))
        for name in ("hosts", "apps"):
            values = _as_tuple(getattr(self, name), name)
            if not all(isinstance(v, str) and v for v in values):
                raise SearchError(f"{name} must be non-empty names")
            set_(self, name, values)
        pairs = []
        for item in _as_tuple(self.fields, "fields"):
            try:
                key, values = item
            except (TypeError, ValueError):
                raise SearchError("fields must be (key, values) pairs") from None
            if not isinstance(key, str) or not _FIELD_KEY.fullmatch(key):
                raise SearchError(f"field name {key!r} is not searchable: a letter, '_' or '@', then letters, "
                                  "digits, '_', '.', '-', '@' (at most 128)")
            values = _as_tuple(values, f"the values of field {key}")
            if not values or not all(isinstance(v, str) for v in values):
                raise SearchError(f"field {key} needs one or more text values")
            pairs.append((key, values))
        if len(pairs) > MAX_QUERY_FIELDS or sum(len(v) for _, v in pairs) > MAX_QUERY_VALUES:
            raise SearchError(f"a query may name at most {MAX_QUERY_FIELDS} fields and {MAX_QUERY_VALUES} field "
                              "values in all")
        set_(self, "fields", tuple(pairs))
        if self.severity is not None and (type(self.severity) is not int or not 0 <= self.severity <= 7):
            raise SearchError(f"severity must be 0..7 (0 is emerg), not {self.severity!r}")
        if self.limit is not None and (type(self.limit) is not int or self.limit < 1):
            raise SearchError(f"limit must be a positive number or None (every hit), not {self.limit!r}")
        if self.order not in ORDERS:
            raise SearchError(f"order must be 'asc' or 'desc', not {self.order!r}")
        if self.after is not None:
            after = tuple(self.after)
            if len(after) != 2 or type(after[0]) is not int or not isinstance(after[1], (bytes, bytearray)):
                raise SearchError("after must be (time ns, id bytes) of the last hit seen")
            set_(self, "after", (after[0], bytes(after[1])))

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    def next_page(self, hits: Sequence[Event]) -> "Query | None":
        """The query for the page after ``hits`` (a page this query
        returned), or None when that page was the last one."""
        if self.limit is None or len(hits) < self.limit or not hits:
            return None
        last = hits[-1]
        return replace(self, after=(last.time, last.id))


DAY_NS = 86400 * 1_000_000_000


def past_cursor(q: Query, t: int, event_id: bytes) -> bool:
    """Is the hit (t, id) past ``q.after`` in the query's order?"""
    if q.after is None:
        return True
    return (t, event_id) < q.after if q.descending else (t, event_id) > q.after


def field_text(value) -> str | None:
    """A scalar field value as the text a query compares with it (None:
    not searchable): strings as they are, integers (and floats without a
    fraction) in decimal, other floats as Python writes them, booleans as
    ``true``/``false``, bytes when they are UTF-8."""
    t = type(value)
    if t is str:
        text = value
    elif t is bool:
        return "true" if value else "false"
    elif t is int:
        return str(value)
    elif t is float:
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    elif t is bytes:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        return None
    return text if len(text) <= MAX_VALUE else None


def field_pairs(fields) -> list[tuple[str, str]]:
    """The (key, value text) pairs by which an event's fields are searched,
    without repeats, at most ``MAX_PAIRS``. Nested mappings give dotted
    keys (``{"http": {"status": 500}}`` -> ``("http.status", "500")``), so a
    nested key and a flattened one are the same; each scalar element of a
    list is a value of its key; keys that a query cannot name, null, and
    values longer than ``MAX_VALUE`` are left out."""
    out: dict[tuple[str, str], None] = {}
    if isinstance(fields, dict):
        _walk_fields(fields, "", out, 0)
    return list(out)


def _walk_fields(obj: dict, prefix: str, out: dict, depth: int) -> None:
    for key, value in obj.items():
        if len(out) >= MAX_PAIRS:
            return
        if not isinstance(key, str):
            continue
        name = prefix + key
        if isinstance(value, dict):
            if depth < 16:
                _walk_fields(value, name + ".", out, depth + 1)
            continue
        ok = _KEY_OK.get(name)
        if ok is None:
            if len(_KEY_OK) > 10_000:
                _KEY_OK.clear()
            ok = _KEY_OK[name] = _FIELD_KEY.fullmatch(name) is not None
        if not ok:
            continue
        for v in value if isinstance(value, (list, tuple)) else (value,):
            text = field_text(v)
            if text is not None and len(out) < MAX_PAIRS:
                out[(name, text)] = None


def matches(q: Query, e: Event) -> bool:
    """Does event ``e`` answer ``q`` (ignoring its limit)? The reference
    meaning of a query; see the module docstring."""
    if e.environment and e.environment != q.environment:
        return False
    if not q.start <= e.time < q.end or not past_cursor(q, e.time, e.id):
        return False
    if q.hosts and e.host not in q.hosts:
        return False
    if q.apps and e.app not in q.apps:
        return False
    if q.severity is not None and (e.severity is None or e.severity > q.severity):
        return False
    if q.fields:
        have = set(field_pairs(e.fields))
        if not all(any((k, v) in have for v in values) for k, values in q.fields):
            return False
    message = e.message
    if not all(s in message for s in q.substrings):
        return False
    return all(word_regex(t).search(message) for t in q.terms)


# ---------------------------------------------------------------- the query string

_TOKEN = re.compile(r'\s*(?:(?P<key>[A-Za-z_@][\w.@-]*):)?(?:"(?P<quoted>(?:[^"\\]|\\.)*)(?P<close>")?|(?P<bare>[^\s"]*))',
                    re.S)
_ESCAPES = re.compile(r'\\x([0-9A-Fa-f]{2})|\\(["\\])|(\\)|([^\\]+)', re.S)


def _unescape(inner: str) -> bytes:
    out = bytearray()
    for hexd, esc, lone, text in _ESCAPES.findall(inner):
        if hexd:
            out.append(int(hexd, 16))
        else:
            out += (esc or lone or text).encode()
    return bytes(out)


def _severity(value: str) -> int:
    v = value.strip().lower()
    if v.isdigit() and 0 <= int(v) <= 7:
        return int(v)
    if v in SEVERITY_BY_NAME:
        return SEVERITY_BY_NAME[v]
    raise SearchError(f"sev:{value} is not a severity: use one of {', '.join(SEVERITIES)} or 0..7 "
                      "(it means this severe or worse)")


def parse_query(text: str, *, environment: str, start: int, end: int, limit: int | None = DEFAULT_LIMIT,
                order: str = "asc", after: Cursor | None = None) -> Query:
    """Read a query string (see the module docstring) into a ``Query``."""
    terms: list[str] = []
    subs: list[bytes] = []
    hosts: list[str] = []
    apps: list[str] = []
    severity: int | None = None
    fields: dict[str, list[str]] = {}
    pos = 0
    text = text or ""
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m.end() == pos:          # only a stray quote can stop the tokenizer
            raise SearchError(f"cannot read the query at {text[pos:]!r}")
        pos = m.end()
        key, quoted, bare = m.group("key"), m.group("quoted"), m.group("bare")
        if quoted is not None and m.group("close") is None:
            raise SearchError(f'unterminated quote in {m.group(0).strip()!r}: close it with "')
        if key is None and not quoted and not bare:
            if quoted == "":
                raise SearchError('an empty quoted string "" matches everything: leave it out')
            continue
        if key is not None:
            if quoted is None and (bare or "").startswith("//"):
                raise SearchError(f"{key}:{bare} reads as the field {key}; to search for the text itself, "
                                  f"quote it: {_quote(m.group(0).strip().encode())}")
            if quoted is not None:
                names = [_unescape(quoted).decode("utf-8", "replace")]
            else:
                names = [v for v in (bare or "").split(",") if v]
            if not names:
                example = "web1" if key.lower() in FILTER_KEYS else "value"
                raise SearchError(f"{key}: needs a value, e.g. {key}:{example}; to search for the text itself, "
                                  f"quote it: {_quote(m.group(0).strip().encode())}")
            kind = FILTER_KEYS.get(key.lower(), "field")
            if kind == "field":
                if not _FIELD_KEY.fullmatch(key):
                    raise SearchError(f"{key}: is not a field name a query can use (at most 128 characters; "
                                      "a letter, '_' or '@', then letters, digits, '_', '.', '-', '@')")
                if key.endswith(".") or ".." in key:
                    raise SearchError(f"{key}: has an empty part: nested keys are written a.b.c")
                fields.setdefault(key, []).extend(n for n in names if n not in fields.get(key, ()))
            elif kind == "hosts":
                hosts += names
            elif kind == "apps":
                apps += names
            else:
                if severity is not None or len(names) != 1:
                    raise SearchError("give one severity (sev:err means err or worse)")
                severity = _severity(names[0])
        elif quoted is not None:
            subs.append(_unescape(quoted))
        elif is_word(bare):
            terms.append(bare)
        else:
            subs.append(bare.encode())
    return Query(environment, start, end, tuple(terms), tuple(subs), tuple(hosts), tuple(apps), severity,
                 limit, order, after, tuple((k, tuple(v)) for k, v in fields.items()))


def _quote(b: bytes) -> str:
    out = []
    for ch in b.decode("utf-8", "surrogateescape"):
        if ch in '"\\':
            out.append("\\" + ch)
        elif "\udc80" <= ch <= "\udcff":        # a byte that is not UTF-8
            out.append(f"\\x{ord(ch) - 0xdc00:02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _quote_name(name: str) -> str:
    return name if re.fullmatch(r'[^\s",]+', name) else _quote(name.encode())


def format_query(q: Query) -> str:
    """The query string of ``q``'s terms, substrings and filters (its
    environment, range, limit, order and cursor are not part of it)."""
    parts = list(q.terms) + [_quote(s) for s in q.substrings]
    parts += [f"host:{_quote_name(h)}" for h in q.hosts] + [f"app:{_quote_name(a)}" for a in q.apps]
    if q.severity is not None:
        parts.append(f"sev:{SEVERITIES[q.severity]}")
    for key, values in q.fields:
        if all(re.fullmatch(r'[^\s",]+', v) and not v.startswith("//") for v in values):
            parts.append(f"{key}:{','.join(values)}")
        else:
            parts += [f"{key}:{_quote(v.encode())}" for v in values]
    return " ".join(parts)
