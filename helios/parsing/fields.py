"""Fields from the text of a line: ``key=value`` pairs and RFC 5424
structured data. Pure functions of bytes; bounded (a line gives at most
``MAX_FIELDS`` fields, keys of at most 64 characters, values of at most
1024 bytes), so that no line makes a huge event.

``key=value``: a key is a letter or ``_`` then word characters, dots or
dashes, at the start of the line or after a space, comma, semicolon, an
opening bracket or the ``>`` of a syslog PRI; a value is a double-quoted string (``\\"`` and ``\\\\``
escapes) or runs to the next space, comma or semicolon. ``logname=`` gives
an empty value. The first of two equal keys wins. Values stay strings, as in
Vector's ``parse_key_value`` and logfmt.
"""

from __future__ import annotations

import re

MAX_FIELDS = 32

# One alternative matches a newline, the other a pair: a single findall over
# a chunk gives the pairs of every line in order, with the line ends between
# them (see ``chunk_pairs``).
_KV_OR_NL = re.compile(
    rb'(\n)|(?:^|(?<=[\s,;(\[{>]))([A-Za-z_][\w.\-]{0,63})=("(?:[^"\\\n]|\\.){0,1024}"|(?:[^\s,;"\[\]()]|\[[^\]\s]{0,256}\]|\([^)\s]{0,256}\)){0,1024})', re.M)
_KV = re.compile(_KV_OR_NL.pattern.split(b"|", 1)[1], re.M)
_UNESCAPE = re.compile(rb'\\(.)')
_keys: dict[bytes, str] = {}


def _key(raw: bytes) -> str:
    key = _keys.get(raw)
    if key is None:
        if len(_keys) > 10_000:
            _keys.clear()
        key = _keys[raw] = raw.decode("ascii", "replace")
    return key


def _value(raw: bytes) -> str:
    if raw[:1] == b'"' and len(raw) > 1:
        raw = raw[1:-1]
        if b"\\" in raw:
            raw = _UNESCAPE.sub(rb"\1", raw)
    return raw.decode("utf-8", "replace")


def key_values(line: bytes) -> dict[str, str] | None:
    """The ``key=value`` pairs of one line, or None when it has none."""
    if b"=" not in line:
        return None
    out: dict[str, str] = {}
    for key, value in _KV.findall(line):
        k = _key(key)
        if k not in out:
            out[k] = _value(value)
            if len(out) >= MAX_FIELDS:
                break
    return out or None


def chunk_pairs(chunk: bytes, fields: list, skip: set | frozenset = frozenset()) -> None:
    """Adds the ``key=value`` pairs of every line of ``chunk`` to ``fields``
    (one entry per line: None, or a dict that keeps its keys over the new
    ones). Lines in ``skip`` are left alone. One regex pass over the chunk."""
    line = 0
    found: dict | None = None
    for nl, key, value in _KV_OR_NL.findall(chunk):
        if nl:
            if found is not None:
                _merge(fields, line, found)
                found = None
            line += 1
        elif line not in skip:
            if found is None:
                found = {}
            k = _key(key)
            if k not in found and len(found) < MAX_FIELDS:
                found[k] = _value(value)
    if found is not None and line < len(fields):
        _merge(fields, line, found)


def _merge(fields: list, i: int, found: dict) -> None:
    if i >= len(fields):
        return
    have = fields[i]
    # A new dict: a pass's fields may be shared by several lines.
    fields[i] = found if have is None else {**found, **have}


# RFC 5424 structured data: [id name="value" ...][id2 ...]; in a value, \" \\ and \] are escapes.
_SD_ELEMENT = re.compile(rb'\[([^\s\]="]{1,32})((?:\s+[^\s\]="]{1,32}=\s*"(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(rb'([^\s\]="]{1,32})=\s*"((?:[^"\\]|\\.)*)"')


def structured_data(sd: bytes) -> dict[str, str]:
    """``[exampleSDID@32473 iut="3" eventSource="App"]`` -> {"exampleSDID@32473.iut": "3", ...}.
    An element without parameters gives its id with an empty value."""
    out: dict[str, str] = {}
    for sd_id, params in _SD_ELEMENT.findall(sd):
        sid = sd_id.decode("utf-8", "replace")
        pairs = _SD_PARAM.findall(params)
        if not pairs:
            out.setdefault(sid, "")
        for name, value in pairs:
            if len(out) >= MAX_FIELDS:
                return out
            out.setdefault(f"{sid}.{name.decode('utf-8', 'replace')}", _value(b'"' + value + b'"'))
    return out
