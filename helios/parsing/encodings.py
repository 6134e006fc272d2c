"""Text in other encodings: lines of a file in UTF-16, Shift_JIS, Latin-1...
decoded to UTF-8 before they are parsed. Pure.

The tailer splits lines at the byte ``\\n``. In an ASCII-compatible encoding
(Latin-1, cp1252, Shift_JIS, EUC-JP, GB18030...) that is the line end. In
UTF-16 the line end is two bytes, so each piece carries a stray zero byte:
little-endian ``\\n\\x00`` leaves it at the start of the next line, big-endian
``\\x00\\n`` at the end of the line itself; ``decode_line`` drops it. A BOM
(``\\xff\\xfe``, ``\\xfe\\xff``) at the start of a line says the byte order
and is not part of the text; without one, ``utf-16`` is little-endian (what
Windows writes). Bytes that do not decode are kept (``surrogateescape``:
written back as the same bytes), so nothing is lost.
"""

from __future__ import annotations

import codecs

UTF16 = ("utf-16", "utf-16-le", "utf-16-be", "utf16", "utf_16", "utf_16_le", "utf_16_be")


def check(name: str) -> str | None:
    """The config check of an ``encoding`` value."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return f"unknown encoding {name!r} (like utf-8, utf-16, shift_jis, latin-1, cp1252)"
    if info.name.startswith(("utf-32", "utf_32")):
        return "UTF-32 is not supported (lines are split at the byte \\n)"
    return None


def decode_line(line: bytes, encoding: str) -> bytes:
    """One line (as the tailer split it) as UTF-8 bytes."""
    name = codecs.lookup(encoding).name
    if name.startswith("utf-16"):
        order = "be" if name.endswith("be") else "le"
        if line[:2] == b"\xff\xfe":
            order, line = "le", line[2:]
        elif line[:2] == b"\xfe\xff":
            order, line = "be", line[2:]
        elif line[:3] in (b"\x00\xff\xfe", b"\x00\xfe\xff"):   # (a BOM after a stray zero)
            order, line = ("le" if line[1] == 0xFF else "be"), line[3:]
        if order == "le" and line[:1] == b"\x00" and len(line) % 2:
            line = line[1:]                 # the second byte of the previous line's "\n"
        elif order == "be" and line[-1:] == b"\x00" and len(line) % 2:
            line = line[:-1]                # the first byte of this line's "\n"
        text = line.decode("utf-16-" + order, "surrogateescape")
    else:
        text = line.decode(encoding, "surrogateescape")
    return text.encode("utf-8", "surrogateescape")
