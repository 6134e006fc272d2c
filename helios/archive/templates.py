"""Lines as templates and variables, in the spirit of CLP: a message layout of the archive.

Most log lines are a few fixed texts with values filled in: ``Accepted
publickey for bob from 10.1.2.3 port 51234``. Cut each line into its
*template* (the fixed text, each value replaced by a placeholder byte) and
its *variables* (the values), and the templates repeat: a window of a
million lines has a few hundred distinct ones. Stored as a dictionary of
templates, one template number per line, and the variables grouped by
template and by slot (every port with ports, every address with addresses),
each column compresses far better than the lines did (CLP, OSDI 2021:
"Compression and search of log data at scale").

Pure: bytes in, bytes out; ``split`` and ``join`` are inverses for every list
of lines without a newline, whatever the bytes (``join(*split(lines, ph),
ph) == lines``).

What is a variable
------------------
A *token* is a maximal run of bytes that are not delimiters (ASCII
whitespace and ``, ; : = [ ] ( ) { } < > " ' / | @``); a token that holds an
ASCII digit is a variable (``10.1.2.3``, ``blk_-1608``, ``4ms``, ``v1``). The
rest of the line, delimiters and tokens without digits, is its template.
This is the heuristic of CLP's default schema, on bytes.

The placeholder
---------------
One byte stands for a variable in a template; ``placeholder`` picks one that
occurs in none of the lines (a control byte, nearly always ``0x11``), so
templates stay unambiguous. Lines that use every byte value cannot be split
(``placeholder`` returns None) and are stored another way by the caller.

Layout of ``split``'s result
----------------------------
- ``templates``: the distinct templates, in order of first use;
- ``ids``: for each line, the number of its template;
- ``values``: every variable, joined by ``\\n`` (a variable holds no newline
  since a line holds none): template by template in ``templates`` order,
  and within a template slot by slot, and within a slot line by line. A
  template with ``k`` placeholders used by ``m`` lines contributes ``k * m``
  values: first the ``m`` values of its slot 0, then of its slot 1, ...
"""

from __future__ import annotations

import itertools
import re
from typing import Sequence

__all__ = ["DELIMITERS", "join", "placeholder", "split"]

DELIMITERS = b" \t\r\x0b\x0c,;:=[](){}<>\"'/|@"
_D = re.escape(DELIMITERS).replace(b"\n", b"")
# A token with a digit. [^D] excludes the newline too, so no match crosses
# lines; the first run cannot take a digit, so a match starts where its token
# starts and the engine never backtracks into a token.
_VARIABLE = re.compile(b"[^\n0-9" + _D + b"]*[0-9][^\n" + _D + b"]*")
# Captured, so that one ``split`` pass yields the text between variables and
# the variables, interleaved.
_CUT = re.compile(b"(" + _VARIABLE.pattern + b")")
# Placeholders tried, in order: control bytes that text does not use.
_CANDIDATES = bytes(range(0x11, 0x1b)) + bytes(range(0x01, 0x09)) + bytes(range(0x0e, 0x11)) + bytes(range(0x1c, 0x20))


def placeholder(lines: Sequence[bytes]) -> bytes | None:
    """A byte that occurs in none of ``lines`` (None if every byte does)."""
    text = b"\n".join(lines)
    # One memchr per candidate; the first is nearly always free.
    for b in itertools.chain(_CANDIDATES, range(256)):
        ph = bytes((b,))
        if b != 0x0a and ph not in text:
            return ph
    return None


def split(lines: Sequence[bytes], ph: bytes) -> tuple[list[bytes], list[int], bytes]:
    """(templates, ids, values) of ``lines`` (see the module docstring). No
    line may hold a newline or the placeholder byte ``ph``."""
    if not lines:
        return [], [], b""
    cut = _CUT.split(b"\n".join(lines))
    values = cut[1::2]
    shapes = ph.join(cut[0::2]).split(b"\n")
    del cut
    numbers: dict[bytes, int] = {}
    ids = [numbers.setdefault(t, len(numbers)) for t in shapes]
    templates = list(numbers)
    if not values:
        return templates, ids, b""
    slots = [t.count(ph) for t in templates]
    starts = list(itertools.accumulate(map(slots.__getitem__, ids), initial=0))
    # The lines of each template, in line order.
    members: list[list[int]] = [[] for _ in templates]
    for i, t in enumerate(ids):
        members[t].append(i)
    out: list[bytes] = []
    extend = out.extend
    for t, rows in enumerate(members):
        k = slots[t]
        if not k:
            continue
        if k == 1:
            extend([values[starts[i]] for i in rows])
            continue
        flat: list[bytes] = []
        for i in rows:
            flat += values[starts[i]:starts[i + 1]]
        for j in range(k):
            extend(flat[j::k])
    return templates, ids, b"\n".join(out)


def join(templates: Sequence[bytes], ids: Sequence[int], values: bytes, ph: bytes) -> list[bytes]:
    """The lines ``split`` was given. Raises ValueError when the parts do not
    fit together (a template number out of range, too few or too many values)."""
    if not ids:
        if values or templates:
            raise ValueError("templates or values without lines")
        return []
    nt = len(templates)
    if min(ids) < 0 or max(ids) >= nt:
        raise ValueError("a line's template number is out of range")
    pieces = [t.split(ph) for t in templates]
    counts = [0] * nt
    for t in ids:
        counts[t] += 1
    need = sum((len(p) - 1) * c for p, c in zip(pieces, counts))
    vals = values.split(b"\n") if need else []
    if len(vals) != need or (not need and values):
        raise ValueError(f"the values do not fit the templates: they need {need}, the column holds "
                         f"{len(vals) if need else 'some'}")
    # The rows of each template, rebuilt in order; then dealt back to the lines.
    rows_of: list[list[bytes] | None] = [None] * nt
    at = 0
    for t, (p, m) in enumerate(zip(pieces, counts)):
        k = len(p) - 1
        if not m:
            continue
        if k == 0:
            rows_of[t] = [p[0]] * m
            continue
        cols = [vals[at + j * m:at + (j + 1) * m] for j in range(k)]
        at += k * m
        if k == 1:
            a, b = p
            rows_of[t] = [a + v + b for v in cols[0]]
        else:
            # The pieces and the slot columns interleaved, joined row by row in C.
            parts = [itertools.repeat(p[0])]
            for j in range(k):
                parts += [cols[j], itertools.repeat(p[j + 1])]
            rows_of[t] = list(map(b"".join, zip(*parts)))
    iters = [iter(r) if r is not None else None for r in rows_of]
    nexts = [it.__next__ if it is not None else None for it in iters]
    return [nexts[t]() for t in ids]
